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
# shellcheck source=lib/standalone-bench.sh
source scripts/lib/standalone-bench.sh
start_standalone
T=persistent://public/default/chunked
"$PY" scripts/bench_chunked.py "$PULSAR" "$T" "$N" "$SIZE" 2>/dev/null | grep -v " INFO \| WARN "
"$BIN" perf ws-consume --url "$WS" --topic "$T" -n "$N" --subscription ws --subscription-type Exclusive 2>/dev/null | tail -1
echo "broker peak RSS: $(awk '/VmHWM/ {printf "%.0f MB", $2/1024}' /proc/"${PIDS[0]}"/status)"
