#!/usr/bin/env bash
# Chunked messages (issue 12): a release standalone broker; Pulsar's Python client produces N
# messages of SIZE bytes with chunking on (the broker's 5 MiB limit cuts each into chunks) and
# reads them back whole over the binary protocol; then `magnetar perf ws-consume` reads the same
# topic over WebSocket, where the broker joins the chunks.
#
#   scripts/bench-chunked.sh [N] [SIZE]   (defaults 40 messages of 20 MB)
#
# BENCH_MAGNETAR_BIN reuses a built broker; MAGNETAR_TEST_PYTHON names a Python with
# `pulsar-client` (scripts/test.sh installs one into a venv and prints its path).
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-40}"
SIZE="${2:-20000000}"
PY="${MAGNETAR_TEST_PYTHON:?set MAGNETAR_TEST_PYTHON to a python with pulsar-client (scripts/test.sh installs one)}"
if [[ -z "${BENCH_MAGNETAR_BIN:-}" ]]; then
    cargo build --release -p magnetar >/dev/null
fi
BIN="${BENCH_MAGNETAR_BIN:-$PWD/target/release/magnetar}"
TMP="$(mktemp -d)"
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$TMP"; }
trap cleanup EXIT
free() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
PORT="$(free)"
BPORT="$(free)"
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GB", $2/1048576}' /proc/meminfo), $(uname -sr)"
MAGNETAR_BINARY__ADDR="127.0.0.1:$BPORT" MAGNETAR_LOG=warn "$BIN" standalone --data-dir "$TMP/data" \
    --http-addr "127.0.0.1:$PORT" >"$TMP/log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 300); do curl -sf "http://127.0.0.1:$PORT/admin/v2/brokers/health" >/dev/null && break; sleep 0.2; done
T=persistent://public/default/chunked
"$PY" scripts/bench_chunked.py "pulsar://127.0.0.1:$BPORT" "$T" "$N" "$SIZE" 2>/dev/null | grep -v " INFO \| WARN "
"$BIN" perf ws-consume --url "ws://127.0.0.1:$PORT" --topic "$T" -n "$N" --subscription ws --subscription-type Exclusive 2>/dev/null | tail -1
echo "broker peak RSS: $(awk '/VmHWM/ {printf "%.0f MB", $2/1024}' /proc/"${PIDS[0]}"/status)"
