//! How Kiln reaches another registry host: credentials (write-only), an extra CA
//! certificate, and the explicit insecure switch for plain-HTTP loopback registries.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::common::double_option;
use crate::validation::{ValidationErrors, check_text};

/// Settings for one registry host, per organisation. `password` is write-only: it is
/// stored apart from the object and never returned; `hasPassword` tells whether one is set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RegistryCredential {
    /// The registry host as image references name it, with its port if any.
    #[schema(example = "registry.example:5000")]
    pub host: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Write-only password or token. Leave out to keep the stored one, `null` removes it.
    #[serde(default, skip_serializing, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>, write_only, nullable)]
    #[schemars(with = "Option<String>")]
    pub password: Option<Option<String>>,
    #[serde(default)]
    #[schema(read_only)]
    pub has_password: bool,
    /// A PEM certificate to trust for this host besides the system's trust store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_certificate: Option<String>,
    /// Plain HTTP without certificate checks. Only for registries on loopback in tests.
    #[serde(default)]
    pub insecure: bool,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schema(read_only)]
    pub id: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schema(read_only)]
    pub organization: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(read_only)]
    pub created_time: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(read_only)]
    pub updated_time: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<u64>,
}

impl RegistryCredential {
    pub fn validate(&self) -> Result<(), ValidationErrors> {
        let mut errors = ValidationErrors::default();
        if let Err(problem) = crate::reference::check_registry_host(&self.host) {
            errors.push("host", problem);
        }
        if let Some(username) = &self.username {
            check_text(&mut errors, "username", username, 255);
            if username.contains(':') {
                errors.push("username", "must not contain ':'");
            }
        }
        if let Some(Some(password)) = &self.password {
            check_text(&mut errors, "password", password, 4096);
            if self.username.is_none() {
                errors.push("username", "is required with a password");
            }
        }
        if let Some(pem) = &self.ca_certificate
            && !pem.contains("-----BEGIN CERTIFICATE-----")
        {
            errors.push("caCertificate", "must be a PEM certificate (-----BEGIN CERTIFICATE-----)");
        }
        errors.into_result()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn credential(value: serde_json::Value) -> RegistryCredential {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn hosts_and_passwords_are_checked() {
        let good = credential(serde_json::json!({"host": "127.0.0.1:5000", "username": "u", "password": "p"}));
        good.validate().unwrap();
        assert!(!serde_json::to_string(&good).unwrap().contains("\"p\""), "the password is never serialized");
        let bad = credential(serde_json::json!({"host": "not a host", "password": "p"}));
        let fields: Vec<String> = bad.validate().unwrap_err().0.into_iter().map(|e| e.field).collect();
        assert_eq!(fields, ["host", "username"]);
    }
}
