//! Signed repository metadata: `InRelease` verified against an OpenPGP keyring, then the
//! checksums it lists — the root of trust for every index and package a build uses.

use std::collections::BTreeMap;
use std::io::Cursor;
use std::path::Path;

use chrono::{DateTime, Utc};
use kiln_oci::{Algorithm, Digest};
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

/// One `SHA256` line: the digest is parsed as the release is read, so a line whose hash is
/// not one never reaches anything that names files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSum {
    pub sha256: Digest,
    pub size: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release {
    pub origin: Option<String>,
    pub suite: Option<String>,
    pub codename: Option<String>,
    /// The release's version, such as `12.8`.
    pub version: Option<String>,
    pub date: Option<String>,
    pub valid_until: Option<DateTime<Utc>>,
    pub architectures: Vec<String>,
    pub components: Vec<String>,
    pub files: BTreeMap<String, FileSum>,
}

/// Which distribution a repository belongs to, as its signed release says: what package
/// URLs call it (`debian-12`), the tag a root image gets (`bookworm`), and the image a
/// Dockerfile starts from (`debian:bookworm-slim`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Distribution {
    /// Lower-case origin, such as `debian`.
    pub vendor: Option<String>,
    pub codename: Option<String>,
    /// The version's first number, such as `12`.
    pub major: Option<String>,
}

impl Distribution {
    pub fn of(release: &Release) -> Distribution {
        // Only values that are plain words reach tags and purls; anything else is dropped.
        let word = |value: &Option<String>| {
            value.as_deref().map(str::to_ascii_lowercase).filter(|v| {
                !v.is_empty() && v.len() <= 64 && v.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b))
            })
        };
        // `12.15`, `12` and `12-updates` are all release 12.
        let major = release
            .version
            .as_deref()
            .map(|v| v.bytes().take_while(u8::is_ascii_digit).map(char::from).collect::<String>())
            .filter(|v| !v.is_empty() && v.len() <= 8);
        // `bookworm-security` and `bookworm-updates` belong to `bookworm`.
        let codename = word(&release.codename).and_then(|c| c.split('-').next().map(str::to_string));
        Distribution { vendor: word(&release.origin), codename, major }
    }

    /// The purl `distro` qualifier: `debian-12`, or the codename when the release has no version.
    pub fn purl_distro(&self) -> Option<String> {
        let vendor = self.vendor.as_deref()?;
        match (&self.major, &self.codename) {
            (Some(major), _) => Some(format!("{vendor}-{major}")),
            (None, Some(codename)) => Some(format!("{vendor}-{codename}")),
            (None, None) => None,
        }
    }

    /// The official image a Dockerfile starts from, for Debian releases with a codename.
    pub fn docker_base(&self) -> Option<String> {
        match (self.vendor.as_deref(), &self.codename) {
            (Some("debian"), Some(codename)) => Some(format!("debian:{codename}-slim")),
            _ => None,
        }
    }
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
    parse_release(&message.signed_text().replace("\r\n", "\n"), now)
}

/// The fields of a release whose signature verified.
fn parse_release(signed: &str, now: DateTime<Utc>) -> Result<Release, ReleaseError> {
    let stanzas = deb822::parse(signed).map_err(|e| ReleaseError::Malformed(e.to_string()))?;
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
        if let Some((path, sum)) = checksum_line(line)? {
            files.insert(path.to_string(), sum);
        }
    }
    if files.is_empty() {
        return Err(ReleaseError::NoChecksums);
    }
    let words = |field: &str| stanza.get(field).unwrap_or_default().split_whitespace().map(str::to_string).collect();
    Ok(Release {
        origin: stanza.get("Origin").map(str::to_string),
        suite: stanza.get("Suite").map(str::to_string),
        codename: stanza.get("Codename").map(str::to_string),
        version: stanza.get("Version").map(str::to_string),
        date: stanza.get("Date").map(str::to_string),
        valid_until,
        architectures: words("Architectures"),
        components: words("Components"),
        files,
    })
}

