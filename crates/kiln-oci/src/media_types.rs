//! The media types a registry has to recognise, in one place so the server, client and builder spell them
//! identically, plus the checks for "is this a manifest" and "is this a media type at all".

/// OCI image manifest (one image: a config and layers).
pub const OCI_IMAGE_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index (a list of manifests, usually one per platform).
pub const OCI_IMAGE_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// OCI image configuration.
pub const OCI_IMAGE_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// The empty descriptor's media type: artifacts with no config point at `{}`.
pub const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";
/// Content of the empty descriptor.
pub const OCI_EMPTY_CONTENT: &[u8] = b"{}";
/// Digest of [`OCI_EMPTY_CONTENT`].
pub const OCI_EMPTY_DIGEST: &str = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";
/// Size of [`OCI_EMPTY_CONTENT`].
pub const OCI_EMPTY_SIZE: u64 = 2;
/// Uncompressed OCI layer.
pub const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
/// Gzip-compressed OCI layer.
pub const OCI_LAYER_TAR_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// Zstd-compressed OCI layer.
pub const OCI_LAYER_TAR_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";

/// Docker image manifest, schema 2.
pub const DOCKER_MANIFEST_V2: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list, Docker's counterpart of the OCI index.
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// Docker container configuration.
pub const DOCKER_CONTAINER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
/// Gzip-compressed Docker layer.
pub const DOCKER_LAYER_TAR_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
/// Docker layer that registries do not serve (Windows base layers), still referenced by manifests.
pub const DOCKER_FOREIGN_LAYER_TAR_GZIP: &str = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";

/// Every manifest media type a registry accepts, images before indexes.
pub const MANIFEST_MEDIA_TYPES: [&str; 4] =
    [OCI_IMAGE_MANIFEST, DOCKER_MANIFEST_V2, OCI_IMAGE_INDEX, DOCKER_MANIFEST_LIST];

/// True for the four manifest media types (image and index, OCI and Docker). Parameters such as
/// `; charset=utf-8` are ignored because `Content-Type` and `Accept` headers may carry them.
pub fn is_manifest_media_type(media_type: &str) -> bool {
    canonical_manifest_media_type(media_type).is_some()
}

/// True for the media types of manifests that list other manifests.
pub fn is_index_media_type(media_type: &str) -> bool {
    matches!(canonical_manifest_media_type(media_type), Some(OCI_IMAGE_INDEX | DOCKER_MANIFEST_LIST))
}

/// True for the media types of manifests describing a single image.
pub fn is_image_manifest_media_type(media_type: &str) -> bool {
    matches!(canonical_manifest_media_type(media_type), Some(OCI_IMAGE_MANIFEST | DOCKER_MANIFEST_V2))
}

/// The constant spelling of a manifest media type given in any case and with parameters; media types are
/// case-insensitive (RFC 6838), but what a registry stores and echoes back should be one spelling.
pub fn canonical_manifest_media_type(media_type: &str) -> Option<&'static str> {
    let essence = essence(media_type);
    MANIFEST_MEDIA_TYPES.into_iter().find(|known| known.eq_ignore_ascii_case(essence))
}

/// A header value without its parameters and surrounding whitespace: `type/subtype`.
pub fn essence(media_type: &str) -> &str {
    media_type.split(';').next().unwrap_or_default().trim()
}

/// Whether `media_type` has the RFC 6838 shape `type/subtype` (no parameters), as the image spec requires of
/// every descriptor's `mediaType` and `artifactType`.
pub fn is_valid_media_type(media_type: &str) -> bool {
    match media_type.split_once('/') {
        Some((kind, subtype)) => is_restricted_name(kind) && is_restricted_name(subtype),
        None => false,
    }
}

/// RFC 6838 `restricted-name`: an alphanumeric then up to 126 of `[A-Za-z0-9!#$&^_.+-]`.
fn is_restricted_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    let first_ok = bytes.next().is_some_and(|b| b.is_ascii_alphanumeric());
    first_ok
        && name.len() <= 127
        && bytes.all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'!' | b'#' | b'$' | b'&' | b'^' | b'_' | b'.' | b'+' | b'-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::Digest;

    #[test]
    fn empty_descriptor_constants_agree() {
        assert_eq!(Digest::sha256(OCI_EMPTY_CONTENT).as_str(), OCI_EMPTY_DIGEST);
        assert_eq!(OCI_EMPTY_CONTENT.len() as u64, OCI_EMPTY_SIZE);
        assert!(OCI_EMPTY_DIGEST.parse::<Digest>().is_ok());
    }

    #[test]
    fn recognises_manifest_media_types() {
        for media_type in MANIFEST_MEDIA_TYPES {
            assert!(is_manifest_media_type(media_type), "{media_type}");
        }
        assert!(is_manifest_media_type("application/vnd.oci.image.manifest.v1+json; charset=utf-8"));
        assert!(is_manifest_media_type(" Application/VND.oci.image.index.v1+json "));
        for other in [OCI_IMAGE_CONFIG, OCI_EMPTY, OCI_LAYER_TAR_GZIP, DOCKER_CONTAINER_CONFIG, "application/json", ""]
        {
            assert!(!is_manifest_media_type(other), "{other}");
        }
    }

    #[test]
    fn tells_indexes_from_image_manifests() {
        assert!(is_index_media_type(OCI_IMAGE_INDEX));
        assert!(is_index_media_type(DOCKER_MANIFEST_LIST));
        assert!(!is_index_media_type(OCI_IMAGE_MANIFEST));
        assert!(is_image_manifest_media_type(OCI_IMAGE_MANIFEST));
        assert!(is_image_manifest_media_type(DOCKER_MANIFEST_V2));
        assert!(!is_image_manifest_media_type(DOCKER_MANIFEST_LIST));
        assert!(!is_image_manifest_media_type(OCI_LAYER_TAR));
    }

    #[test]
    fn canonicalises_case_and_parameters() {
        assert_eq!(
            canonical_manifest_media_type("APPLICATION/vnd.docker.distribution.manifest.v2+JSON"),
            Some(DOCKER_MANIFEST_V2)
        );
        assert_eq!(canonical_manifest_media_type("text/plain"), None);
        assert_eq!(essence("a/b ; q=1"), "a/b");
    }

    #[test]
    fn validates_media_type_shape() {
        for ok in [OCI_LAYER_TAR_ZSTD, DOCKER_FOREIGN_LAYER_TAR_GZIP, "application/vnd.example.sbom+json", "text/plain"]
        {
            assert!(is_valid_media_type(ok), "{ok}");
        }
        for bad in
            ["", "application", "application/", "/json", "a/b/c", "application/json; charset=utf-8", "-a/b", "a/b c"]
        {
            assert!(!is_valid_media_type(bad), "{bad}");
        }
    }
}
