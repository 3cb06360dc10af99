//! Typed records over the key/value store: how each kind of object is keyed and encoded,
//! with a format version in every stored value so old data can be migrated on read.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use kiln_model::auth::{AuditEntry, Organization, Role, RoleBinding, Token, User};
use kiln_model::{
    BaseImage, BaseImageInventory, BuildRecord, Function, Image, Package, PackageSource, RegistryCredential, Task,
};

use crate::kv::{Entry, KvStore, StoreError};
pub use crate::versioned::{Versioned, decode_at, decode_value, encode_at, encode_value, first_format};

/// An object kind kept in the store.
pub trait Record: Serialize + DeserializeOwned {
    /// First key segment, e.g. `images`.
    const COLLECTION: &'static str;
    /// Bumped whenever the stored shape changes; `migrate` lifts older shapes.
    const FORMAT_VERSION: u32 = 1;

    /// Turns a value stored at `from` into the current shape.
    fn migrate(from: u32, value: Value) -> Result<Value, String> {
        if from == Self::FORMAT_VERSION {
            Ok(value)
        } else {
            Err(format!("format version {from} is not known to this Kiln (it writes {})", Self::FORMAT_VERSION))
        }
    }

    /// The store revision the object was read at; cleared before storing.
    fn set_revision(&mut self, revision: Option<u64>);
    fn revision(&self) -> Option<u64>;
}

/// `<collection>/<org>/<name>`; names never contain `/` except npm scopes, which stay
/// inside the name segment and so inside the organisation's prefix.
pub fn key<R: Record>(org: &str, name: &str) -> String {
    format!("{}/{org}/{name}", R::COLLECTION)
}

/// Every key of the collection in one organisation starts with this.
pub fn prefix<R: Record>(org: &str) -> String {
    format!("{}/{org}/", R::COLLECTION)
}

/// The claim on a name compared ignoring case: `CaseTest` and `casetest` are one name, so
/// two objects can never share what a name owns (an image's registry repository is named in
/// lower case). Its value is the name exactly as the holder spells it.
pub fn name_key<R: Record>(org: &str, name: &str) -> String {
    format!("names/{}/{org}/{}", R::COLLECTION, name.to_lowercase())
}

/// Who holds the claim on a name, as the store has it.
pub enum Claim {
    Free,
    /// Held by `name` exactly as spelt; `revision` guards a later release.
    Held {
        name: String,
        revision: u64,
    },
}

pub async fn claim_of<R: Record>(store: &dyn KvStore, org: &str, name: &str) -> Result<Claim, StoreError> {
    Ok(match store.get(&name_key::<R>(org, name)).await? {
        Some(entry) => {
            Claim::Held { name: String::from_utf8_lossy(&entry.value).into_owned(), revision: entry.mod_revision }
        }
        None => Claim::Free,
    })
}

/// Secrets (credentials) live under their own prefix so object reads never carry them.
pub fn secret_key<R: Record>(org: &str, name: &str) -> String {
    format!("secrets/{}/{org}/{name}", R::COLLECTION)
}

/// A key every write that adds or moves a dependent of `name` touches. A change that must
/// not race with new dependents (a delete, a language change) checks its revision.
pub fn dependents_key<R: Record>(org: &str, name: &str) -> String {
    format!("dependents/{}/{org}/{name}", R::COLLECTION)
}

#[derive(Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Envelope {
    format_version: u32,
    data: Value,
}

pub fn encode<R: Record>(record: &R) -> Result<Vec<u8>, StoreError> {
    let mut data = serde_json::to_value(record).map_err(|e| StoreError::Invalid(e.to_string()))?;
    if let Some(object) = data.as_object_mut() {
        object.remove("revision");
    }
    serde_json::to_vec(&Envelope { format_version: R::FORMAT_VERSION, data })
        .map_err(|e| StoreError::Invalid(e.to_string()))
}

pub fn decode<R: Record>(entry: &Entry) -> Result<R, StoreError> {
    let corrupt = |message: String| StoreError::Corrupt { key: entry.key.clone(), message };
    let envelope: Envelope = serde_json::from_slice(&entry.value).map_err(|e| corrupt(e.to_string()))?;
    let data = R::migrate(envelope.format_version, envelope.data).map_err(corrupt)?;
    let mut record: R = serde_json::from_value(data).map_err(|e| corrupt(e.to_string()))?;
    record.set_revision(Some(entry.mod_revision));
    Ok(record)
}

macro_rules! record {
    ($ty:ty, $collection:literal) => {
        impl Record for $ty {
            const COLLECTION: &'static str = $collection;
            fn set_revision(&mut self, revision: Option<u64>) {
                self.revision = revision;
            }
            fn revision(&self) -> Option<u64> {
                self.revision
            }
        }
    };
}

record!(BaseImage, "base-images");
record!(Image, "images");
record!(Package, "packages");
record!(PackageSource, "package-sources");
record!(RegistryCredential, "registry-credentials");
record!(User, "users");
record!(Role, "roles");
record!(RoleBinding, "role-bindings");
record!(Organization, "organizations");
record!(Token, "tokens");
record!(AuditEntry, "audit");
record!(Task, "tasks");
record!(Function, "functions");

/// Build records are written whole by the builder and never updated by clients, so they
/// carry no revision of their own.
impl Record for BuildRecord {
    const COLLECTION: &'static str = "image-builds";
    fn set_revision(&mut self, _revision: Option<u64>) {}
    fn revision(&self) -> Option<u64> {
        None
    }
}

/// Written whole by the base-image controller, like build records.
impl Record for BaseImageInventory {
    const COLLECTION: &'static str = "base-image-inventories";
    fn set_revision(&mut self, _revision: Option<u64>) {}
    fn revision(&self) -> Option<u64> {
        None
    }
}

/// The organisation segment of objects that belong to no organisation (users, roles,
/// tokens…); `*` can never be an organisation's name.
pub const GLOBAL: &str = "*";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_with_revision_from_the_entry() {
        let mut base: BaseImage = serde_json::from_value(
            serde_json::json!({"name": "b", "reference": "x/y:1", "language": "python3", "revision": 7}),
        )
        .unwrap();
        let bytes = encode(&base).unwrap();
        assert!(!String::from_utf8_lossy(&bytes).contains("revision"));
        let entry = Entry {
            key: key::<BaseImage>("default", "b"),
            value: bytes,
            create_revision: 3,
            mod_revision: 9,
            version: 2,
        };
        let back: BaseImage = decode(&entry).unwrap();
        base.revision = Some(9);
        assert_eq!(back, base);
    }

    #[test]
    fn unknown_format_versions_are_refused() {
        let entry = Entry {
            key: "images/default/x".into(),
            value: br#"{"formatVersion":99,"data":{}}"#.to_vec(),
            create_revision: 1,
            mod_revision: 1,
            version: 1,
        };
        let err = decode::<Image>(&entry).unwrap_err();
        assert!(err.to_string().contains("format version 99"), "{err}");
    }
}