/// ` <sha256> <size> <path>`. A signed release whose line is malformed is refused whole, the
/// line named: its publisher's tooling is broken or hostile, and guessing which lines still
/// hold would let one name a file. Lines of another shape are not checksum lines and are
/// skipped, as apt does.
fn checksum_line(line: &str) -> Result<Option<(&str, FileSum)>, ReleaseError> {
    let parts: Vec<&str> = line.split_whitespace().collect();
    let [sha256, size, path] = parts[..] else { return Ok(None) };
    let malformed = |why: String| ReleaseError::Malformed(format!("SHA256 line {:?}: {why}", line.trim()));
    let sha256 = Digest::from_hex(Algorithm::Sha256, sha256).map_err(|e| malformed(e.to_string()))?;
    let size = size.parse().map_err(|_| malformed(format!("size {size:?} is not a number")))?;
    // Paths are only ever looked up by the names Kiln builds (`main/binary-amd64/Packages`),
    // but one that could climb has no business in a release.
    if path.starts_with('/') || path.split('/').any(|part| part.is_empty() || part == "." || part == "..") {
        return Err(malformed(format!("path {path:?} is not relative to the suite")));
    }
    Ok(Some((path, FileSum { sha256, size })))
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

    #[test]
    fn the_distribution_comes_from_any_suite_of_the_release() {
        let sums = " e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855 0 main/binary-amd64/Packages";
        let of = |fields: &str| {
            Distribution::of(
                &parse_release(&format!("{fields}Components: main\nSHA256:\n{sums}\n"), Utc::now()).expect("release"),
            )
        };
        for fields in [
            "Origin: Debian\nVersion: 12.15\nCodename: bookworm\n",
            "Origin: Debian\nVersion: 12\nCodename: bookworm-security\n",
            "Origin: Debian\nVersion: 12-updates\nCodename: bookworm-updates\n",
        ] {
            let distribution = of(fields);
            assert_eq!(distribution.purl_distro().as_deref(), Some("debian-12"), "{fields}");
            assert_eq!(distribution.codename.as_deref(), Some("bookworm"), "{fields}");
            assert_eq!(distribution.docker_base().as_deref(), Some("debian:bookworm-slim"), "{fields}");
        }
        let trixie = of("Origin: Debian\nVersion: 13.2\nCodename: trixie\n");
        assert_eq!(
            (trixie.purl_distro().as_deref(), trixie.docker_base().as_deref()),
            (Some("debian-13"), Some("debian:trixie-slim"))
        );
        // Values that are not plain words never reach a tag or a purl.
        let hostile = of("Origin: ../etc\nVersion: x\nCodename: a b\n");
        assert_eq!(hostile, Distribution::default());
        assert_eq!(hostile.docker_base(), None);
        // Another vendor names its purls but has no Debian image to start from.
        assert_eq!(of("Origin: Ubuntu\nVersion: 22.04\nCodename: jammy\n").docker_base(), None);
    }

    #[test]
    fn checksum_lines_hold_digests_and_a_path_in_the_hash_is_refused_by_line() {
        let hex = "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855";
        let line = format!(" {hex} 0 main/binary-amd64/Packages");
        let (path, sum) = checksum_line(&line).expect("valid").expect("a line");
        assert_eq!((path, &sum), ("main/binary-amd64/Packages", &FileSum { sha256: Digest::sha256(b""), size: 0 }));
        assert_eq!(checksum_line(" just two").expect("skipped"), None);
        for (line, named) in [
            (" /tmp/x/fake-packages 0 main/binary-amd64/Packages", "\"/tmp/x/fake-packages\""),
            (" ../../../../tmp/x 0 main/binary-amd64/Packages", "\"../../../../tmp/x\""),
            (&format!(" {} 0 main/binary-amd64/Packages", &hex[1..]), "is not a sha256 hash"),
            (&format!(" {hex} many main/binary-amd64/Packages"), "size \"many\""),
            (&format!(" {hex} 0 ../../binary-amd64/Packages"), "path \"../../binary-amd64/Packages\""),
            (&format!(" {hex} 0 /etc/Packages"), "path \"/etc/Packages\""),
        ] {
            let err = checksum_line(line).expect_err("refused").to_string();
            assert!(err.starts_with(&format!("InRelease is malformed: SHA256 line {:?}: ", line.trim())), "{err}");
            assert!(err.contains(named), "{named} in {err}");
        }
    }

    #[test]
    fn a_release_naming_a_host_file_as_a_hash_is_refused() {
        let hex = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let release = |lines: &str| format!("Suite: kiln-test\nComponents: main\nSHA256:\n{lines}\n");
        let honest = parse_release(&release(&format!(" {hex} 0 main/binary-amd64/Packages")), Utc::now()).expect("ok");
        assert_eq!(honest.files["main/binary-amd64/Packages"].sha256, Digest::sha256(b""));
        let hostile = release(&format!(
            " {hex} 0 main/binary-amd64/Packages.xz\n /tmp/x/fake-packages 0 main/binary-amd64/Packages"
        ));
        let err = parse_release(&hostile, Utc::now()).expect_err("refused").to_string();
        assert!(err.contains("SHA256 line \"/tmp/x/fake-packages 0 main/binary-amd64/Packages\""), "{err}");
    }
}
