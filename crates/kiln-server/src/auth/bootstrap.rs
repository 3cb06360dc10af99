//! First start: an empty store gets the `default` organisation and an administrator whose
//! token is printed once (or taken from `KILN_ADMIN_TOKEN`); and the way back in for an
//! administrator whose token is lost (`kiln admin reset-token`, with no server running).

use chrono::Utc;

use kiln_model::DEFAULT_ORG;
use kiln_model::auth::{ALL_ORGS, AuditEntry, Organization, RoleBinding, SubjectKind, Token, User};
use kiln_store::records::{self, GLOBAL, encode};
use kiln_store::{KvStore, Op, Precondition};

use super::tokens;
use crate::error::{ApiError, ApiResult};

pub const ADMIN: &str = "admin";

/// Creates the administrator if no user exists yet. Returns the new token's secret when
/// one was generated (the caller prints it once); `None` if nothing was created or the
/// token came from `given`.
pub async fn ensure_admin(store: &dyn KvStore, given: Option<&str>) -> ApiResult<Option<String>> {
    let users = store.list(&records::prefix::<User>(GLOBAL), None, 1).await?;
    if !users.entries.is_empty() {
        return Ok(None);
    }
    let (secret, generated) = secret_from(given)?;
    let now = Utc::now();
    let admin = admin_user(now);
    let binding = admin_binding(now);
    let default_org = Organization {
        name: DEFAULT_ORG.into(),
        description: Some("Created at first start".into()),
        created_time: Some(now),
        revision: None,
    };
    let token = tokens::new_token(&secret, ADMIN, Some("created at first start".into()), None);
    let ops = vec![
        Op::Put { key: records::key::<User>(GLOBAL, ADMIN), value: encode(&admin)?, expect: Precondition::Absent },
        Op::Put {
            key: records::key::<RoleBinding>(GLOBAL, &binding.name()),
            value: encode(&binding)?,
            expect: Precondition::Absent,
        },
        Op::Put {
            key: records::key::<Organization>(GLOBAL, DEFAULT_ORG),
            value: encode(&default_org)?,
            expect: Precondition::Any,
        },
        Op::Put { key: records::key::<Token>(GLOBAL, &token.id), value: encode(&token)?, expect: Precondition::Absent },
    ];
    store.txn(ops).await?;
    Ok(generated.then_some(secret))
}

/// The administrator's new secret: `given` (KILN_ADMIN_TOKEN) or a generated one, and
/// whether it was generated (and so must be shown).
fn secret_from(given: Option<&str>) -> ApiResult<(String, bool)> {
    match given {
        Some(secret) if secret.len() >= 16 => Ok((secret.to_string(), false)),
        Some(_) => Err(ApiError::bad_request("KILN_ADMIN_TOKEN must be at least 16 characters long")),
        None => Ok((tokens::generate()?, true)),
    }
}

fn admin_user(now: chrono::DateTime<Utc>) -> User {
    User {
        name: ADMIN.into(),
        kind: SubjectKind::User,
        display_name: Some("Administrator".into()),
        disabled: false,
        created_time: Some(now),
        updated_time: Some(now),
        revision: None,
    }
}

fn admin_binding(now: chrono::DateTime<Utc>) -> RoleBinding {
    RoleBinding {
        subject: ADMIN.into(),
        role: "admin".into(),
        organization: ALL_ORGS.into(),
        created_time: Some(now),
        revision: None,
    }
}

/// Gives the administrator a new token and revokes all its others, for an administrator
/// locked out (the first-start token lost, or `admin` disabled or unbound). `admin` is
/// enabled and bound to the `admin` role in every organisation again. Only for a store no
/// server is using: a running server's permission cache would not hear of it. Returns the
/// secret when it was generated (the caller prints it once); `None` when it came from
/// `given`.
pub async fn reset_admin(store: &dyn KvStore, given: Option<&str>) -> ApiResult<Option<String>> {
    if store.list(&records::prefix::<User>(GLOBAL), None, 1).await?.entries.is_empty() {
        // Nothing was ever set up here: the reset is the first start's bootstrap.
        return ensure_admin(store, given).await;
    }
    let (secret, generated) = secret_from(given)?;
    let now = Utc::now();
    let token = tokens::new_token(&secret, ADMIN, Some("reset from the command line".into()), None);
    let mut ops = Vec::new();

    let user_key = records::key::<User>(GLOBAL, ADMIN);
    let user = match store.get(&user_key).await? {
        Some(entry) => {
            let mut user: User = records::decode(&entry)?;
            user.disabled = false;
            user.updated_time = Some(now);
            (user, Precondition::Revision(entry.mod_revision))
        }
        None => (admin_user(now), Precondition::Absent),
    };
    ops.push(Op::Put { key: user_key, value: encode(&user.0)?, expect: user.1 });

    let binding = admin_binding(now);
    let binding_key = records::key::<RoleBinding>(GLOBAL, &binding.name());
    if store.get(&binding_key).await?.is_none() {
        ops.push(Op::Put { key: binding_key, value: encode(&binding)?, expect: Precondition::Absent });
    }

    // The lost secret could be any of admin's tokens: none of them stays usable.
    let prefix = records::prefix::<Token>(GLOBAL);
    let mut after: Option<String> = None;
    loop {
        let page = store.list(&prefix, after.as_deref(), 500).await?;
        for entry in &page.entries {
            let mut old: Token = records::decode(entry)?;
            if old.subject != ADMIN || old.revoked_time.is_some() || old.id == token.id {
                continue;
            }
            old.revoked_time = Some(now);
            ops.push(Op::Put {
                key: entry.key.clone(),
                value: encode(&old)?,
                expect: Precondition::Revision(entry.mod_revision),
            });
        }
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    // The same secret as before (KILN_ADMIN_TOKEN unchanged) is the same token, made usable.
    ops.push(Op::Put {
        key: records::key::<Token>(GLOBAL, &token.id),
        value: encode(&token)?,
        expect: Precondition::Any,
    });

    // Recorded where an administrator reads first: global changes through the API land in
    // the organisation of their request, which is `default` unless one is named.
    let mut audit = super::audit::entry(
        ADMIN,
        DEFAULT_ORG.to_string(),
        &axum::http::Method::POST,
        "kiln admin reset-token",
        Some("command line".into()),
        200,
    );
    audit.committed = true;
    ops.push(Op::Put {
        key: records::key::<AuditEntry>(GLOBAL, &audit.id),
        value: encode(&audit)?,
        expect: Precondition::Absent,
    });
    store.txn(ops).await?;
    Ok(generated.then_some(secret))
}
