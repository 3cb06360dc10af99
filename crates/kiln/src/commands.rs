//! The client commands: turn arguments and files into API calls and print the answers.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use reqwest::Method;
use serde_json::{Value, json};

use kiln_model::definition::{self, Definition};
use kiln_model::image::{PackageRequest, SystemDependencies};
use kiln_model::includes::{self, Format, Includes, MAX_INCLUDE_BYTES, Reader};
use kiln_model::requirements_includes::{self, Source};

use crate::cli::{Command, Connection, CreateArgs, CreateKind, DeleteArgs, GetArgs, Kind, Output};
use crate::output::{as_document, outln, print};
use kiln_client::{Body, Client, segment};

pub async fn run(connection: &Connection, output: Output, command: Command) -> Result<()> {
    let (server, token) = crate::credentials::resolve(connection.server.as_deref(), connection.token.as_deref())?;
    let client = Client::new(&server, token, connection.org.clone())?;
    match command {
        Command::Create(args) => create(&client, output, args).await,
        Command::Update(args) => {
            let files = FileSource { work_dir: args.work_dir.as_deref(), allow_outside: args.allow_outside_includes };
            apply_file(&client, output, &args.file, files, "update", args.wait).await
        }
        Command::Get(args) => get(&client, output, args).await,
        Command::Delete(args) => delete(&client, output, args).await,
        Command::Whoami => crate::access::whoami(&client, output).await,
        Command::Token(command) => crate::access::token(&client, output, command).await,
        Command::User(command) => crate::access::user(&client, output, command).await,
        Command::Role(command) => crate::access::role(&client, output, command).await,
        Command::Org(command) => crate::access::org(&client, output, command).await,
        Command::Audit(args) => crate::access::audit(&client, output, args).await,
        Command::Push(command) => crate::push::push(&client, output, command).await,
        Command::Logs(args) => crate::tasks::logs(&client, &args.task, args.follow).await,
        Command::Cancel { task } => crate::tasks::cancel(&client, output, &task).await,
        Command::Bootstrap { languages, wait } => crate::builds::bootstrap(&client, output, languages, wait).await,
        Command::Rebuild { name, locked, wait } => crate::builds::rebuild(&client, output, &name, locked, wait).await,
        Command::Debug { name } => crate::builds::debug(&client, output, &name).await,
        Command::Sbom { image } => crate::builds::sbom(&client, &image).await,
        Command::Function(command) => crate::functions::run(&client, output, command).await,
        Command::Inventory { image } => crate::builds::inventory(&client, output, &image).await,
        Command::Dockerfile { image } => crate::builds::dockerfile(&client, &image).await,
        Command::Serve(_)
        | Command::Admin(_)
        | Command::Openapi
        | Command::Schema { .. }
        | Command::Login(_)
        | Command::Logout => unreachable_command(),
    }
}

fn unreachable_command() -> Result<()> {
    bail!("this command does not talk to a server")
}

pub fn print_openapi() -> Result<()> {
    let document = kiln_server::openapi().to_pretty_json().context("rendering the OpenAPI document")?;
    outln!("{document}")?;
    Ok(())
}

pub fn print_schema(name: &str) -> Result<()> {
    let schema = definition::schema(name)
        .ok_or_else(|| anyhow!("no schema called {name:?}: use one of {}", definition::SCHEMA_NAMES.join(", ")))?;
    outln!("{}", serde_json::to_string_pretty(schema)?)?;
    Ok(())
}

/// `kind=value` pairs from `--tag` flags.
fn tags(pairs: &[String]) -> Value {
    Value::Array(
        pairs
            .iter()
            .map(|pair| match pair.split_once('=') {
                Some((k, v)) => json!({"key": k, "value": v}),
                None => json!({"key": pair, "value": ""}),
            })
            .collect(),
    )
}

fn visibility(public: bool) -> &'static str {
    if public { "public" } else { "private" }
}

fn read_text(path: &Path) -> Result<String> {
    if path == Path::new("-") {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text).context("reading standard input")?;
        return Ok(text);
    }
    std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

/// The text of a file named on the command line, checked to be `format`: the user chose the
/// file, but what reaches the server should still be what the flag promises.
fn read_checked(path: &Path, format: Format) -> Result<String> {
    let bytes = if path == Path::new("-") {
        read_text(path)?.into_bytes()
    } else {
        crate::includes::LocalFiles
            .read(path, None, MAX_INCLUDE_BYTES)
            .with_context(|| format!("cannot read {}", path.display()))?
    };
    includes::check_content(&bytes, format).map_err(|e| anyhow!("{} {e}", path.display()))
}

