#!/usr/bin/env bash
# Kiln's daemonless builds side by side with `buildah bud --isolation chroot` (issue 5), in
# one run on this machine, every measured build fetching only over loopback:
#   1. cold: python3 + libpq5 from empty caches. Kiln: a fresh data dir, then
#      `kiln bootstrap python3 --wait` and `kiln create image pg python3 --system-deps
#      (libpq5) --wait`. buildah: fresh storage (the base image not yet pulled) and empty apt
#      caches, then `buildah bud` of the equivalent Dockerfile: FROM a debootstrap minbase
#      image in a loopback docker-registry, one RUN that points apt at the loopback mirror and
#      runs `apt-get update && apt-get install -y --no-install-recommends python3 netbase
#      tzdata libpq5` (the packages Kiln's python3 root image and pg hold). Like Debian's
#      official images the minbase has dpkg's force-unsafe-io and apt fetches no translations.
#   2. warm: the same build again. Kiln: the same server and data dir (package cache, parent
#      and the verified indexes it keeps in memory for 5 minutes), `kiln bootstrap python3
#      --wait` again and `kiln rebuild pg --wait`. buildah: the same storage (base image
#      pulled), no layer cache (--layers=false), apt's archives and lists in volumes filled
#      by the cold build, so apt downloads nothing and `apt-get update` gets 304s.
#   3. one-package change: pg gets libyaml-0-2 as well. Kiln: PUT the definition, wait for
#      READY. buildah: the changed Dockerfile, warm as in 2.
#   4. registry bytes of 10 images on python3 with one or two extra packages each (sharing
#      python3 and some extras): Kiln's registry blobs (the python3 root image included)
#      against docker-registry's storage after pushing the 10 buildah images (the minbase
#      layer included), for the one-RUN Dockerfile above and for a two-RUN one whose python3
#      layer is shared through --layers.
# Kiln's figures are the CLI's wall time (or PUT to READY) and "own time", its tasks'
# startedTime to finishedTime; buildah's are `buildah bud`'s wall time. Each timing is the
# median of $runs runs (default 3), each run in fresh data dirs, who goes first alternating.
# One-time setup may use the network, reading the Debian mirror from the machine's apt
# configuration: the debootstrap minbase image and the package fixture are built once and
# kept in target/bench/cache; everything else lives in target/bench/build and is deleted at
# the end.
# Usage: bench/build.sh [runs]   (KILN_ONLY=1: only Kiln's timings, for quick comparisons)
set -euo pipefail
shopt -s inherit_errexit
cd "$(dirname "$0")/.."
runs=${1:-3}
token="kiln-bench-admin-token-0123456789"
root=$PWD
cache=$root/target/bench/cache
work=$root/target/bench/build
kiln=$root/target/release/kiln
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
# shellcheck source=bench/lib.sh
source bench/lib.sh
# What pg holds on top of python3, and the package the one-package change adds.
pg_packages="libpq5"
change_package=libyaml-0-2
# The 10 images for the registry bytes: name and extra packages.
ten_images=(
    "r01:libpq5" "r02:libyaml-0-2" "r03:libjpeg62-turbo" "r04:libpng16-16" "r05:libsodium23"
    "r06:libpq5 libyaml-0-2" "r07:libjson-c5 libonig5" "r08:libpcre3 libevent-2.1-7"
    "r09:libuv1 libsodium23" "r10:libmagic1 libjpeg62-turbo"
)
# Kiln's python3 root image is python3, base-files, netbase and tzdata (and their closure);
# the minbase already has base-files and tzdata.
python3_packages="python3 netbase tzdata"
fixture_packages="python3 base-files netbase tzdata $pg_packages $change_package"
for image in "${ten_images[@]}"; do fixture_packages+=" ${image#*:}"; done

[ "$(id -u)" = 0 ] || fail "buildah --isolation chroot and debootstrap need root"
command -v debootstrap >/dev/null || apt-get install -y -qq debootstrap >/dev/null
for tool in buildah skopeo docker-registry python3 curl jq debootstrap; do
    command -v "$tool" >/dev/null || fail "needs $tool"
