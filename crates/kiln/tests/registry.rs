//! Runs the registry conformance suite against Debian's `docker-registry` (distribution 2.8), the
//! reference that keeps the suite's expectations honest until Kiln's own `/v2/` is its target.
//!
//! One registry serves every check in this binary; each check works in repositories of its own.

mod registry {
    pub mod kiln;
    #[allow(dead_code)]
    pub mod reference;
    pub mod suite;
}

use std::sync::LazyLock;

use registry::reference::{self, Htpasswd, Reference};
use registry::suite::{self, Target};

/// What distribution 2.8 is known to lack or do differently; every other check holds it to the spec.
fn distribution_2_8(base: &str) -> Target {
    let mut target = Target::new("docker-registry", base);
    target.supports_referrers = false;
    target.supports_sha512 = false;
    target.single_post_upload = false;
    target.enforces_chunk_ranges = false;
    target.paginates_tags = false;
    target.sorts_tags = false;
    target.supports_tag_delete = false;
    target.rejects_malformed_manifest_references = false;
    target.lists_tags_of_untagged_repositories = false;
    target
}

fn shared() -> &'static Target {
    // Checked before the lock so every test, not just the first, names the fix.
    reference::require_binary();
    static SHARED: LazyLock<(Reference, Target)> = LazyLock::new(|| {
        let registry = Reference::start();
        let target = distribution_2_8(&registry.base);
        (registry, target)
    });
    &SHARED.1
}

/// Kiln's own registry, held to the whole suite with no capability switched off.
fn kiln() -> &'static Target {
    static KILN: LazyLock<(registry::kiln::Kiln, Target)> = LazyLock::new(|| {
        let server = registry::kiln::Kiln::start(&[]);
        let mut target = Target::new("kiln", &server.base);
        target.basic = Some(("kiln".to_string(), registry::kiln::ADMIN_TOKEN.to_string()));
        target.namespace = "default".to_string();
        (server, target)
    });
    &KILN.1
}

/// One test per check and target: `reference::<check>` and `kiln::<check>`.
macro_rules! conformance {
    ($($check:ident),* $(,)?) => {
        mod against_reference {
            $(
                #[test]
                fn $check() {
                    super::suite::$check(super::shared());
                }
            )*
        }
        mod against_kiln {
            $(
                #[test]
                fn $check() {
                    super::suite::$check(super::kiln());
                }
            )*
        }
    };
}

conformance![
    base_endpoint,
    blob_head,
    blob_get,
    blob_range,
    blob_unknown,
    malformed_digest,
    blob_push_single_post,
    blob_push_post_put,
    blob_push_chunked,
    blob_push_chunked_final_in_put,
    blob_chunk_out_of_order,
    blob_upload_unknown,
    blob_push_wrong_digest,
    blob_large,
    blob_sha512,
    blob_mount,
    blob_mount_fallback,
    manifest_oci_image,
    manifest_push_by_digest,
    manifest_without_layers,
    manifest_oci_index,
    manifest_docker_schema2,
    manifest_docker_list,
    manifest_blob_unknown,
    manifest_digest_mismatch,
    manifest_invalid,
    manifest_unknown,
    manifest_subject_missing,
    manifest_four_megabytes,
    manifest_tag_moves,
    tag_name_limits,
    tag_list,
    tag_list_unknown_repository,
    catalog,
    unknown_repository,
    invalid_repository_name,
    blob_delete,
    manifest_delete,
    tag_delete,
    referrers,
    referrers_filter,
    referrers_empty,
    referrers_before_subject,
];

/// Basic auth through an htpasswd file: the challenge names the realm, only the right
/// credentials get in, and the rest of the suite's plumbing works behind the gate.
#[test]
fn authentication_with_htpasswd() {
    let auth = Htpasswd {
        realm: "kiln-conformance".to_string(),
        user: "conformance".to_string(),
        password: format!("pw-{:016x}", suite::random_u64()),
    };
    let registry = Reference::start_with(Some(&auth));
    let mut target = distribution_2_8(&registry.base);
    target.basic = Some((auth.user.clone(), auth.password.clone()));
    suite::authentication(&target);
    let anonymous = target.send(target.client.get(format!("{}/v2/", target.base)));
    assert_eq!(
        anonymous.header("www-authenticate"),
        Some("Basic realm=\"kiln-conformance\""),
        "{}: {:?}",
        anonymous.what,
        anonymous.headers
    );
    // The suite's flows are unchanged by authentication.
    suite::blob_push_chunked(&target);
    suite::manifest_oci_image(&target);
}