async fn create(client: &Client, output: Output, args: CreateArgs) -> Result<()> {
    let kind = match (args.kind, args.file) {
        (Some(kind), None) => kind,
        (None, Some(file)) => {
            let files = FileSource { work_dir: args.work_dir.as_deref(), allow_outside: args.allow_outside_includes };
            return apply_file(client, output, &file, files, "create", args.wait).await;
        }
        _ => {
            bail!("name what to create (kiln create base-image|image|package|package-source …) or give a file with -f")
        }
    };
    let (target, body) = match kind {
        CreateKind::BaseImage { name, reference, language, tags: t, public } => (
            Kind::BaseImages,
            json!({"name": name, "reference": reference, "language": language, "tags": tags(&t), "visibility": visibility(public)}),
        ),
        CreateKind::Image {
            name,
            base,
            runtime_deps,
            runtime_lock,
            system_deps,
            version,
            extendable,
            environment,
            tags: t,
            public,
        } => {
            let mut body = json!({"name": name, "baseImageName": base, "extendable": extendable, "tags": tags(&t), "visibility": visibility(public)});
            if let Some(version) = version {
                body["version"] = json!(version);
            }
            if let Some(path) = runtime_deps {
                let format = match manifest_format(&path) {
                    Some("package.json") => Format::PackageJson,
                    Some(_) => Format::Requirements,
                    None => Format::Manifest,
                };
                let mut manifest = read_checked(&path, format)?;
                let mut constraints = None;
                if format != Format::PackageJson
                    && !manifest.trim_start().starts_with('{')
                    && requirements_includes::has_includes(&manifest)
                {
                    // Includes are relative to the file, which the server never sees, and stay
                    // in its directory's tree unless the user allows more.
                    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
                    let files = crate::includes::LocalFiles;
                    let includes = Includes {
                        root: dir.to_path_buf(),
                        allow_outside: args.allow_outside_includes,
                        reader: &files,
                    };
                    let name = path.display().to_string();
                    let source = Source { name: &name, dir, path: Some(&path) };
                    let expanded = requirements_includes::expand_includes(source, &manifest, &includes)?;
                    manifest = expanded.requirements;
                    constraints = expanded.constraints;
                }
                let mut runtime = json!({"manifest": manifest});
                if let Some(constraints) = constraints {
                    runtime["constraints"] = json!(constraints);
                }
                if let Some(format) = manifest_format(&path) {
                    runtime["format"] = json!(format);
                }
                if let Some(lock) = runtime_lock {
                    runtime["lockfile"] = json!(read_checked(&lock, Format::Lockfile)?);
                }
                body["runtimeDependencies"] = runtime;
            }
            if let Some(path) = system_deps {
                body["systemDependencies"] = serde_json::to_value(read_system_deps(&path)?)?;
            }
            let mut env = Vec::new();
            for pair in environment {
                let (k, v) = pair.split_once('=').ok_or_else(|| anyhow!("--env {pair:?} must be NAME=value"))?;
                env.push(json!({"name": k, "value": v}));
            }
            body["environment"] = Value::Array(env);
            (Kind::Images, body)
        }
        CreateKind::Package { ecosystem, name, versions, license, deny, notes } => {
            let mut body = json!({"ecosystem": ecosystem, "name": name, "allowedVersions": versions, "decision": if deny { "denied" } else { "approved" }});
            if let Some(license) = license {
                body["license"] = json!(license);
            }
            if let Some(notes) = notes {
                body["notes"] = json!(notes);
            }
            (Kind::Packages, body)
        }
        CreateKind::PackageSource { name, ecosystem, url, suite, components, username, password_stdin, keyring } => {
            let mut body = json!({"name": name, "ecosystem": ecosystem, "url": url, "components": components});
            if let Some(path) = keyring {
                body["keyring"] = json!(read_checked(&path, Format::Keyring)?);
            }
            if let Some(suite) = suite {
                body["suite"] = json!(suite);
            }
            if username.is_some() || password_stdin {
                let password = if password_stdin {
                    read_text(Path::new("-"))?.trim_end_matches(['\r', '\n']).to_string()
                } else {
                    String::new()
                };
                body["credentials"] = json!({"username": username.unwrap_or_default(), "password": password});
            }
            (Kind::PackageSources, body)
        }
    };
    let created = client.send(Method::POST, target.collection(), Some(Body::Json(body))).await?;
    if args.wait && target == Kind::Images {
        let name = created.get("name").and_then(Value::as_str).unwrap_or_default().to_string();
        let built = crate::builds::wait_for_image(client, &name).await?;
        return print(target, &[built], output, true);
    }
    print(target, std::slice::from_ref(&created), output, true)?;
    if target == Kind::Images && output.is_table() {
        let name = created.get("name").and_then(Value::as_str).unwrap_or_default();
        eprintln!("the build starts shortly: kiln logs {name} -f follows it, or pass --wait next time");
    }
    Ok(())
}

