#!/usr/bin/env bash
# What authorization costs: GET /v1/images/{name} on one store holding 10,000 images,
# served twice by one process — with the bearer-token middleware and with a fixed
# administrator context instead — driven by wrk from loopback, alternating runs.
# Usage: bench/auth.sh [seconds-per-run] [rounds] [connections]
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:-10}
rounds=${2:-3}
connections=${3:-64}
token=kiln-bench-admin-token-0123456789

if ! command -v wrk >/dev/null; then
    apt-get install -y -qq wrk || { sleep 3; apt-get update -qq; apt-get install -y -qq wrk; }
fi
cargo build --release --locked -q -p kiln-server --example auth_overhead

work=$(mktemp -d)
trap 'kill $(cat "$work/pid" 2>/dev/null) 2>/dev/null || true; rm -rf "$work"' EXIT
KILN_ADMIN_TOKEN=$token target/release/examples/auth_overhead "$work/data" > "$work/out" 2> "$work/err" &
echo $! > "$work/pid"
for _ in $(seq 100); do grep -q noauth "$work/out" 2>/dev/null && break; sleep 0.1; done
auth_url=$(sed -n 's/^auth //p' "$work/out")
plain_url=$(sed -n 's/^noauth //p' "$work/out")

echo "== seeding 10000 images"
curl -sf -X POST "$auth_url/v1/base-images" -H "authorization: Bearer $token" -H 'content-type: application/json' \
    -d '{"name":"python3-base","reference":"registry.example/kiln/python3-base:1.0","language":"python3"}' > /dev/null
python3 - "$auth_url" "$token" <<'PY'
import json, sys, urllib.request
url, token = sys.argv[1], sys.argv[2]
for start in range(0, 10000, 500):
    docs = [{"kind": "Image", "name": f"img-{i:05d}", "baseImageName": "python3-base"} for i in range(start, start + 500)]
    req = urllib.request.Request(f"{url}/v1/apply", data=json.dumps(docs).encode(),
                                 headers={"content-type": "application/json", "authorization": f"Bearer {token}"})
    urllib.request.urlopen(req).read()
PY

cat > "$work/auth.lua" <<LUA
wrk.headers["Authorization"] = "Bearer $token"
LUA
# Both runs send the same header through the same script, so wrk does the same work.
run() { wrk -t2 -c"$connections" -d"${duration}s" --latency -s "$work/auth.lua" "$1" | awk '/ 99%/ {p99=$2} /Requests\/sec/ {rps=$2} END {print rps " requests/s, p99 " p99}'; }
echo "== GET /v1/images/img-05000, $rounds alternating rounds of ${duration}s, $connections connections"
for round in $(seq "$rounds"); do
    echo "round $round with auth:    $(run "$auth_url/v1/images/img-05000")"
    echo "round $round without auth: $(run "$plain_url/v1/images/img-05000")"
done
