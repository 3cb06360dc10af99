"""Drives the `oras` Python SDK against Kiln's registry for tests/clients.rs: a real OCI 1.1
client pushes an artifact with an `artifactType`, pulls it back and attaches referrers to it,
so Kiln is checked against what such a client actually sends, not only against our own suite.

The Rust test writes the input files, runs this script with the tools venv's python and checks
the results itself (pulled bytes, the referrers API); this script only speaks through oras and
prints one JSON object with the digests it made.

Usage: oras_driver.py REGISTRY REPOSITORY TOKEN WORKDIR
  REGISTRY    host:port of Kiln's plain-HTTP listener
  REPOSITORY  e.g. default/artifact-1234
  TOKEN       a Kiln token, sent as the Basic password to the Docker token endpoint
  WORKDIR     holds payload.bin and sbom.json (written by the test); pulled/ is created in it
"""

import json
import os
import sys

import oras.client
import oras.defaults
import oras.oci

ARTIFACT_TYPE = "application/vnd.kiln.test.artifact.v1"
# The SBOM referrer names its type through its config's media type (what `client.push` can
# set), the signature through the OCI 1.1 `artifactType` field: both must be filterable.
SBOM_TYPE = "application/vnd.kiln.test.sbom.v1+json"
SIGNATURE_TYPE = "application/vnd.kiln.test.signature.v1"
EMPTY_CONFIG = {
    "mediaType": "application/vnd.oci.empty.v1+json",
    "digest": "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
    "size": 2,
}


def checked(response, what):
    """oras returns responses rather than raising; a failed step must stop the run loudly."""
    if response.status_code not in (200, 201, 202):
        raise SystemExit(f"{what}: HTTP {response.status_code}: {response.text[:500]}")
    return response


def push_with_artifact_type(client, target, files, artifact_type, subject=None, chunk_size=None):
    """`client.push` cannot set `artifactType`, so this builds the OCI 1.1 artifact manifest
    (empty config, `artifactType`) and pushes it with oras's own blob and manifest calls.
    With `chunk_size`, layers go up in PATCH chunks with `Content-Range`, as oras sends them."""
    container = client.get_container(target)
    empty = os.path.join(os.getcwd(), "empty-config.json")
    with open(empty, "wb") as f:
        f.write(b"{}")
    checked(client.upload_blob(empty, container, dict(EMPTY_CONFIG)), "upload the empty config")
    layers = []
    for path, media_type in files:
        layer = oras.oci.NewLayer(path, media_type=media_type)
        layer["annotations"] = {oras.defaults.annotation_title: os.path.basename(path)}
        if chunk_size:
            response = client.upload_blob(path, container, layer, do_chunked=True, chunk_size=chunk_size)
        else:
            response = client.upload_blob(path, container, layer)
        checked(response, f"upload {path}")
        layers.append(layer)
    manifest = oras.oci.NewManifest()
    manifest["artifactType"] = artifact_type
    manifest["config"] = dict(EMPTY_CONFIG)
    manifest["layers"] = layers
    manifest["annotations"] = {"org.opencontainers.image.description": "kiln client test"}
    if subject is not None:
        manifest["subject"] = subject
    response = checked(client.upload_manifest(manifest, container), f"push the manifest of {target}")
    return descriptor(client, response, target)


def descriptor(client, response, target):
    """The pushed manifest as a descriptor, as the registry names it (its digest header and
    the bytes it serves), so a subject points at exactly what Kiln stored."""
    digest = response.headers.get("Docker-Content-Digest")
    if not digest:
        raise SystemExit(f"{target}: no Docker-Content-Digest on the manifest PUT")
    container = client.get_container(target)
    url = f"{client.prefix}://{container.manifest_url(digest)}"
    got = checked(
        client.do_request(url, "GET", headers={"Accept": oras.defaults.default_manifest_media_type}),
        f"GET {url}",
    )
    return {"mediaType": oras.defaults.default_manifest_media_type, "digest": digest, "size": len(got.content)}


def main():
    if len(sys.argv) != 5:
        raise SystemExit(__doc__)
    registry, repository, token, workdir = sys.argv[1:]
    os.chdir(workdir)
    client = oras.client.OrasClient(hostname=registry, insecure=True, tls_verify=False)
    # Basic credentials are only handed to the token endpoint named in Kiln's challenge; every
    # registry request then carries the bearer token it returned (the Docker token flow).
    client.auth.set_basic_auth("kiln", token)

    target = f"{registry}/{repository}:v1"
    artifact = push_with_artifact_type(
        client,
        target,
        [("payload.bin", "application/vnd.kiln.test.payload")],
        ARTIFACT_TYPE,
        chunk_size=64 * 1024,
    )

    pulled_dir = os.path.join(workdir, "pulled")
    os.makedirs(pulled_dir, exist_ok=True)
    pulled = client.pull(target=f"{registry}/{repository}@{artifact['digest']}", outdir=pulled_dir)

    subject = oras.oci.Subject(artifact["mediaType"], artifact["digest"], artifact["size"])
    with open("sbom-config.json", "wb") as f:
        f.write(b"{}")
    sbom_target = f"{registry}/{repository}:sbom"
    response = client.push(
        target=sbom_target,
        files=["sbom.json:application/spdx+json"],
        manifest_config=f"sbom-config.json:{SBOM_TYPE}",
        subject=subject,
        quiet=True,
    )
    sbom = descriptor(client, checked(response, "push the SBOM referrer"), sbom_target)

    signature = push_with_artifact_type(
        client,
        f"{registry}/{repository}:signature",
        [("sbom.json", "application/vnd.kiln.test.signature.payload")],
        SIGNATURE_TYPE,
        subject=subject.__dict__,
    )

    print(
        json.dumps(
            {
                "artifact": artifact,
                "pulled": [os.path.relpath(p, pulled_dir) for p in pulled],
                "sbom": sbom,
                "signature": signature,
                "tags": client.get_tags(f"{registry}/{repository}"),
            }
        )
    )


if __name__ == "__main__":
    main()
