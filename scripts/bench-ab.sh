#!/usr/bin/env bash
# A/B of two builds of the broker with the commands of docs/benchmarks.md, alternating, each on a
# fresh standalone: REST produce (batched and one per request), HTTP pull-consume, WebSocket
# produce and consume, and WebSocket end-to-end latency at a fixed rate.
#
#   scripts/bench-ab.sh A_BINARY B_BINARY [ROUNDS]
#   N=500000 scripts/bench-ab.sh ...      messages per throughput run (default 200000; runs of
#                                         a few seconds vary by ±15 % on a 2-core machine)
#
# Prints one line per measurement, prefixed with the build (A or B) and the round. Uses ports
# 18190-18191 and a scratch directory under ${TMPDIR:-/tmp}.
set -euo pipefail
A="$1"; B="$2"; ROUNDS="${3:-2}"; N="${N:-200000}"
PERF="$B"   # the load generator: the same binary for both builds, so only the broker differs
SCRATCH="$(mktemp -d "${TMPDIR:-/tmp}/magnetar-ab.XXXXXX")"
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$SCRATCH"' EXIT

run_one() {
    local label="$1" bin="$2" round="$3" port=18190
    local data="$SCRATCH/$label-$round" url="http://127.0.0.1:$port" ws="ws://127.0.0.1:$port"
    "$bin" standalone --data-dir "$data" --http-addr "127.0.0.1:$port" >"$data.log" 2>&1 &
    local pid=$!
    for _ in $(seq 1 100); do curl -sf "$url/readyz" >/dev/null && break; sleep 0.1; done
    curl -sf -X PUT "$url/admin/v2/persistent/public/default/p1/partitions" -H 'content-type: application/json' -d 1 >/dev/null
    # Created up front: builds before the hardening issue did not auto-create on REST produce.
    curl -sf -X PUT "$url/admin/v2/persistent/public/default/one" >/dev/null
    local t=persistent://public/default
    say() { printf '%s round %s %-28s %s\n' "$label" "$round" "$1" "$(grep -E 'msg/s|req/s' | tail -n1)"; }
    "$PERF" perf produce --url "$url" --topic "$t/p1" -n "$N" -s 1024 -b 100 -c 4 2>&1 | say "rest-produce b100 c4"
    "$PERF" perf produce --url "$url" --topic "$t/one" -n $((N / 4)) -s 1024 -b 1 -c 16 2>&1 | say "rest-produce b1 c16"
    "$PERF" perf consume --url "$url" --topic "$t/p1" --subscription s -n "$N" -b 1000 -c 2 2>&1 | say "pull-consume"
    "$PERF" perf ws-produce --url "$ws" --topic "$t/ws1" -n "$N" -s 1024 -w 256 2>&1 | say "ws-produce w256"
    "$PERF" perf ws-consume --url "$ws" --topic "$t/ws1" --subscription c -n "$N" 2>&1 | say "ws-consume"
    "$PERF" perf ws-consume --url "$ws" --topic "$t/e2e" --initial-position Latest -n 50000 >"$data.e2e" 2>&1 &
    local consumer=$!
    sleep 0.5
    "$PERF" perf ws-produce --url "$ws" --topic "$t/e2e" -n 50000 -s 1024 -w 256 --rate 10000 >/dev/null 2>&1
    wait "$consumer" || true
    say "ws e2e at 10k msg/s" <"$data.e2e"
    printf '%s round %s %-28s %s KB\n' "$label" "$round" "rss after the runs" "$(ps -o rss= -p "$pid" | tr -d ' ')"
    kill -TERM "$pid"; wait "$pid" || true
}

for r in $(seq 1 "$ROUNDS"); do
    run_one A "$A" "$r"
    run_one B "$B" "$r"
done
