//! Content digests (`algorithm:hex`), the identity of every blob and manifest, validated as strictly as the
//! OCI image spec demands so nothing malformed can become a storage path or a registry key.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::Digest as _;

/// A hash algorithm registered by the OCI image spec; others are refused as unsupported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Algorithm {
    Sha256,
    Sha512,
}

impl Algorithm {
    pub const fn as_str(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha512 => "sha512",
        }
    }

    /// Length of the hex encoding, which the spec fixes per algorithm.
    pub const fn hex_len(self) -> usize {
        match self {
            Algorithm::Sha256 => 64,
            Algorithm::Sha512 => 128,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Algorithm {
    type Err = DigestError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "sha256" => Ok(Algorithm::Sha256),
            "sha512" => Ok(Algorithm::Sha512),
            _ if is_algorithm_grammar(s) => Err(DigestError::UnsupportedAlgorithm(s.to_string())),
            _ => Err(DigestError::Malformed(s.to_string())),
        }
    }
}

/// Why a string is not a digest. `UnsupportedAlgorithm` is kept apart because the distribution spec answers it
/// differently (UNSUPPORTED) from a malformed digest (DIGEST_INVALID).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    #[error("digest is empty")]
    Empty,
    #[error("{0:?} is not a digest: expected <algorithm>:<encoded>")]
    Malformed(String),
    #[error("digest algorithm {0:?} is not supported: use sha256 or sha512")]
    UnsupportedAlgorithm(String),
    #[error("{algorithm} digest must be {} lower-case hex characters, got {encoded:?}", algorithm.hex_len())]
    BadEncoding { algorithm: Algorithm, encoded: String },
    /// A bare hex hash (package indexes, lockfiles, `--hash`) that is not one; `value` is cut short when long.
    #[error("{value:?} is not a {algorithm} hash: expected {} hex digits", algorithm.hex_len())]
    BadHex { algorithm: Algorithm, value: String },
}

impl DigestError {
    /// True when the digest was well formed but names an algorithm this crate does not implement.
    pub fn is_unsupported(&self) -> bool {
        matches!(self, DigestError::UnsupportedAlgorithm(_))
    }
}

/// A validated digest. The whole string is kept so `as_str` and `Display` cost nothing; the hex part is
/// guaranteed lower-case `[0-9a-f]` of the algorithm's length, which is what makes it safe as a path component.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    algorithm: Algorithm,
    value: String,
}

impl Digest {
    /// Hashes `bytes` in one go; use [`Hasher`] when the content arrives in pieces.
    pub fn of(algorithm: Algorithm, bytes: &[u8]) -> Digest {
        let mut hasher = Hasher::new(algorithm);
        hasher.update(bytes);
        hasher.finish()
    }

    /// The common case: SHA-256, the only algorithm every registry must support.
    pub fn sha256(bytes: &[u8]) -> Digest {
        Digest::of(Algorithm::Sha256, bytes)
    }

    /// A bare hex hash as package indexes, lockfiles and requirement files write it, for an algorithm the
    /// context fixes. Upper-case digits are accepted and lower-cased (indexes differ); anything else that is
    /// not exactly the algorithm's length of hex digits is refused, so the result is always safe to name a file.
    pub fn from_hex(algorithm: Algorithm, hex: &str) -> Result<Digest, DigestError> {
        if hex.len() != algorithm.hex_len() || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(DigestError::BadHex { algorithm, value: shortened(hex) });
        }
        let mut value = String::with_capacity(algorithm.as_str().len() + 1 + hex.len());
        value.push_str(algorithm.as_str());
        value.push(':');
        value.extend(hex.bytes().map(|b| char::from(b.to_ascii_lowercase())));
        Ok(Digest { algorithm, value })
    }

    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The encoded part after `algorithm:`.
    pub fn hex(&self) -> &str {
        &self.value[self.algorithm.as_str().len() + 1..]
    }

    pub fn as_str(&self) -> &str {
        &self.value
    }

    /// `[algorithm, first two hex digits, full hex]`: a fan-out that keeps directories small in
    /// content-addressed storage. Every part is `[a-z0-9]` only, so no part can climb out of a directory.
    pub fn path_components(&self) -> [&str; 3] {
        let hex = self.hex();
        [self.algorithm.as_str(), &hex[..2], hex]
    }

    /// [`Digest::path_components`] joined with `/`, e.g. `sha256/ab/abcdef…`.
    pub fn storage_path(&self) -> String {
        self.path_components().join("/")
    }

    /// Checks whole content against this digest, for bodies small enough to hold (manifests).
    pub fn verify(&self, bytes: &[u8]) -> Result<(), VerifyError> {
        let mut verifier = Verifier::new(self.clone());
        verifier.update(bytes);
        verifier.verify()
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.value)
    }
}

