#!/usr/bin/env bash
# The cost of a Prometheus scrape with many topics (issue 14, metrics parity).
#
#   scripts/bench-metrics.sh [TOPICS] [SCRAPES]      (defaults 10000 and 20)
#
# For each of the two exposition modes (`[broker.metrics] topic_level = true`, Pulsar's
# exposeTopicLevelMetricsInPrometheus, and `false`, namespace aggregation) it starts a release
# `magnetar standalone` on a fresh data dir, loads TOPICS topics (one REST produce each, spread
# over 10 namespaces, one subscription each through a pull), then scrapes /metrics SCRAPES times
# and prints: response size, scrape wall time (p50/p99/max), broker CPU time per scrape (from
# /proc), and the broker's RSS before and after the scrapes.
set -euo pipefail
cd "$(dirname "$0")/.."
TOPICS="${1:-10000}"
SCRAPES="${2:-20}"
cargo build --release -p magnetar >/dev/null
BIN="$PWD/target/release/magnetar"
TMP="$(mktemp -d)"
PID=""
cleanup() { [[ -n "$PID" ]] && kill "$PID" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$TMP"; }
trap cleanup EXIT

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

run_mode() {
    local topic_level="$1" dir="$TMP/$1" p
    p="$(port)"
    mkdir -p "$dir"
    MAGNETAR_BROKER__METRICS__TOPIC_LEVEL="$topic_level" MAGNETAR_LOG=warn \
        "$BIN" standalone --data-dir "$dir" --http-addr "127.0.0.1:$p" >"$TMP/$1.log" 2>&1 &
    PID=$!
    python3 scripts/bench_metrics.py "http://127.0.0.1:$p" "$PID" "$TOPICS" "$SCRAPES" "topic_level=$topic_level" \
        || { tail -20 "$TMP/$1.log" >&2; exit 1; }
    kill "$PID"; wait "$PID" 2>/dev/null || true; PID=""
}

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GB", $2/1048576}' /proc/meminfo), $(uname -sr)"
run_mode true
run_mode false
