//! Resolving an image's parent: a base image, or an image marked extendable whose own
//! chain ends at a base image. The image records both its direct parent and that root.

use kiln_model::{BaseImage, Image};
use kiln_store::records::key;
use kiln_store::{Op, Precondition};

use crate::error::{ApiError, ApiResult};
use crate::view::View;

/// Longest chain of extendable images allowed above a base image.
const MAX_DEPTH: usize = 16;

/// Fills in `baseImageName`, `parentImageName` and `language`, and returns checks that
/// keep the parent and base image unchanged until the write commits.
pub async fn resolve(view: &View, org: &str, image: &mut Image) -> ApiResult<Vec<Op>> {
    let mut checks = Vec::new();
    let (field, parent_name) = match (&image.parent_image_name, &image.base_image_name) {
        (Some(parent), _) => ("parentImageName", parent.clone()),
        (None, Some(base)) => ("baseImageName", base.clone()),
        (None, None) => {
            return Err(ApiError::field("baseImageName", "is required: name a base image or an extendable image"));
        }
    };
    let parent_image = if image.parent_image_name.is_none()
        && let Some(base) = view.base_image(org, &parent_name).await?
    {
        settle_base(image, &base, &mut checks, org)?;
        None
    } else {
        match view.get::<Image>(org, &parent_name).await? {
            Some(parent) => Some(parent),
            None => {
                let what = if field == "baseImageName" { "no base image or image" } else { "no image" };
                return Err(ApiError::field(field, format!("{what} named {parent_name:?} exists: create it first")));
            }
        }
    };
    if let Some(parent) = parent_image {
        if !parent.extendable {
            return Err(ApiError::field(
                field,
                format!("image {parent_name:?} is not extendable: set extendable on it first"),
            ));
        }
        if let Some(revision) = parent.revision {
            checks.push(Op::Check { key: key::<Image>(org, &parent.name), expect: Precondition::Revision(revision) });
        }
        checks.push(crate::dependents::touch::<Image>(org, &parent.name));
        // Walk up to refuse cycles (an update could make an image its own ancestor).
        let mut ancestor = parent.clone();
        for _ in 0..MAX_DEPTH {
            if ancestor.name == image.name {
                return Err(ApiError::field(
                    field,
                    format!("image {:?} cannot be built on its own descendant {parent_name:?}", image.name),
                ));
            }
            match &ancestor.parent_image_name {
                Some(next) => match view.get::<Image>(org, next).await? {
                    Some(next) => ancestor = next,
                    None => break,
                },
                None => break,
            }
        }
        let root = parent.base_image_name.clone().unwrap_or_default();
        if image.parent_image_name.is_some()
            && let Some(named) = &image.base_image_name
            && named != &root
            && named != &parent.name
        {
            return Err(ApiError::field(
                "baseImageName",
                format!(
                    "{named:?} is not the base image of parent image {parent_name:?} ({root:?}): drop parentImageName to build on {named:?} directly"
                ),
            ));
        }
        let base = view.base_image(org, &root).await?.ok_or_else(|| {
            ApiError::field(
                field,
                format!("image {parent_name:?} rests on base image {root:?}, which no longer exists"),
            )
        })?;
        image.parent_image_name = Some(parent.name.clone());
        settle_base(image, &base, &mut checks, org)?;
    } else {
        image.parent_image_name = None;
    }
    Ok(checks)
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
    image.base_image_name = Some(base.name.clone());
    if let Some(revision) = base.revision {
        checks.push(Op::Check { key: key::<BaseImage>(org, &base.name), expect: Precondition::Revision(revision) });
    }
    checks.push(crate::dependents::touch::<BaseImage>(org, &base.name));
    Ok(())
}
