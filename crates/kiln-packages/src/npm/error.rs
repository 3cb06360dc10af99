//! Every way an npm installation can fail, worded for the person who wrote the package.json:
//! each message names the package, field or value at fault and says what to do next.

#[derive(Debug, thiserror::Error)]
pub enum NpmError {
    #[error("{file}: {why}")]
    Manifest { file: String, why: String },
    #[error("dependency {name}@{spec:?} ({chain}) {why}")]
    UnsupportedSpec { name: String, spec: String, chain: String, why: String },
    #[error(
        "package {name} is not in the registry: {url} answered 404; check the name in package.json or the registry address"
    )]
    NotFound { name: String, url: String },
    #[error("GET {url} failed: {why}; check that the registry is reachable and the credentials are right")]
    Registry { url: String, why: String },
    #[error("packument of {name} from {url} is unusable: {why}; check that the address is an npm registry")]
    Packument { name: String, url: String, why: String },
    #[error(
        "no version of {name} satisfies {spec:?} ({chain}); newest available: {available}; change the range in package.json"
    )]
    NoMatch { name: String, spec: String, chain: String, available: String },
    #[error("{name}@{version} ({chain}) cannot run on linux/x64: {why}; drop the dependency or pick another version")]
    Platform { name: String, version: String, chain: String, why: String },
    #[error(
        "peer dependency conflict: {chain} needs {name}@{spec:?} next to it, but {found}; align the versions in package.json"
    )]
    PeerConflict { name: String, spec: String, chain: String, found: String },
    #[error("package-lock.json {why}")]
    Lockfile { why: String },
    #[error("package-lock.json does not match package.json: {why}; run npm install to update the lock")]
    LockMismatch { why: String },
    #[error(
        "{name}@{version} from {url} has integrity {actual}, not {expected}: the registry served a different file; check the lock or the registry"
    )]
    Integrity { name: String, version: String, url: String, expected: String, actual: String },
    #[error(
        "{name}@{version} from {url} has no integrity or shasum to check: unverified tarballs are refused; pick a version the registry publishes with an integrity"
    )]
    NoIntegrity { name: String, version: String, url: String },
    #[error(
        "{name}@{version}: invalid integrity {integrity:?}: expected sha512-, sha384-, sha256- or sha1- followed by base64"
    )]
    BadIntegrity { name: String, version: String, integrity: String },
    #[error("tarball of {name}@{version} from {url} is corrupt: {why}; the registry served a broken file")]
    Tarball { name: String, version: String, url: String, why: String },
    #[error("tarball of {name}@{version}: entry {path:?} {why}: the package is refused")]
    Unsafe { name: String, version: String, path: String, why: String },
    #[error(
        "tarball of {name}@{version} {why}: the installation is refused; raise the limit if the package is genuine"
    )]
    TooBig { name: String, version: String, why: String },
    #[error(
        "install scripts are not run by kiln, refusing {list}; an administrator can allow such packages (their files installed, their scripts never run)"
    )]
    ScriptsRefused { list: String },
    #[error(
        "{path} is written by both {first} and {second}: the layout is refused; remove one of them from the dependencies"
    )]
    Collision { path: String, first: String, second: String },
    #[error("invalid registry address {url:?}: {why}")]
    RegistryUrl { url: String, why: String },
}
