//! Content discovery: tag lists and the catalog (paged with `n` and `last`, in lexical
//! order, with a `Link` header to the next page) and the referrers API.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use kiln_oci::{Descriptor, Digest, ImageIndex};

use super::{query as params, set};
use crate::access::Action;
use crate::error::{Code, RegistryError, RegistryResult};
use crate::{Ctx, Registry, meta, names};

/// Most entries one page returns when the client asks for none or more.
const MAX_PAGE: usize = 10_000;

fn page_size(params: &HashMap<String, String>) -> RegistryResult<usize> {
    match params.get("n") {
        None => Ok(MAX_PAGE),
        Some(n) => n
            .parse::<usize>()
            .map(|n| n.min(MAX_PAGE))
            .map_err(|_| RegistryError::new(Code::Unsupported, format!("n={n:?} is not a number of entries"))),
    }
}

/// Every tag of the repository with the digest it names.
pub async fn all_tags(registry: &Registry, repository: &str) -> RegistryResult<Vec<(String, Digest)>> {
    let prefix = meta::tag_prefix(repository);
    let entries = meta::scan(registry.store.as_ref(), &prefix).await?;
    Ok(entries
        .iter()
        .filter_map(|entry| {
            let digest = String::from_utf8_lossy(&entry.value).parse().ok()?;
            Some((entry.key[prefix.len()..].to_string(), digest))
        })
        .collect())
}

async fn repository_exists(registry: &Registry, repository: &str) -> RegistryResult<bool> {
    Ok(registry.store.get(&meta::repository_key(repository)).await?.is_some())
}

pub async fn tags(registry: &Registry, repository: &str, request: Request) -> RegistryResult<Response> {
    let params = params(&request);
    let n = page_size(&params)?;
    let prefix = meta::tag_prefix(repository);
    let after = params.get("last").map(|last| format!("{prefix}{last}"));
    let page = registry.store.list(&prefix, after.as_deref(), n).await?;
    if page.entries.is_empty() && after.is_none() && !repository_exists(registry, repository).await? {
        return Err(crate::unknown_repository(repository));
    }
    let tags: Vec<&str> = page.entries.iter().map(|e| &e.key[prefix.len()..]).collect();
    let mut response = axum::Json(serde_json::json!({"name": repository, "tags": tags})).into_response();
    if page.next.is_some()
        && let Some(last) = tags.last()
    {
        set(&mut response, "link", format!("</v2/{repository}/tags/list?n={n}&last={last}>; rel=\"next\""));
    }
    Ok(response)
}

pub async fn catalog(State(registry): State<Arc<Registry>>, request: Request) -> Response {
    let params = params(&request);
    let ctx = Ctx::of(&registry, &request);
    let result = async {
        let ctx = ctx.await?;
        let n = page_size(&params)?;
        let mut after = params.get("last").map(|last| format!("{}{last}", meta::REPOSITORY_PREFIX));
        let mut visible = Vec::new();
        let mut more = false;
        let mut seen_orgs: HashMap<String, bool> = HashMap::new();
        'pages: loop {
            let page = registry.store.list(meta::REPOSITORY_PREFIX, after.as_deref(), 1000).await?;
            for entry in &page.entries {
                let name = &entry.key[meta::REPOSITORY_PREFIX.len()..];
                let org = names::organisation(name).to_string();
                let allowed = match seen_orgs.get(&org) {
                    Some(allowed) => *allowed,
                    None => {
                        let allowed = ctx.caller.may(&org, Action::Pull).await?;
                        seen_orgs.insert(org, allowed);
                        allowed
                    }
                };
                if allowed {
                    if visible.len() == n {
                        more = true;
                        break 'pages;
                    }
                    visible.push(name.to_string());
                }
            }
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        let mut response = axum::Json(serde_json::json!({"repositories": visible})).into_response();
        if more && let Some(last) = visible.last() {
            set(&mut response, "link", format!("</v2/_catalog?n={n}&last={last}>; rel=\"next\""));
        }
        Ok::<_, RegistryError>(response)
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

pub async fn referrers(
    registry: &Registry,
    repository: &str,
    subject: &Digest,
    request: Request,
) -> RegistryResult<Response> {
    let params = params(&request);
    let wanted = params.get("artifactType");
    let prefix = meta::referrer_prefix(repository, subject);
    let mut descriptors: Vec<Descriptor> = Vec::new();
    for entry in meta::scan(registry.store.as_ref(), &prefix).await? {
        let descriptor: Descriptor = meta::from_json(&entry)?;
        if wanted.is_none_or(|w| descriptor.artifact_type.as_ref() == Some(w)) {
            descriptors.push(descriptor);
        }
    }
    let body = ImageIndex::new(descriptors).to_json().map_err(RegistryError::internal)?;
    let mut response = (StatusCode::OK, body).into_response();
    set(&mut response, "content-type", kiln_oci::media_types::OCI_IMAGE_INDEX);
    if wanted.is_some() {
        set(&mut response, "oci-filters-applied", "artifactType");
    }
    Ok(response)
}
