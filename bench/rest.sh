#!/usr/bin/env bash
# REST throughput: GET /v1/images/{name} and POST /v1/images against a store that holds
# 10,000 images, driven by wrk from loopback. Prints requests/s and latency percentiles.
# Usage: bench/rest.sh [duration-seconds] [connections]
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:-15}
connections=${2:-64}
images=10000
token=kiln-bench-admin-token-0123456789

if ! command -v wrk >/dev/null; then
    apt-get install -y -qq wrk || { sleep 3; apt-get update -qq; apt-get install -y -qq wrk; }
fi
cargo build --release --locked -q

work=$(mktemp -d)
trap 'kill $(cat "$work/pid" 2>/dev/null) 2>/dev/null || true; rm -rf "$work"' EXIT
KILN_CONTROLLER=false KILN_ADMIN_TOKEN=$token target/release/kiln serve --listen 127.0.0.1:0 --data-dir "$work/data" --log warn > "$work/out" 2> "$work/err" &
echo $! > "$work/pid"
for _ in $(seq 100); do grep -q listening "$work/out" 2>/dev/null && break; sleep 0.1; done
url=$(sed -n 's/^listening on //p' "$work/out")

echo "== seeding $images images through /v1/apply (batches of 500)"
curl -sf -X POST "$url/v1/base-images" -H "authorization: Bearer $token" -H 'content-type: application/json' \
    -d '{"name":"python3-base","reference":"registry.example/kiln/python3-base:1.0","language":"python3"}' > /dev/null
python3 - "$url" "$images" "$token" <<'PY'
import json, sys, urllib.request
url, total, token = sys.argv[1], int(sys.argv[2]), sys.argv[3]
for start in range(0, total, 500):
    docs = [{"kind": "Image", "name": f"img-{i:05d}", "baseImageName": "python3-base",
             "systemDependencies": {"packages": [{"name": "libpq5"}]},
             "runtimeDependencies": {"manifest": "psycopg2==2.9.9\n"},
             "tags": [{"key": "team", "value": f"t{i % 10}"}]} for i in range(start, min(start + 500, total))]
    req = urllib.request.Request(f"{url}/v1/apply", data=json.dumps(docs).encode(), headers={"content-type": "application/json", "authorization": f"Bearer {token}"})
    urllib.request.urlopen(req).read()
PY
curl -sf -H "authorization: Bearer $token" "$url/v1/images/img-05000" > /dev/null

cat > "$work/get.lua" <<LUA
wrk.headers["Authorization"] = "Bearer $token"
LUA

cat > "$work/post.lua" <<LUA
-- Unique names per thread and request, so every POST creates a new image.
local counter = 0
local thread_id = 0
function setup(thread)
    thread:set("id", thread_id)
    thread_id = thread_id + 1
end
function request()
    counter = counter + 1
    local body = string.format('{"name":"bench-%d-%d","baseImageName":"python3-base"}', id, counter)
    return wrk.format("POST", "/v1/images", {["Content-Type"] = "application/json", ["Authorization"] = "Bearer $token"}, body)
end
LUA

echo "== GET /v1/images/img-05000 ($connections connections, ${duration}s)"
wrk -t2 -c"$connections" -d"${duration}s" --latency -s "$work/get.lua" "$url/v1/images/img-05000"
echo "== POST /v1/images ($connections connections, ${duration}s)"
wrk -t2 -c"$connections" -d"${duration}s" --latency -s "$work/post.lua" "$url"
echo "== after: $(curl -sf "$url/healthz")"
