//! Who may do what: subjects (users and service accounts), roles made of permissions
//! (resource × action), and bindings of roles to subjects per organisation.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::validation::{ValidationErrors, check_name, check_text};

/// Everything a permission can be about.
pub const RESOURCES: [&str; 14] = [
    "base-images",
    "registry-credentials",
    "images",
    "repositories",
    "registry",
    "packages",
    "package-sources",
    "users",
    "tokens",
    "roles",
    "role-bindings",
    "organizations",
    "audit",
    "tasks",
];

pub const ACTIONS: [&str; 2] = ["read", "write"];

/// The organisation scope of a binding that holds in every organisation.
pub const ALL_ORGS: &str = "*";
/// Header that selects the organisation a request acts in (Dispatch used `X-Dispatch-Org`);
/// the server reads it and the client sends it.
pub const ORG_HEADER: &str = "x-kiln-org";

/// A permission such as `images:write`; `*` stands for every resource or every action.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Permission {
    pub resource: String,
    pub action: String,
}

impl Permission {
    pub fn parse(text: &str) -> Result<Permission, String> {
        let (resource, action) = text
            .split_once(':')
            .ok_or_else(|| format!("{text:?} is not a permission: write resource:action, such as images:write"))?;
        if resource != "*" && !RESOURCES.contains(&resource) {
            return Err(format!("{resource:?} is not a resource: use one of {} or *", RESOURCES.join(", ")));
        }
        if action != "*" && !ACTIONS.contains(&action) {
            return Err(format!("{action:?} is not an action: use read, write or *"));
        }
        Ok(Permission { resource: resource.to_string(), action: action.to_string() })
    }

    /// Whether holding `self` grants `wanted`.
    pub fn grants(&self, wanted: &Permission) -> bool {
        (self.resource == "*" || self.resource == wanted.resource)
            && (self.action == "*" || self.action == wanted.action)
    }
}

impl std::fmt::Display for Permission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.resource, self.action)
    }
}

/// A named set of permissions. The built-in roles cannot be changed or deleted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Role {
    #[schema(example = "auditor")]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[schema(example = json!(["audit:read", "images:read"]))]
    pub permissions: Vec<String>,
    #[serde(default)]
    #[schema(read_only)]
    pub builtin: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(read_only)]
    pub created_time: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(read_only)]
    pub updated_time: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<u64>,
}

fn role(name: &str, description: &str, permissions: &[&str]) -> Role {
    Role {
        name: name.into(),
        description: Some(description.into()),
        permissions: permissions.iter().map(|p| p.to_string()).collect(),
        builtin: true,
        created_time: None,
        updated_time: None,
        revision: None,
    }
}

/// The seed's three tiers.
pub fn builtin_roles() -> Vec<Role> {
    vec![
        role("admin", "Full access: base images, the package catalog, users, roles and tokens", &["*:*"]),
        role(
            "developer-lead",
            "Reads base images and the package catalog; creates and updates runtime images",
            &[
                "base-images:read",
                "packages:read",
                "package-sources:read",
                "images:read",
                "images:write",
                "repositories:read",
                "repositories:write",
                "tasks:read",
                "tasks:write",
                "organizations:read",
            ],
        ),
        role(
            "function-developer",
            "Reads everything the organisation holds",
            &[
                "base-images:read",
                "packages:read",
                "package-sources:read",
                "images:read",
                "repositories:read",
                "tasks:read",
                "organizations:read",
            ],
        ),
    ]
}

impl Role {
    pub fn validate(&self) -> Result<(), ValidationErrors> {
        let mut errors = ValidationErrors::default();
        check_name(&mut errors, "name", &self.name);
        if let Some(description) = &self.description {
            check_text(&mut errors, "description", description, 1024);
        }
        if self.permissions.is_empty() {
            errors.push("permissions", "name at least one permission, such as images:read");
        }
        for (i, permission) in self.permissions.iter().enumerate() {
            if let Err(problem) = Permission::parse(permission) {
                errors.push(format!("permissions[{i}]"), problem);
            }
        }
        errors.into_result()
    }

    pub fn parsed(&self) -> Vec<Permission> {
        self.permissions.iter().filter_map(|p| Permission::parse(p).ok()).collect()
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum SubjectKind {
    #[default]
    User,
    ServiceAccount,
}

/// A person or a service (such as the FaaS platform) that holds tokens.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct User {
    #[schema(example = "alice")]
    pub name: String,
    #[serde(default)]
    pub kind: SubjectKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// A disabled subject's tokens are refused.
    #[serde(default)]
    pub disabled: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(read_only)]
    pub created_time: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(read_only)]
    pub updated_time: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<u64>,
}

