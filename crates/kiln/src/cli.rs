//! The command line: every subcommand and flag, with the help text users read.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Kiln builds governed, reproducible runtime images for serverless platforms.
///
/// `kiln serve` runs the server; every other command talks to a running server
/// (`--server` or KILN_URL).
#[derive(Debug, Parser)]
#[command(name = "kiln", version)]
pub struct Cli {
    #[command(flatten)]
    pub connection: Connection,
    /// Output format: table, wide (whole cells, more columns), json or yaml.
    #[arg(short = 'o', long, global = true, value_enum, default_value_t = Output::Table)]
    pub output: Output,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Args)]
pub struct Connection {
    /// URL of the Kiln server (default: the one `kiln login` stored, else http://127.0.0.1:8470).
    #[arg(long, global = true, env = "KILN_URL")]
    pub server: Option<String>,
    /// API token (the administrator's is printed at first start).
    #[arg(long, global = true, env = "KILN_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Organisation to act in (default: default).
    #[arg(long, global = true, env = "KILN_ORG")]
    pub org: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// Aligned columns, long cells cut to one line.
    Table,
    /// The table with every cell whole and more columns.
    Wide,
    /// JSON, as the API returns it (with `kind` for objects).
    Json,
    /// YAML documents that `kiln update -f` takes back.
    Yaml,
}

