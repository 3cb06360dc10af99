#!/usr/bin/env bash
# Kiln's OCI registry side by side with docker-registry (CNCF distribution 2.8, Debian's
# package), both on loopback, driven by the same clients with the same data:
#   1. push one 256 MiB blob, monolithic and chunked (POST, one PATCH, PUT) — MiB/s
#   2. pull it back — MiB/s
#   3. push and pull 1,000 distinct 4 KiB blobs over keep-alive connections — blobs/s
#   4. GET one OCI image manifest by tag under load with wrk — requests/s and p99
# Large transfers use curl, small blobs a Python http.client script, manifests wrk; every
# request carries the same Authorization header (docker-registry, run without auth, ignores
# it). Every figure is the median of 3 runs, the registries taking turns to go first; each
# push run pushes blobs neither registry holds yet, after a sync. The load average is printed
# before and after: other work on the machine shows in the figures.
# Usage: bench/registry.sh [seconds] [connections]
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:-10}
connections=${2:-64}
runs=3
big_mib=256
small_count=1000
small_size=4096
small_threads=4
token=kiln-bench-admin-token-0123456789
repository=default/bench
auth="Basic $(printf 'kiln:%s' "$token" | base64 -w0)"

for tool in wrk curl python3 docker-registry sha256sum; do
    command -v "$tool" >/dev/null || { echo "bench/registry.sh needs $tool" >&2; exit 1; }
done
cargo build --release --locked -q -p kiln

