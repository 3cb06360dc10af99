#!/usr/bin/env bash
# Builds the loopback Debian mirror the build tests use: the machine's own signed InRelease
# files and Packages indexes (from apt's list cache, so signatures and checksums are the
# archive's real ones) plus every .deb the tested images need, fetched once through apt's
# own configuration. Tests then serve this directory on 127.0.0.1 and never leave loopback.
# It also holds the release's required packages (what debootstrap's minbase and the official
# slim image are made of, apt included), listed in base-uris, so a test can make a Debian base
# with apt from loopback alone and build an exported Dockerfile on it.
#
# Usage: scripts/debian-fixture.sh OUT_DIR PACKAGE...
set -euo pipefail

out=$1
shift
lists=/var/lib/apt/lists
helper=/usr/lib/apt/apt-helper

if ! ls "$lists"/*_InRelease >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ]; then apt-get update -qq; else sudo apt-get update -qq; fi
fi

# The stamp names the package set and the lists it came from; an unchanged pair is reused.
stamp=$(printf '%s\n' "$* +required" "$(ls -l --time-style=+%s "$lists"/*_InRelease)" | sha256sum | cut -c1-16)
if [ -f "$out/.stamp" ] && [ "$(cat "$out/.stamp")" = "$stamp" ]; then
    exit 0
fi
rm -rf "$out"
mkdir -p "$out"

# apt names a list file after its URL with '/' turned into '_': host_path_dists_suite_...
: >"$out/suites"
for release in "$lists"/*_InRelease; do
    name=${release##*/}
    path=${name#*_}                  # drop the host
    path=${path//_//}                # back to a URL path
    root=${path%%/dists/*}
    rest=${path#*/dists/}
    suite=${rest%/InRelease}
    mkdir -p "$out/$root/dists/$suite"
    cp "$release" "$out/$root/dists/$suite/InRelease"
    prefix=${release%_InRelease}
    for index in "$prefix"_*_binary-*_Packages*; do
        [ -e "$index" ] || continue
        rel=${index#"${prefix}_"}
        rel=${rel//_//}
        rel=${rel%.lz4}; rel=${rel%.gz}; rel=${rel%.xz}
        mkdir -p "$out/$root/dists/$suite/$(dirname "$rel")"
        "$helper" cat-file "$index" >"$out/$root/dists/$suite/$rel"
    done
    echo "$root $suite" >>"$out/suites"
done

# apt with an empty status database lists the whole closure, as for an empty root.
uris() {
    apt-get -qq --print-uris -o Dir::State::status=/dev/null -o Debug::NoLocking=1 \
        install --no-install-recommends "$@"
}
uris "$@" >"$out/uris"
# Priority: required of the release (names only; apt picks the versions as for the rest).
mapfile -t required < <(apt-cache dumpavail | awk '/^Package:/ { p = $2 } /^Priority: required/ { print p }' | sort -u)
uris "${required[@]}" >"$out/base-uris"
sort -u "$out/uris" "$out/base-uris" | while read -r uri file size hash; do
    uri=${uri//\'/}
    path=${uri#*://*/}
    path=$(printf '%b' "${path//%/\\x}")
    [ -f "$out/$path" ] && continue
    mkdir -p "$out/$(dirname "$path")"
    "$helper" -o APT::Sandbox::User="$(id -un)" download-file "$uri" "$out/$path" "$hash" >/dev/null
done
# A package can sit in several suites (a security fix later folded into a point release) and
# apt fetched it from one; serve it wherever an index lists the same file, as a mirror does.
python3 - "$out" <<'PY'
import hashlib, os, sys
out = sys.argv[1]
have = {}
for top, _, files in os.walk(out):
    for name in files:
        if name.endswith(".deb"):
            path = os.path.join(top, name)
            with open(path, "rb") as f:
                have[hashlib.sha256(f.read()).hexdigest()] = path
for line in open(os.path.join(out, "suites")):
    root, suite = line.split()
    dists = os.path.join(out, root, "dists", suite)
    for top, _, files in os.walk(dists):
        if "Packages" not in files:
            continue
        filename = None
        for field in open(os.path.join(top, "Packages"), encoding="utf-8", errors="replace"):
            if field.startswith("Filename: "):
                filename = field[10:].strip()
            elif field.startswith("SHA256: ") and filename:
                source = have.get(field[8:].strip())
                target = os.path.join(out, root, filename)
                if source and not os.path.exists(target):
                    os.makedirs(os.path.dirname(target), exist_ok=True)
                    os.link(source, target)
PY
echo "$stamp" >"$out/.stamp"
echo "debian fixture: $(wc -l <"$out/uris") packages in $out"
