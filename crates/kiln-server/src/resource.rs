//! What the generic object operations need to know about each kind of object: its name,
//! validation, server-owned fields, list filters and the checks it needs against other
//! objects before it may be written.

use std::future::Future;

use chrono::{DateTime, Utc};
use kiln_model::{BaseImage, Ecosystem, Image, Package, PackageSource, RegistryCredential, Status, ValidationErrors};
use kiln_store::Op;
use kiln_store::records::{Record, secret_key};

use crate::error::ApiResult;
use crate::view::View;

/// Filters a list request may carry; each kind uses those that apply to it.
#[derive(Debug, Default, Clone)]
pub struct ListFilter {
    /// `key` or `key=value`; all must match.
    pub tags: Vec<String>,
    pub language: Option<String>,
    pub status: Option<Status>,
    pub ecosystem: Option<Ecosystem>,
    pub decision: Option<kiln_model::Decision>,
    /// Only objects visible to every organisation.
    pub public_only: bool,
}

pub trait Resource: Record + Clone + Send + Sync + 'static {
    /// How messages name the kind, e.g. `base image`.
    const NOUN: &'static str;

    /// The name the object is stored under (unique in its organisation).
    fn key_name(&self) -> String;
    fn validate(&self) -> Result<(), ValidationErrors>;
    /// Sets the fields only the server writes: fresh for a new object, carried over from
    /// `previous` on update.
    fn settle(&mut self, org: &str, now: DateTime<Utc>, previous: Option<&Self>);
    fn matches(&self, filter: &ListFilter) -> bool;
    /// Whether every organisation may read the object.
    fn is_public(&self) -> bool {
        false
    }

    /// Checks against other objects, and the extra operations the write needs (checks that
    /// what it depends on is unchanged, secrets). May adjust derived fields.
    fn prepare(
        &mut self,
        view: &View,
        org: &str,
        previous: Option<&Self>,
    ) -> impl Future<Output = ApiResult<Vec<Op>>> + Send {
        let _ = (view, org, previous);
        async { Ok(Vec::new()) }
    }
}

/// Sets the fields every kind shares: organisation, id, times; `carry` fields are kept from
/// the stored version on update, `reset` fields get their initial value on create.
macro_rules! settle_fields {
    ($object:ident, $org:ident, $now:ident, $previous:ident, carry [$($carry:ident),*], reset [$($reset:ident = $value:expr),*]) => {{
        $object.organization = $org.to_string();
        $object.updated_time = Some($now);
        match $previous {
            Some(previous) => {
                $object.id = previous.id.clone();
                $object.created_time = previous.created_time;
                $($object.$carry = Clone::clone(&previous.$carry);)*
            }
            None => {
                $object.id = uuid::Uuid::new_v4().to_string();
                $object.created_time = Some($now);
                $($object.$reset = $value;)*
            }
        }
    }};
}

fn tags_match(tags: &[kiln_model::Tag], filter: &ListFilter) -> bool {
    filter.tags.iter().all(|f| kiln_model::common::tags_match(tags, f))
}

impl Resource for BaseImage {
    const NOUN: &'static str = "base image";

    fn key_name(&self) -> String {
        self.name.clone()
    }
    fn validate(&self) -> Result<(), ValidationErrors> {
        BaseImage::validate(self)
    }
    fn settle(&mut self, org: &str, now: DateTime<Utc>, previous: Option<&Self>) {
        settle_fields!(self, org, now, previous, carry [status, reason, digest, index_digest, platform, config_digest, checked_time], reset [status = Status::Initialized, reason = Vec::new(), digest = None, index_digest = None, platform = None, config_digest = None, checked_time = None]);
        // A new reference must be resolved again; what was found for the old one no longer holds.
        if previous.is_some_and(|p| p.reference != self.reference) {
            self.status = Status::Initialized;
            self.reason = Vec::new();
            self.digest = None;
            self.index_digest = None;
            self.platform = None;
            self.config_digest = None;
            self.checked_time = None;
        }
    }

    fn is_public(&self) -> bool {
        self.visibility == kiln_model::Visibility::Public
    }
    fn matches(&self, filter: &ListFilter) -> bool {
        tags_match(&self.tags, filter)
            && filter.language.as_ref().is_none_or(|l| *l == self.language)
            && filter.status.is_none_or(|s| s == self.status)
    }
    async fn prepare(&mut self, view: &View, org: &str, previous: Option<&Self>) -> ApiResult<Vec<Op>> {
        let Some(previous) = previous else { return Ok(Vec::new()) };
        let language_changes = previous.language != self.language;
        let goes_private = previous.is_public() && !self.is_public();
        if !language_changes && !goes_private {
            return Ok(Vec::new());
        }
        let (dependents, check) = crate::dependents::guard::<BaseImage>(view, org, &self.name).await?;
        let (message, blocking) = if language_changes {
            (
                format!("the language of base image {:?} cannot change while images are built on it", self.name),
                dependents,
            )
        } else {
            (
                format!("base image {:?} must stay public while other organisations build on it", self.name),
                dependents.into_iter().filter(|i| i.organization != org).collect(),
            )
        };
        if !blocking.is_empty() {
            return Err(crate::dependents::in_use(&message, org, &blocking));
        }
        Ok(vec![check])
    }
}

impl Resource for Image {
    const NOUN: &'static str = "image";