done
cargo build --release --locked -q -p kiln
bench_init

# ---------------------------------------------------------------- one-time setup (network)
# The Debian mirror of a suite, from the machine's deb822 apt sources.
mirror_of() {
    python3 - "$1" <<'PY'
import glob, sys
suite = sys.argv[1]
for path in sorted(glob.glob("/etc/apt/sources.list.d/*.sources")):
    for stanza in open(path).read().split("\n\n"):
        fields = {}
        for line in stanza.splitlines():
            if line.lstrip().startswith("#") or ":" not in line:
                continue
            key, value = line.split(":", 1)
            fields[key.strip().lower()] = value.split()
        if "deb" in fields.get("types", []) and suite in fields.get("suites", []) and fields.get("uris"):
            print(fields["uris"][0])
            sys.exit(0)
sys.exit(f"no deb source for {suite} in /etc/apt/sources.list.d/*.sources")
PY
}

# shellcheck disable=SC2086
scripts/debian-fixture.sh "$cache/fixture" $fixture_packages

if [ -z "${KILN_ONLY:-}" ] && [ ! -f "$cache/minbase.oci.tar" ]; then
    echo "== setup: debootstrap --variant=minbase bookworm (from the machine's Debian mirror)"
    rootfs=$work/minbase-rootfs
    debootstrap --variant=minbase --keyring="$keyring" bookworm "$rootfs" "$(mirror_of bookworm)" \
        > "$work/debootstrap.log" 2>&1 || fail "debootstrap failed: $(tail -5 "$work/debootstrap.log")"
    # As Debian's own images (debuerreotype): no downloaded .debs, no apt lists, dpkg without
    # an fsync per file (force-unsafe-io); no sources either (the Dockerfile writes its own).
    echo force-unsafe-io > "$rootfs/etc/dpkg/dpkg.cfg.d/docker-apt-speedup"
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/cache/apt/*.bin "$rootfs/etc/apt/sources.list"
    find "$rootfs/var/lib/apt/lists" -maxdepth 1 -type f ! -name lock -delete
    store=$work/buildah-setup
    # shellcheck disable=SC2046
    container=$(buildah $(storage_flags "$store") from scratch)
    # shellcheck disable=SC2046
    cp -a "$rootfs/." "$(buildah $(storage_flags "$store") mount "$container")/"
    # shellcheck disable=SC2046
    buildah $(storage_flags "$store") config --cmd '["bash"]' \
        --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$container"
    # shellcheck disable=SC2046
    buildah $(storage_flags "$store") commit -q "$container" "oci-archive:$cache/minbase.oci.tar.part" >/dev/null
    mv "$cache/minbase.oci.tar.part" "$cache/minbase.oci.tar"
    # shellcheck disable=SC2046
    buildah $(storage_flags "$store") rm --all >/dev/null
    rm -rf "$rootfs"
fi

# ---------------------------------------------------------------- loopback servers
mirror_url=$(static mirror "$cache/fixture")
curl -sf -o /dev/null "$mirror_url/suites" || fail "the fixture mirror did not start: $(cat "$work/mirror.err")"
suites=$(awk '{printf "%s%s:%s", sep, $1, $2; sep = " "}' "$cache/fixture/suites")

# Kiln's apt configuration: the fixture's suites on the loopback mirror.
mkdir -p "$work/apt"
while read -r dir suite; do
    echo "deb [signed-by=$keyring] $mirror_url/$dir $suite main"
done < "$cache/fixture/suites" > "$work/apt/sources.list"

if [ -z "${KILN_ONLY:-}" ]; then
    base_registry=$(start_registry base)
    skopeo copy -q --dest-tls-verify=false --dest-compress --dest-compress-format gzip \
        "oci-archive:$cache/minbase.oci.tar" "docker://$base_registry/minbase:bookworm"
    base=$base_registry/minbase:bookworm
    minbase_bytes=$(du -sb "$work/registry-base/storage" | cut -f1)
fi

# ---------------------------------------------------------------- the buildah side
cat > "$work/Dockerfile" <<'DOCKERFILE'
ARG BASE
FROM $BASE
ARG MIRROR
ARG SUITES
ARG PACKAGES
RUN for s in $SUITES; do echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $MIRROR/${s%%:*} ${s#*:} main"; done > /etc/apt/sources.list.d/bench.list \
 && echo 'Acquire::Languages "none";' > /etc/apt/apt.conf.d/99bench \
 && apt-get update -q \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $PACKAGES \
 && rm -f /var/cache/apt/*.bin
DOCKERFILE
# The same packages in two RUNs: python3 first (shared between images through --layers).
cat > "$work/Dockerfile.layered" <<'DOCKERFILE'
ARG BASE
FROM $BASE
ARG MIRROR
ARG SUITES
ARG PYTHON3
RUN for s in $SUITES; do echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $MIRROR/${s%%:*} ${s#*:} main"; done > /etc/apt/sources.list.d/bench.list \
 && echo 'Acquire::Languages "none";' > /etc/apt/apt.conf.d/99bench \
 && apt-get update -q \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $PYTHON3 \
 && rm -f /var/cache/apt/*.bin
ARG PACKAGES
RUN apt-get update -q \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $PACKAGES \
 && rm -f /var/cache/apt/*.bin
DOCKERFILE

# bud STORE TAG PACKAGES [DOCKERFILE [--layers]]: one build with STORE's storage and apt
# caches (archives and lists as volumes, so they never land in a layer); prints seconds.
bud() {
    local store=$1 tag=$2 packages=$3 dockerfile=${4:-Dockerfile} layers=${5:---layers=false} started seconds
    mkdir -p "$store/archives" "$store/lists"
    sync
    started=$(now)
    # shellcheck disable=SC2046
    buildah $(storage_flags "$store") bud --isolation chroot --network host --tls-verify=false "$layers" \
        --build-arg "BASE=$base" --build-arg "MIRROR=$mirror_url" --build-arg "SUITES=$suites" \
        --build-arg "PYTHON3=$python3_packages" --build-arg "PACKAGES=$packages" \
        -v "$store/archives:/var/cache/apt/archives" -v "$store/lists:/var/lib/apt/lists" \
        -f "$work/$dockerfile" -t "localhost/$tag" "$work" > "$store/bud-$tag.log" 2>&1 \
        || fail "buildah bud $tag failed: $(tail -20 "$store/bud-$tag.log")"
    seconds=$(since "$started")
    grep -q "^Setting up" "$store/bud-$tag.log" || fail "buildah bud $tag installed nothing? $store/bud-$tag.log"
    echo "$seconds"
}

buildah_run() {
    local run=$1 store=$work/buildah-$1 s
    rm -rf "$store"
    s=$(bud "$store" pg "$python3_packages $pg_packages")
    add buildah.cold "$s"; echo "buildah cold, run $run: $s s"
    # Cold really was cold: the base image was pulled and every package downloaded.
    grep -q "^Trying to pull" "$store/bud-pg.log" || fail "the cold build did not pull the base image"
    grep -q "^Need to get [1-9]" "$store/bud-pg.log" || fail "the cold build downloaded no packages"
    s=$(bud "$store" pg "$python3_packages $pg_packages")
    add buildah.warm "$s"; echo "buildah warm, run $run: $s s"
    # Warm really was warm: no pull, no package downloaded.
    ! grep -q "^Trying to pull" "$store/bud-pg.log" || fail "the warm build pulled the base image again"
    grep -q "^Need to get 0 B/" "$store/bud-pg.log" || fail "the warm build downloaded packages"
    s=$(bud "$store" pg-changed "$python3_packages $pg_packages $change_package")
    add buildah.change "$s"; echo "buildah one-package change, run $run: $s s"
}

# ---------------------------------------------------------------- the Kiln side
# The Kiln REST helper: task times, the newest task, and a definition change waited on.
cat > "$work/api.py" <<'PY'
import json, re, sys, time, urllib.request

url, token, command, *args = sys.argv[1:]


def call(method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url + path, data=data, method=method, headers={
        "Authorization": "Bearer " + token, "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.load(answer)


def seconds(stamp):
    # RFC 3339 with up to 9 fractional digits.
    m = re.fullmatch(r"(\d+)-(\d+)-(\d+)T(\d+):(\d+):(\d+)(\.\d+)?(Z|[+-]00:00)", stamp)
    if not m:
        sys.exit(f"unexpected time {stamp!r}")
    y, mo, d, h, mi, s = (int(g) for g in m.groups()[:6])
    whole = time.mktime((y, mo, d, h, mi, s, 0, 0, 0)) - time.timezone
    return whole + float(m.group(7) or 0)


def own(task_id):
    task = call("GET", f"/v1/tasks/{task_id}")
    if task.get("state") != "succeeded":
        sys.exit(f"task {task_id}: {task.get('state')}: {json.dumps(task)[:2000]}")
    return seconds(task["finishedTime"]) - seconds(task["startedTime"])


if command == "own":            # own TASK_ID: the task's startedTime -> finishedTime
    print(f"{own(args[0]):.3f}")
elif command == "newest":       # newest KIND TARGET: the newest task's id
    items = call("GET", f"/v1/tasks?kind={args[0]}&target={args[1]}&limit=1")["items"]
    print(items[0]["id"])
elif command == "build-task":   # build-task IMAGE: the image's (last) build task
    print(call("GET", f"/v1/images/{args[0]}")["buildTask"])
elif command == "set-packages":  # set-packages IMAGE PACKAGE...: PUT, wait for READY
    name, packages = args[0], args[1:]
    image = call("GET", f"/v1/images/{name}")
    before = image.get("buildTask")
    image["systemDependencies"]["packages"] = [{"name": p} for p in packages]
    started = time.monotonic()
    call("PUT", f"/v1/images/{name}", image)
    while True:
        image = call("GET", f"/v1/images/{name}")
        if image.get("buildTask") != before and image["status"] in ("READY", "ERROR"):
            break
        if time.monotonic() - started > 300:
            sys.exit(f"image {name} not READY within 300 s: {json.dumps(image)[:2000]}")
        time.sleep(0.02)
    wall = time.monotonic() - started
    if image["status"] != "READY":
        sys.exit(f"image {name}: {json.dumps(image)[:2000]}")
    print(f"{wall:.2f} {own(image['buildTask']):.3f}")
else:
    sys.exit(f"unknown command {command}")
PY
api() { python3 "$work/api.py" "$kiln_url" "$token" "$@"; }
# system-deps file for PACKAGES
deps_file() {
    local file=$work/deps-${1// /_}.yaml p
    { echo "packages:"; for p in $1; do echo "  - name: $p"; done; } > "$file"
    echo "$file"
}
# timed NAME COMMAND...: runs a kiln CLI command; prints its wall seconds.
timed_cli() {
    local started
    started=$(now)
    cli "$@" > "$work/cli.out" 2> "$work/cli.err" || fail "kiln $*: $(cat "$work/cli.out" "$work/cli.err")"
    since "$started"
}

kiln_run() {
    local run=$1 a b own_a own_b changed
    start_kiln "$run"
    sync
    # 1. cold
    a=$(timed_cli bootstrap python3 --wait)
    own_a=$(api own "$(api newest bootstrap python3)")
    b=$(timed_cli create image pg python3 --system-deps "$(deps_file "$pg_packages")" --version 1.0 --wait)
    own_b=$(api own "$(api build-task pg)")
    add kiln.cold "$(awk -v a="$a" -v b="$b" 'BEGIN {printf "%.2f", a + b}')"
    add kiln.cold_own "$(awk -v a="$own_a" -v b="$own_b" 'BEGIN {printf "%.3f", a + b}')"
    echo "kiln cold, run $run: bootstrap $a s (own $own_a s) + pg $b s (own $own_b s)"
    # 2. warm: the same two builds again, from the package cache
    a=$(timed_cli bootstrap python3 --wait)
    own_a=$(api own "$(api newest bootstrap python3)")
    b=$(timed_cli rebuild pg --wait)
    own_b=$(api own "$(api build-task pg)")
    add kiln.warm "$(awk -v a="$a" -v b="$b" 'BEGIN {printf "%.2f", a + b}')"
    add kiln.warm_own "$(awk -v a="$own_a" -v b="$own_b" 'BEGIN {printf "%.3f", a + b}')"
    echo "kiln warm, run $run: bootstrap $a s (own $own_a s) + rebuild pg $b s (own $own_b s)"
    # 3. one package more: PUT the changed definition, wait for READY
    # shellcheck disable=SC2086
    changed=$(api set-packages pg $pg_packages $change_package)
    read -r b own_b <<< "$changed"
    add kiln.change "$b"; add kiln.change_own "$own_b"
    echo "kiln one-package change, run $run: $b s PUT to READY (own $own_b s)"
    stop_kiln "$run"
    rm -rf "$work/kiln-$run"
}

# ---------------------------------------------------------------- 1-3: the timed builds
echo "== load average before: $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) cores"
echo "== $("$kiln" --version 2>/dev/null || echo kiln), $(buildah --version), minbase at ${base:-none}, mirror at $mirror_url"
for run in $(seq "$runs"); do
    if [ -n "${KILN_ONLY:-}" ]; then kiln_run "$run"; continue; fi
    if [ $((run % 2)) = 1 ]; then kiln_run "$run"; buildah_run "$run"; else buildah_run "$run"; kiln_run "$run"; fi
done
[ -z "${KILN_ONLY:-}" ] || exit 0

# ---------------------------------------------------------------- 4: registry bytes of 10 images
echo "== 10 images on python3: Kiln"
start_kiln ten
cli bootstrap python3 --wait > /dev/null 2>&1 || fail "bootstrap for the 10 images failed"
blobs=$(find "$work/kiln-ten" -type d -name blobs | head -1)
[ -n "$blobs" ] || fail "no blobs directory in Kiln's data dir"
kiln_root_bytes=$(du -sb "$blobs" | cut -f1)
started=$(now)
for image in "${ten_images[@]}"; do
    cli create image "${image%%:*}" python3 --system-deps "$(deps_file "${image#*:}")" --version 1.0 --wait \
        > /dev/null 2> "$work/cli.err" || fail "kiln create image ${image%%:*}: $(cat "$work/cli.err")"
done
kiln_ten_seconds=$(since "$started")
stop_kiln ten
kiln_bytes=$(du -sb "$blobs" | cut -f1)
kiln_blob_count=$(find "$blobs" -type f | wc -l)
echo "kiln: 10 images built one after another in $kiln_ten_seconds s; registry blobs $kiln_bytes bytes ($kiln_blob_count files in $blobs), $kiln_root_bytes of them the python3 root image's"
rm -rf "$work/kiln-ten"

# buildah_ten KIND DOCKERFILE LAYERS: the 10 images built with warm caches, pushed to a fresh
# docker-registry; sets ten_seconds and ten_bytes.
buildah_ten() {
    local kind=$1 dockerfile=$2 layers=$3 store=$work/buildah-ten registry name started
    registry=$(start_registry "$kind")
    started=$(now)
    for image in "${ten_images[@]}"; do
        name=${image%%:*}
        if [ "$kind" = one-run ]; then
            bud "$store" "$kind-$name" "$python3_packages ${image#*:}" "$dockerfile" "$layers" > /dev/null
        else
            bud "$store" "$kind-$name" "${image#*:}" "$dockerfile" "$layers" > /dev/null
        fi
    done
    ten_seconds=$(since "$started")
    for image in "${ten_images[@]}"; do
        name=${image%%:*}
        # shellcheck disable=SC2046
        buildah $(storage_flags "$store") push -q --tls-verify=false "localhost/$kind-$name" \
            "docker://$registry/bench/$name:1.0" > /dev/null 2> "$work/push.err" \
            || fail "buildah push $kind-$name: $(cat "$work/push.err")"
    done
    kill "$(cat "$work/registry-$kind.pid")"; wait "$(cat "$work/registry-$kind.pid")" 2>/dev/null || true
    rm -f "$work/registry-$kind.pid"
    ten_bytes=$(du -sb "$work/registry-$kind/storage" | cut -f1)
    ten_blobs=$(find "$work/registry-$kind/storage/docker/registry/v2/blobs" -name data | wc -l)
    echo "buildah ($kind): 10 images built one after another in $ten_seconds s; registry $ten_bytes bytes ($ten_blobs blobs)"
    rm -rf "$work/registry-$kind"
}
echo "== 10 images on python3: buildah (warm caches: the base image pulled, apt caches filled)"
bud "$work/buildah-ten" warmup "$python3_packages" > /dev/null
buildah_ten one-run Dockerfile --layers=false
flat_seconds=$ten_seconds flat_bytes=$ten_bytes
buildah_ten two-runs Dockerfile.layered --layers
layered_seconds=$ten_seconds layered_bytes=$ten_bytes

# ---------------------------------------------------------------- the table
echo
echo "== load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "Runs (seconds):"
for key in kiln.cold kiln.cold_own buildah.cold kiln.warm kiln.warm_own buildah.warm kiln.change kiln.change_own buildah.change; do
    echo "  $key:${results[$key]}"
done
m() { echo "${results[$1]}" | median; }
ratio() { awk -v b="$1" -v k="$2" 'BEGIN {printf "%.1fx", b / k}'; }
mb() { awk -v b="$1" 'BEGIN {printf "%.1f MB", b / 1e6}'; }
verdict() { awk -v r="$1" -v t="$2" 'BEGIN {print (r + 0 >= t) ? "met" : "missed"}'; }
cold=$(m kiln.cold) cold_own=$(m kiln.cold_own) b_cold=$(m buildah.cold)
warm=$(m kiln.warm) warm_own=$(m kiln.warm_own) b_warm=$(m buildah.warm)
change=$(m kiln.change) change_own=$(m kiln.change_own) b_change=$(m buildah.change)
echo
echo "| figure (median of $runs) | Kiln | buildah bud --isolation chroot | buildah / Kiln | target |"
echo "|---|---|---|---|---|"
echo "| cold: python3 + libpq5, wall | $cold s | $b_cold s | $(ratio "$b_cold" "$cold") | 5x: $(verdict "$(ratio "$b_cold" "$cold")" 5) |"
echo "| cold, Kiln's own time (tasks) | $cold_own s | | $(ratio "$b_cold" "$cold_own") | |"
echo "| warm: the same build again, wall | $warm s | $b_warm s | $(ratio "$b_warm" "$warm") | 20x: $(verdict "$(ratio "$b_warm" "$warm")" 20) |"
echo "| warm, Kiln's own time (tasks) | $warm_own s | | $(ratio "$b_warm" "$warm_own") | |"
echo "| one-package change (+$change_package), wall | $change s | $b_change s | $(ratio "$b_change" "$change") | |"
echo "| one-package change, Kiln's own time | $change_own s | | $(ratio "$b_change" "$change_own") | under 1 s: $(awk -v s="$change_own" 'BEGIN {print (s < 1) ? "met" : "missed"}') |"
echo "| registry bytes, 10 images, one-RUN Dockerfile | $(mb "$kiln_bytes") | $(mb "$flat_bytes") | $(ratio "$flat_bytes" "$kiln_bytes") | |"
echo "| registry bytes, 10 images, two RUNs + --layers | $(mb "$kiln_bytes") | $(mb "$layered_bytes") | $(ratio "$layered_bytes" "$kiln_bytes") | |"
echo "| of those, the base (Kiln: python3 root image; buildah: minbase) | $(mb "$kiln_root_bytes") | $(mb "$minbase_bytes") | | |"
echo
echo "10 images built one after another (not a target; caches warm): Kiln $kiln_ten_seconds s, buildah one-RUN $flat_seconds s, two RUNs + --layers $layered_seconds s."
