#!/usr/bin/env bash
# Every check the project has, in the order CI runs them: formatting, lints, the OpenAPI
# document against a real validator, then the whole test suite. `.ci/run` calls this.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else "$@"; fi
}

# apt-get can fail once with "failed to read archive"; retry once after refreshing lists.
apt_install() {
    as_root apt-get update -qq || true
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" \
        || { sleep 3; as_root apt-get update -qq; as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"; }
}

missing=()
command -v python3 >/dev/null || missing+=(python3)
python3 -c 'import venv, ensurepip' 2>/dev/null || missing+=(python3-venv)
# The registry conformance suite runs against Debian's docker-registry (distribution 2.8);
# skopeo, umoci and podman are the OCI clients tests/clients.rs drives against Kiln's registry.
command -v docker-registry >/dev/null || missing+=(docker-registry)
command -v skopeo >/dev/null || missing+=(skopeo)
command -v umoci >/dev/null || missing+=(umoci)
command -v podman >/dev/null || missing+=(podman)
# tests/dockerfile.rs builds the exported Dockerfile with buildah.
command -v buildah >/dev/null || missing+=(buildah)
# tests/builds.rs runs built images under runc and signs a hostile test repository with gpg.
command -v runc >/dev/null || missing+=(runc)
command -v gpg >/dev/null || missing+=(gpg)
command -v gpg-agent >/dev/null || missing+=(gpg-agent)
[ -f /usr/share/keyrings/debian-archive-keyring.gpg ] || missing+=(debian-archive-keyring)
# npm itself works out the npm fixture's package tree once (scripts/npm-fixture.sh).
command -v npm >/dev/null || missing+=(npm)
if [ ${#missing[@]} -gt 0 ]; then
    echo "== installing ${missing[*]}"
    apt_install "${missing[@]}"
fi

# The OpenAPI validator, the oras SDK (tests/clients.rs) and the SPDX validator every SBOM a
# test fetches is checked with (spdx-tools' pyspdxtools) live in a venv under target/ so the
# system Python stays untouched.
venv=target/tools-venv
if [ ! -x "$venv/bin/openapi-spec-validator" ] || [ ! -x "$venv/bin/pyspdxtools" ] \
    || ! "$venv/bin/python" -c 'import oras' 2>/dev/null; then
    echo "== installing openapi-spec-validator oras spdx-tools"
    python3 -m venv "$venv"
    "$venv/bin/python" -m pip install -q openapi-spec-validator oras spdx-tools \
        || { sleep 3; "$venv/bin/python" -m pip install -q openapi-spec-validator oras spdx-tools; }
fi

# The loopback Debian mirror, Python index and npm registry the build tests use: the
# machine's signed indexes plus every package the tested images need, fetched once here so
# the tests themselves stay on loopback.
echo "== Debian fixture mirror"
# busybox-static is what an image's debug variant adds (kiln debug).
scripts/debian-fixture.sh target/debian-fixture python3 libpq5 libstdc++6 nodejs base-files netbase tzdata \
    python3-pip python3-setuptools python3-wheel busybox-static
echo "== Python fixture index"
PYTHON="$venv/bin/python" scripts/pypi-fixture.sh target/pypi-fixture pandas==2.2.3 requests psycopg2-binary
echo "== npm fixture registry"
scripts/npm-fixture.sh target/npm-fixture lodash@^4.17.21 axios@^1.7.0

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== build"
cargo build --workspace --all-targets --locked
echo "== OpenAPI document"
target/debug/kiln openapi > target/openapi.json
"$venv/bin/openapi-spec-validator" target/openapi.json 2>&1 | cut -c1-2000
echo "== tests"
# --all-targets runs no doc tests; the one doc test (a cache path cannot be built from a
# String: it must not compile) runs on its own.
log=target/test-output.log
cargo test --workspace --all-targets --locked --no-fail-fast 2>&1 | tee "$log"
cargo test --doc -p kiln-packages --locked 2>&1 | tee -a "$log"
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "%d passed, %d failed\n", p, f }' "$log"
