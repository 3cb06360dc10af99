#!/usr/bin/env bash
# Kiln's runtime-package builds side by side with `buildah bud --isolation chroot` (issue 6),
# in one run on this machine, every measured fetch over loopback:
#   1. cold: the Dispatch docs' my-python-base (requests) and my-pandas (pandas==2.2.3) on the
#      python3 root image. Kiln: a fresh data dir with the python3 root image bootstrapped (not
#      timed), then `kiln create -f examples/my-pandas/images.yaml` until my-pandas is READY,
#      wheels fetched from a loopback PyPI fixture. buildah: fresh storage, then `buildah bud`
#      of the equivalent Dockerfile FROM the same python3 root image (copied from Kiln's
#      registry into a loopback docker-registry): pip (run from its wheel, since the root
#      image has no pip) installs requests, then `-r requirements.txt`, from the same fixture.
#   2. warm: the same build again. Kiln: `kiln rebuild` of both images (wheel cache warm).
#      buildah: the same storage (base pulled), --layers=false, pip's cache in a volume that
#      the cold build filled.
#   3. a function's code changed. Kiln: `kiln function push my-pandas --code DIR` (one new
#      layer and a manifest, no rebuild). buildah: `buildah bud --layers` of the Dockerfile
#      whose last step is COPY handler.py, after a first --layers build with the old code.
#   4. registry bytes of 10 function images sharing pandas: Kiln's blob store after 10 code
#      pushes on my-pandas (the python3 root, both images and SBOMs included) against
#      docker-registry's storage after pushing 10 buildah images (the base included), built
#      with --layers (pip's layers shared, only the handler differs) and without.
# Kiln's figures are wall time (CLI or HTTP request) and "own time", its tasks' startedTime
# to finishedTime. Each timing is the median of $runs runs (default 3), fresh data dirs each
# run, who goes first alternating. One-time setup may use the network through the machine's
# apt and pip configuration: the Debian and PyPI fixtures are kept in target/bench/cache;
# everything else lives in target/bench/pandas and is deleted at the end.
# Usage: bench/pandas.sh [runs]   (KILN_ONLY=1: only Kiln's timings, for quick comparisons)
set -euo pipefail
shopt -s inherit_errexit
cd "$(dirname "$0")/.."
runs=${1:-3}
token="kiln-bench-admin-token-0123456789"
root=$PWD
cache=$root/target/bench/cache
work=$root/target/bench/pandas
kiln=$root/target/release/kiln
examples=$root/examples/my-pandas
# shellcheck source=bench/lib.sh
source bench/lib.sh

[ "$(id -u)" = 0 ] || fail "buildah --isolation chroot needs root"
for tool in buildah skopeo docker-registry python3 curl jq; do
    command -v "$tool" >/dev/null || fail "needs $tool"
done
cargo build --release --locked -q -p kiln
bench_init

# ---------------------------------------------------------------- one-time setup (network)
scripts/debian-fixture.sh "$cache/fixture" python3 base-files netbase tzdata libstdc++6
venv=$cache/pip-venv
if [ ! -x "$venv/bin/pip" ]; then
    python3 -m venv "$venv"
fi
# pip itself goes in the fixture too: the buildah side runs it from its wheel.
PYTHON="$venv/bin/python" scripts/pypi-fixture.sh "$cache/pypi" pandas==2.2.3 requests pip
pip_wheel=$(find "$cache/pypi/files" -name 'pip-*-py3-none-any.whl' | sort | tail -1)
[ -n "$pip_wheel" ] || fail "no pip wheel in the PyPI fixture"

# ---------------------------------------------------------------- loopback servers
mirror_url=$(static mirror "$cache/fixture")
pypi_url=$(static pypi "$cache/pypi")
kiln_env=("KILN_PYPI_INDEX_URL=$pypi_url/simple")
curl -sf -o /dev/null "$pypi_url/simple/pandas/" || fail "the PyPI fixture does not serve pandas"
mkdir -p "$work/apt"
while read -r dir suite; do
    echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror_url/$dir $suite main"
done < "$cache/fixture/suites" > "$work/apt/sources.list"


# ---------------------------------------------------------------- Kiln
cat > "$work/api.py" <<'PY'
import json, re, sys, time, urllib.request

url, token, command, *args = sys.argv[1:]


