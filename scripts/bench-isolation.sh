#!/usr/bin/env bash
# Tenant isolation under load (issue 14): does a tenant flooding past its publish rate limit
# hurt another tenant on the same broker?
#
#   scripts/bench-isolation.sh [RATE] [N] [LIMIT] [ROUNDS]   (defaults 2000 20000 1000 3)
#
# Tenant `quiet` publishes N messages of 1 KB over WebSocket at RATE msg/s, first alone, then
# while tenant `noisy` (namespace publish rate limited to LIMIT msg/s with Pulsar's
# `POST /admin/v2/namespaces/noisy/ns/publishRate`) publishes over WebSocket as fast as a window
# of 1,000 messages in flight allows (a throttled WebSocket producer waits, it is not failed).
# Prints quiet's p50/p99 in both phases, ROUNDS times, and what noisy achieved (it should sit
# at LIMIT). Ends with one phase where noisy has no limit, for contrast.
set -euo pipefail
cd "$(dirname "$0")/.."
RATE="${1:-2000}"
N="${2:-20000}"
LIMIT="${3:-1000}"
ROUNDS="${4:-3}"
cargo build --release -p magnetar >/dev/null
BIN="$PWD/target/release/magnetar"
TMP="$(mktemp -d)"
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$TMP"; }
trap cleanup EXIT
PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
URL="http://127.0.0.1:$PORT"
MAGNETAR_LOG=warn "$BIN" standalone --data-dir "$TMP/data" --http-addr "127.0.0.1:$PORT" >"$TMP/log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 300); do curl -sf "$URL/admin/v2/brokers/health" >/dev/null && break; sleep 0.2; done

call() { curl -sf -X "$1" -H 'content-type: application/json' ${3:+-d "$3"} "$URL$2" >/dev/null; }
for t in quiet noisy; do
    call PUT "/admin/v2/tenants/$t" '{"adminRoles":[],"allowedClusters":[]}'
    call PUT "/admin/v2/namespaces/$t/ns"
    call PUT "/admin/v2/persistent/$t/ns/t"
done
call POST /admin/v2/namespaces/noisy/ns/publishRate \
    "{\"publishThrottlingRateInMsg\":$LIMIT,\"publishThrottlingRateInByte\":-1}"

quiet() {
    "$BIN" perf ws-produce --url "ws://127.0.0.1:$PORT" --topic persistent://quiet/ns/t \
        -n "$N" -s 1024 --rate "$RATE" 2>/dev/null | tail -1
}

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GB", $2/1048576}' /proc/meminfo), $(uname -sr)"
for round in $(seq 1 "$ROUNDS"); do
    echo "round $round alone:      $(quiet)"
    "$BIN" perf ws-produce --url "ws://127.0.0.1:$PORT" --topic persistent://noisy/ns/t -n 100000000 -s 1024 -w 1000 \
        >"$TMP/noisy.out" 2>&1 &
    NOISY=$!
    sleep 2
    before="$(curl -sf "$URL/admin/v2/persistent/noisy/ns/t/stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["msgInCounter"])')"
    started="$(date +%s.%N)"
    echo "round $round with noisy: $(quiet)"
    after="$(curl -sf "$URL/admin/v2/persistent/noisy/ns/t/stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["msgInCounter"])')"
    python3 -c "import sys,time; print(f'  noisy stored {(int(sys.argv[2]) - int(sys.argv[1])) / (time.time() - float(sys.argv[3])):.0f} msg/s (limit $LIMIT)')" "$before" "$after" "$started"
    kill "$NOISY" 2>/dev/null || true; wait "$NOISY" 2>/dev/null || true
done

# For contrast: the same noisy producer without a limit.
call DELETE /admin/v2/namespaces/noisy/ns/publishRate
"$BIN" perf ws-produce --url "ws://127.0.0.1:$PORT" --topic persistent://noisy/ns/t -n 100000000 -s 1024 -w 1000 \
    >"$TMP/noisy.out" 2>&1 &
NOISY=$!
sleep 2
echo "noisy without a limit:  $(quiet)"
kill "$NOISY" 2>/dev/null || true; wait "$NOISY" 2>/dev/null || true
