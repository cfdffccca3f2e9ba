#!/usr/bin/env bash
# Produce throughput over Pulsar's binary protocol with Pulsar's own Python client (the C++
# client inside) against the same release broker measured over WebSocket (issue 12).
#
#   scripts/bench-binary.sh [N] [SIZE]   (defaults 200000 messages of 1024 bytes)
#
# Needs the Python client: PULSAR_PYTHON=/path/to/python with `pulsar-client` installed (the venv
# scripts/test.sh makes under ~/.cache/magnetar/pulsar-client-*/ does). BENCH_MAGNETAR_BIN reuses
# a built broker instead of building the release one.
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-200000}"
SIZE="${2:-1024}"
PY="${PULSAR_PYTHON:-$(ls -d "${HOME:-/root}"/.cache/magnetar/pulsar-client-*/bin/python 2>/dev/null | tail -1)}"
[[ -x "$PY" ]] && "$PY" -c 'import pulsar' 2>/dev/null ||
    { echo "no Python with pulsar-client: set PULSAR_PYTHON (scripts/test.sh installs one)" >&2; exit 1; }
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
URL="http://127.0.0.1:$PORT"
MAGNETAR_BINARY__ADDR="127.0.0.1:$BPORT" MAGNETAR_LOG=warn "$BIN" standalone --data-dir "$TMP/data" \
    --http-addr "127.0.0.1:$PORT" >"$TMP/log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 300); do curl -sf "$URL/admin/v2/brokers/health" >/dev/null && break; sleep 0.2; done
curl -sf "$URL/admin/v2/brokers/health" >/dev/null || { echo "the broker did not start:" >&2; cat "$TMP/log" >&2; exit 1; }

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GB", $2/1048576}' /proc/meminfo), $(uname -sr)"
for batching in True False; do
    "$PY" - "pulsar://127.0.0.1:$BPORT" "persistent://public/default/bin-$batching" "$N" "$SIZE" "$batching" <<'PY'
import sys, time, threading, pulsar
url, topic, n, size, batching = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5] == "True"
n = n if batching else n // 4  # one entry per message: slower, fewer suffice
client = pulsar.Client(url, logger=pulsar.ConsoleLogger(pulsar.LoggerLevel.Error))
producer = client.create_producer(topic, batching_enabled=batching, block_if_queue_full=True,
                                  max_pending_messages=10000, batching_max_publish_delay_ms=1)
done, errors, lock, finished = [0], [0], threading.Lock(), threading.Event()
def sent(res, _id):
    with lock:
        done[0] += 1
        if res != pulsar.Result.Ok:
            errors[0] += 1
        if done[0] == n:
            finished.set()
payload = b"x" * size
start = time.time()
for _ in range(n):
    producer.send_async(payload, sent)
finished.wait()
secs = time.time() - start
print(f"binary (python client, batching {'on ' if batching else 'off'}): {n} msgs in {secs:.2f}s = {n / secs:.0f} msg/s, {n * size / secs / 1e6:.1f} MB/s, {errors[0]} errors")
client.close()
PY
done
"$BIN" perf ws-produce --url "ws://127.0.0.1:$PORT" --topic persistent://public/default/ws -n "$N" -s "$SIZE" -w 1000 2>/dev/null | tail -1