impl FromStr for Digest {
    type Err = DigestError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() {
            return Err(DigestError::Empty);
        }
        let Some((algorithm, encoded)) = s.split_once(':') else {
            return Err(DigestError::Malformed(s.to_string()));
        };
        // Check the spec's general grammar first so an unknown but well-formed algorithm is reported as
        // unsupported, and anything else as malformed.
        if !is_algorithm_grammar(algorithm) || !is_encoded_grammar(encoded) {
            return Err(DigestError::Malformed(s.to_string()));
        }
        let algorithm: Algorithm = algorithm.parse()?;
        let valid_hex = encoded.len() == algorithm.hex_len()
            && encoded.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if !valid_hex {
            return Err(DigestError::BadEncoding { algorithm, encoded: encoded.to_string() });
        }
        Ok(Digest { algorithm, value: s.to_string() })
    }
}

impl TryFrom<&str> for Digest {
    type Error = DigestError;

    fn try_from(s: &str) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl TryFrom<String> for Digest {
    type Error = DigestError;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.value)
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Hostile input can be any length; an error names enough of it to be found, not all of it.
fn shortened(text: &str) -> String {
    const SHOWN: usize = 160;
    match text.char_indices().nth(SHOWN) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_string(),
    }
}

/// `algorithm-component (algorithm-separator algorithm-component)*` with components `[a-z0-9]+` and
/// separators `[+._-]`.
fn is_algorithm_grammar(s: &str) -> bool {
    !s.is_empty()
        && s.split(['+', '.', '_', '-'])
            .all(|c| !c.is_empty() && c.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()))
}

/// `[a-zA-Z0-9=_-]+`
fn is_encoded_grammar(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'=' | b'_' | b'-'))
}

enum State {
    Sha256(sha2::Sha256),
    Sha512(sha2::Sha512),
}

/// Incremental digest computation, for blobs that are streamed rather than held in memory.
pub struct Hasher {
    state: State,
}

impl Hasher {
    pub fn new(algorithm: Algorithm) -> Hasher {
        let state = match algorithm {
            Algorithm::Sha256 => State::Sha256(sha2::Sha256::new()),
            Algorithm::Sha512 => State::Sha512(sha2::Sha512::new()),
        };
        Hasher { state }
    }

    pub fn algorithm(&self) -> Algorithm {
        match self.state {
            State::Sha256(_) => Algorithm::Sha256,
            State::Sha512(_) => Algorithm::Sha512,
        }
    }

    pub fn update(&mut self, bytes: &[u8]) {
        match &mut self.state {
            State::Sha256(h) => h.update(bytes),
            State::Sha512(h) => h.update(bytes),
        }
    }

    pub fn finish(self) -> Digest {
        let (algorithm, hex) = match self.state {
            State::Sha256(h) => (Algorithm::Sha256, hex::encode(h.finalize())),
            State::Sha512(h) => (Algorithm::Sha512, hex::encode(h.finalize())),
        };
        // Built directly: hex::encode yields exactly the lower-case form FromStr would accept.
        Digest { algorithm, value: format!("{algorithm}:{hex}") }
    }
}

impl fmt::Debug for Hasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hasher").field("algorithm", &self.algorithm()).finish_non_exhaustive()
    }
}

/// Lets callers feed a hasher with `std::io::copy`; hashing never fails.
impl std::io::Write for Hasher {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Content did not match what its descriptor or URL promised.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("content digest is {actual}, expected {expected}")]
    DigestMismatch { expected: Digest, actual: Digest },
    #[error("content is {actual} bytes, expected {expected}")]
    SizeMismatch { expected: u64, actual: u64 },
}

/// Hashes a stream and checks it against an expected digest (and optionally size) at the end, so an upload
/// can be refused before it is committed under a name it does not deserve.
#[derive(Debug)]
pub struct Verifier {
    expected: Digest,
    expected_size: Option<u64>,
    hasher: Hasher,
    seen: u64,
}

impl Verifier {
    pub fn new(expected: Digest) -> Verifier {
        let hasher = Hasher::new(expected.algorithm());
        Verifier { expected, expected_size: None, hasher, seen: 0 }
    }

    /// Also checks the byte count, as a descriptor's `size` requires.
    pub fn with_size(expected: Digest, size: u64) -> Verifier {
        Verifier { expected_size: Some(size), ..Verifier::new(expected) }
    }

    pub fn expected(&self) -> &Digest {
        &self.expected
    }

