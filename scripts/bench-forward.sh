#!/usr/bin/env bash
# The cost of a forwarded request in the broker tier (issue 11): REST produce latency through
# the broker owning the topic's bundle against the same produce through another broker, which
# forwards it once to the owner.
#
#   scripts/bench-forward.sh [N] [ROUNDS]   (defaults 5000 3)
#
# Starts a throwaway PostgreSQL (the `postgres` user's initdb/pg_ctl, as scripts/test.sh does;
# MAGNETAR_PG_BIN points at them) and two release brokers with `[broker.tier] enabled` and a
# local object store, creates a non-partitioned topic, asks the ownership view which broker owns
# it, then runs `magnetar perf produce` with one message per request and one request in flight
# (latency, not throughput) N times against the owner and against the other broker, ROUNDS
# times alternating. Prints perf's summary lines (p50/p99 in ms).
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-5000}"
ROUNDS="${2:-3}"
PG_BIN="${MAGNETAR_PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)}"
[[ -x "$PG_BIN/initdb" ]] || { echo "initdb not found: set MAGNETAR_PG_BIN" >&2; exit 1; }
cargo build --release -p magnetar >/dev/null
BIN="$PWD/target/release/magnetar"
TMP="$(mktemp -d)"
chmod 755 "$TMP"
PIDS=()
as_pg() { if [[ "$(id -u)" == 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi; }
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    [[ -d "$TMP/pg/data" ]] && as_pg "$PG_BIN/pg_ctl" stop -D "$TMP/pg/data" -m immediate >/dev/null 2>&1 || true
    rm -rf "$TMP"
}
trap cleanup EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

PG_PORT="$(port)"
mkdir -p "$TMP/pg/sock"
[[ "$(id -u)" == 0 ]] && chown -R postgres: "$TMP/pg"
as_pg "$PG_BIN/initdb" -D "$TMP/pg/data" -U postgres --auth=trust --no-sync -E UTF8 --locale=C >/dev/null
as_pg "$PG_BIN/pg_ctl" start -D "$TMP/pg/data" -W -l "$TMP/pg/log" -o \
    "-c listen_addresses=127.0.0.1 -p $PG_PORT -c unix_socket_directories=$TMP/pg/sock" >/dev/null
until "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" -U postgres -t 1; do sleep 0.1; done

start_broker() {
    local name="$1" port="$2"
    mkdir -p "$TMP/$name"
    cat >"$TMP/$name/magnetar.toml" <<TOML
http_addr = "127.0.0.1:$port"
data_dir = "$TMP/$name"
[metadata]
url = "postgres://postgres@127.0.0.1:$PG_PORT/postgres"
[object_store]
kind = "local"
root = "$TMP/objects"
[broker]
cluster = "bench"
[broker.tier]
enabled = true
refresh_interval_ms = 200
TOML
    MAGNETAR_LOG=warn "$BIN" broker --insecure --config "$TMP/$name/magnetar.toml" >"$TMP/$name.log" 2>&1 &
    PIDS+=($!)
    for _ in $(seq 1 300); do curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && return; sleep 0.2; done
    echo "broker $name did not start" >&2; tail "$TMP/$name.log" >&2; exit 1
}
A="$(port)"; B="$(port)"
start_broker a "$A"
start_broker b "$B"

call() { curl -sf -X "$1" -H 'content-type: application/json' ${3:+-d "$3"} "http://127.0.0.1:$A$2"; }
call PUT /admin/v2/tenants/bench '{"allowedClusters":["bench"]}' >/dev/null
call PUT /admin/v2/namespaces/bench/ns >/dev/null
call PUT /admin/v2/persistent/bench/ns/t >/dev/null
OWNER="$(call GET /admin/v2/brokers/bench/bundles | python3 -c 'import json,sys; print([r["owner"] for r in json.load(sys.stdin) if r["state"]=="owned"][0])')"
OTHER="127.0.0.1:$A"; [[ "$OWNER" == "$OTHER" ]] && OTHER="127.0.0.1:$B"
echo "owner $OWNER, forwarding broker $OTHER"

perf() { "$BIN" perf produce --url "http://$1" --topic persistent://bench/ns/t -n "$N" -s 1024 -b 1 -c 1 2>/dev/null | sed "s|^|$2 |"; }
perf "$OWNER" "warm-up" >/dev/null
perf "$OTHER" "warm-up" >/dev/null
for r in $(seq 1 "$ROUNDS"); do
    perf "$OWNER" "round $r direct:   "
    perf "$OTHER" "round $r forwarded:"
done