fn manifest_format(path: &Path) -> Option<&'static str> {
    let name = path.file_name()?.to_str()?;
    if name.ends_with(".json") {
        Some("package.json")
    } else if name.ends_with(".txt") || name.ends_with(".in") {
        Some("requirements.txt")
    } else {
        None
    }
}

/// Reads `{"packages": [...]}` or just the list, naming the entry and field that is wrong.
fn read_system_deps(path: &Path) -> Result<SystemDependencies> {
    let text = read_text(path)?;
    let value: Value =
        serde_saphyr::from_str(&text).with_context(|| format!("{} is not valid JSON or YAML", path.display()))?;
    let list = match &value {
        Value::Array(items) => items.clone(),
        Value::Object(fields) => {
            if let Some(other) = fields.keys().find(|k| *k != "packages") {
                bail!(
                    "{}: unknown field {other:?}: write {{\"packages\": [{{\"name\": …, \"version\": …}}]}} or just the list",
                    path.display()
                );
            }
            match fields.get("packages") {
                Some(Value::Array(items)) => items.clone(),
                Some(_) => bail!("{}: packages must be a list of {{name, version}}", path.display()),
                None => Vec::new(),
            }
        }
        _ => bail!("{}: expected a list of packages or {{\"packages\": [...]}}", path.display()),
    };
    let mut packages = Vec::with_capacity(list.len());
    for (i, item) in list.into_iter().enumerate() {
        let package: PackageRequest =
            serde_json::from_value(item).map_err(|e| anyhow!("{}: packages[{i}]: {e}", path.display()))?;
        packages.push(package);
    }
    Ok(SystemDependencies { packages })
}

/// Where a definition file's `@file` references are read from.
#[derive(Clone, Copy)]
struct FileSource<'a> {
    /// `-w`: the directory references are relative to and stay in, instead of the file's.
    work_dir: Option<&'a Path>,
    allow_outside: bool,
}

/// Loads a definition file locally (so errors name lines and `@file` references are
/// read from here), then sends every document in one request: all are applied, or none.
async fn apply_file(
    client: &Client,
    output: Output,
    file: &Path,
    files: FileSource<'_>,
    mode: &str,
    wait: bool,
) -> Result<()> {
    let text = read_text(file)?;
    let base: PathBuf = match files.work_dir {
        Some(dir) => dir.to_path_buf(),
        None => file
            .parent()
            .filter(|p| !p.as_os_str().is_empty() && file != Path::new("-"))
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf),
    };
    let reader = crate::includes::LocalFiles;
    let includes = Includes { root: base, allow_outside: files.allow_outside, reader: &reader };
    let loaded = definition::load(&text, &includes).map_err(|errors| {
        let lines: Vec<String> = errors.0.iter().map(|e| format!("  {e}")).collect();
        anyhow!("{} is not a valid definition file:\n{}", file.display(), lines.join("\n"))
    })?;
    let mut documents = Vec::new();
    for item in &loaded {
        let (kind, object) = match &item.definition {
            Definition::BaseImage(o) => (Kind::BaseImages, serde_json::to_value(o)?),
            Definition::Image(o) => (Kind::Images, serde_json::to_value(o)?),
            Definition::Package(o) => (Kind::Packages, serde_json::to_value(o)?),
            Definition::PackageSource(o) => (Kind::PackageSources, package_source_with_credentials(o)?),
        };
        documents.push(as_document(kind, &object));
    }
    let answer =
        client.send(Method::POST, &format!("/v1/apply?mode={mode}"), Some(Body::Json(Value::Array(documents)))).await?;
    let items = answer.get("items").and_then(Value::as_array).cloned().unwrap_or_default();
    let kind_of = |item: &Value| {
        item.get("kind").and_then(Value::as_str).and_then(Kind::from_document_kind).unwrap_or(Kind::Images)
    };
    if output.is_table() {
        for item in &items {
            let kind = item.get("kind").and_then(Value::as_str).unwrap_or("object");
            let name = item.get("name").and_then(Value::as_str).unwrap_or("?");
            let action = item.get("action").and_then(Value::as_str).unwrap_or("applied");
            outln!("{kind} {name} {action}")?;
            if kind == "Image" && !wait {
                eprintln!("  kiln logs {name} -f follows its build");
            }
        }
    } else if !wait {
        for item in &items {
            print(kind_of(item), &[item.get("object").cloned().unwrap_or(Value::Null)], output, true)?;
        }
    }
    if !wait {
        return Ok(());
    }
    // Base images are checked and images built after the answer: wait for what this file
    // asked for to be there (or to have failed), as `create image --wait` does for one.
    let waited: Vec<(Kind, String)> = items
        .iter()
        .map(|item| (kind_of(item), item.get("name").and_then(Value::as_str).unwrap_or_default().to_string()))
        .filter(|(kind, _)| matches!(kind, Kind::BaseImages | Kind::Images))
        .collect();
    let ended = crate::builds::wait_for_objects(client, &waited).await?;
    // Each settled object was already announced on standard error; a person reading both
    // streams in one terminal would see every line twice.
    use std::io::IsTerminal;
    let shown_already = std::io::stdout().is_terminal() && std::io::stderr().is_terminal();
    for (kind, object) in &ended {
        match output {
            Output::Table | Output::Wide if shown_already => {}
            Output::Table | Output::Wide => outln!("{}", crate::builds::final_line(*kind, object))?,
            _ => print(*kind, std::slice::from_ref(object), output, true)?,
        }
    }
    let failed: Vec<String> = ended
        .iter()
        .filter(|(_, object)| object.get("status").and_then(Value::as_str) == Some("ERROR"))
        .map(|(kind, object)| format!("  {}", crate::builds::final_line(*kind, object)))
        .collect();
    if !failed.is_empty() {
        bail!(
            "{} of the {} objects in {} ended in ERROR; fix them and run kiln update -f {} again:\n{}",
            failed.len(),
            ended.len(),
            file.display(),
            file.display(),
            failed.join("\n")
        );
    }
    Ok(())
}

