#!/usr/bin/env bash
# Durability modes side by side (issue 13), in one run, on a tier of three release brokers
# (cluster mode, `[broker.tier] enabled`) sharing one throwaway PostgreSQL (fsync on, its
# defaults) as their metadata store and one throwaway SeaweedFS (`weed mini`, S3 API) as their
# object store, all on loopback (scripts/lib/services.sh, the code scripts/test.sh starts them
# with). Every broker, both services and the client share the machine's cores.
#
#   scripts/bench-durability.sh [N] [RATE] [SECONDS]   (defaults 1000000 2000 20)
#
# One namespace per mode, each with one bundle (so one owner), a non-partitioned topic and one of
# 16 partitions: public/local (`local`), public/objstore (`object-store`), public/repl22
# (`replicated`, write and ack quorum 2: the default persistence) and public/repl32
# (`replicated`, write quorum 3, ack quorum 2). The leader assigns the bundles; the balance
# moves none (`max_moves_per_minute = 0`) and splits none. Each topic is driven through the
# broker that owns it (no forwarding hop), and the owners are printed. For each mode,
# `magnetar perf ws-produce` (1 KB messages, one producer; keyless messages go round-robin over
# the partitions) publishes:
#   - throughput: N messages as fast as 1,000 in flight allow (Pulsar clients' default
#     maxPendingMessages), to each topic; and to the 16 partitions with 10,000 in flight;
#   - latency: RATE msg/s for SECONDS seconds to each topic (1,000 in flight at most).
# The latency phases of every mode run first, then the throughput phases; before each phase the
# script waits for the segment uploads the phases before left to finish (`settle`).
# Ack latency is per message, from its send to its acknowledgement.
# Each phase prints throughput and per-message ack latency p50/p99/p99.9, and from counters of
# the owner read before and after it: its WAL fsyncs; for object-store, objects PUT per second,
# bytes per PUT, PUTs per GB of payload, the PUT p99 (`magnetar_object_store_log_put_seconds`,
# interpolated in its buckets) and the S3 requests SeaweedFS counted by type (its own metrics);
# for replicated, batches confirmed by an ack quorum per second, KiB per batch and the
# replication ack p99 (`magnetar_replication_ack_seconds`: send to ack quorum fsynced). Also the
# CPU each broker used (the owner's replicas receive and fsync its stream: part of the cost), the
# load average, and PostgreSQL transactions per second (`pg_stat_database.xact_commit`; the three
# brokers' leases and checkpoints make the idle rate, measured first).
# Targets checked:
#   - object-store: p99 at most the window plus twice the PUT p99 of the same phase, and PUTs per
#     second at most 1000 / window_ms whatever the number of partitions;
#   - replicated 2/2: p99 at most twice, and throughput at least 70 % of, the `local` phase of
#     the same topic and load in this run (3/2 is compared with `local` too, without a target).
# This shared machine's speed drifts within minutes, so the modes' phases alternate: each round
# runs every mode's phases once, and a replicated phase is compared with the `local` phase of the
# same shape just before it. BENCH_ROUNDS (default 3) rounds of latency phases and
# BENCH_THROUGHPUT_ROUNDS (default 1) of throughput phases; the medians of the rounds' ratios are
# judged at the end. A last table repeats every phase.
#
# BENCH_LOG sets the brokers' MAGNETAR_LOG (default `warn`) and BENCH_KEEP_LOGS names a directory
# their logs are copied to at the end (e.g. BENCH_LOG=warn,magnetar_storage::objlog=debug).
# BENCH_MODES limits the modes measured (see MODES below); BENCH_MAGNETAR_BIN reuses a built broker; MAGNETAR_PG_BIN names the directory of
# initdb/pg_ctl; the `weed` binary is installed once with pip as scripts/test.sh does
# (MAGNETAR_SEAWEEDFS_VERSION). Everything started is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-1000000}"
RATE="${2:-2000}"
SECS="${3:-20}"
ROUNDS="${BENCH_ROUNDS:-3}"
THROUGHPUT_ROUNDS="${BENCH_THROUGHPUT_ROUNDS:-1}"
for r in "$ROUNDS" "$THROUGHPUT_ROUNDS"; do
    [[ "$r" =~ ^[1-9][0-9]*$ ]] || { echo "BENCH_ROUNDS and BENCH_THROUGHPUT_ROUNDS must be positive numbers of rounds, not '$r'" >&2; exit 2; }
