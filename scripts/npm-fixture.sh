#!/usr/bin/env bash
# Builds the loopback npm registry the build tests use: npm itself (through this machine's
# npm configuration) works out the package tree once; each package's metadata document is
# saved with only the versions that tree uses and tarball URLs made relative, next to the
# tarballs, so a static server on 127.0.0.1 answers as a registry would.
#
# Usage: scripts/npm-fixture.sh OUT_DIR NAME@RANGE...
set -euo pipefail

out=$1
shift
stamp=$(printf '%s\n' "$@" | sha256sum | cut -c1-16)
if [ -f "$out/.stamp" ] && [ "$(cat "$out/.stamp")" = "$stamp" ]; then
    exit 0
fi
rm -rf "$out"
mkdir -p "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
printf '{"name": "kiln-fixture", "version": "1.0.0", "private": true}\n' >"$work/package.json"
(cd "$work" && npm install --package-lock-only --ignore-scripts --no-audit --no-fund --silent "$@")
registry=$(npm config get registry)

python3 - "$work/package-lock.json" "$out" "${registry%/}" <<'PY'
import json, os, ssl, sys, urllib.parse, urllib.request
lock_path, out, registry = sys.argv[1:4]
lock = json.load(open(lock_path))
wanted = {}
for path, entry in lock.get("packages", {}).items():
    if not path:
        continue
    name = entry.get("name") or path.rsplit("node_modules/", 1)[-1]
    wanted.setdefault(name, set()).add(entry["version"])
context = ssl.create_default_context(cafile=os.environ.get("SSL_CERT_FILE"))
def get(url, accept="application/json"):
    request = urllib.request.Request(url, headers={"accept": accept})
    with urllib.request.urlopen(request, context=context, timeout=120) as response:
        return response.read()
for name, versions in sorted(wanted.items()):
    encoded = name.replace("/", "%2f")
    doc = json.loads(get(f"{registry}/{encoded}", "application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8"))
    doc["versions"] = {v: meta for v, meta in doc["versions"].items() if v in versions}
    latest = max(doc["versions"], key=lambda v: [int(p) if p.isdigit() else 0 for p in v.split("-")[0].split(".")])
    doc["dist-tags"] = {"latest": latest}
    doc.pop("time", None)
    os.makedirs(os.path.join(out, name, "-"), exist_ok=True)
    for version, meta in doc["versions"].items():
        tarball = meta["dist"]["tarball"]
        filename = tarball.rsplit("/", 1)[-1]
        with open(os.path.join(out, name, "-", filename), "wb") as f:
            f.write(get(tarball, "application/octet-stream"))
        meta["dist"]["tarball"] = f"/{name}/-/{filename}"
    with open(os.path.join(out, name, "index.html"), "w") as f:
        json.dump(doc, f)
print(f"npm fixture: {sum(len(v) for v in wanted.values())} packages in {out}")
PY
echo "$stamp" >"$out/.stamp"
