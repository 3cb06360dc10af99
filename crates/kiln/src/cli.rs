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

/// The command line as parsed: the client's global flags are hidden from the help of the
/// commands that never talk to a server (`serve`, `admin`, `openapi`, `schema`), where they
/// would mislead. clap does not copy a global flag into a command that has an argument of
/// the same id, so each gets a hidden, ignored one.
pub fn command() -> clap::Command {
    use clap::CommandFactory;
    let mut command = Cli::command();
    for local in ["serve", "admin", "openapi", "schema"] {
        command = command.mut_subcommand(local, |mut sub| {
            for flag in ["server", "token", "org", "output"] {
                sub = sub.arg(clap::Arg::new(flag).long(flag).hide(true).global(true));
            }
            sub
        });
    }
    command
}

/// Parses the process's arguments (exits with clap's message on bad ones).
pub fn parse() -> Cli {
    use clap::FromArgMatches;
    let matches = command().get_matches();
    Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
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
    /// Only each object's name (a task's id), one a line, for scripts.
    Name,
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
    #[command(
        args_conflicts_with_subcommands = true,
        override_usage = "kiln create -f FILE [--wait] [-w DIR]\n       kiln create <base-image|image|package|package-source> [OPTIONS] ..."
    )]
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
    Cancel {
        /// The task's id, from kiln get tasks.
        task: String,
    },
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
        /// The image to build again.
        name: String,
        /// Fetch exactly the versions of the last build's lock instead of resolving again.
        #[arg(long)]
        locked: bool,
        /// Wait for the build, showing its progress, and fail if it fails.
        #[arg(long)]
        wait: bool,
    },
    /// Make an image's debug variant (the image plus a busybox layer, tagged <tag>-debug)
    /// and print its reference and how to get a shell in it.
    Debug {
        /// The image, which must be READY.
        name: String,
    },
    /// Put function code on a READY image as one extra layer (no rebuild); prints the
    /// reference to run.
    #[command(subcommand)]
    Function(FunctionCommand),
    /// Print an image's SPDX 2.3 SBOM (JSON).
    Sbom {
        /// A built image's name.
        image: String,
    },
    /// List the packages inside a built image: version, licence, layer.
    Inventory {
        /// An image's or base image's name.
        image: String,
    },
    /// Print the Dockerfile equivalent to a built image.
    Dockerfile {
        /// A built image's name.
        image: String,
    },
    /// Administer a data directory directly, with no server running.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Print the OpenAPI document of the REST API.
    Openapi,
    /// Print the JSON Schema of a definition format (image-definition, base-image, image, package, package-source).
    Schema {
        /// image-definition, base-image, image, package or package-source.
        name: String,
    },
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
    #[arg(value_name = "TASK|IMAGE")]
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
        /// What the token is for, shown in kiln token list.
        #[arg(long)]
        description: Option<String>,
        /// Days until the token stops working (default: never).
        #[arg(long)]
        expires_in_days: Option<u32>,
    },
    /// List tokens (never their secrets).
    List {
        /// Only this subject's tokens (default: your own).
        #[arg(long)]
        subject: Option<String>,
    },
    /// Revoke a token by id.
    Revoke {
        /// The token's id, from kiln token list.
        id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user, or a service account with --service-account.
    Create {
        /// The name to create.
        name: String,
        /// A service account (for pipelines) rather than a person.
        #[arg(long)]
        service_account: bool,
        /// The name people see.
        #[arg(long)]
        display_name: Option<String>,
    },
    List,
    /// Refuse the subject's tokens until enabled again.
    Disable {
        /// The user or service account.
        name: String,
    },
    Enable {
        /// The user or service account.
        name: String,
    },
    /// Delete a subject with its role bindings.
    Delete {
        /// The name to delete.
        name: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum RoleCommand {
    /// Define a role from permissions such as images:write.
    Create {
        /// The name to create.
        name: String,
        /// A permission such as images:write; repeat for more.
        #[arg(long = "permission", required = true)]
        permissions: Vec<String>,
        /// What the role or organisation is for.
        #[arg(long)]
        description: Option<String>,
    },
    List,
    Delete {
        /// The name to delete.
        name: String,
    },
    /// Grant ROLE to SUBJECT in an organisation (--in ORG, or * for all; default: default).
    Bind {
        /// The user or service account.
        subject: String,
        /// The role to grant.
        role: String,
        /// The organisation, or * for all.
        #[arg(long = "in", default_value = "default")]
        organization: String,
    },
    /// Take ROLE from SUBJECT in an organisation.
    Unbind {
        /// The user or service account.
        subject: String,
        /// The role to take away.
        role: String,
        /// The organisation, or * for all.
        #[arg(long = "in", default_value = "default")]
        organization: String,
    },
    /// List role bindings.
    Bindings {
        /// Only this subject's bindings.
        #[arg(long)]
        subject: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum OrgCommand {
    Create {
        /// The name to create.
        name: String,
        /// What the role or organisation is for.
        #[arg(long)]
        description: Option<String>,
    },
    List,
    Delete {
        /// The name to delete.
        name: String,
    },
}

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Only requests by this subject.
    #[arg(long)]
    pub subject: Option<String>,
    /// RFC 3339 time, such as 2026-11-22T10:00:00Z.
    #[arg(long)]
    pub since: Option<String>,
    /// RFC 3339 time the entries end at.
    #[arg(long)]
    pub until: Option<String>,
    /// Only requests answered with this HTTP status.
    #[arg(long)]
    pub status: Option<u16>,
}

/// Every setting of `kiln serve`, declared once: clap reads flags and `KILN_*` variables into
/// it, serde reads the TOML file into it (keys named as the flags, with `_`), and
/// `serve::settle` merges the two (flags win) and applies the defaults.
#[derive(Debug, Default, Args, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServeArgs {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, env = "KILN_LISTEN")]
    pub listen: Option<String>,
    /// Directory for Kiln's data: the store, registry blobs, package cache and build scratch space.
    #[arg(long, env = "KILN_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// A TOML file with any of these settings, named as the flags with `_` (`data_dir`,
    /// `workers`, ...); flags and KILN_* variables win over it.
    #[arg(long, env = "KILN_CONFIG")]
    #[serde(skip)]
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
    #[arg(long, env = "KILN_CONTROLLER", action = clap::ArgAction::Set)]
    pub controller: Option<bool>,
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
        /// The base image's name.
        name: String,
        /// Image reference, `host[:port]/path[:tag][@digest]`.
        reference: String,
        /// The runtime its images are built for, such as python3 or nodejs.
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
        /// The image's name (unique ignoring case).
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
        /// A tag, `key=value`; repeat for more.
        #[arg(long = "tag")]
        tags: Vec<String>,
        /// Readable by every organisation.
        #[arg(long)]
        public: bool,
    },
    /// Add a package to the catalog.
    Package {
        /// deb, pypi or npm.
        ecosystem: String,
        /// The package's name in its ecosystem.
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
        /// Why it was approved or denied, for the next reviewer.
        #[arg(long)]
        notes: Option<String>,
    },
    /// Add a package source (Debian repository, PyPI index, npm registry).
    #[command(name = "package-source")]
    PackageSource {
        /// The package source's name.
        name: String,
        /// deb, pypi or npm.
        #[arg(long)]
        ecosystem: String,
        /// The repository's root URL (http or https).
        #[arg(long)]
        url: String,
        /// Debian suite, such as bookworm.
        #[arg(long)]
        suite: Option<String>,
        /// Debian component; repeat for more.
        #[arg(long = "component")]
        components: Vec<String>,
        /// User name for the source; the password comes from --password-stdin.
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
    #[value(name = "functions", alias = "function")]
    Functions,
}

#[derive(Debug, Args)]
pub struct GetArgs {
    /// base-images, images, packages, package-sources, tasks or functions (singular forms too).
    #[arg(value_enum)]
    pub kind: Kind,
    /// Show this object only (packages: ECOSYSTEM/NAME).
    pub name: Option<String>,
    /// Only objects with this tag, `key` or `key=value`.
    #[arg(long = "tag")]
    pub tags: Vec<String>,
    /// Only objects of this language.
    #[arg(long)]
    pub language: Option<String>,
    /// Only objects in this status, such as READY or ERROR.
    #[arg(long)]
    pub status: Option<String>,
    /// Only packages or package sources of this ecosystem.
    #[arg(long)]
    pub ecosystem: Option<String>,
}

#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// base-images, images, packages or package-sources (singular forms too).
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

    #[test]
    fn serve_help_shows_server_flags_only() {
        let mut command = super::command();
        command.build();
        let mut help_of = |name: &str| {
            command.find_subcommand_mut(name).map(|c| c.render_long_help().to_string()).unwrap_or_default()
        };
        let help = help_of("serve");
        assert!(help.contains("--data-dir") && help.contains("--listen"), "{help}");
        for client_flag in ["--token", "--server", "--org", "--output"] {
            assert!(!help.contains(client_flag), "{client_flag} in kiln serve --help:\n{help}");
        }
        assert!(help_of("get").contains("--token"), "client commands keep them");
    }

    /// Every flag and argument of every command says what it is for in `--help`.
    #[test]
    fn every_argument_has_help_text() {
        fn walk(command: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for arg in command.get_arguments() {
                let id = arg.get_id().as_str();
                if arg.get_help().is_none() && !["help", "version"].contains(&id) {
                    missing.push(format!("{path} {id}"));
                }
            }
            for sub in command.get_subcommands() {
                walk(sub, &format!("{path} {}", sub.get_name()), missing);
            }
        }
        let mut missing = Vec::new();
        let mut command = super::Cli::command();
        command.build();
        walk(&command, "kiln", &mut missing);
        assert!(missing.is_empty(), "arguments without help text:\n{}", missing.join("\n"));
    }
}

#[derive(Debug, Subcommand)]
pub enum PushCommand {
    /// Push a built image (READY) to another registry.
    Image {
        /// A READY image's name.
        name: String,
        /// Destination, `host[:port]/repository[:tag]`; the organisation's registry
        /// credentials for the host are used.
        #[arg(long)]
        to: String,
    },
    /// Push a repository of Kiln's registry (`org/name:tag` or `org/name@digest`).
    Repository {
        /// `org/name:tag` or `org/name@digest` in Kiln's registry.
        source: String,
        /// Destination, `host[:port]/repository[:tag]`.
        #[arg(long)]
        to: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum FunctionCommand {
    /// Upload DIR as the function's code (`/function` in the image) on top of IMAGE.
    /// `.kilnignore` in DIR (gitignore syntax) leaves files out, besides the defaults:
    /// definition files, requirements.txt, package-lock.json, .git, caches, node_modules, .venv.
    Push {
        /// A READY image to put the code on.
        image: String,
        /// The directory holding the handler (for Python `handler.py` with `handle`).
        #[arg(long)]
        code: PathBuf,
        /// The function's name (default: the directory's name).
        #[arg(long)]
        name: Option<String>,
    },
    /// List the organisation's functions.
    #[command(alias = "ls")]
    List {
        /// Only functions on this image.
        #[arg(long)]
        image: Option<String>,
    },
    /// Show one function: its image, reference, digest and the image digest it runs on.
    Get {
        /// The function's name.
        name: String,
    },
    /// Delete a function and its image's tag (the registry's collector frees its blobs).
    #[command(alias = "rm")]
    Delete {
        /// The function's name.
        name: String,
    },
}
