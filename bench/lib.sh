#!/usr/bin/env bash
# What the benchmark scripts share: scratch space cleaned on exit (buildah storage first),
# timing helpers, loopback servers (static files, docker-registry, kiln serve) and the CLI.
# Sourced after the script sets $work, $cache, $kiln and $token; `fail` is defined here.
# shellcheck disable=SC2034,SC2154  # results is read, and work, cache, kiln, token are set, by the sourcing script

fail() { echo "$(basename "$0"): $*" >&2; exit 1; }
# Extra environment for `kiln serve` (NAME=value words), set by the script.
kiln_env=()

storage_flags() { echo "--root $1/storage --runroot $1/runroot --storage-driver overlay"; }
cleanup() {
    # shellcheck disable=SC2013
    for pid in $(cat "$work"/*.pid 2>/dev/null); do kill "$pid" 2>/dev/null || true; done
    # shellcheck disable=SC2013
    for pid in $(cat "$work"/*.pid 2>/dev/null); do wait "$pid" 2>/dev/null || true; done
    for store in "$work"/buildah-*; do
        [ -d "$store/storage" ] || continue
        # shellcheck disable=SC2046
        buildah $(storage_flags "$store") rm --all >/dev/null 2>&1 || true
        # shellcheck disable=SC2046
        buildah $(storage_flags "$store") rmi --all --force >/dev/null 2>&1 || true
    done
    findmnt -rn -o TARGET | { grep "^$work/" || true; } | sort -r | while read -r m; do umount "$m" || true; done
    rm -rf "$work"
}

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN {printf "%.3f", b - a}'; }
median() { tr ' ' '\n' | grep . | sort -g | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
declare -A results
add() { results[$1]="${results[$1]:-} $2"; }

# static NAME DIR: a static file server on a free port; prints its URL.
static() {
    local name=$1 dir=$2
    python3 -c '
import functools, http.server, sys
class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass
server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=sys.argv[1]))
print(server.server_address[1], flush=True)
server.serve_forever()
' "$dir" > "$work/$name.out" 2> "$work/$name.err" &
    echo $! > "$work/$name.pid"
    for _ in $(seq 100); do [ -s "$work/$name.out" ] && break; sleep 0.1; done
    [ -s "$work/$name.out" ] || fail "the $name server did not start: $(cat "$work/$name.err")"
    echo "http://127.0.0.1:$(head -1 "$work/$name.out")"
}

# start_registry NAME: docker-registry on loopback with its storage in $work/registry-NAME;
# prints its address. A port picked by binding :0 can be taken first: try a few.
start_registry() {
    local name=$1 port
    for _ in 1 2 3 4 5; do
        port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
        mkdir -p "$work/registry-$name/storage"
        cat > "$work/registry-$name/config.yml" <<YAML
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: "$work/registry-$name/storage"
http:
  addr: 127.0.0.1:$port
  secret: kiln-bench-upload-state-secret
YAML
        docker-registry serve "$work/registry-$name/config.yml" > "$work/registry-$name.out" 2> "$work/registry-$name.err" &
        echo $! > "$work/registry-$name.pid"
        for _ in $(seq 100); do
            kill -0 "$(cat "$work/registry-$name.pid")" 2>/dev/null || break
            if curl -sf -o /dev/null "http://127.0.0.1:$port/v2/"; then echo "127.0.0.1:$port"; return; fi
            sleep 0.1
        done
        kill "$(cat "$work/registry-$name.pid")" 2>/dev/null || true
        rm -f "$work/registry-$name.pid"
    done
    fail "docker-registry did not start: $(cat "$work/registry-$name.err")"
}

# start_kiln NAME: a fresh server on a fresh data dir $work/kiln-NAME; sets kiln_url.
start_kiln() {
    local name=$1
    rm -rf "$work/kiln-$name"
    KILN_ADMIN_TOKEN=$token KILN_LOG=warn KILN_CONTROLLER=true KILN_CONTROLLER_RETRY_SECONDS=1 \
        KILN_APT_CONFIG_DIR="$work/apt" SOURCE_DATE_EPOCH=0 \
        env "${kiln_env[@]}" "$kiln" serve --listen 127.0.0.1:0 --data-dir "$work/kiln-$name" \
        > "$work/kiln-$name.out" 2> "$work/kiln-$name.err" &
    echo $! > "$work/kiln-$name.pid"
    kiln_url=""
    for _ in $(seq 100); do grep -q '^listening on ' "$work/kiln-$name.out" 2>/dev/null && break; sleep 0.1; done
    kiln_url=$(sed -n 's/^listening on //p' "$work/kiln-$name.out")
    [ -n "$kiln_url" ] || fail "kiln did not start: $(cat "$work/kiln-$name.err")"
}
stop_kiln() {
    local name=$1 pid
    pid=$(cat "$work/kiln-$name.pid")
    kill "$pid"; wait "$pid" 2>/dev/null || true
    rm -f "$work/kiln-$name.pid"
}
cli() { KILN_URL=$kiln_url KILN_TOKEN=$token "$kiln" "$@"; }

# Starts from a clean $work and cleans it on any exit.
bench_init() {
    trap cleanup EXIT
    trap 'exit 130' INT TERM
    cleanup
    mkdir -p "$cache" "$work"
}
