//! Resolving an image's parent: a base image, or an image marked extendable whose own
//! chain ends at a base image. The image records both its direct parent and that root.
//! A parent may live in another organisation (`org/name`) if it is public there; one that
//! is not is answered exactly like one that does not exist.

use kiln_model::image::{parent_reference, resolve_parent_reference};
use kiln_model::{BaseImage, Image};
use kiln_store::records::key;
use kiln_store::{Op, Precondition};

use crate::error::{ApiError, ApiResult};
use crate::resource::Resource;
use crate::view::View;

/// Longest chain of extendable images allowed above a base image.
const MAX_DEPTH: usize = 16;

/// An object `org` may build on: its own, or a public one of another organisation.
async fn visible<R: Resource>(view: &View, org: &str, parent_org: &str, name: &str) -> ApiResult<Option<R>> {
    Ok(view.get::<R>(parent_org, name).await?.filter(|parent| parent_org == org || parent.is_public()))
}

/// Fills in `baseImageName`, `parentImageName` and `language`, and returns checks that
/// keep the parent and base image unchanged until the write commits.
pub async fn resolve(view: &View, org: &str, image: &mut Image) -> ApiResult<Vec<Op>> {
    let mut checks = Vec::new();
    let (field, reference) = match (&image.parent_image_name, &image.base_image_name) {
        (Some(parent), _) => ("parentImageName", parent.clone()),
        (None, Some(base)) => ("baseImageName", base.clone()),
        (None, None) => {
            return Err(ApiError::field("baseImageName", "is required: name a base image or an extendable image"));
        }
    };
    let (parent_org, parent_name) = resolve_parent_reference(org, &reference);
    let parent_image = if image.parent_image_name.is_none()
        && let Some(base) = visible::<BaseImage>(view, org, parent_org, parent_name).await?
    {
        settle_base(image, &base, &mut checks, org)?;
        None
    } else {
        match visible::<Image>(view, org, parent_org, parent_name).await? {
            Some(parent) => Some(parent),
            None => {
                let what = if field == "baseImageName" { "no base image or image" } else { "no image" };
                return Err(ApiError::field(field, format!("{what} named {reference:?} exists: create it first")));
            }
        }
    };
    let Some(parent) = parent_image else {
        image.parent_image_name = None;
        return Ok(checks);
    };
    if !parent.extendable {
        return Err(ApiError::field(
            field,
            format!("image {reference:?} is not extendable: set extendable on it first"),
        ));
    }
    if let Some(revision) = parent.revision {
        checks
            .push(Op::Check { key: key::<Image>(parent_org, &parent.name), expect: Precondition::Revision(revision) });
    }
    checks.push(crate::dependents::touch::<Image>(parent_org, &parent.name));
    refuse_cycle(view, org, image, &parent, field, &reference).await?;
    let (root_org, root_name) = resolve_parent_reference(parent_org, parent.base_image_name.as_deref().unwrap_or(""));
    let root = parent_reference(org, root_org, root_name);
    if image.parent_image_name.is_some()
        && let Some(named) = &image.base_image_name
        && named != &root
        && named != &reference
    {
        return Err(ApiError::field(
            "baseImageName",
            format!(
                "{named:?} is not the base image of parent image {reference:?} ({root:?}): drop parentImageName to build on {named:?} directly"
            ),
        ));
    }
    // The parent is visible, so its base may be built on through it even if private.
    let base = view.get::<BaseImage>(root_org, root_name).await?.ok_or_else(|| {
        ApiError::field(field, format!("image {reference:?} rests on base image {root:?}, which no longer exists"))
    })?;
    image.parent_image_name = Some(parent_reference(org, parent_org, &parent.name));
    settle_base(image, &base, &mut checks, org)?;
    Ok(checks)
}

/// Walks up from `parent` to refuse cycles (an update could make an image its own ancestor).
async fn refuse_cycle(
    view: &View,
    org: &str,
    image: &Image,
    parent: &Image,
    field: &str,
    reference: &str,
) -> ApiResult<()> {
    let mut ancestor = parent.clone();
    for _ in 0..MAX_DEPTH {
        if ancestor.organization == org && ancestor.name == image.name {
            return Err(ApiError::field(
                field,
                format!("image {:?} cannot be built on its own descendant {reference:?}", image.name),
            ));
        }
        let Some(next) = &ancestor.parent_image_name else { break };
        let (next_org, next_name) = resolve_parent_reference(&ancestor.organization, next);
        match view.get::<Image>(next_org, next_name).await? {
            Some(next) => ancestor = next,
            None => break,
        }
    }
    Ok(())
}

fn settle_base(image: &mut Image, base: &BaseImage, checks: &mut Vec<Op>, org: &str) -> ApiResult<()> {
    if let Some(language) = &image.language
        && language != &base.language
    {
        return Err(ApiError::field(
            "language",
            format!(
                "{language:?} does not match the base image {:?}, whose language is {:?}",
                base.name, base.language
            ),
        ));
    }
    image.language = Some(base.language.clone());
    image.base_image_name = Some(parent_reference(org, &base.organization, &base.name));
    if let Some(revision) = base.revision {
        checks.push(Op::Check {
            key: key::<BaseImage>(&base.organization, &base.name),
            expect: Precondition::Revision(revision),
        });
    }
    checks.push(crate::dependents::touch::<BaseImage>(&base.organization, &base.name));
    Ok(())
}