    fn key_name(&self) -> String {
        self.name.clone()
    }
    fn validate(&self) -> Result<(), ValidationErrors> {
        Image::validate(self)
    }
    fn settle(&mut self, org: &str, now: DateTime<Utc>, previous: Option<&Self>) {
        settle_fields!(self, org, now, previous, carry [status, reason, digest, reference, build_task, build_definition, build_parent_digest], reset [status = Status::Initialized, reason = Vec::new(), digest = None, reference = None, build_task = None, build_definition = None, build_parent_digest = None]);
    }

    fn is_public(&self) -> bool {
        self.visibility == kiln_model::Visibility::Public
    }
    fn matches(&self, filter: &ListFilter) -> bool {
        tags_match(&self.tags, filter)
            && filter.language.as_ref().is_none_or(|l| Some(l) == self.language.as_ref())
            && filter.status.is_none_or(|s| s == self.status)
    }
    async fn prepare(&mut self, view: &View, org: &str, previous: Option<&Self>) -> ApiResult<Vec<Op>> {
        let mut ops = crate::parents::resolve(view, org, self).await?;
        let Some(previous) = previous else { return Ok(ops) };
        let stops_extending = previous.extendable && !self.extendable;
        let goes_private = previous.is_public() && !self.is_public();
        if !stops_extending && !goes_private {
            return Ok(ops);
        }
        let (children, check) = crate::dependents::guard::<Image>(view, org, &self.name).await?;
        let (message, blocking) = if stops_extending {
            (format!("image {:?} must stay extendable while images are built on it", self.name), children)
        } else {
            (
                format!("image {:?} must stay public while other organisations build on it", self.name),
                children.into_iter().filter(|i| i.organization != org).collect(),
            )
        };
        if !blocking.is_empty() {
            return Err(crate::dependents::in_use(&message, org, &blocking));
        }
        ops.push(check);
        Ok(ops)
    }
}

impl Resource for Package {
    const NOUN: &'static str = "package";

    fn key_name(&self) -> String {
        format!("{}/{}", self.ecosystem.as_str(), self.ecosystem.normalize_name(&self.name))
    }
    fn validate(&self) -> Result<(), ValidationErrors> {
        Package::validate(self)
    }
    fn settle(&mut self, org: &str, now: DateTime<Utc>, previous: Option<&Self>) {
        self.name = self.ecosystem.normalize_name(&self.name);
        settle_fields!(self, org, now, previous, carry [], reset []);
    }

    fn matches(&self, filter: &ListFilter) -> bool {
        filter.ecosystem.is_none_or(|e| e == self.ecosystem) && filter.decision.is_none_or(|d| d == self.decision)
    }
}

impl Resource for PackageSource {
    const NOUN: &'static str = "package source";

    fn key_name(&self) -> String {
        self.name.clone()
    }
    fn validate(&self) -> Result<(), ValidationErrors> {
        PackageSource::validate(self)
    }
    fn settle(&mut self, org: &str, now: DateTime<Utc>, previous: Option<&Self>) {
        self.has_credentials = match (&self.credentials, previous) {
            (Some(Some(_)), _) => true,
            (Some(None), _) | (None, None) => false,
            (None, Some(p)) => p.has_credentials,
        };
        settle_fields!(self, org, now, previous, carry [], reset []);
    }

    fn is_public(&self) -> bool {
        self.visibility == kiln_model::Visibility::Public
    }
    fn matches(&self, filter: &ListFilter) -> bool {
        tags_match(&self.tags, filter) && filter.ecosystem.is_none_or(|e| e == self.ecosystem)
    }
    async fn prepare(&mut self, _view: &View, org: &str, _previous: Option<&Self>) -> ApiResult<Vec<Op>> {
        let key = secret_key::<PackageSource>(org, &self.name);
        Ok(match &self.credentials {
            Some(Some(credentials)) => {
                let value =
                    serde_json::to_vec(credentials).map_err(|e| crate::error::ApiError::bad_request(e.to_string()))?;
                vec![Op::Put { key, value, expect: kiln_store::Precondition::Any }]
            }
            Some(None) => vec![Op::Delete { key, expect: kiln_store::Precondition::Any }],
            None => Vec::new(),
        })
    }
}

impl Resource for RegistryCredential {
    const NOUN: &'static str = "registry credential";

    fn key_name(&self) -> String {
        self.host.clone()
    }
    fn validate(&self) -> Result<(), ValidationErrors> {
        RegistryCredential::validate(self)
    }
    fn settle(&mut self, org: &str, now: DateTime<Utc>, previous: Option<&Self>) {
        self.has_password = match (&self.password, previous) {
            (Some(Some(_)), _) => true,
            (Some(None), _) | (None, None) => false,
            (None, Some(p)) => p.has_password,
        };
        settle_fields!(self, org, now, previous, carry [], reset []);
    }
    fn matches(&self, _filter: &ListFilter) -> bool {
        true
    }
    async fn prepare(&mut self, _view: &View, org: &str, _previous: Option<&Self>) -> ApiResult<Vec<Op>> {
        let key = secret_key::<RegistryCredential>(org, &self.host);
        Ok(match &self.password {
            Some(Some(password)) => {
                vec![Op::Put { key, value: password.as_bytes().to_vec(), expect: kiln_store::Precondition::Any }]
            }
            Some(None) => vec![Op::Delete { key, expect: kiln_store::Precondition::Any }],
            None => Vec::new(),
        })
    }
}
