//! Signed repository metadata: `InRelease` verified against an OpenPGP keyring, then the
//! checksums it lists — the root of trust for every index and package a build uses.

use std::collections::BTreeMap;
use std::io::Cursor;
use std::path::Path;

use chrono::{DateTime, Utc};
use pgp::composed::{CleartextSignedMessage, Deserializable, SignedPublicKey};

use crate::deb822;

/// Public keys that may sign repositories.
#[derive(Clone)]
pub struct Keyring {
    keys: Vec<SignedPublicKey>,
}

#[derive(Debug, thiserror::Error)]
pub enum KeyringError {
    #[error("cannot read keyring {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("the keyring holds no usable OpenPGP public key: {0}")]
    Empty(String),
}

impl Keyring {
    /// Binary keyrings (concatenated keys) or ASCII-armoured key blocks.
    pub fn from_bytes(bytes: &[u8]) -> Result<Keyring, KeyringError> {
        let text = String::from_utf8_lossy(bytes);
        let mut keys = Vec::new();
        let mut problem = String::new();
        if text.contains("-----BEGIN PGP PUBLIC KEY BLOCK-----") {
            for block in text.split("-----BEGIN PGP PUBLIC KEY BLOCK-----").skip(1) {
                let armoured = format!("-----BEGIN PGP PUBLIC KEY BLOCK-----{block}");
                match SignedPublicKey::from_armor_many(Cursor::new(armoured.into_bytes())) {
                    Ok((parsed, _)) => keys.extend(parsed.filter_map(Result::ok)),
                    Err(e) => problem = e.to_string(),
                }
            }
        } else {
            match SignedPublicKey::from_bytes_many(Cursor::new(bytes.to_vec())) {
                Ok(parsed) => keys.extend(parsed.filter_map(Result::ok)),
                Err(e) => problem = e.to_string(),
            }
        }
        if keys.is_empty() {
            return Err(KeyringError::Empty(if problem.is_empty() { "no keys found".into() } else { problem }));
        }
        Ok(Keyring { keys })
    }

    pub fn from_path(path: &Path) -> Result<Keyring, KeyringError> {
        let bytes =
            std::fs::read(path).map_err(|source| KeyringError::Read { path: path.display().to_string(), source })?;
        Keyring::from_bytes(&bytes)
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSum {
    pub sha256: String,
    pub size: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release {
    pub suite: Option<String>,
    pub codename: Option<String>,
    pub date: Option<String>,
    pub valid_until: Option<DateTime<Utc>>,
    pub architectures: Vec<String>,
    pub components: Vec<String>,
    pub files: BTreeMap<String, FileSum>,
}

#[derive(Debug, thiserror::Error)]
pub enum ReleaseError {
    #[error("InRelease is not an OpenPGP clear-signed message: {0}")]
    NotSigned(String),
    #[error(
        "InRelease signature does not verify against any key of the keyring: the repository or the keyring is wrong"
    )]
    BadSignature,
    #[error("InRelease expired on {0}: the mirror is stale or the clock is wrong")]
    Expired(DateTime<Utc>),
    #[error("InRelease lists no SHA256 checksums: Kiln verifies indexes by SHA-256 only")]
    NoChecksums,
    #[error("InRelease is malformed: {0}")]
    Malformed(String),
}

pub fn verify_inrelease(bytes: &[u8], keyring: &Keyring, now: DateTime<Utc>) -> Result<Release, ReleaseError> {
    let text = std::str::from_utf8(bytes).map_err(|e| ReleaseError::NotSigned(e.to_string()))?;
    let (message, _) = CleartextSignedMessage::from_string(text).map_err(|e| ReleaseError::NotSigned(e.to_string()))?;
    let verified = keyring.keys.iter().any(|key| {
        message.verify(key).is_ok() || key.public_subkeys.iter().any(|subkey| message.verify(subkey).is_ok())
    });
    if !verified {
        return Err(ReleaseError::BadSignature);
    }
    // Only what the signature covers is read.
    let signed = message.signed_text().replace("\r\n", "\n");
    let stanzas = deb822::parse(&signed).map_err(|e| ReleaseError::Malformed(e.to_string()))?;
    let stanza = stanzas.first().ok_or_else(|| ReleaseError::Malformed("no fields".into()))?;
    let valid_until = match stanza.get("Valid-Until") {
        Some(text) => Some(
            DateTime::parse_from_rfc2822(&text.replace("UTC", "+0000"))
                .map_err(|e| ReleaseError::Malformed(format!("Valid-Until {text:?}: {e}")))?
                .with_timezone(&Utc),
        ),
        None => None,
    };
    if let Some(until) = valid_until
        && until < now
    {
        return Err(ReleaseError::Expired(until));
    }
    let mut files = BTreeMap::new();
    for line in stanza.get("SHA256").ok_or(ReleaseError::NoChecksums)?.lines() {
        let parts: Vec<&str> = line.split_whitespace().collect();
        if let [sha256, size, path] = parts[..] {
            let size = size.parse().map_err(|_| ReleaseError::Malformed(format!("size {size:?} of {path}")))?;
            files.insert(path.to_string(), FileSum { sha256: sha256.to_ascii_lowercase(), size });
        }
    }
    if files.is_empty() {
        return Err(ReleaseError::NoChecksums);
    }
    let words = |field: &str| stanza.get(field).unwrap_or_default().split_whitespace().map(str::to_string).collect();
    Ok(Release {
        suite: stanza.get("Suite").map(str::to_string),
        codename: stanza.get("Codename").map(str::to_string),
        date: stanza.get("Date").map(str::to_string),
        valid_until,
        architectures: words("Architectures"),
        components: words("Components"),
        files,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEYRING: &str = "/usr/share/keyrings/debian-archive-keyring.gpg";

    fn real_inrelease() -> Vec<(String, Vec<u8>)> {
        let mut found = Vec::new();
        for entry in
            std::fs::read_dir("/var/lib/apt/lists").expect("apt lists exist (the test script runs apt-get update)")
        {
            let path = entry.expect("entry").path();
            if path.to_string_lossy().ends_with("_InRelease") && path.to_string_lossy().contains("debian") {
                found.push((path.display().to_string(), std::fs::read(&path).expect("read")));
            }
        }
        assert!(!found.is_empty(), "no Debian InRelease in /var/lib/apt/lists: run apt-get update");
        found
    }

    #[test]
    fn the_machines_own_releases_verify_and_tampering_fails() {
        let keyring = Keyring::from_path(Path::new(KEYRING)).expect("Debian keyring");
        assert!(keyring.len() > 3);
        for (path, bytes) in real_inrelease() {
            let release = verify_inrelease(&bytes, &keyring, Utc::now() - chrono::Duration::days(3650))
                .unwrap_or_else(|e| panic!("{path}: {e}"));
            assert!(release.files.keys().any(|f| f.ends_with("binary-amd64/Packages")), "{path}");
            let text = String::from_utf8(bytes).expect("utf-8");
            let tampered = text.replacen("Components:", "Components: evil", 1);
            assert!(matches!(
                verify_inrelease(tampered.as_bytes(), &keyring, Utc::now()),
                Err(ReleaseError::BadSignature)
            ));
        }
    }
}