    pub fn update(&mut self, bytes: &[u8]) {
        self.hasher.update(bytes);
        self.seen = self.seen.saturating_add(u64::try_from(bytes.len()).unwrap_or(u64::MAX));
    }

    /// Bytes fed so far; lets a caller stop reading once a declared size is exceeded.
    pub fn bytes_seen(&self) -> u64 {
        self.seen
    }

    /// Size is checked before the digest: it is the cheaper and more telling mismatch.
    pub fn verify(self) -> Result<(), VerifyError> {
        self.finish().map(|_| ())
    }

    /// Like [`Verifier::verify`], returning the (matching) digest on success.
    pub fn finish(self) -> Result<Digest, VerifyError> {
        if let Some(expected) = self.expected_size
            && expected != self.seen
        {
            return Err(VerifyError::SizeMismatch { expected, actual: self.seen });
        }
        let actual = self.hasher.finish();
        if actual != self.expected {
            return Err(VerifyError::DigestMismatch { expected: self.expected, actual });
        }
        Ok(actual)
    }
}

impl std::io::Write for Verifier {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY_SHA256: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    const ABC_SHA512: &str = "sha512:ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a\
                              2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f";

    fn d(s: &str) -> Digest {
        s.parse().unwrap()
    }

    #[test]
    fn parses_and_displays_sha256_and_sha512() {
        let digest = d(EMPTY_SHA256);
        assert_eq!(digest.algorithm(), Algorithm::Sha256);
        assert_eq!(digest.hex(), &EMPTY_SHA256[7..]);
        assert_eq!(digest.to_string(), EMPTY_SHA256);
        assert_eq!(digest.as_str(), EMPTY_SHA256);

        let digest = d(ABC_SHA512);
        assert_eq!(digest.algorithm(), Algorithm::Sha512);
        assert_eq!(digest.hex().len(), 128);
        assert_eq!(digest.to_string(), ABC_SHA512);
    }

    #[test]
    fn computes_known_digests() {
        assert_eq!(Digest::sha256(b""), d(EMPTY_SHA256));
        assert_eq!(Digest::of(Algorithm::Sha512, b"abc"), d(ABC_SHA512));
    }

    #[test]
    fn rejects_empty_and_shapeless_strings() {
        assert_eq!("".parse::<Digest>(), Err(DigestError::Empty));
        for s in ["sha256", ":abc", "sha256:", "SHA256:abc", "sha256:ab cd", "sha256::ab", "sha__256:ab", "-sha256:ab"]
        {
            assert!(matches!(s.parse::<Digest>(), Err(DigestError::Malformed(_))), "{s}");
        }
    }

    #[test]
    fn rejects_bad_hex_uppercase_and_wrong_length() {
        let bad_hex = format!("sha256:{}", "g".repeat(64));
        let upper = EMPTY_SHA256.to_uppercase().replace("SHA256", "sha256");
        let short = &EMPTY_SHA256[..EMPTY_SHA256.len() - 1];
        let long = format!("{EMPTY_SHA256}0");
        let sha512_with_sha256_length = EMPTY_SHA256.replace("sha256", "sha512");
        for s in [bad_hex.as_str(), &upper, short, &long] {
            assert!(
                matches!(s.parse::<Digest>(), Err(DigestError::BadEncoding { algorithm: Algorithm::Sha256, .. })),
                "{s}"
            );
        }
        assert!(matches!(
            sha512_with_sha256_length.parse::<Digest>(),
            Err(DigestError::BadEncoding { algorithm: Algorithm::Sha512, .. })
        ));
        let err = short.parse::<Digest>().unwrap_err().to_string();
        assert!(err.starts_with("sha256 digest must be 64 lower-case hex characters, got \""), "{err}");
    }

    #[test]
    fn bare_hex_is_lower_cased_and_anything_else_refused() {
        let hex = &EMPTY_SHA256[7..];
        assert_eq!(Digest::from_hex(Algorithm::Sha256, hex), Ok(d(EMPTY_SHA256)));
        assert_eq!(Digest::from_hex(Algorithm::Sha256, &hex.to_uppercase()), Ok(d(EMPTY_SHA256)));
        assert_eq!(Digest::from_hex(Algorithm::Sha512, &ABC_SHA512[7..]), Ok(d(ABC_SHA512)));
        // Right length, but a path.
        let climbing = format!("/../../tmp/{}", &hex[11..]);
        assert_eq!(climbing.len(), 64);
        for bad in
            ["", "../x", "/../../tmp/planted.whl", &climbing, &hex[1..], &format!("{hex}0"), &hex.replace('e', "g")]
        {
            let err = Digest::from_hex(Algorithm::Sha256, bad).unwrap_err();
            assert_eq!(err, DigestError::BadHex { algorithm: Algorithm::Sha256, value: bad.to_string() });
            assert!(err.to_string().contains(&format!("{bad:?}")), "{err}");
        }
        assert!(Digest::from_hex(Algorithm::Sha512, hex).is_err(), "a sha256 length is not a sha512");
        assert!(Digest::from_hex(Algorithm::Sha256, &format!("sha256:{hex}")).is_err());
        let long = "x".repeat(10_000);
        let err = Digest::from_hex(Algorithm::Sha256, &long).unwrap_err().to_string();
        assert!(err.len() < 300 && err.contains('…'), "{err}");
    }