impl User {
    pub fn validate(&self) -> Result<(), ValidationErrors> {
        let mut errors = ValidationErrors::default();
        check_name(&mut errors, "name", &self.name);
        if let Some(display) = &self.display_name {
            check_text(&mut errors, "displayName", display, 255);
        }
        errors.into_result()
    }
}

/// Grants a role to a subject in one organisation, or in all (`*`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RoleBinding {
    pub subject: String,
    pub role: String,
    /// An organisation's name, or `*` for every organisation.
    #[schema(example = "default")]
    pub organization: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(read_only)]
    pub created_time: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<u64>,
}

impl RoleBinding {
    /// Bindings are named by what they bind, so binding twice is a conflict.
    pub fn name(&self) -> String {
        format!("{}.{}.{}", self.subject, self.organization, self.role)
    }

    pub fn validate(&self) -> Result<(), ValidationErrors> {
        let mut errors = ValidationErrors::default();
        check_name(&mut errors, "subject", &self.subject);
        check_name(&mut errors, "role", &self.role);
        if self.organization != ALL_ORGS {
            check_name(&mut errors, "organization", &self.organization);
        }
        errors.into_result()
    }
}

/// A tenant: every object belongs to exactly one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Organization {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(read_only)]
    pub created_time: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<u64>,
}

impl Organization {
    pub fn validate(&self) -> Result<(), ValidationErrors> {
        let mut errors = ValidationErrors::default();
        check_name(&mut errors, "name", &self.name);
        if let Some(description) = &self.description {
            check_text(&mut errors, "description", description, 1024);
        }
        errors.into_result()
    }
}

/// An API token. The secret is shown once when created; the store keeps only its hash.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Token {
    /// Public identifier, used to list and revoke.
    pub id: String,
    pub subject: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub created_time: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_time: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_time: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_used_time: Option<DateTime<Utc>>,
    /// SHA-256 of the secret, hex. Kept in the store; cleared before a token is shown.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schema(ignore)]
    pub hash: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<u64>,
}

impl Token {
    pub fn usable_at(&self, now: DateTime<Utc>) -> Result<(), &'static str> {
        if self.revoked_time.is_some() {
            return Err("the token was revoked");
        }
        if self.expires_time.is_some_and(|t| t <= now) {
            return Err("the token has expired");
        }
        Ok(())
    }
}

/// One recorded mutation: who, what, when, from where, and how it ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditEntry {
    /// Sorts by time.
    pub id: String,
    pub time: DateTime<Utc>,
    /// The token's subject, or `anonymous` when none was accepted.
    pub subject: String,
    pub organization: String,
    pub method: String,
    pub path: String,
    /// Source address of the request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// HTTP status of the answer; `0` when the server stopped after committing the change
    /// but before answering.
    pub status: u16,
    /// Whether the request's change was stored: the entry was written in the same
    /// transaction as the change, so a stored change always has its entry.
    #[serde(default)]
    pub committed: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permissions_parse_and_grant() {
        let all = Permission::parse("*:*").unwrap();
        let images_write = Permission::parse("images:write").unwrap();
        let images_read = Permission::parse("images:read").unwrap();
        assert!(all.grants(&images_write));
        assert!(images_write.grants(&images_write));
        assert!(!images_read.grants(&images_write));
        assert!(Permission::parse("image:write").is_err());
        assert!(Permission::parse("images:delete").is_err());
        assert!(Permission::parse("images").is_err());
    }

    #[test]
    fn builtin_roles_follow_the_seed() {
        let roles = builtin_roles();
        let can = |role: &str, permission: &str| {
            let wanted = Permission::parse(permission).unwrap();
            roles.iter().find(|r| r.name == role).unwrap().parsed().iter().any(|p| p.grants(&wanted))
        };
        assert!(can("admin", "base-images:write") && can("admin", "users:write"));
        assert!(can("developer-lead", "images:write") && can("developer-lead", "base-images:read"));
        assert!(!can("developer-lead", "base-images:write") && !can("developer-lead", "packages:write"));
        assert!(can("function-developer", "images:read") && !can("function-developer", "images:write"));
        for role in &roles {
            role.validate().unwrap();
        }
    }
}
