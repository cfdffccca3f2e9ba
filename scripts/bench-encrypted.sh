#!/usr/bin/env bash
# End-to-end encrypted messages (issue 12): a release standalone broker; Pulsar's Python client
# produces N messages of SIZE bytes in batches, unencrypted then encrypted, and reads each topic
# back (decrypting the second).
#
#   scripts/bench-encrypted.sh [N] [SIZE]   (defaults 200,000 messages of 1 KB)
#
# BENCH_MAGNETAR_BIN reuses a built broker; MAGNETAR_TEST_PYTHON names a Python with
# `pulsar-client` (scripts/test.sh installs one into a venv and prints its path).
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-200000}"
SIZE="${2:-1024}"
PY="${MAGNETAR_TEST_PYTHON:?set MAGNETAR_TEST_PYTHON to a python with pulsar-client (scripts/test.sh installs one)}"
# shellcheck source=lib/standalone-bench.sh
source scripts/lib/standalone-bench.sh
start_standalone
"$PY" scripts/bench_encrypted.py "$PULSAR" persistent://public/default/bench "$N" "$SIZE" 2>/dev/null | grep -v " INFO \| WARN "
echo "broker peak RSS: $(awk '/VmHWM/ {printf "%.0f MB", $2/1024}' /proc/"${PIDS[0]}"/status)"