work=$(mktemp -d)
cleanup() {
    for pid in $(cat "$work"/*.pid 2>/dev/null); do kill "$pid" 2>/dev/null || true; done
    for pid in $(cat "$work"/*.pid 2>/dev/null); do wait "$pid" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fail() { echo "bench/registry.sh: $*" >&2; exit 1; }

# ---------------------------------------------------------------- the two registries
KILN_ADMIN_TOKEN=$token KILN_LOG=warn target/release/kiln serve --listen 127.0.0.1:0 --data-dir "$work/kiln" \
    > "$work/kiln.out" 2> "$work/kiln.err" &
echo $! > "$work/kiln.pid"
for _ in $(seq 100); do grep -q '^listening on ' "$work/kiln.out" 2>/dev/null && break; sleep 0.1; done
kiln_url=$(sed -n 's/^listening on //p' "$work/kiln.out")
[ -n "$kiln_url" ] || fail "kiln did not start: $(cat "$work/kiln.err")"

# A port picked by binding :0 can be taken before docker-registry binds it: try a few.
for attempt in 1 2 3 4 5; do
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    mkdir -p "$work/distribution/storage"
    cat > "$work/distribution/config.yml" <<YAML
version: 0.1
log:
  level: warn
  formatter: text
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: "$work/distribution/storage"
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
  secret: kiln-bench-upload-state-secret
YAML
    docker-registry serve "$work/distribution/config.yml" > "$work/distribution.out" 2> "$work/distribution.err" &
    echo $! > "$work/distribution.pid"
    distribution_url=""
    for _ in $(seq 100); do
        kill -0 "$(cat "$work/distribution.pid")" 2>/dev/null || break
        if curl -sf -o /dev/null "http://127.0.0.1:$port/v2/"; then distribution_url="http://127.0.0.1:$port"; break; fi
        sleep 0.1
    done
    [ -n "$distribution_url" ] && break
    kill "$(cat "$work/distribution.pid")" 2>/dev/null || true
    rm -f "$work/distribution.pid"
done
[ -n "$distribution_url" ] || fail "docker-registry did not start: $(cat "$work/distribution.err")"
curl -sf -o /dev/null -H "Authorization: $auth" "$kiln_url/v2/" || fail "kiln refuses the benchmark's credentials"
echo "== load average before: $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) cores"
echo "== kiln at $kiln_url, docker-registry $(docker-registry --version | awk '{print $3}') at $distribution_url"
registries="kiln distribution"
url_of() { if [ "$1" = kiln ]; then echo "$kiln_url"; else echo "$distribution_url"; fi; }

# ---------------------------------------------------------------- the same client for both
cat > "$work/small.py" <<'PY'
"""Pushes (then pulls) COUNT distinct blobs of SIZE bytes, THREADS keep-alive connections.

Push is the registry's monolithic path: POST ?digest= with the body; a registry that answers
202 (docker-registry 2.8 does not take a body on POST) gets it with PUT <Location>?digest=,
as OCI clients fall back. Mode "post-put" sends an empty POST and then the PUT to both.
Prints blobs per second; exits non-zero on any unexpected status or wrong bytes.
"""
import hashlib, http.client, sys, threading, time, urllib.parse

base, action, mode, data_file, count, size, threads, repository, auth = sys.argv[1:10]
count, size, threads = int(count), int(size), int(threads)
host = urllib.parse.urlsplit(base).netloc
data = open(data_file, "rb").read()
blobs = [data[i * size:(i + 1) * size] for i in range(count)]
digests = ["sha256:" + hashlib.sha256(b).hexdigest() for b in blobs]
assert len(set(digests)) == count, "blobs are not distinct"
headers = {"Authorization": auth}
errors = []


def check(response, expected, what):
    body = response.read()
    if response.status not in expected:
        raise RuntimeError(f"{what}: {response.status} {body[:300]!r}")
    return body


def push(conn, blob, digest):
    if mode == "monolithic":
        conn.request("POST", f"/v2/{repository}/blobs/uploads/?digest={digest}", body=blob,
                     headers={**headers, "Content-Type": "application/octet-stream"})
    else:
        conn.request("POST", f"/v2/{repository}/blobs/uploads/", headers={**headers, "Content-Length": "0"})
    response = conn.getresponse()
    check(response, (201, 202), "POST upload")
    if response.status == 201:
        return
    location = response.getheader("Location")
    location = urllib.parse.urlsplit(location)
    query = (location.query + "&" if location.query else "") + "digest=" + digest
    conn.request("PUT", f"{location.path}?{query}", body=blob,
                 headers={**headers, "Content-Type": "application/octet-stream"})
    check(conn.getresponse(), (201,), "PUT upload")


def pull(conn, blob, digest):
    conn.request("GET", f"/v2/{repository}/blobs/{digest}", headers=headers)
    body = check(conn.getresponse(), (200,), "GET blob")
    if body != blob:
        raise RuntimeError(f"GET blob {digest}: wrong bytes")


def worker(k):
    conn = http.client.HTTPConnection(host)
    try:
        for i in range(k, count, threads):
            (push if action == "push" else pull)(conn, blobs[i], digests[i])
    except Exception as e:  # reported by the main thread
        errors.append(e)
    finally:
        conn.close()


workers = [threading.Thread(target=worker, args=(k,)) for k in range(threads)]
start = time.perf_counter()
for w in workers:
    w.start()
for w in workers:
    w.join()
elapsed = time.perf_counter() - start
if errors:
    sys.exit(f"{action} {mode} against {base}: {errors[0]}")
print(f"{count / elapsed:.0f}")
PY

median() { tr ' ' '\n' | grep . | sort -n | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }

# curl with the shared header. Fails unless the status is one of $1 (space-separated);
# prints the status; adds the request's time to $work/seconds; keeps the answer's headers.
# The time is curl's own time_total: --data-binary @file reads the file into memory before
# the clock starts, so only the transfer and the registry's answer are timed.
request() {
    local expected=$1; shift
    local out status seconds
    out=$(curl -sS -o "$work/body" -D "$work/headers" -w '%{http_code} %{time_total}' \
        -H "Authorization: $auth" -H 'Expect:' "$@") || fail "curl $*: failed"
    read -r status seconds <<< "$out"
    [[ " $expected " == *" $status "* ]] || fail "curl $*: status $status, wanted $expected: $(head -c 300 "$work/body")"
    echo "$seconds" >> "$work/seconds"
    echo "$status"
}
# The Location of the last answer as an absolute URL, with digest=$2 added if given.
location() {
    local url=$1 digest=${2:-} at
    at=$(tr -d '\r' < "$work/headers" | sed -n 's/^[Ll]ocation: //p' | tail -1)
    [ -n "$at" ] || fail "no Location in the answer"
    [[ $at == http* ]] || at="$url$at"
    if [ -z "$digest" ]; then echo "$at"
    elif [[ $at == *\?* ]]; then echo "$at&digest=$digest"
    else echo "$at?digest=$digest"; fi
}
timed() { rm -f "$work/seconds"; "$@"; }
elapsed() { awk '{s += $1} END {printf "%.6f", s}' "$work/seconds"; }
mib_per_s() { awk -v mib="$big_mib" -v s="$1" 'BEGIN {printf "%.0f", mib / s}'; }
digest_of() { echo "sha256:$(sha256sum "$1" | cut -d' ' -f1)"; }

# Monolithic push of a file: POST ?digest= with the body where the registry takes it (201),
# else an empty POST and PUT <Location>?digest= with the body. A probe decides which.
declare -A post_takes_body
printf 'probe' > "$work/probe"
for r in $registries; do
    url=$(url_of $r)
    status=$(request "201 202" -X POST --data-binary @"$work/probe" -H 'Content-Type: application/octet-stream' \
        "$url/v2/$repository/blobs/uploads/?digest=$(digest_of "$work/probe")")
    if [ "$status" = 201 ]; then
        post_takes_body[$r]=yes
    else
        post_takes_body[$r]=no
        request 201 -X PUT --data-binary @"$work/probe" -H 'Content-Type: application/octet-stream' \
            "$(location "$url" "$(digest_of "$work/probe")")" > /dev/null
    fi
    echo "== $r answers a monolithic POST ?digest= with a body with $status"
done

push_monolithic() {
    local r=$1 file=$2 digest=$3 url
    url=$(url_of $r)
    if [ "${post_takes_body[$r]}" = yes ]; then
        request 201 -X POST --data-binary @"$file" -H 'Content-Type: application/octet-stream' \
            "$url/v2/$repository/blobs/uploads/?digest=$digest" > /dev/null
    else
        request 202 -X POST -H 'Content-Length: 0' "$url/v2/$repository/blobs/uploads/" > /dev/null
        request 201 -X PUT --data-binary @"$file" -H 'Content-Type: application/octet-stream' "$(location "$url" "$digest")" > /dev/null
    fi
}

push_chunked() {
    local r=$1 file=$2 digest=$3 url size
    url=$(url_of $r)
    size=$(stat -c %s "$file")
    request 202 -X POST -H 'Content-Length: 0' "$url/v2/$repository/blobs/uploads/" > /dev/null
    request 202 -X PATCH --data-binary @"$file" -H 'Content-Type: application/octet-stream' -H "Content-Range: 0-$((size - 1))" \
        "$(location "$url")" > /dev/null
    request 201 -X PUT -H 'Content-Length: 0' "$(location "$url" "$digest")" > /dev/null
}

pull_big() {
    local r=$1 digest=$2 out size seconds status
    out=$(curl -sS -o /dev/null -w '%{http_code} %{size_download} %{time_total}' -H "Authorization: $auth" \
        "$(url_of $r)/v2/$repository/blobs/$digest") || fail "$r: GET the $big_mib MiB blob failed"
    read -r status size seconds <<< "$out"
    [ "$status" = 200 ] && [ "$size" = $((big_mib * 1024 * 1024)) ] || fail "$r: GET the blob: $status, $size bytes"
    echo "$seconds" >> "$work/seconds"
}

declare -A results
add() { results[$1]="${results[$1]:-} $2"; }

# ---------------------------------------------------------------- 1: push one 256 MiB blob
echo "== generating $big_mib MiB of random bytes"
head -c $((big_mib * 1024 * 1024)) /dev/urandom > "$work/big"
variant=0
for mode in monolithic chunked; do
    for run in $(seq "$runs"); do
        variant=$((variant + 1))
        # A blob neither registry holds yet: only the first 32 bytes change between runs.
        printf 'kiln-bench-variant-%013d' "$variant" | dd of="$work/big" conv=notrunc status=none
        digest=$(digest_of "$work/big")
        # Alternate who goes first, so neither always meets the cache state the other left.
        order=$registries; [ $((run % 2)) = 0 ] && order="distribution kiln"
        for r in $order; do
            sync
            timed "push_$mode" "$r" "$work/big" "$digest"
            add "$r.push_$mode" "$(mib_per_s "$(elapsed)")"
            echo "$r push $big_mib MiB $mode, run $run: $(mib_per_s "$(elapsed)") MiB/s"
        done
    done
done

# ---------------------------------------------------------------- 2: pull it
for r in $registries; do
    # Once untimed, to check the bytes; the timed pulls go to /dev/null.
    curl -sSf -o "$work/pulled" -H "Authorization: $auth" "$(url_of $r)/v2/$repository/blobs/$digest" \
        || fail "$r: GET the $big_mib MiB blob failed"
    cmp -s "$work/pulled" "$work/big" || fail "$r: the pulled blob differs from the pushed one"
    rm -f "$work/pulled"
done
for run in $(seq "$runs"); do
    order=$registries; [ $((run % 2)) = 0 ] && order="distribution kiln"
    for r in $order; do
        timed pull_big "$r" "$digest"
        add "$r.pull" "$(mib_per_s "$(elapsed)")"
        echo "$r pull $big_mib MiB, run $run: $(mib_per_s "$(elapsed)") MiB/s"
    done
done

# ---------------------------------------------------------------- 3: 1,000 small blobs
small() {
    local r=$1 action=$2 mode=$3 file=$4
    python3 "$work/small.py" "$(url_of $r)" "$action" "$mode" "$file" "$small_count" "$small_size" \
        "$small_threads" "$repository" "$auth" || fail "$r: $action of $small_count small blobs ($mode) failed"
}
# Each run pushes blobs neither registry holds yet (new random bytes), in alternating order;
# the pulls read back the blobs of the first monolithic run.
for mode in monolithic post-put; do
    for run in $(seq "$runs"); do
        head -c $((small_count * small_size)) /dev/urandom > "$work/small-$mode-$run"
        order=$registries; [ $((run % 2)) = 0 ] && order="distribution kiln"
        for r in $order; do
            sync
            rate=$(small "$r" push "$mode" "$work/small-$mode-$run")
            add "$r.small_push_$mode" "$rate"
            echo "$r push $small_count x $small_size B ($mode, $small_threads connections), run $run: $rate blobs/s"
        done
    done
done
for run in $(seq "$runs"); do
    order=$registries; [ $((run % 2)) = 0 ] && order="distribution kiln"
    for r in $order; do
        rate=$(small "$r" pull - "$work/small-monolithic-1")
        add "$r.small_pull" "$rate"
        echo "$r pull $small_count x $small_size B ($small_threads connections), run $run: $rate blobs/s"
    done
done

# ---------------------------------------------------------------- 4: manifest GETs
oci=application/vnd.oci.image.manifest.v1+json
printf '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}' > "$work/config"
head -c 1024 /dev/urandom > "$work/layer"
cat > "$work/manifest" <<JSON
{"schemaVersion":2,"mediaType":"$oci","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"$(digest_of "$work/config")","size":$(stat -c %s "$work/config")},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"$(digest_of "$work/layer")","size":$(stat -c %s "$work/layer")}]}
JSON
cat > "$work/manifest.lua" <<LUA
wrk.headers["Authorization"] = "$auth"
wrk.headers["Accept"] = "$oci"
LUA
for r in $registries; do
    url=$(url_of $r)
    push_monolithic "$r" "$work/config" "$(digest_of "$work/config")"
    push_monolithic "$r" "$work/layer" "$(digest_of "$work/layer")"
    request 201 -X PUT --data-binary @"$work/manifest" -H "Content-Type: $oci" "$url/v2/$repository/manifests/v1" > /dev/null
    request 200 -H "Accept: $oci" "$url/v2/$repository/manifests/v1" > /dev/null
    cmp -s "$work/body" "$work/manifest" || fail "$r: GET the manifest gives other bytes"
done
# wrk prints latencies as 850.00us, 4.89ms or 1.02s: in ms, for the median.
in_ms() { awk '{v = $1 + 0; if ($1 ~ /us$/) v /= 1000; else if ($1 ~ /[0-9]s$/) v *= 1000; printf "%.2f", v}'; }
for run in $(seq "$runs"); do
    order=$registries; [ $((run % 2)) = 0 ] && order="distribution kiln"
    for r in $order; do
        echo "== $r: GET /v2/$repository/manifests/v1 ($connections connections, ${duration}s), run $run"
        wrk -t2 -c"$connections" -d"${duration}s" --latency -s "$work/manifest.lua" \
            "$(url_of $r)/v2/$repository/manifests/v1" | tee "$work/wrk-$r"
        ! grep -q 'Non-2xx' "$work/wrk-$r" || fail "$r: manifest GETs answered non-2xx"
        ! grep -q 'Socket errors' "$work/wrk-$r" || fail "$r: manifest GETs had socket errors"
        add "$r.manifest_rps" "$(awk '/Requests\/sec/ {printf "%.0f", $2}' "$work/wrk-$r")"
        add "$r.manifest_p99" "$(awk '$1 == "99%" {print $2}' "$work/wrk-$r" | in_ms)"
    done
done

# Both must still be up.
for r in $registries; do kill -0 "$(cat "$work/$r.pid")" || fail "$r exited during the benchmark"; done

# ---------------------------------------------------------------- the table
# How many times better Kiln is: more per second, or (for latencies, "lower") less time.
row() {
    local label=$1 key=$2 unit=$3 better=${4:-higher} k d
    k=$(echo "${results[kiln.$key]}" | median)
    d=$(echo "${results[distribution.$key]}" | median)
    printf '| %s | %s %s | %s %s | %s |\n' "$label" "$k" "$unit" "$d" "$unit" \
        "$(awk -v k="$k" -v d="$d" -v b="$better" 'BEGIN {printf "%.2fx", b == "lower" ? d / k : k / d}')"
}
echo
echo "== load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "Runs (kiln / docker-registry):"
for key in push_monolithic push_chunked pull small_push_monolithic small_push_post-put small_pull manifest_rps manifest_p99; do
    echo "  $key:${results[kiln.$key]} /${results[distribution.$key]}"
done
echo
echo "| figure | Kiln | docker-registry 2.8 | Kiln vs docker-registry (above 1x: Kiln ahead) |"
echo "|---|---|---|---|"
row "push 256 MiB, monolithic (median of $runs)" push_monolithic MiB/s
row "push 256 MiB, POST + PATCH + PUT (median of $runs)" push_chunked MiB/s
row "pull 256 MiB (median of $runs)" pull MiB/s
row "push 1,000 x 4 KiB, monolithic ($small_threads connections, median of $runs)" small_push_monolithic blobs/s
row "push 1,000 x 4 KiB, POST + PUT ($small_threads connections, median of $runs)" small_push_post-put blobs/s
row "pull 1,000 x 4 KiB ($small_threads connections, median of $runs)" small_pull blobs/s
row "GET manifest by tag, $connections connections, ${duration}s (median of $runs)" manifest_rps req/s
row "GET manifest by tag, p99 latency" manifest_p99 ms lower