/// Credentials are write-only and skipped when serialising; a file may still carry them.
fn package_source_with_credentials(source: &kiln_model::PackageSource) -> Result<Value> {
    let mut value = serde_json::to_value(source)?;
    match &source.credentials {
        Some(Some(credentials)) => value["credentials"] = serde_json::to_value(credentials)?,
        Some(None) => value["credentials"] = Value::Null,
        None => {}
    }
    Ok(value)
}

fn item_path(kind: Kind, name: &str) -> Result<String> {
    if kind == Kind::Packages {
        let (ecosystem, package) = name
            .split_once('/')
            .ok_or_else(|| anyhow!("name a package as ECOSYSTEM/NAME, such as deb/libpq5 or npm/@types/node"))?;
        return Ok(format!("{}/{}/{}", kind.collection(), segment(ecosystem), segment(package)));
    }
    Ok(format!("{}/{}", kind.collection(), segment(name)))
}

async fn get(client: &Client, output: Output, args: GetArgs) -> Result<()> {
    if let Some(name) = &args.name {
        let object = client.get(&item_path(args.kind, name)?).await?;
        return print(args.kind, &[object], output, true);
    }
    let mut query: Vec<(String, String)> = args.tags.iter().map(|t| ("tag".to_string(), t.clone())).collect();
    let status_key = if args.kind == Kind::Tasks { "state" } else { "status" };
    for (key, value) in [("language", &args.language), (status_key, &args.status), ("ecosystem", &args.ecosystem)] {
        if let Some(value) = value {
            query.push((key.into(), value.clone()));
        }
    }
    let mut objects = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut params = query.clone();
        params.push(("limit".into(), "1000".into()));
        if let Some(token) = &token {
            params.push(("pageToken".into(), token.clone()));
        }
        let encoded: Vec<String> = params.iter().map(|(k, v)| format!("{k}={}", segment(v))).collect();
        let page = client.get(&format!("{}?{}", args.kind.collection(), encoded.join("&"))).await?;
        objects.extend(page.get("items").and_then(Value::as_array).cloned().unwrap_or_default());
        match page.get("nextPageToken").and_then(Value::as_str) {
            Some(next) => token = Some(next.to_string()),
            None => break,
        }
    }
    print(args.kind, &objects, output, false)
}

async fn delete(client: &Client, output: Output, args: DeleteArgs) -> Result<()> {
    let mut path = item_path(args.kind, &args.name)?;
    if args.force {
        path.push_str("?force=true");
    }
    let deleted = client.send(Method::DELETE, &path, None).await?;
    if output.is_table() {
        outln!("{} {} deleted", args.kind.document_kind(), args.name)?;
        return Ok(());
    }
    print(args.kind, &[deleted], output, true)
}