done
WINDOW_MS=25
PARTITIONS=16
SIZE=1024
BUCKET=magnetar-bench
BROKERS=(a b c)
MODES=(local object-store "replicated 2/2" "replicated 3/2")
# BENCH_MODES="local,object-store" measures only those (comma-separated, names as above).
if [[ -n "${BENCH_MODES:-}" ]]; then
    IFS=, read -r -a MODES <<<"$BENCH_MODES"
fi

die() { printf 'scripts/bench-durability.sh: error: %s\n' "$*" >&2; exit 1; }
# The namespace (in tenant public) a mode is measured in.
ns_of() {
    case "$1" in
        local) echo local ;;
        object-store) echo objstore ;;
        "replicated 2/2") echo repl22 ;;
        "replicated 3/2") echo repl32 ;;
        *) die "unknown mode $1" ;;
    esac
}
# shellcheck source=lib/services.sh
source scripts/lib/services.sh
PG_BIN="$(find_pg_bin || true)"
[[ -n "$PG_BIN" ]] || die "PostgreSQL server binaries not found: install PostgreSQL or set MAGNETAR_PG_BIN"
[[ -x "$PG_BIN/psql" ]] || die "psql not found next to initdb in $PG_BIN"
ensure_weed
if [[ -z "${BENCH_MAGNETAR_BIN:-}" ]]; then
    cargo build --release -p magnetar >/dev/null
