//! Users, roles, organisations and role bindings as stored objects: their validation, the
//! fields the server owns, and the checks against each other before a write.

use chrono::{DateTime, Utc};
use kiln_model::ValidationErrors;
use kiln_model::auth::{ALL_ORGS, Organization, Role, RoleBinding, User, builtin_roles};
use kiln_store::records::{GLOBAL, key};
use kiln_store::{Op, Precondition};

use crate::error::{ApiError, ApiResult};
use crate::resource::{ListFilter, Resource};
use crate::view::View;

fn created_then_updated(
    created: &mut Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    previous: Option<Option<DateTime<Utc>>>,
) {
    *created = match previous {
        Some(earlier) => earlier,
        None => Some(now),
    };
}

impl Resource for User {
    const NOUN: &'static str = "user";

    fn key_name(&self) -> String {
        self.name.clone()
    }
    fn validate(&self) -> Result<(), ValidationErrors> {
        User::validate(self)
    }
    fn settle(&mut self, _org: &str, now: DateTime<Utc>, previous: Option<&Self>) {
        created_then_updated(&mut self.created_time, now, previous.map(|p| p.created_time));
        self.updated_time = Some(now);
    }
    fn matches(&self, _filter: &ListFilter) -> bool {
        true
    }
}

impl Resource for Role {
    const NOUN: &'static str = "role";

    fn key_name(&self) -> String {
        self.name.clone()
    }
    fn validate(&self) -> Result<(), ValidationErrors> {
        Role::validate(self)
    }
    fn settle(&mut self, _org: &str, now: DateTime<Utc>, previous: Option<&Self>) {
        self.builtin = false;
        created_then_updated(&mut self.created_time, now, previous.map(|p| p.created_time));
        self.updated_time = Some(now);
    }
    fn matches(&self, _filter: &ListFilter) -> bool {
        true
    }
    async fn prepare(&mut self, _view: &View, _org: &str, _previous: Option<&Self>) -> ApiResult<Vec<Op>> {
        if builtin_roles().iter().any(|r| r.name == self.name) {
            return Err(ApiError::conflict(format!(
                "role {:?} is built in and cannot be changed: define a role of another name",
                self.name
            )));
        }
        Ok(Vec::new())
    }
}

impl Resource for Organization {
    const NOUN: &'static str = "organization";

    fn key_name(&self) -> String {
        self.name.clone()
    }
    fn validate(&self) -> Result<(), ValidationErrors> {
        Organization::validate(self)
    }
    fn settle(&mut self, _org: &str, now: DateTime<Utc>, previous: Option<&Self>) {
        created_then_updated(&mut self.created_time, now, previous.map(|p| p.created_time));
    }
    fn matches(&self, _filter: &ListFilter) -> bool {
        true
    }
}

impl Resource for RoleBinding {
    const NOUN: &'static str = "role binding";

    fn key_name(&self) -> String {
        self.name()
    }
    fn validate(&self) -> Result<(), ValidationErrors> {
        RoleBinding::validate(self)
    }
    fn settle(&mut self, _org: &str, now: DateTime<Utc>, previous: Option<&Self>) {
        created_then_updated(&mut self.created_time, now, previous.map(|p| p.created_time));
    }
    fn matches(&self, _filter: &ListFilter) -> bool {
        true
    }
    /// The subject, the role and the organisation must exist, and stay so until commit.
    async fn prepare(&mut self, view: &View, _org: &str, _previous: Option<&Self>) -> ApiResult<Vec<Op>> {
        let mut checks = Vec::new();
        let user = view.get::<User>(GLOBAL, &self.subject).await?;
        let Some(user) = user else {
            return Err(ApiError::field(
                "subject",
                format!("no user or service account named {:?}: create it first", self.subject),
            ));
        };
        if let Some(revision) = user.revision {
            checks.push(Op::Check { key: key::<User>(GLOBAL, &user.name), expect: Precondition::Revision(revision) });
        }
        if !builtin_roles().iter().any(|r| r.name == self.role) {
            match view.get::<Role>(GLOBAL, &self.role).await? {
                Some(role) => {
                    if let Some(revision) = role.revision {
                        checks.push(Op::Check {
                            key: key::<Role>(GLOBAL, &role.name),
                            expect: Precondition::Revision(revision),
                        });
                    }
                }
                None => return Err(ApiError::field("role", format!("no role named {:?}: create it first", self.role))),
            }
        }
        if self.organization != ALL_ORGS {
            match view.get::<Organization>(GLOBAL, &self.organization).await? {
                Some(org) => {
                    if let Some(revision) = org.revision {
                        checks.push(Op::Check {
                            key: key::<Organization>(GLOBAL, &org.name),
                            expect: Precondition::Revision(revision),
                        });
                    }
                }
                None => {
                    return Err(ApiError::field(
                        "organization",
                        format!("no organization named {:?}: create it first", self.organization),
                    ));
                }
            }
        }
        Ok(checks)
    }
}