def call(method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url + path, data=data, method=method, headers={
        "Authorization": "Bearer " + token, "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as answer:
        return json.load(answer)


def seconds(stamp):
    m = re.fullmatch(r"(\d+)-(\d+)-(\d+)T(\d+):(\d+):(\d+)(\.\d+)?(Z|[+-]00:00)", stamp)
    if not m:
        sys.exit(f"unexpected time {stamp!r}")
    y, mo, d, h, mi, s = (int(g) for g in m.groups()[:6])
    return time.mktime((y, mo, d, h, mi, s, 0, 0, 0)) - time.timezone + float(m.group(7) or 0)


def own(task_id):
    task = call("GET", f"/v1/tasks/{task_id}")
    if task.get("state") != "succeeded":
        sys.exit(f"task {task_id}: {task.get('state')}: {json.dumps(task)[:2000]}")
    return seconds(task["finishedTime"]) - seconds(task["startedTime"])


if command == "ready":          # ready IMAGE...: wait until READY; the sum of their build tasks' own time
    total, started = 0.0, time.monotonic()
    for name in args:
        while True:
            image = call("GET", f"/v1/images/{name}")
            if image["status"] in ("READY", "ERROR"):
                break
            if time.monotonic() - started > 600:
                sys.exit(f"image {name} not READY within 600 s")
            time.sleep(0.02)
        if image["status"] != "READY":
            sys.exit(f"image {name}: {json.dumps(image)[:2000]}")
        total += own(image["buildTask"])
    print(f"{total:.3f}")
elif command == "reference":    # reference BASE_IMAGE: its pullable reference
    print(call("GET", f"/v1/base-images/{args[0]}")["reference"])
else:
    sys.exit(f"unknown command {command}")
PY
api() { python3 "$work/api.py" "$kiln_url" "$token" "$@"; }

# A function's code: handler.py from the example with a marker, so every push differs.
function_dir() {
    local dir=$work/code-$1
    mkdir -p "$dir"
    { cat "$examples/handler.py"; echo "VARIANT = \"$1\""; } > "$dir/handler.py"
    echo "$dir"
}

kiln_run() {
    local run=$1 started wall own
    start_kiln "$run"
    cli bootstrap python3 --wait > /dev/null 2>&1 || fail "kiln bootstrap python3 failed"
    sync
    # 1. cold: both images, empty wheel cache
    started=$(now)
    cli create -f "$examples/images.yaml" > "$work/cli.out" 2>&1 || fail "kiln create -f: $(cat "$work/cli.out")"
    own=$(api ready my-python-base my-pandas)
    wall=$(since "$started")
    add kiln.cold "$wall"; add kiln.cold_own "$own"
    echo "kiln cold, run $run: $wall s (own $own s)"
    # 2. warm: both rebuilt from the wheel cache
    started=$(now)
    cli rebuild my-python-base --wait > /dev/null 2>&1 || fail "kiln rebuild my-python-base failed"
    cli rebuild my-pandas --wait > /dev/null 2>&1 || fail "kiln rebuild my-pandas failed"
    wall=$(since "$started")
    own=$(api ready my-python-base my-pandas)
    add kiln.warm "$wall"; add kiln.warm_own "$own"
    echo "kiln warm, run $run: $wall s (own $own s)"
    # 3. code change: one layer and a manifest on the runtime image
    cli function push my-pandas --code "$(function_dir "first-$run")" --name sum > /dev/null 2>&1 \
        || fail "kiln function push failed"
    started=$(now)
    cli function push my-pandas --code "$(function_dir "changed-$run")" --name sum > "$work/push.out" 2>&1 \
        || fail "kiln function push failed: $(cat "$work/push.out")"
    wall=$(since "$started")
    add kiln.change "$wall"
    echo "kiln code change, run $run: $wall s (CLI: read, tar, PUT, answer)"
    stop_kiln "$run"
    rm -rf "$work/kiln-$run"
}

# ---------------------------------------------------------------- buildah
# The python3 root image Kiln bootstrapped, copied into docker-registry as buildah's FROM.
echo "== setup: Kiln's python3 root image into a loopback docker-registry"
start_kiln setup
cli bootstrap python3 --wait > /dev/null 2>&1 || fail "kiln bootstrap python3 failed"
base_registry=$(start_registry base)
python3_ref=$(api reference python3)
skopeo copy -q --src-tls-verify=false --src-creds "bench:$token" --dest-tls-verify=false \
    "docker://$python3_ref" "docker://$base_registry/python3:root" || fail "copying the python3 root image failed"
base=$base_registry/python3:root
base_bytes=$(du -sb "$work/registry-base/storage" | cut -f1)
curl -sf -H "Authorization: Bearer $token" "$kiln_url/v1/images/my-pandas/dockerfile" > /dev/null 2>&1 || true
stop_kiln setup
rm -rf "$work/kiln-setup"

mkdir -p "$work/context"
cp "$pip_wheel" "$work/context/"
pip_name=$(basename "$pip_wheel")
cp "$examples/requirements.txt" "$work/context/requirements.txt"
# Kiln's my-python-base then my-pandas, as one Dockerfile; pip runs from its own wheel. The
# root image has no shell, so every RUN is in exec form, with the index written in.
pip_run="\"python3\", \"/opt/$pip_name/pip\", \"install\", \"--break-system-packages\", \"--disable-pip-version-check\", \"--index-url\", \"$pypi_url/simple\""
cat > "$work/Dockerfile" <<DOCKERFILE
ARG BASE
FROM \$BASE
USER root
COPY $pip_name /opt/$pip_name
RUN [$pip_run, "requests"]
COPY requirements.txt /tmp/requirements.txt
RUN [$pip_run, "-r", "/tmp/requirements.txt"]
USER kiln
COPY handler.py /function/handler.py
DOCKERFILE

# bud STORE TAG [--layers]: one build with STORE's storage and pip cache; prints seconds.
bud() {
    local store=$1 tag=$2 layers=${3:---layers=false} started seconds
    mkdir -p "$store/pip-cache"
    sync
    started=$(now)
    # shellcheck disable=SC2046
    buildah $(storage_flags "$store") bud --isolation chroot --network host --tls-verify=false "$layers" \
        --build-arg "BASE=$base" \
        -v "$store/pip-cache:/root/.cache/pip" \
        -f "$work/Dockerfile" -t "localhost/$tag" "$work/context" > "$store/bud-$tag.log" 2>&1 \
        || fail "buildah bud $tag failed: $(tail -20 "$store/bud-$tag.log")"
    seconds=$(since "$started")
    echo "$seconds"
}

buildah_run() {
    local run=$1 store=$work/buildah-$1 s
    rm -rf "$store"
    cp "$(function_dir "first-$run")/handler.py" "$work/context/handler.py"
    s=$(bud "$store" pandas)
    grep -q "^Trying to pull" "$store/bud-pandas.log" || fail "the cold build did not pull the base image"
    grep -q "Successfully installed.*pandas" "$store/bud-pandas.log" || fail "the cold build installed no pandas"
    add buildah.cold "$s"; echo "buildah cold, run $run: $s s"
    s=$(bud "$store" pandas)
    ! grep -q "^Trying to pull" "$store/bud-pandas.log" || fail "the warm build pulled the base image again"
    add buildah.warm "$s"; echo "buildah warm, run $run: $s s"
    bud "$store" pandas-layers --layers > /dev/null
    cp "$(function_dir "changed-$run")/handler.py" "$work/context/handler.py"
    s=$(bud "$store" pandas-layers --layers)
    add buildah.change "$s"; echo "buildah code change (--layers), run $run: $s s"
}

# ---------------------------------------------------------------- 1-3: the timed builds
echo "== load average before: $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) cores"
echo "== $("$kiln" --version 2>/dev/null || echo kiln), $(buildah --version), base $base, PyPI fixture at $pypi_url"
for run in $(seq "$runs"); do
    if [ -n "${KILN_ONLY:-}" ]; then kiln_run "$run"; continue; fi
    if [ $((run % 2)) = 1 ]; then kiln_run "$run"; buildah_run "$run"; else buildah_run "$run"; kiln_run "$run"; fi
done
[ -z "${KILN_ONLY:-}" ] || exit 0

# ---------------------------------------------------------------- 4: registry bytes of 10 function images
echo "== 10 function images sharing pandas: Kiln"
start_kiln ten
cli bootstrap python3 --wait > /dev/null 2>&1 || fail "bootstrap failed"
cli create -f "$examples/images.yaml" > /dev/null 2>&1 || fail "kiln create -f failed"
api ready my-python-base my-pandas > /dev/null
for i in $(seq -w 1 10); do
    cli function push my-pandas --code "$(function_dir "fn$i")" --name "fn$i" > /dev/null 2>&1 \
        || fail "kiln function push fn$i failed"
done
stop_kiln ten
blobs=$(find "$work/kiln-ten" -type d -name blobs | head -1)
[ -n "$blobs" ] || fail "no blobs directory in Kiln's data dir"
kiln_bytes=$(du -sb "$blobs" | cut -f1)
echo "kiln: registry blobs $kiln_bytes bytes ($(find "$blobs" -type f | wc -l) files)"
rm -rf "$work/kiln-ten"

buildah_ten() {
    local kind=$1 layers=$2 store=$work/buildah-ten registry
    registry=$(start_registry "$kind")
    skopeo copy -q --src-tls-verify=false --dest-tls-verify=false "docker://$base" "docker://$registry/python3:root"
    for i in $(seq -w 1 10); do
        cp "$(function_dir "fn$i")/handler.py" "$work/context/handler.py"
        bud "$store" "$kind-fn$i" "$layers" > /dev/null
        # shellcheck disable=SC2046
        buildah $(storage_flags "$store") push -q --tls-verify=false "localhost/$kind-fn$i" \
            "docker://$registry/bench/fn$i:1.0" > /dev/null 2> "$work/push.err" \
            || fail "buildah push $kind-fn$i: $(cat "$work/push.err")"
    done
    kill "$(cat "$work/registry-$kind.pid")"; wait "$(cat "$work/registry-$kind.pid")" 2>/dev/null || true
    rm -f "$work/registry-$kind.pid"
    ten_bytes=$(du -sb "$work/registry-$kind/storage" | cut -f1)
    echo "buildah ($kind): registry $ten_bytes bytes"
    rm -rf "$work/registry-$kind"
}
echo "== 10 function images sharing pandas: buildah (pip cache warm)"
buildah_ten layers --layers
layered_bytes=$ten_bytes
buildah_ten flat --layers=false
flat_bytes=$ten_bytes

# ---------------------------------------------------------------- the table
echo
echo "== load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "Runs (seconds):"
for key in kiln.cold kiln.cold_own buildah.cold kiln.warm kiln.warm_own buildah.warm kiln.change buildah.change; do
    echo "  $key:${results[$key]}"
done
m() { echo "${results[$1]}" | median; }
ratio() { awk -v b="$1" -v k="$2" 'BEGIN {printf "%.1fx", b / k}'; }
mb() { awk -v b="$1" 'BEGIN {printf "%.1f MB", b / 1e6}'; }
verdict() { awk -v r="$1" -v t="$2" 'BEGIN {print (r + 0 >= t) ? "met" : "missed"}'; }
cold=$(m kiln.cold) cold_own=$(m kiln.cold_own) b_cold=$(m buildah.cold)
warm=$(m kiln.warm) warm_own=$(m kiln.warm_own) b_warm=$(m buildah.warm)
change=$(m kiln.change) b_change=$(m buildah.change)
echo
echo "| figure (median of $runs) | Kiln | buildah bud --isolation chroot | buildah / Kiln | target |"
echo "|---|---|---|---|---|"
echo "| cold: my-python-base + my-pandas, wall | $cold s | $b_cold s | $(ratio "$b_cold" "$cold") | 3x: $(verdict "$(ratio "$b_cold" "$cold")" 3) |"
echo "| cold, Kiln's own time (tasks) | $cold_own s | | $(ratio "$b_cold" "$cold_own") | |"
echo "| warm: the same builds again, wall | $warm s | $b_warm s | $(ratio "$b_warm" "$warm") | 10x: $(verdict "$(ratio "$b_warm" "$warm")" 10) |"
echo "| warm, Kiln's own time (tasks) | $warm_own s | | $(ratio "$b_warm" "$warm_own") | |"
echo "| a function's code changed, wall | $change s | $b_change s | $(ratio "$b_change" "$change") | under 0.1 s: $(awk -v s="$change" 'BEGIN {print (s < 0.1) ? "met" : "missed"}') |"
echo "| registry bytes, 10 function images, --layers | $(mb "$kiln_bytes") | $(mb "$layered_bytes") | $(ratio "$layered_bytes" "$kiln_bytes") | 5x: $(verdict "$(ratio "$layered_bytes" "$kiln_bytes")" 5) |"
echo "| registry bytes, 10 function images, --layers=false | $(mb "$kiln_bytes") | $(mb "$flat_bytes") | $(ratio "$flat_bytes" "$kiln_bytes") | 5x: $(verdict "$(ratio "$flat_bytes" "$kiln_bytes")" 5) |"
echo "| of those, the python3 root image | | $(mb "$base_bytes") | | |"