fi
BIN="${BENCH_MAGNETAR_BIN:-$PWD/target/release/magnetar}"
[[ -x "$BIN" ]] || die "broker binary not found at $BIN"
TMP="$(mktemp -d)"
# The postgres user must reach its data directory inside the scratch directory.
chmod 755 "$TMP"
declare -A PID HTTP
# The brokers first (they use both services), then the services, then the scratch directory.
finish() {
    for p in "${PID[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${PID[@]}"; do wait "$p" 2>/dev/null || true; done
    if [[ -n "${BENCH_KEEP_LOGS:-}" ]]; then mkdir -p "$BENCH_KEEP_LOGS" && cp "$TMP"/*.log "$BENCH_KEEP_LOGS"/ 2>/dev/null || true; fi
    stop_seaweedfs
    stop_postgres
    rm -rf "$TMP"
}
trap finish EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GB", $2/1048576}' /proc/meminfo), $(uname -sr)"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== services"
read -r PG_PORT WEED_METRICS_PORT <<<"$(free_ports 2)"
start_postgres "$TMP/pg" "$PG_PORT"
echo "postgresql: $("$PG_BIN/postgres" --version)"
start_seaweedfs "$TMP/seaweedfs" "$BUCKET" bench-key bench-secret "$WEED_METRICS_PORT"

echo "== brokers"
# start_broker NAME PORT: a broker of cluster `bench` on 127.0.0.1:PORT (HTTP; its binary
# protocol on a port of its own choosing), data in $TMP/NAME, log in $TMP/NAME.log.
start_broker() {
    local name="$1" port="$2"
    mkdir -p "$TMP/$name"
    cat >"$TMP/$name/magnetar.toml" <<TOML
http_addr = "127.0.0.1:$port"
data_dir = "$TMP/$name"
[metadata]
url = "postgres://postgres@127.0.0.1:$PG_PORT/postgres"
[object_store]
kind = "s3"
endpoint = "http://127.0.0.1:$WEED_S3_PORT"
region = "us-east-1"
bucket = "$BUCKET"
access_key_id = "bench-key"
secret_access_key = "bench-secret"
path_style = true
allow_http = true
[broker]
cluster = "bench"
default_namespace_bundles = 1
[broker.durability]
object_store_window_ms = $WINDOW_MS
[broker.membership]
lease_ms = 10000
renew_interval_ms = 2000
fence_margin_ms = 1000
[broker.tier]
enabled = true
max_moves_per_minute = 0
auto_split = false
drain_timeout_ms = 2000
TOML
    MAGNETAR_BINARY__ADDR=127.0.0.1:0 MAGNETAR_LOG="${BENCH_LOG:-warn}" \
        "$BIN" broker --config "$TMP/$name/magnetar.toml" --insecure >"$TMP/$name.log" 2>&1 &
    PID[$name]=$!
    HTTP[$name]="127.0.0.1:$port"
}
read -r -a ports <<<"$(free_ports ${#BROKERS[@]})"
for i in "${!BROKERS[@]}"; do start_broker "${BROKERS[$i]}" "${ports[$i]}"; done
for b in "${BROKERS[@]}"; do
    wait_http "broker $b" "http://${HTTP[$b]}/readyz" 200 "${PID[$b]}" "$TMP/$b.log"
done
echo "brokers: $(for b in "${BROKERS[@]}"; do printf '%s %s, ' "$b" "${HTTP[$b]}"; done)$("$BIN" --version 2>/dev/null || echo "$BIN"), object_store_window_ms $WINDOW_MS"
# Administration goes through broker a (it forwards what another broker owns).
URL="http://${HTTP[a]}"

call() { # METHOD PATH [JSON]: fails the run with the broker's answer unless it is a 2xx
    local out
    out="$(curl -sS -X "$1" -H 'content-type: application/json' ${3:+-d "$3"} -w '\n%{http_code}' "$URL$2")"
    [[ "${out##*$'\n'}" == 2* ]] || die "$1 $2 answered ${out##*$'\n'}: ${out%$'\n'*}"
}
# Standalone creates tenant public; a cluster does not.
call PUT /admin/v2/tenants/public '{"allowedClusters":["bench"]}'
for mode in "${MODES[@]}"; do call PUT "/admin/v2/namespaces/public/$(ns_of "$mode")"; done
for mode in "${MODES[@]}"; do
    case "$mode" in
        local) call POST /admin/v2/namespaces/public/local/durability '{"mode":"local"}' ;;
        object-store)
            call POST /admin/v2/namespaces/public/objstore/durability '{"mode":"object-store","objectStoreMaxWaitMs":30000}' ;;
        "replicated 2/2")
            call POST /admin/v2/namespaces/public/repl22/durability '{"mode":"replicated","objectStoreMaxWaitMs":30000}' ;;
        "replicated 3/2")
            # The mode first: a quorum above 1 is refused under `local`.
            call POST /admin/v2/namespaces/public/repl32/durability '{"mode":"replicated","objectStoreMaxWaitMs":30000}'
            call POST /admin/v2/namespaces/public/repl32/persistence \
                '{"bookkeeperEnsemble":3,"bookkeeperWriteQuorum":3,"bookkeeperAckQuorum":2,"managedLedgerMaxMarkDeleteRate":0}' ;;
    esac
done
for mode in "${MODES[@]}"; do
    ns="$(ns_of "$mode")"
    call PUT "/admin/v2/persistent/public/$ns/t"
    call PUT "/admin/v2/persistent/public/$ns/p$PARTITIONS/partitions" "$PARTITIONS"
    echo "durability: public/$ns $(curl -sf "$URL/admin/v2/namespaces/public/$ns/durability")," \
        "persistence $(curl -sf "$URL/admin/v2/namespaces/public/$ns/persistence" || echo none)"
done

psql_value() { "$PG_BIN/psql" -X -At -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -c "$1"; }
CLK_TCK="$(getconf CLK_TCK)"
# snapshot FILE OWNER: the owner's and SeaweedFS's counters a phase is measured by, and the CPU
# time every broker has used (from /proc) with the time of reading.
snapshot() {
    {
        curl -sf "http://${HTTP[$2]}/metrics" |
            grep -E '^magnetar_(object_store_log_|wal_fsync_seconds_bucket|replication_(batches|bytes|failures)_total|replication_ack_seconds_bucket)' || true
        curl -sf "http://127.0.0.1:$WEED_METRICS_PORT/metrics" |
            grep -E "^SeaweedFS_s3_request_(total|seconds_bucket)\{bucket=\"$BUCKET\"" || true
        # Every broker's replica appends (the owner's peers store its stream), told apart by a
        # broker label and summed per bucket by `quantile`.
        for b in "${BROKERS[@]}"; do
            curl -sf "http://${HTTP[$b]}/metrics" | grep -E '^magnetar_replica_append_seconds_bucket' |
                sed "s/{/{broker=\"$b\",/" || true
        done
        for b in "${BROKERS[@]}"; do
            awk -v b="$b" -v hz="$CLK_TCK" '{ printf "bench_cpu_seconds{broker=\"%s\"} %.2f\n", b, ($14 + $15) / hz }' \
                "/proc/${PID[$b]}/stat"
        done
        echo "bench_time_seconds $(now)"
    } >"$1"
}
# pg_snapshot FILE: the time and PostgreSQL's committed transactions. PostgreSQL publishes a
# backend's transaction counts at most once a second, hence the pause before reading them.
pg_snapshot() {
    sleep 1.5
    echo "$(now) $(psql_value "select xact_commit from pg_stat_database where datname = 'postgres'")" >"$1"
}

# report MODE TOPIC KIND IN_FLIGHT OWNER PERF_LINE BEFORE AFTER PG_BEFORE PG_AFTER: prints the
# phase's figures and appends its row to $TMP/rows (where a replicated phase finds the `local`
# phase it is compared with).
report() {
    python3 - "$WINDOW_MS" "$SIZE" "$BUCKET" "$TMP/rows" "$@" <<'PY'
import ast, os, re, sys
window_ms, size, bucket, rows, mode, topic, kind, inflight, owner, perf, before, after, pg0, pg1 = sys.argv[1:]
window_ms, size = float(window_ms), int(size)

m = re.search(r"(\d+) msgs in ([\d.]+)s = (\d+) msg/s, ([\d.]+) MB/s \| ack latency ms p50 ([\d.]+) "
              r"p99 ([\d.]+) p99\.9 ([\d.]+) max ([\d.]+)", perf)
if not m:
    sys.exit(f"unexpected perf output: {perf!r}")
msgs, secs, rate, mbs, p50, p99, p999, pmax = (float(x) for x in m.groups())

def read(path):
    values = {}
    for line in open(path):
        name, value = line.rsplit(" ", 1)
        values[name] = float(value)
    return values

a, b = read(before), read(after)
d = {k: b[k] - a.get(k, 0.0) for k in b}

def quantile(q, prefix):
    """Prometheus' histogram_quantile over the delta of cumulative buckets, in ms."""
    by_le = {}
    for k, v in d.items():
        if k.startswith(prefix):
            le = re.search(r'le="([^"]+)"', k).group(1)
            le = float("inf") if le == "+Inf" else float(le)
            by_le[le] = by_le.get(le, 0.0) + v
    buckets = sorted(by_le.items())
    if not buckets or buckets[-1][1] == 0:
        return None, None
    rank, prev_le, prev_n = q * buckets[-1][1], 0.0, 0.0
    for le, n in buckets:
        if n >= rank:
            if le == float("inf"):
                return prev_le * 1000, (prev_le * 1000, None)
            return (prev_le + (le - prev_le) * (rank - prev_n) / max(n - prev_n, 1e-9)) * 1000, (prev_le * 1000, le * 1000)
        prev_le, prev_n = le, n
    return None, None

def bucket_text(bounds):
    return f"{bounds[0]:g}-{bounds[1]:g} ms bucket" if bounds and bounds[1] else "top bucket"

puts = d.get("magnetar_object_store_log_puts_total", 0.0)
put_bytes = d.get("magnetar_object_store_log_bytes_total", 0.0)
failures = d.get("magnetar_object_store_log_failures_total", 0.0)
put_p99, put_bucket = quantile(0.99, "magnetar_object_store_log_put_seconds_bucket")
s3_p99, _ = quantile(0.99, f'SeaweedFS_s3_request_seconds_bucket{{bucket="{bucket}",type="PUT"')
s3 = {}
for k, v in d.items():
    if k.startswith("SeaweedFS_s3_request_total"):
        t = re.search(r'type="([^"]+)"', k).group(1)
        s3[t] = s3.get(t, 0.0) + v
s3_errors = sum(v for k, v in d.items() if k.startswith("SeaweedFS_s3_request_total") and not re.search(r'code="2', k))
batches = d.get("magnetar_replication_batches_total", 0.0)
repl_bytes = d.get("magnetar_replication_bytes_total", 0.0)
repl_failures = d.get("magnetar_replication_failures_total", 0.0)
repl_p99, repl_bucket = quantile(0.99, "magnetar_replication_ack_seconds_bucket")
repl_p50, _ = quantile(0.5, "magnetar_replication_ack_seconds_bucket")
peer_p50, _ = quantile(0.5, "magnetar_replica_append_seconds_bucket")
peer_p99, _ = quantile(0.99, "magnetar_replica_append_seconds_bucket")
# Each file: the wall time of the reading and xact_commit; the reading of pg0 is one transaction.
(t0, x0), (t1, x1) = ([float(v) for v in open(f).read().split()] for f in (pg0, pg1))
xacts, pg_secs = x1 - x0 - 1, t1 - t0
gb = msgs * size / 1e9
fsync_p99, _ = quantile(0.99, "magnetar_wal_fsync_seconds_bucket")
fsyncs = d.get('magnetar_wal_fsync_seconds_bucket{le="+Inf"}', 0.0)
slow = {le: fsyncs - d.get(f'magnetar_wal_fsync_seconds_bucket{{le="{le}"}}', 0.0) for le in ("0.02", "0.1", "1")}
# CPU of each broker in % of one core over the time between the snapshots.
wall = d["bench_time_seconds"]
cpu = {re.search(r'broker="([^"]+)"', k).group(1): v / wall * 100 for k, v in d.items() if k.startswith("bench_cpu_seconds")}
load1 = os.getloadavg()[0]

parts = topic[1:] if topic.startswith("p") else "1"
print(f"  {mode:14} {parts:>2} partition(s), {kind}, {inflight} in flight: {msgs:.0f} msgs in {secs:6.2f} s = {rate:6.0f} msg/s, {mbs:5.1f} MB/s | "
      f"ack ms p50 {p50:.2f} p99 {p99:.2f} p99.9 {p999:.2f} max {pmax:.2f}")
print(f"    wal ({owner}): {fsyncs:.0f} fsyncs, p99 {fsync_p99 or 0:.1f} ms, over 20 ms {slow['0.02']:.0f}, "
      f"over 100 ms {slow['0.1']:.0f}, over 1 s {slow['1']:.0f}")
print("    cpu (% of one core): " + ", ".join(f"{n} {v:.0f}{' (owner)' if n == owner else ''}" for n, v in sorted(cpu.items()))
      + f"; load average {load1:.2f} after")
print(f"    postgresql: {xacts:.0f} transactions in {pg_secs:.1f} s (the run and the pauses around it) = {xacts / pg_secs:.1f}/s")
line = {"mode": mode, "parts": parts, "kind": kind, "rate": rate, "mbs": mbs, "p50": p50, "p99": p99,
        "p999": p999, "fsync_p99": fsync_p99 or 0, "fsync_slow": slow["0.1"], "tps": xacts / pg_secs, "inflight": inflight,
        "owner": owner, "cpu_owner": cpu.get(owner, 0.0), "cpu_others": sum(v for n, v in cpu.items() if n != owner),
        "puts_s": puts / secs, "bytes_put": put_bytes / puts if puts else 0,
        "puts_gb": puts / gb, "put_p99": put_p99, "s3_put_s": s3.get("PUT", 0) / secs,
        "s3_get_s": s3.get("GET", 0) / secs, "batches_s": batches / secs,
        "bytes_batch": repl_bytes / batches if batches else 0, "repl_p99": repl_p99, "target": ""}
if mode == "object-store":
    others = ", ".join(f"{t} {n:.0f}" for t, n in sorted(s3.items()) if t not in ("PUT", "GET")) or "none"
    print(f"    object PUTs (broker): {puts:.0f} = {puts / secs:.1f}/s, {put_bytes / max(puts, 1) / 1024:.0f} KiB per PUT, "
          f"{puts / gb:.0f} PUTs per GB of payload, PUT p99 {put_p99 or 0:.1f} ms ({bucket_text(put_bucket)}), failures {failures:.0f}")
    server_p99 = f"{s3_p99:.1f} ms" if s3_p99 is not None else "none"
    print(f"    S3 requests (SeaweedFS): PUT {s3.get('PUT', 0):.0f} = {s3.get('PUT', 0) / secs:.1f}/s "
          f"({s3.get('PUT', 0) / gb:.0f}/GB), GET {s3.get('GET', 0):.0f} = {s3.get('GET', 0) / secs:.1f}/s "
          f"({s3.get('GET', 0) / gb:.0f}/GB), other: {others}; non-2xx {s3_errors:.0f}; "
          f"PUT p99 at the server {server_p99}")
    bound = window_ms + 2 * (put_p99 or 0)
    met_latency = p99 <= bound
    met_puts = puts / secs <= 1000 / window_ms
    line["target"] = (f"p99 {'≤' if met_latency else '>'} {bound:.1f} ms: {'met' if met_latency else 'missed'}; "
                      f"PUTs/s {'≤' if met_puts else '>'} {1000 / window_ms:.0f}: {'met' if met_puts else 'missed'}")
    print(f"    targets: {line['target']}")
if mode.startswith("replicated"):
    print(f"    replication ({owner}): {batches:.0f} batches = {batches / secs:.1f}/s, "
          f"{repl_bytes / max(batches, 1) / 1024:.1f} KiB per batch, ack p50 {repl_p50 or 0:.2f} p99 {repl_p99 or 0:.2f} ms "
          f"({bucket_text(repl_bucket)}), failures {repl_failures:.0f}; "
          f"peers' append (write and fdatasync) p50 {peer_p50 or 0:.2f} p99 {peer_p99 or 0:.2f} ms")
    local = [r for r in (ast.literal_eval(l) for l in open(rows))
             if r["mode"] == "local" and (r["parts"], r["kind"], r["inflight"]) == (parts, kind, inflight)]
    if local:
        l = local[-1]
        # Kept with the row: the closing summary groups these ratios by shape, round by round.
        line["vs_local"] = (p99 / max(l["p99"], 1e-9), rate / max(l["rate"], 1e-9))
        print(f"    vs local ({l['owner']}): p99 {p99:.2f} / {l['p99']:.2f} ms = ×{p99 / max(l['p99'], 1e-9):.2f}, "
              f"msg/s {rate:.0f} / {l['rate']:.0f} = {rate / max(l['rate'], 1e-9) * 100:.0f} %")
        if mode == "replicated 2/2":
            met_latency = p99 <= 2 * l["p99"]
            met_rate = rate >= 0.7 * l["rate"]
            line["target"] = (f"p99 {'≤' if met_latency else '>'} 2 × local = {2 * l['p99']:.2f} ms: {'met' if met_latency else 'missed'}; "
                              f"msg/s {'≥' if met_rate else '<'} 70 % of local = {0.7 * l['rate']:.0f}: {'met' if met_rate else 'missed'}")
            print(f"    targets: {line['target']}")
with open(rows, "a") as f:
    f.write(repr(line) + "\n")
PY
}

# settle: waits (at most 180 s) until no broker has had a segment upload in progress for 3 s in
# a row: a throughput phase leaves a gigabyte of segments to upload, which the next phase would
# otherwise share the 2 cores and the disk with.
settle() {
    local quiet=0 waited=0 busy
    while ((quiet < 3 && waited < 180)); do
        busy=0
        for b in "${BROKERS[@]}"; do
            n="$(curl -sf "http://${HTTP[$b]}/metrics" | awk '/^magnetar_offload_uploads_in_progress / {print int($2)}')"
            busy=$((busy + ${n:-0}))
        done
        if ((busy == 0)); then quiet=$((quiet + 1)); else quiet=0; fi
        sleep 1
        waited=$((waited + 1))
    done
    ((waited <= 3)) || echo "  (waited ${waited} s for the segment uploads of the phases before to finish)"
}

# phase MODE TOPIC KIND IN_FLIGHT PERF_ARGS...: one measured run of ws-produce, through the
# owner of the topic's bundle.
phase() {
    local mode="$1" topic="$2" kind="$3" inflight="$4" ns owner out
    shift 4
    ns="$(ns_of "$mode")"
    owner="${OWNER[$ns]}"
    settle
    # Dirty pages of the phases before are written back now, not during this one.
    sync
    pg_snapshot "$TMP/pg0"
    snapshot "$TMP/m0" "$owner"
    out="$("$BIN" perf ws-produce --url "ws://${HTTP[$owner]}" --topic "persistent://public/$ns/$topic" -s "$SIZE" \
        -w "$inflight" "$@" 2>"$TMP/perf.err" | tail -1)" ||
        { tail -n 20 "$TMP/perf.err" >&2; die "ws-produce to public/$ns/$topic failed"; }
    snapshot "$TMP/m1" "$owner"
    pg_snapshot "$TMP/pg1"
    report "$mode" "$topic" "$kind" "$inflight" "$owner" "$out" "$TMP/m0" "$TMP/m1" "$TMP/pg0" "$TMP/pg1"
}

# Each topic is loaded (which has the leader assign its bundle; in object-store mode it is also
# brought in line with the bucket) before it is measured; through broker a, which forwards.
for mode in "${MODES[@]}"; do
    ns="$(ns_of "$mode")"
    for t in t "p$PARTITIONS"; do
        "$BIN" perf ws-produce --url "ws://${HTTP[a]}" --topic "persistent://public/$ns/$t" -n 2000 -s "$SIZE" \
            >/dev/null 2>"$TMP/perf.err" || { tail -n 20 "$TMP/perf.err" >&2; die "warm-up produce to public/$ns/$t failed"; }
    done
done

# OWNER[ns]: the broker (a, b or c) that owns the namespace's one bundle.
declare -A OWNER
curl -sf "$URL/admin/v2/brokers/bench/bundles" >"$TMP/bundles.json" || die "cannot read the bundle ownership table"
while read -r ns owner; do
    OWNER[$ns]="$owner"
done < <(python3 - "$TMP/bundles.json" "$(for b in "${BROKERS[@]}"; do printf '%s=%s ' "$b" "${HTTP[$b]}"; done)" <<'PY'
import json, sys
names = {addr: name for name, addr in (x.split("=") for x in sys.argv[2].split())}
for r in json.load(open(sys.argv[1])):
    tenant, ns, _ = r["bundle"].split("/")
    if tenant == "public" and r["state"] == "owned" and r["owner"] in names:
        print(ns, names[r["owner"]])
PY
)
replicas="$(for b in "${BROKERS[@]}"; do
    printf '%s %s, ' "$b" "$(curl -sf "http://${HTTP[$b]}/metrics" | awk '/^magnetar_replica_stored_bytes / {printf "%.0f KiB", $2 / 1024}')"
done)"
echo "owners (bundle 0x00000000_0xffffffff of each namespace):"
for mode in "${MODES[@]}"; do
    ns="$(ns_of "$mode")"
    [[ -n "${OWNER[$ns]:-}" ]] || { cat "$TMP/bundles.json" >&2; die "public/$ns has no owner after its warm-up"; }
    echo "  public/$ns ($mode): broker ${OWNER[$ns]} (${HTTP[${OWNER[$ns]}]})"
done
echo "  replica bytes kept (other brokers' streams, after the warm-up): ${replicas%, }"

echo "== idle tier (background transactions of ${#BROKERS[@]} brokers: leases, checkpoints)"
pg_snapshot "$TMP/pg0"
sleep 8.5
pg_snapshot "$TMP/pg1"
python3 -c 'import sys; (t0, x0), (t1, x1) = ([float(v) for v in open(f).read().split()] for f in sys.argv[1:]); print(f"  postgresql: {x1 - x0 - 1:.0f} transactions in {t1 - t0:.1f} s = {(x1 - x0 - 1) / (t1 - t0):.1f}/s")' "$TMP/pg0" "$TMP/pg1"

# Latency first, on a tier that has only the warm-up's data: the throughput phases leave
# gigabytes of segments to seal and upload in the background for minutes, which a latency
# phase after them would measure instead of the mode.
for round in $(seq 1 "$ROUNDS"); do
    for mode in "${MODES[@]}"; do
        echo "== $mode: latency at $RATE msg/s for $SECS s (round $round of $ROUNDS)"
        phase "$mode" t latency 1000 -n $((RATE * SECS)) --rate "$RATE"
        phase "$mode" "p$PARTITIONS" latency 1000 -n $((RATE * SECS)) --rate "$RATE"
    done
done
for round in $(seq 1 "$THROUGHPUT_ROUNDS"); do
    for mode in "${MODES[@]}"; do
        echo "== $mode: throughput, $N messages of $SIZE bytes (round $round of $THROUGHPUT_ROUNDS)"
        phase "$mode" t throughput 1000 -n "$N"
        phase "$mode" "p$PARTITIONS" throughput 1000 -n "$N"
        phase "$mode" "p$PARTITIONS" throughput 10000 -n "$N"
    done
done

echo "== summary (window $WINDOW_MS ms; PUT and replication figures from the owner's counters, GETs from SeaweedFS's; CPU in % of one core)"
python3 - "$TMP/rows" <<'PY'
import ast, sys
rows = [ast.literal_eval(l) for l in open(sys.argv[1])]
print("| mode | partitions | load | in flight | owner | msg/s | MB/s | ack p50 / p99 / p99.9 ms | WAL fsync p99 ms (over 100 ms) | CPU % owner / others | PostgreSQL tx/s "
      "| PUTs/s | KiB per PUT | PUTs per GB | PUT p99 ms | GETs/s | repl batches/s | KiB per batch | repl ack p99 ms | targets |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
for r in rows:
    obj = r["mode"] == "object-store"
    rep = r["mode"].startswith("replicated")
    cell = lambda v, f, show=obj: (f % v) if show and v is not None else "—"
    print(f"| {r['mode']} | {r['parts']} | {r['kind']} | {int(r['inflight']):,} | {r['owner']} | {r['rate']:,.0f} | {r['mbs']:.1f} | "
          f"{r['p50']:.2f} / {r['p99']:.2f} / {r['p999']:.2f} | {r['fsync_p99']:.1f} ({r['fsync_slow']:.0f}) | "
          f"{r['cpu_owner']:.0f} / {r['cpu_others']:.0f} | {r['tps']:.1f} | {cell(r['puts_s'], '%.1f')} | "
          f"{cell(r['bytes_put'] / 1024, '%.0f')} | {cell(r['puts_gb'], '%.0f')} | {cell(r['put_p99'], '%.1f')} | "
          f"{cell(r['s3_get_s'], '%.1f')} | {cell(r['batches_s'], '%.1f', rep)} | {cell(r['bytes_batch'] / 1024, '%.1f', rep)} | "
          f"{cell(r['repl_p99'], '%.2f', rep)} | {r['target'] or '—'} |")
PY
echo "== replicated 2/2 against local, round by round (each against the local phase just before it)"
python3 - "$TMP/rows" <<'PY'
import ast, statistics, sys
rows = [ast.literal_eval(l) for l in open(sys.argv[1])]
shapes = {}
for r in rows:
    if r["mode"] == "replicated 2/2" and "vs_local" in r:
        shapes.setdefault((r["kind"], r["parts"], r["inflight"]), []).append(r["vs_local"])
for (kind, parts, inflight), pairs in shapes.items():
    p99s, rates = [p for p, _ in pairs], [q for _, q in pairs]
    p99, rate = statistics.median(p99s), statistics.median(rates)
    verdict = f"p99 ×{p99:.2f} (target 2: {'met' if p99 <= 2 else 'missed'})"
    if kind == "throughput":
        verdict += f", msg/s {rate * 100:.0f} % (target 70 %: {'met' if rate >= 0.7 else 'missed'})"
    print(f"  {kind}, {parts} partition(s), {int(inflight):,} in flight: p99 ×" + " / ×".join(f"{p:.2f}" for p in p99s)
          + (", msg/s " + " / ".join(f"{q * 100:.0f} %" for q in rates) if kind == "throughput" else "")
          + f"; median {verdict}")
PY
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "broker peak RSS: $(for b in "${BROKERS[@]}"; do
    awk -v b="$b" '/VmHWM/ {printf "%s %.0f MB, ", b, $2/1024}' "/proc/${PID[$b]}/status"
done | sed 's/, $//')"