impl Output {
    pub fn is_table(self) -> bool {
        matches!(self, Output::Table | Output::Wide)
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the Kiln server.
    Serve(ServeArgs),
    /// Create objects from arguments, or every document of a file (-f).
    #[command(args_conflicts_with_subcommands = true)]
    Create(CreateArgs),
    /// Update objects from a file: edit the output of `kiln get … -o yaml` and send it back.
    Update(FileArgs),
    /// Show one object, or list a kind.
    Get(GetArgs),
    /// Delete an object.
    Delete(DeleteArgs),
    /// Check a token against a server and store both for later commands (file mode 0600).
    Login(LoginArgs),
    /// Forget the stored token of a server.
    Logout,
    /// Show who the current token belongs to and what it may do.
    Whoami,
    /// Create, list and revoke API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Manage users and service accounts.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage roles and bind them to subjects.
    #[command(subcommand)]
    Role(RoleCommand),
    /// Manage organisations.
    #[command(subcommand)]
    Org(OrgCommand),
    /// Read the audit log of the current organisation.
    Audit(AuditArgs),
    /// Copy an image from Kiln's registry to another registry.
    #[command(subcommand)]
    Push(PushCommand),
    /// Show the log of a task, or of an image's current or last build; -f follows it until it ends.
    Logs(LogsArgs),
    /// Cancel a queued or running task.
    Cancel { task: String },
    /// Assemble the root images (python3, nodejs) from OS packages and register them as base images.
    Bootstrap {
        /// python3, nodejs (default: both).
        languages: Vec<String>,
        /// Wait for the root images, showing progress.
        #[arg(long)]
        wait: bool,
    },
    /// Build an image again: new package versions, or exactly its lock with --locked.
    Rebuild {
        name: String,
        #[arg(long)]
        locked: bool,
        #[arg(long)]
        wait: bool,
    },
    /// Put function code on a READY image as one extra layer (no rebuild); prints the
    /// reference to run.
    #[command(subcommand)]
    Function(FunctionCommand),
    /// Print an image's SPDX 2.3 SBOM (JSON).
    Sbom { image: String },
    /// List the packages inside a built image: version, licence, layer.
    Inventory { image: String },
    /// Print the Dockerfile equivalent to a built image.
    Dockerfile { image: String },
    /// Administer a data directory directly, with no server running.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Print the OpenAPI document of the REST API.
    Openapi,
    /// Print the JSON Schema of a definition format (image-definition, base-image, image, package, package-source).
    Schema { name: String },
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Give the administrator "admin" a new token, printed once, and revoke its others;
    /// KILN_ADMIN_TOKEN, if set, is the new token. Stop the server first.
    ResetToken {
        /// The data directory `kiln serve` uses.
        #[arg(long, env = "KILN_DATA_DIR", default_value = "./kiln-data")]
        data_dir: PathBuf,
    },
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// A task id, or an image name for its current or last build.
    pub task: String,
    /// Keep printing new lines until the task ends.
    #[arg(short = 'f', long)]
    pub follow: bool,
}

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// The token to store; read from standard input if left out.
    #[arg(long)]
    pub token: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token; its secret is printed once.
    Create {
        /// For another subject (needs tokens:write).
        #[arg(long)]
        subject: Option<String>,
        #[arg(long)]
        description: Option<String>,
        #[arg(long)]
        expires_in_days: Option<u32>,
    },
    /// List tokens (never their secrets).
    List {
        #[arg(long)]
        subject: Option<String>,
    },
    /// Revoke a token by id.
    Revoke { id: String },
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user, or a service account with --service-account.
    Create {
        name: String,
        #[arg(long)]
        service_account: bool,
        #[arg(long)]
        display_name: Option<String>,
    },
    List,
    /// Refuse the subject's tokens until enabled again.
    Disable {
        name: String,
    },
    Enable {
        name: String,
    },
    /// Delete a subject with its role bindings.
    Delete {
        name: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum RoleCommand {
    /// Define a role from permissions such as images:write.
    Create {
        name: String,
        #[arg(long = "permission", required = true)]
        permissions: Vec<String>,
        #[arg(long)]
        description: Option<String>,
    },
    List,
    Delete {
        name: String,
    },
    /// Grant ROLE to SUBJECT in an organisation (--in ORG, or * for all; default: default).
    Bind {
        subject: String,
        role: String,
        #[arg(long = "in", default_value = "default")]
        organization: String,
    },
    /// Take ROLE from SUBJECT in an organisation.
    Unbind {
        subject: String,
        role: String,
        #[arg(long = "in", default_value = "default")]
        organization: String,
    },
    /// List role bindings.
    Bindings {
        #[arg(long)]
        subject: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum OrgCommand {
    Create {
        name: String,
        #[arg(long)]
        description: Option<String>,
    },
    List,
    Delete {
        name: String,
    },
}

#[derive(Debug, Args)]
pub struct AuditArgs {
    #[arg(long)]
    pub subject: Option<String>,
    /// RFC 3339 time, such as 2026-11-22T10:00:00Z.
    #[arg(long)]
    pub since: Option<String>,
    #[arg(long)]
    pub until: Option<String>,
    #[arg(long)]
    pub status: Option<u16>,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, env = "KILN_LISTEN")]
    pub listen: Option<String>,
    /// Directory for Kiln's data (store and, later, blobs).
    #[arg(long, env = "KILN_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// A TOML file with `listen`, `data_dir` and `log`; flags and KILN_* variables win over it.
    #[arg(long, env = "KILN_CONFIG")]
    pub config: Option<PathBuf>,
    /// Failed authentications allowed per source address per minute before it gets 429.
    #[arg(long, env = "KILN_AUTH_FAILURES_PER_MINUTE")]
    pub auth_failures_per_minute: Option<u32>,
    /// Seconds an unreferenced registry blob is kept before garbage collection removes it.
    #[arg(long, env = "KILN_REGISTRY_GC_GRACE_SECONDS")]
    pub registry_gc_grace_seconds: Option<u64>,
    /// Seconds between registry garbage collection runs.
    #[arg(long, env = "KILN_REGISTRY_GC_INTERVAL_SECONDS")]
    pub registry_gc_interval_seconds: Option<u64>,
    /// Seconds an idle blob upload lives before it is removed.
    #[arg(long, env = "KILN_REGISTRY_UPLOAD_TTL_SECONDS")]
    pub registry_upload_ttl_seconds: Option<u64>,
    /// Run the controller that resolves base images (`false` serves the API and registry
    /// only, leaving objects where they are, e.g. for maintenance or isolated tests).
    #[arg(long, env = "KILN_CONTROLLER", action = clap::ArgAction::Set, default_value_t = true)]
    pub controller: bool,
    /// Seconds before the first retry of a failed base-image check (doubling up to 300).
    #[arg(long, env = "KILN_CONTROLLER_RETRY_SECONDS")]
    pub controller_retry_seconds: Option<u64>,
    /// Seconds between checks of a READY base image's reference.
    #[arg(long, env = "KILN_BASE_IMAGE_RECHECK_SECONDS")]
    pub base_image_recheck_seconds: Option<u64>,
    /// Tasks (builds) run at the same time.
    #[arg(long, env = "KILN_WORKERS")]
    pub workers: Option<usize>,
    /// Seconds a task may run before it fails; 0 means no limit (default 1800).
    #[arg(long, env = "KILN_TASK_TIMEOUT_SECONDS")]
    pub task_timeout_seconds: Option<u64>,
    /// Seconds a task's claim lasts without a heartbeat before another server takes it over.
    #[arg(long, env = "KILN_TASK_LEASE_SECONDS")]
    pub task_lease_seconds: Option<u64>,
    /// Scratch bytes all running tasks together may use (default 20 GiB).
    #[arg(long, env = "KILN_SCRATCH_LIMIT_BYTES")]
    pub scratch_limit_bytes: Option<u64>,
    /// How Kiln's registry is named in image references (`host:port`); default: the listen address.
    #[arg(long, env = "KILN_REGISTRY_HOST")]
    pub registry_host: Option<String>,
    /// Directory of the apt configuration whose sources are the default Debian package
    /// sources (default /etc/apt); `none` uses only the package sources administrators add.
    #[arg(long, env = "KILN_APT_CONFIG_DIR")]
    pub apt_config_dir: Option<PathBuf>,
    /// Bytes the shared package download cache may hold (default 10 GiB).
    #[arg(long, env = "KILN_PACKAGE_CACHE_LIMIT_BYTES")]
    pub package_cache_limit_bytes: Option<u64>,
    /// Package layers per built image at most; the largest packages get their own (default 10).
    #[arg(long, env = "KILN_LAYER_BUDGET")]
    pub layer_budget: Option<usize>,
    /// Python package index (Simple API root) searched after the organisations' `pypi`
    /// package sources; default: the machine's pip configuration; `none` for none.
    #[arg(long, env = "KILN_PYPI_INDEX_URL")]
    pub pypi_index_url: Option<String>,
    /// Bytes one wheel may unpack to before it is refused as a possible zip bomb (default 1 GiB).
    #[arg(long, env = "KILN_WHEEL_SIZE_LIMIT_BYTES")]
    pub wheel_size_limit_bytes: Option<u64>,
    /// Bytes of package contents one build may hold in memory, all its `.deb`s, wheels and npm
    /// tarballs together (default 4 GiB); a package taking it past this is refused as a
    /// possible decompression bomb, naming the package and file.
    #[arg(long, env = "KILN_BUILD_MEMORY_LIMIT_BYTES")]
    pub build_memory_limit_bytes: Option<u64>,
    /// Build Python source distributions (releases without a wheel) in a sandbox: runc runs
    /// `pip wheel` offline in this image's root (an image on python3 with python3-pip,
    /// python3-setuptools and python3-wheel). Default: refuse them.
    #[arg(long, env = "KILN_PYPI_SDIST_BUILDER")]
    pub pypi_sdist_builder: Option<String>,
    /// npm registry used when an organisation has no `npm` package source; default: the
    /// machine's npm configuration; `none` for none.
    #[arg(long, env = "KILN_NPM_REGISTRY_URL")]
    pub npm_registry_url: Option<String>,
    /// Install npm packages that declare install scripts, without running the scripts
    /// (default: refuse them, naming them).
    #[arg(long, env = "KILN_NPM_ALLOW_SCRIPTS", num_args = 0..=1, default_missing_value = "true")]
    pub npm_allow_scripts: Option<bool>,
    /// Log filter, such as `info` or `kiln_server=debug`.
    #[arg(long, env = "KILN_LOG")]
    pub log: Option<String>,
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    #[command(subcommand)]
    pub kind: Option<CreateKind>,
    /// A definition file: the seed's image definition, or `kind: BaseImage | Image | Package |
    /// PackageSource` documents separated by `---`. `-` reads standard input.
    #[arg(short = 'f', long = "file")]
    pub file: Option<PathBuf>,
    /// Directory that `@file` references in manifests are read from, and that they and the
    /// files they include must stay in (default: the file's own).
    #[arg(short = 'w', long = "work-dir")]
    pub work_dir: Option<PathBuf>,
    /// For images: wait for the build, showing its progress, and fail if it fails. With -f:
    /// wait until every base image and image of the file is READY or ERROR, and fail if any
    /// is ERROR.
    #[arg(long, global = true)]
    pub wait: bool,
    /// Read `@file`, `-r` and `-c` references that are absolute or lead out of the including
    /// file's directory tree (or the -w directory); by default they are refused, so a file from
    /// elsewhere cannot send your other files to the server. Formats are checked either way.
    #[arg(long, global = true)]
    pub allow_outside_includes: bool,
}

#[derive(Debug, Args)]
pub struct FileArgs {
    /// A definition file: the seed's image definition, or `kind: BaseImage | Image | Package |
    /// PackageSource` documents separated by `---`. `-` reads standard input.
    #[arg(short = 'f', long = "file", required = true)]
    pub file: PathBuf,
    /// Wait until every base image and image of the file is READY or ERROR for what the file
    /// says, and fail if any is ERROR.
    #[arg(long)]
    pub wait: bool,
    /// Directory that `@file` references in manifests are read from, and that they and the
    /// files they include must stay in (default: the file's own).
    #[arg(short = 'w', long = "work-dir")]
    pub work_dir: Option<PathBuf>,
    /// Read `@file`, `-r` and `-c` references that are absolute or lead out of the including
    /// file's directory tree (or the -w directory); by default they are refused, so a file from
    /// elsewhere cannot send your other files to the server. Formats are checked either way.
    #[arg(long)]
    pub allow_outside_includes: bool,
}

#[derive(Debug, Subcommand)]
pub enum CreateKind {
    /// Register a base image by reference.
    #[command(name = "base-image")]
    BaseImage {
        name: String,
        /// Image reference, `host[:port]/path[:tag][@digest]`.
        reference: String,
        #[arg(long)]
        language: String,
        /// A tag, `key=value`; repeat for more.
        #[arg(long = "tag")]
        tags: Vec<String>,
        /// Readable by every organisation.
        #[arg(long)]
        public: bool,
    },
    /// Declare a runtime image on a base image (or an extendable image).
    Image {
        name: String,
        /// The base image, or an image marked extendable.
        base: String,
        /// A requirements.txt or package.json.
        #[arg(long)]
        runtime_deps: Option<PathBuf>,
        /// A package-lock.json to install exactly (with a package.json in --runtime-deps).
        #[arg(long, requires = "runtime_deps")]
        runtime_lock: Option<PathBuf>,
        /// JSON or YAML: `{"packages": [{"name": …, "version": …}]}` or just the list.
        #[arg(long)]
        system_deps: Option<PathBuf>,
        /// Version of the definition (the image tag once built).
        #[arg(long)]
        version: Option<String>,
        /// Allow other images to be built on this one.
        #[arg(long)]
        extendable: bool,
        /// Environment variable, `NAME=value`; repeat for more.
        #[arg(long = "env")]
        environment: Vec<String>,
        #[arg(long = "tag")]
        tags: Vec<String>,
        #[arg(long)]
        public: bool,
    },
    /// Add a package to the catalog.
    Package {
        /// deb, rpm, apk, pypi or npm.
        ecosystem: String,
        name: String,
        /// An allowed version or constraint; repeat for more (none: any version).
        #[arg(long = "version")]
        versions: Vec<String>,
        /// SPDX licence expression.
        #[arg(long)]
        license: Option<String>,
        /// Record the package as denied instead of approved.
        #[arg(long)]
        deny: bool,
        #[arg(long)]
        notes: Option<String>,
    },
    /// Add a package source (Debian repository, PyPI index, npm registry).
    #[command(name = "package-source")]
    PackageSource {
        name: String,
        #[arg(long)]
        ecosystem: String,
        #[arg(long)]
        url: String,
        /// Debian suite, such as bookworm.
        #[arg(long)]
        suite: Option<String>,
        /// Debian component; repeat for more.
        #[arg(long = "component")]
        components: Vec<String>,
        #[arg(long)]
        username: Option<String>,
        /// Read the password (or token) from standard input.
        #[arg(long)]
        password_stdin: bool,
        /// ASCII-armoured OpenPGP public keys that sign the repository (a file).
        #[arg(long)]
        keyring: Option<PathBuf>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Kind {
    #[value(name = "base-images", alias = "base-image")]
    BaseImages,
    #[value(name = "images", alias = "image")]
    Images,
    #[value(name = "packages", alias = "package")]
    Packages,
    #[value(name = "package-sources", alias = "package-source")]
    PackageSources,
    #[value(name = "tasks", alias = "task")]
    Tasks,
}

#[derive(Debug, Args)]
pub struct GetArgs {
    /// base-images, images, packages, package-sources or tasks (singular forms too).
    #[arg(value_enum)]
    pub kind: Kind,
    /// Show this object only (packages: ECOSYSTEM/NAME).
    pub name: Option<String>,
    /// Only objects with this tag, `key` or `key=value`.
    #[arg(long = "tag")]
    pub tags: Vec<String>,
    #[arg(long)]
    pub language: Option<String>,
    #[arg(long)]
    pub status: Option<String>,
    #[arg(long)]
    pub ecosystem: Option<String>,
}

#[derive(Debug, Args)]
pub struct DeleteArgs {
    #[arg(value_enum)]
    pub kind: Kind,
    /// The object (packages: ECOSYSTEM/NAME).
    pub name: String,
    /// Delete even if images are built on it; they move to ERROR.
    #[arg(long)]
    pub force: bool,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        super::Cli::command().debug_assert();
    }
}

#[derive(Debug, Subcommand)]
pub enum PushCommand {
    /// Push a built image (READY) to another registry.
    Image {
        name: String,
        /// Destination, `host[:port]/repository[:tag]`; the organisation's registry
        /// credentials for the host are used.
        #[arg(long)]
        to: String,
    },
    /// Push a repository of Kiln's registry (`org/name:tag` or `org/name@digest`).
    Repository {
        source: String,
        #[arg(long)]
        to: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum FunctionCommand {
    /// Upload DIR as the function's code (`/function` in the image) on top of IMAGE.
    Push {
        image: String,
        /// The directory holding the handler (for Python `handler.py` with `handle`).
        #[arg(long)]
        code: PathBuf,
        /// The function's name (default: the directory's name).
        #[arg(long)]
        name: Option<String>,
    },
}
