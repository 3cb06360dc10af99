//! First start: an empty store gets the `default` organisation and an administrator whose
//! token is printed once (or taken from `KILN_ADMIN_TOKEN`).

use chrono::Utc;

use kiln_model::DEFAULT_ORG;
use kiln_model::auth::{ALL_ORGS, Organization, RoleBinding, SubjectKind, User};
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
    let (secret, generated) = match given {
        Some(secret) if secret.len() >= 16 => (secret.to_string(), false),
        Some(_) => return Err(ApiError::bad_request("KILN_ADMIN_TOKEN must be at least 16 characters long")),
        None => (tokens::generate()?, true),
    };
    let now = Utc::now();
    let admin = User {
        name: ADMIN.into(),
        kind: SubjectKind::User,
        display_name: Some("Administrator".into()),
        disabled: false,
        created_time: Some(now),
        updated_time: Some(now),
        revision: None,
    };
    let binding = RoleBinding {
        subject: ADMIN.into(),
        role: "admin".into(),
        organization: ALL_ORGS.into(),
        created_time: Some(now),
        revision: None,
    };
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
        Op::Put {
            key: records::key::<kiln_model::auth::Token>(GLOBAL, &token.id),
            value: encode(&token)?,
            expect: Precondition::Absent,
        },
    ];
    store.txn(ops).await?;
    Ok(generated.then_some(secret))
}
