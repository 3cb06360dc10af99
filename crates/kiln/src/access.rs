//! Client commands for access control: login, tokens, users, roles, bindings,
//! organisations and the audit log.

use anyhow::{Context, Result, anyhow};
use reqwest::Method;
use serde_json::{Value, json};

use crate::cli::{AuditArgs, LoginArgs, OrgCommand, Output, RoleCommand, TokenCommand, UserCommand};
use crate::credentials;
use crate::output::{out, outln};
use kiln_client::{Body, Client, segment};

/// Prints items as a table of the given columns, or as JSON / YAML.
fn show(items: &[Value], columns: &[(&str, &str)], output: Output) -> Result<()> {
    match output {
        Output::Table | Output::Wide => {
            let rows = items.iter().map(|item| {
                columns.iter().map(move |(_, field)| match item.get(*field) {
                    None | Some(Value::Null) => String::new(),
                    Some(Value::String(s)) => s.clone(),
                    Some(Value::Array(a)) => a
                        .iter()
                        .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
                        .collect::<Vec<_>>()
                        .join(", "),
                    Some(other) => other.to_string(),
                })
            });
            let header: Vec<&str> = columns.iter().map(|(title, _)| *title).collect();
            outln!("{}", crate::output::render_table(&header, rows, output))?;
        }
        Output::Json => outln!("{}", serde_json::to_string_pretty(items)?)?,
        Output::Yaml => out!("{}", serde_saphyr::to_string(&items.to_vec()).context("rendering YAML")?)?,
        Output::Name => {
            for item in items {
                let name = item.get("name").or_else(|| item.get("id"));
                outln!("{}", name.and_then(Value::as_str).unwrap_or_default())?;
            }
        }
    }
    Ok(())
}

fn items(answer: &Value) -> Vec<Value> {
    answer.get("items").and_then(Value::as_array).cloned().unwrap_or_default()
}

pub async fn login(server: Option<&str>, args: LoginArgs) -> Result<()> {
    let token = match args.token {
        Some(token) => token,
        None => {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
                .context("reading the token from standard input")?;
            text.trim().to_string()
        }
    };
    if token.is_empty() {
        return Err(anyhow!("no token given: pass --token or pipe it in"));
    }
    let (server, _) = credentials::resolve(server, None)?;
    let server = server.trim_end_matches('/').to_string();
    let me = Client::new(&server, Some(token.clone()), None)?.get("/v1/whoami").await.context("checking the token")?;
    let mut stored = credentials::load()?;
    stored.servers.insert(server.clone(), credentials::Server { token });
    stored.current = Some(server.clone());
    let path = credentials::save(&stored)?;
    outln!("logged in to {server} as {}; token stored in {}", me["subject"].as_str().unwrap_or("?"), path.display())?;
    Ok(())
}

pub fn logout(server: Option<&str>) -> Result<()> {
    let (server, _) = credentials::resolve(server, None)?;
    let mut stored = credentials::load()?;
    stored.servers.remove(server.trim_end_matches('/'));
    if stored.current.as_deref() == Some(server.trim_end_matches('/')) {
        stored.current = None;
    }
    credentials::save(&stored)?;
    outln!("forgot the token of {server}")?;
    Ok(())
}

pub async fn whoami(client: &Client, output: Output) -> Result<()> {
    let me = client.get("/v1/whoami").await?;
    show(&[me], &[("SUBJECT", "subject"), ("ORGANIZATION", "organization"), ("PERMISSIONS", "permissions")], output)
}

pub async fn token(client: &Client, output: Output, command: TokenCommand) -> Result<()> {
    let columns = [
        ("ID", "id"),
        ("SUBJECT", "subject"),
        ("DESCRIPTION", "description"),
        ("EXPIRES", "expiresTime"),
        ("REVOKED", "revokedTime"),
        ("LAST USED", "lastUsedTime"),
    ];
    match command {
        TokenCommand::Create { subject, description, expires_in_days } => {
            let body = json!({"subject": subject, "description": description, "expiresInDays": expires_in_days});
            let created = client.send(Method::POST, "/v1/tokens", Some(Body::Json(body))).await?;
            if output.is_table() {
                outln!("{}", created["token"].as_str().unwrap_or_default())?;
                eprintln!(
                    "token {} created; the secret above is shown this once",
                    created["id"].as_str().unwrap_or("?")
                );
                return Ok(());
            }
            show(&[created], &columns, output)
        }
        TokenCommand::List { subject } => {
            let path = match subject {
                Some(subject) => format!("/v1/tokens?subject={}", segment(&subject)),
                None => "/v1/tokens".to_string(),
            };
            show(&items(&client.get(&path).await?), &columns, output)
        }
        TokenCommand::Revoke { id } => {
            let revoked = client.send(Method::DELETE, &format!("/v1/tokens/{}", segment(&id)), None).await?;
            show(&[revoked], &columns, output)
        }
    }
}

