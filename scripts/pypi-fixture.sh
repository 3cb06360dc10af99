#!/usr/bin/env bash
# Builds the loopback Python package index the build tests use: the wheels the tested images
# need for Debian 12's CPython 3.11 on x86_64 glibc 2.36, fetched once through this machine's
# own pip configuration, laid out as a PEP 503 simple index with PEP 658 metadata files.
# Tests then serve this directory on 127.0.0.1 and never leave loopback.
#
# Usage: [PYTHON=python-with-pip] scripts/pypi-fixture.sh OUT_DIR REQUIREMENT...
set -euo pipefail
python=${PYTHON:-python3}

out=$1
shift
stamp=$(printf '%s\n' "$@" | sha256sum | cut -c1-16)
if [ -f "$out/.stamp" ] && [ "$(cat "$out/.stamp")" = "$stamp" ]; then
    exit 0
fi
rm -rf "$out"
mkdir -p "$out/files"
platforms=()
for minor in $(seq 36 -1 17); do platforms+=(--platform "manylinux_2_${minor}_x86_64"); done
platforms+=(--platform manylinux2014_x86_64 --platform manylinux2010_x86_64 --platform manylinux1_x86_64)
# Local wheel directories from the environment would mix in files the index does not have.
PIP_FIND_LINKS= "$python" -m pip download --quiet --disable-pip-version-check --only-binary=:all: \
    --python-version 3.11 --implementation cp --abi cp311 --abi abi3 --abi none "${platforms[@]}" \
    --dest "$out/files" "$@"

python3 - "$out" <<'PY'
import hashlib, html, os, re, sys, zipfile
out = sys.argv[1]
projects = {}
for name in sorted(os.listdir(os.path.join(out, "files"))):
    if not name.endswith(".whl"):
        continue
    path = os.path.join(out, "files", name)
    data = open(path, "rb").read()
    with zipfile.ZipFile(path) as wheel:
        metadata = next(n for n in wheel.namelist() if n.count("/") == 1 and n.endswith(".dist-info/METADATA"))
        meta = wheel.read(metadata)
    open(path + ".metadata", "wb").write(meta)
    project = re.sub(r"[-_.]+", "-", name.split("-")[0]).lower()
    requires = ""
    for line in meta.decode("utf-8", "replace").splitlines():
        if not line:
            break
        if line.startswith("Requires-Python:"):
            requires = line.split(":", 1)[1].strip()
    projects.setdefault(project, []).append((name, hashlib.sha256(data).hexdigest(), hashlib.sha256(meta).hexdigest(), requires))
for project, files in projects.items():
    os.makedirs(os.path.join(out, "simple", project), exist_ok=True)
    with open(os.path.join(out, "simple", project, "index.html"), "w") as page:
        page.write("<!DOCTYPE html>\n<html><body>\n")
        for name, digest, meta_digest, requires in files:
            python = f' data-requires-python="{html.escape(requires)}"' if requires else ""
            page.write(f'<a href="../../files/{name}#sha256={digest}"{python} data-dist-info-metadata="sha256={meta_digest}">{name}</a><br/>\n')
        page.write("</body></html>\n")
PY
echo "$stamp" >"$out/.stamp"
echo "pypi fixture: $(ls "$out/files" | grep -c '\.whl$') wheels in $out"
