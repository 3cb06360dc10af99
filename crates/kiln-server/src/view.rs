//! A read view of the store with the writes of a pending batch laid over it, so a
//! multi-document apply can create a base image and an image on it in one transaction.

use std::collections::HashMap;
use std::sync::Arc;

use kiln_model::Image;
use kiln_store::records::{self, Record};
use kiln_store::{KvStore, StoreError};
use serde_json::Value;

use crate::error::{ApiError, ApiResult};

#[derive(Clone)]
pub struct View {
    store: Arc<dyn KvStore>,
    /// Objects written earlier in this batch, by store key; their `revision` is unset.
    staged: HashMap<String, Value>,
    /// Name claims (`names/…` keys) taken earlier in this batch, with the spelling that took them.
    claims: HashMap<String, String>,
}

/// How many keys one list call reads from the store.
const SCAN_BATCH: usize = 512;

impl View {
    pub fn new(store: Arc<dyn KvStore>) -> View {
        View { store, staged: HashMap::new(), claims: HashMap::new() }
    }

    pub fn store(&self) -> &Arc<dyn KvStore> {
        &self.store
    }

    pub fn is_staged(&self, key: &str) -> bool {
        self.staged.contains_key(key)
    }

    pub fn staged_claim(&self, key: &str) -> Option<&str> {
        self.claims.get(key).map(String::as_str)
    }

    pub fn stage_claim(&mut self, key: String, name: &str) {
        self.claims.insert(key, name.to_string());
    }

    pub fn stage<R: Record>(&mut self, key: String, object: &R) -> ApiResult<()> {
        let value = serde_json::to_value(object).map_err(|e| ApiError::bad_request(e.to_string()))?;
        self.staged.insert(key, value);
        Ok(())
    }

    pub async fn get<R: Record>(&self, org: &str, name: &str) -> ApiResult<Option<R>> {
        let key = records::key::<R>(org, name);
        if let Some(value) = self.staged.get(&key) {
            let mut object: R = serde_json::from_value(value.clone())
                .map_err(|e| ApiError::from(StoreError::Corrupt { key: key.clone(), message: e.to_string() }))?;
            object.set_revision(None);
            return Ok(Some(object));
        }
        match self.store.get(&key).await? {
            Some(entry) => Ok(Some(records::decode(&entry)?)),
            None => Ok(None),
        }
    }

    /// Every object of the kind in the organisation, staged ones included.
    pub async fn all<R: Record>(&self, org: &str) -> ApiResult<Vec<R>> {
        self.scan(&records::prefix::<R>(org)).await
    }

    /// Every object of the kind in every organisation, staged ones included.
    pub async fn all_orgs<R: Record>(&self) -> ApiResult<Vec<R>> {
        self.scan(&format!("{}/", R::COLLECTION)).await
    }

    async fn scan<R: Record>(&self, prefix: &str) -> ApiResult<Vec<R>> {
        let mut out = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = self.store.list(prefix, after.as_deref(), SCAN_BATCH).await?;
            for entry in &page.entries {
                if !self.staged.contains_key(&entry.key) {
                    out.push(records::decode(entry)?);
                }
            }
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        for (key, value) in &self.staged {
            if key.starts_with(prefix)
                && let Ok(object) = serde_json::from_value::<R>(value.clone())
            {
                out.push(object);
            }
        }
        Ok(out)
    }

    /// Images, in any organisation, whose chain of parents ends at this base image.
    pub async fn dependents_of_base(&self, org: &str, base: &str) -> ApiResult<Vec<Image>> {
        Ok(self
            .all_orgs::<Image>()
            .await?
            .into_iter()
            .filter(|i| i.base_image_name.as_deref().is_some_and(|r| points_at(i, r, org, base)))
            .collect())
    }

    /// Images, in any organisation, whose direct parent is this image.
    pub async fn children_of_image(&self, org: &str, image: &str) -> ApiResult<Vec<Image>> {
        Ok(self
            .all_orgs::<Image>()
            .await?
            .into_iter()
            .filter(|i| i.parent_image_name.as_deref().is_some_and(|r| points_at(i, r, org, image)))
            .collect())
    }
}

/// Whether `reference`, a parent named by `image`, is the object `name` of `org`.
fn points_at(image: &Image, reference: &str, org: &str, name: &str) -> bool {
    kiln_model::image::resolve_parent_reference(&image.organization, reference) == (org, name)
}