    #[test]
    fn unknown_algorithm_is_unsupported_not_malformed() {
        for s in [
            "md5:d41d8cd98f00b204e9800998ecf8427e",
            "blake3:abc",
            "sha256+b64u:LCa0a2j_xo_5m0U8HTBBNBNCLXBkg7-g-YpeiGJm564",
        ] {
            let err = s.parse::<Digest>().unwrap_err();
            assert!(err.is_unsupported(), "{s}: {err:?}");
        }
        assert_eq!(
            "md5:abc".parse::<Digest>().unwrap_err().to_string(),
            "digest algorithm \"md5\" is not supported: use sha256 or sha512"
        );
        assert!(!"sha256:xyz".parse::<Digest>().unwrap_err().is_unsupported());
    }

    #[test]
    fn storage_path_fans_out_by_prefix() {
        let digest = d(EMPTY_SHA256);
        assert_eq!(digest.path_components(), ["sha256", "e3", &EMPTY_SHA256[7..]]);
        assert_eq!(digest.storage_path(), format!("sha256/e3/{}", &EMPTY_SHA256[7..]));
    }

    #[test]
    fn serde_is_a_plain_string_and_validates() {
        let digest = d(EMPTY_SHA256);
        let json = serde_json::to_string(&digest).unwrap();
        assert_eq!(json, format!("\"{EMPTY_SHA256}\""));
        assert_eq!(serde_json::from_str::<Digest>(&json).unwrap(), digest);
        let err = serde_json::from_str::<Digest>("\"sha256:ABC\"").unwrap_err().to_string();
        assert!(err.contains("lower-case hex"), "{err}");
        assert!(serde_json::from_str::<Digest>("42").is_err());
    }

    #[test]
    fn hasher_streams_like_one_shot() {
        for algorithm in [Algorithm::Sha256, Algorithm::Sha512] {
            let mut hasher = Hasher::new(algorithm);
            assert_eq!(hasher.algorithm(), algorithm);
            for chunk in b"hello, world".chunks(5) {
                hasher.update(chunk);
            }
            assert_eq!(hasher.finish(), Digest::of(algorithm, b"hello, world"));
        }
    }

    #[test]
    fn hasher_and_verifier_work_with_io_copy() {
        let mut hasher = Hasher::new(Algorithm::Sha256);
        std::io::copy(&mut &b"abc"[..], &mut hasher).unwrap();
        assert_eq!(hasher.finish(), Digest::sha256(b"abc"));
        let mut verifier = Verifier::new(Digest::sha256(b"abc"));
        std::io::copy(&mut &b"abc"[..], &mut verifier).unwrap();
        assert_eq!(verifier.bytes_seen(), 3);
        assert!(verifier.verify().is_ok());
    }

    #[test]
    fn verifier_accepts_matching_sha512_stream() {
        let mut verifier = Verifier::with_size(d(ABC_SHA512), 3);
        verifier.update(b"a");
        verifier.update(b"bc");
        assert_eq!(verifier.finish(), Ok(d(ABC_SHA512)));
    }

    #[test]
    fn verifier_rejects_wrong_content() {
        let mut verifier = Verifier::new(d(ABC_SHA512));
        verifier.update(b"abd");
        match verifier.verify() {
            Err(VerifyError::DigestMismatch { expected, actual }) => {
                assert_eq!(expected, d(ABC_SHA512));
                assert_eq!(actual, Digest::of(Algorithm::Sha512, b"abd"));
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(d(EMPTY_SHA256).verify(b"x").is_err());
        assert!(d(EMPTY_SHA256).verify(b"").is_ok());
    }

    #[test]
    fn verifier_reports_size_before_digest() {
        let mut verifier = Verifier::with_size(Digest::sha256(b"abc"), 4);
        verifier.update(b"abc");
        assert_eq!(verifier.verify(), Err(VerifyError::SizeMismatch { expected: 4, actual: 3 }));
    }
}
