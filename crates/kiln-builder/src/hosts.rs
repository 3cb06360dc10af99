//! How Kiln reaches another registry host for an organisation: its stored registry
//! credentials (password from the secrets) as client options. Shared by the base-image
//! controller and copies out.

use kiln_model::RegistryCredential;
use kiln_registry_client::HostOptions;
use kiln_store::KvStore;
use kiln_store::records::{self, secret_key};

/// The organisation's settings for `host`, password included.
pub async fn host_options(store: &dyn KvStore, org: &str, host: &str) -> Result<HostOptions, kiln_store::StoreError> {
    let Some(entry) = store.get(&records::key::<RegistryCredential>(org, host)).await? else {
        return Ok(HostOptions::default());
    };
    let credential: RegistryCredential = records::decode(&entry)?;
    let password = store
        .get(&secret_key::<RegistryCredential>(org, host))
        .await?
        .map(|e| String::from_utf8_lossy(&e.value).into_owned());
    Ok(HostOptions {
        username: credential.username,
        password,
        ca_certificate: credential.ca_certificate,
        insecure: credential.insecure,
    })
}