pub async fn user(client: &Client, output: Output, command: UserCommand) -> Result<()> {
    let columns = [("NAME", "name"), ("KIND", "kind"), ("DISPLAY NAME", "displayName"), ("DISABLED", "disabled")];
    match command {
        UserCommand::Create { name, service_account, display_name } => {
            let kind = if service_account { "service-account" } else { "user" };
            let body = json!({"name": name, "kind": kind, "displayName": display_name});
            show(&[client.send(Method::POST, "/v1/users", Some(Body::Json(body))).await?], &columns, output)
        }
        UserCommand::List => show(&items(&client.get("/v1/users").await?), &columns, output),
        UserCommand::Disable { name } => set_disabled(client, output, &name, true, &columns).await,
        UserCommand::Enable { name } => set_disabled(client, output, &name, false, &columns).await,
        UserCommand::Delete { name } => show(
            &[client.send(Method::DELETE, &format!("/v1/users/{}", segment(&name)), None).await?],
            &columns,
            output,
        ),
    }
}

async fn set_disabled(
    client: &Client,
    output: Output,
    name: &str,
    disabled: bool,
    columns: &[(&str, &str)],
) -> Result<()> {
    let path = format!("/v1/users/{}", segment(name));
    let mut user = client.get(&path).await?;
    user["disabled"] = json!(disabled);
    show(&[client.send(Method::PUT, &path, Some(Body::Json(user))).await?], columns, output)
}

pub async fn role(client: &Client, output: Output, command: RoleCommand) -> Result<()> {
    let columns =
        [("NAME", "name"), ("BUILT IN", "builtin"), ("PERMISSIONS", "permissions"), ("DESCRIPTION", "description")];
    let binding_columns = [("SUBJECT", "subject"), ("ROLE", "role"), ("ORGANIZATION", "organization")];
    match command {
        RoleCommand::Create { name, permissions, description } => {
            let body = json!({"name": name, "permissions": permissions, "description": description});
            show(&[client.send(Method::POST, "/v1/roles", Some(Body::Json(body))).await?], &columns, output)
        }
        RoleCommand::List => show(&items(&client.get("/v1/roles").await?), &columns, output),
        RoleCommand::Delete { name } => show(
            &[client.send(Method::DELETE, &format!("/v1/roles/{}", segment(&name)), None).await?],
            &columns,
            output,
        ),
        RoleCommand::Bind { subject, role, organization } => {
            let body = json!({"subject": subject, "role": role, "organization": organization});
            show(
                &[client.send(Method::POST, "/v1/role-bindings", Some(Body::Json(body))).await?],
                &binding_columns,
                output,
            )
        }
        RoleCommand::Unbind { subject, role, organization } => {
            let name = format!("{subject}.{organization}.{role}");
            let path = format!("/v1/role-bindings/{}", segment(&name));
            show(&[client.send(Method::DELETE, &path, None).await?], &binding_columns, output)
        }
        RoleCommand::Bindings { subject } => {
            let path = match subject {
                Some(subject) => format!("/v1/role-bindings?subject={}", segment(&subject)),
                None => "/v1/role-bindings".to_string(),
            };
            show(&items(&client.get(&path).await?), &binding_columns, output)
        }
    }
}

pub async fn org(client: &Client, output: Output, command: OrgCommand) -> Result<()> {
    let columns = [("NAME", "name"), ("DESCRIPTION", "description"), ("CREATED", "createdTime")];
    match command {
        OrgCommand::Create { name, description } => {
            let body = json!({"name": name, "description": description});
            show(&[client.send(Method::POST, "/v1/organizations", Some(Body::Json(body))).await?], &columns, output)
        }
        OrgCommand::List => show(&items(&client.get("/v1/organizations").await?), &columns, output),
        OrgCommand::Delete { name } => show(
            &[client.send(Method::DELETE, &format!("/v1/organizations/{}", segment(&name)), None).await?],
            &columns,
            output,
        ),
    }
}

pub async fn audit(client: &Client, output: Output, args: AuditArgs) -> Result<()> {
    let mut query = vec!["limit=1000".to_string()];
    for (key, value) in [
        ("subject", args.subject),
        ("since", args.since),
        ("until", args.until),
        ("status", args.status.map(|s| s.to_string())),
    ] {
        if let Some(value) = value {
            query.push(format!("{key}={}", segment(&value)));
        }
    }
    let answer = client.get(&format!("/v1/audit?{}", query.join("&"))).await?;
    let columns = [
        ("TIME", "time"),
        ("SUBJECT", "subject"),
        ("METHOD", "method"),
        ("PATH", "path"),
        ("STATUS", "status"),
        ("SOURCE", "source"),
    ];
    show(&items(&answer), &columns, output)
}
