#!/usr/bin/env bash
# Durability modes side by side (issue 13), in one run, on one release standalone broker whose
# metadata store is a throwaway PostgreSQL (fsync on, its defaults) and whose object store is a
# throwaway SeaweedFS (`weed mini`, S3 API), both on loopback (scripts/lib/services.sh, the code
# scripts/test.sh starts them with).
#
#   scripts/bench-durability.sh [N] [RATE] [SECONDS]   (defaults 200000 2000 20)
#
# Namespaces public/local (durability `local`) and public/objstore (`object-store`), each with a
# non-partitioned topic and one of 16 partitions. For each mode, `magnetar perf ws-produce` (1 KB
# messages, one producer; keyless messages go round-robin over the partitions) publishes:
#   - throughput: N messages as fast as 1,000 in flight allow (Pulsar clients' default
#     maxPendingMessages), to each topic; and to the 16 partitions with 10,000 in flight;
#   - latency: RATE msg/s for SECONDS seconds to each topic (1,000 in flight at most).
# Ack latency is per message, from its send to its acknowledgement.
# Each phase prints throughput and per-message ack latency p50/p99/p99.9, and from counters
# read before and after it: objects PUT by the broker per second, bytes per PUT, PUTs per GB
# of payload, the broker's PUT p99 (`magnetar_object_store_log_put_seconds`, interpolated in
# its buckets), the S3 requests SeaweedFS counted by type (its own metrics), and PostgreSQL
# transactions per second (`pg_stat_database.xact_commit` of the broker's database). Then it
# checks the object-store targets: p99 at most the window plus twice the PUT p99 of the same
# phase, and PUTs per second at most 1000 / window_ms whatever the number of partitions.
# A last table repeats every phase.
#
# BENCH_MAGNETAR_BIN reuses a built broker; MAGNETAR_PG_BIN names the directory of
# initdb/pg_ctl; the `weed` binary is installed once with pip as scripts/test.sh does
# (MAGNETAR_SEAWEEDFS_VERSION). Everything started is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-200000}"
RATE="${2:-2000}"
SECS="${3:-20}"
WINDOW_MS=25
PARTITIONS=16
SIZE=1024
BUCKET=magnetar-bench

die() { printf 'scripts/bench-durability.sh: error: %s\n' "$*" >&2; exit 1; }
# shellcheck source=lib/services.sh
source scripts/lib/services.sh
PG_BIN="$(find_pg_bin || true)"
[[ -n "$PG_BIN" ]] || die "PostgreSQL server binaries not found: install PostgreSQL or set MAGNETAR_PG_BIN"
[[ -x "$PG_BIN/psql" ]] || die "psql not found next to initdb in $PG_BIN"
ensure_weed
# shellcheck source=lib/standalone-bench.sh
source scripts/lib/standalone-bench.sh
# The postgres user must reach its data directory inside the scratch directory.
chmod 755 "$TMP"
# The broker first (it uses both services), then the services, then the lib's cleanup (the
# scratch directory).
finish() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    stop_seaweedfs
    stop_postgres
    cleanup
}
trap finish EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== services"
read -r PG_PORT WEED_METRICS_PORT <<<"$(free_ports 2)"
start_postgres "$TMP/pg" "$PG_PORT"
echo "postgresql: $("$PG_BIN/postgres" --version)"
start_seaweedfs "$TMP/seaweedfs" "$BUCKET" bench-key bench-secret "$WEED_METRICS_PORT"
cat >"$TMP/magnetar.toml" <<TOML
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
[broker.durability]
object_store_window_ms = $WINDOW_MS
TOML
STANDALONE_CONFIG="$TMP/magnetar.toml"
start_standalone
echo "broker: $("$BIN" --version 2>/dev/null || echo "$BIN"), object_store_window_ms $WINDOW_MS"

call() { # METHOD PATH [JSON]: fails the run with the broker's answer unless it is a 2xx
    local out
    out="$(curl -sS -X "$1" -H 'content-type: application/json' ${3:+-d "$3"} -w '\n%{http_code}' "$URL$2")"
    [[ "${out##*$'\n'}" == 2* ]] || die "$1 $2 answered ${out##*$'\n'}: ${out%$'\n'*}"
}
call PUT /admin/v2/namespaces/public/local
call POST /admin/v2/namespaces/public/local/durability '{"mode":"local"}'
call PUT /admin/v2/namespaces/public/objstore
call POST /admin/v2/namespaces/public/objstore/durability "{\"mode\":\"object-store\",\"objectStoreMaxWaitMs\":30000}"
for ns in local objstore; do
    call PUT "/admin/v2/persistent/public/$ns/t"
    call PUT "/admin/v2/persistent/public/$ns/p$PARTITIONS/partitions" "$PARTITIONS"
done
echo "durability: public/local $(curl -sf "$URL/admin/v2/namespaces/public/local/durability")," \
    "public/objstore $(curl -sf "$URL/admin/v2/namespaces/public/objstore/durability")"

psql_value() { "$PG_BIN/psql" -X -At -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -c "$1"; }
# snapshot FILE: the broker's and SeaweedFS's counters a phase is measured by.
snapshot() {
    {
        curl -sf "$URL/metrics" | grep -E '^magnetar_(object_store_log_|wal_fsync_seconds_bucket)' || true
        curl -sf "http://127.0.0.1:$WEED_METRICS_PORT/metrics" |
            grep -E "^SeaweedFS_s3_request_(total|seconds_bucket)\{bucket=\"$BUCKET\"" || true
    } >"$1"
}
# pg_snapshot FILE: the time and PostgreSQL's committed transactions. PostgreSQL publishes a
# backend's transaction counts at most once a second, hence the pause before reading them.
pg_snapshot() {
    sleep 1.5
    echo "$(now) $(psql_value "select xact_commit from pg_stat_database where datname = 'postgres'")" >"$1"
}

# report MODE TOPIC KIND IN_FLIGHT PERF_LINE BEFORE AFTER PG_BEFORE PG_AFTER: prints the
# phase's figures and appends its row to $TMP/rows.
report() {
    python3 - "$WINDOW_MS" "$SIZE" "$BUCKET" "$TMP/rows" "$@" <<'PY'
import re, sys
window_ms, size, bucket, rows, mode, topic, kind, inflight, perf, before, after, pg0, pg1 = sys.argv[1:]
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

def total(prefix):
    return sum(v for k, v in d.items() if k.startswith(prefix))

def quantile(q, prefix):
    """Prometheus' histogram_quantile over the delta of cumulative buckets, in ms."""
    buckets = []
    for k, v in d.items():
        if k.startswith(prefix):
            le = re.search(r'le="([^"]+)"', k).group(1)
            buckets.append((float("inf") if le == "+Inf" else float(le), v))
    buckets.sort()
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
# Each file: the wall time of the reading and xact_commit; the reading of pg0 is one transaction.
(t0, x0), (t1, x1) = ([float(v) for v in open(f).read().split()] for f in (pg0, pg1))
xacts, pg_secs = x1 - x0 - 1, t1 - t0
gb = msgs * size / 1e9
fsync_p99, _ = quantile(0.99, "magnetar_wal_fsync_seconds_bucket")
fsyncs = d.get('magnetar_wal_fsync_seconds_bucket{le="+Inf"}', 0.0)
slow = {le: fsyncs - d.get(f'magnetar_wal_fsync_seconds_bucket{{le="{le}"}}', 0.0) for le in ("0.02", "0.1", "1")}

parts = topic[1:] if topic.startswith("p") else "1"
print(f"  {mode:12} {parts:>2} partition(s), {kind}, {inflight} in flight: {msgs:.0f} msgs in {secs:6.2f} s = {rate:6.0f} msg/s, {mbs:5.1f} MB/s | "
      f"ack ms p50 {p50:.2f} p99 {p99:.2f} p99.9 {p999:.2f} max {pmax:.2f}")
print(f"    wal: {fsyncs:.0f} fsyncs, p99 {fsync_p99 or 0:.1f} ms, over 20 ms {slow['0.02']:.0f}, "
      f"over 100 ms {slow['0.1']:.0f}, over 1 s {slow['1']:.0f}")
print(f"    postgresql: {xacts:.0f} transactions in {pg_secs:.1f} s (the run and the pauses around it) = {xacts / pg_secs:.1f}/s")
line = {"mode": mode, "parts": parts, "kind": kind, "rate": rate, "mbs": mbs, "p50": p50, "p99": p99,
        "p999": p999, "fsync_p99": fsync_p99 or 0, "fsync_slow": slow["0.1"], "tps": xacts / pg_secs, "inflight": inflight, "puts_s": puts / secs, "bytes_put": put_bytes / puts if puts else 0,
        "puts_gb": puts / gb, "put_p99": put_p99, "s3_put_s": s3.get("PUT", 0) / secs,
        "s3_get_s": s3.get("GET", 0) / secs, "target": ""}
if mode == "object-store":
    others = ", ".join(f"{t} {n:.0f}" for t, n in sorted(s3.items()) if t not in ("PUT", "GET")) or "none"
    bucket = f"{put_bucket[0]:g}-{put_bucket[1]:g} ms bucket" if put_bucket and put_bucket[1] else "top bucket"
    print(f"    object PUTs (broker): {puts:.0f} = {puts / secs:.1f}/s, {put_bytes / max(puts, 1) / 1024:.0f} KiB per PUT, "
          f"{puts / gb:.0f} PUTs per GB of payload, PUT p99 {put_p99:.1f} ms ({bucket}), failures {failures:.0f}")
    server_p99 = f"{s3_p99:.1f} ms" if s3_p99 is not None else "none"
    print(f"    S3 requests (SeaweedFS): PUT {s3.get('PUT', 0):.0f} = {s3.get('PUT', 0) / secs:.1f}/s "
          f"({s3.get('PUT', 0) / gb:.0f}/GB), GET {s3.get('GET', 0):.0f} = {s3.get('GET', 0) / secs:.1f}/s "
          f"({s3.get('GET', 0) / gb:.0f}/GB), other: {others}; non-2xx {s3_errors:.0f}; "
          f"PUT p99 at the server {server_p99}")
    bound = window_ms + 2 * put_p99
    met_latency = p99 <= bound
    met_puts = puts / secs <= 1000 / window_ms
    line["target"] = (f"p99 {'≤' if met_latency else '>'} {bound:.1f} ms: {'met' if met_latency else 'missed'}; "
                      f"PUTs/s {'≤' if met_puts else '>'} {1000 / window_ms:.0f}: {'met' if met_puts else 'missed'}")
    print(f"    targets: {line['target']}")
with open(rows, "a") as f:
    f.write(repr(line) + "\n")
PY
}

# phase MODE TOPIC KIND IN_FLIGHT PERF_ARGS...: one measured run of ws-produce.
phase() {
    local mode="$1" topic="$2" kind="$3" inflight="$4" ns out
    shift 4
    ns="$([[ "$mode" == object-store ]] && echo objstore || echo local)"
    # Dirty pages of the phases before are written back now, not during this one.
    sync
    pg_snapshot "$TMP/pg0"
    snapshot "$TMP/m0"
    out="$("$BIN" perf ws-produce --url "$WS" --topic "persistent://public/$ns/$topic" -s "$SIZE" -w "$inflight" "$@" \
        2>"$TMP/perf.err" | tail -1)" || { tail -n 20 "$TMP/perf.err" >&2; die "ws-produce to public/$ns/$topic failed"; }
    snapshot "$TMP/m1"
    pg_snapshot "$TMP/pg1"
    report "$mode" "$topic" "$kind" "$inflight" "$out" "$TMP/m0" "$TMP/m1" "$TMP/pg0" "$TMP/pg1"
}

# Each topic is loaded (and in object-store mode brought in line with the bucket) before it is
# measured.
for ns in local objstore; do
    for t in t "p$PARTITIONS"; do
        "$BIN" perf ws-produce --url "$WS" --topic "persistent://public/$ns/$t" -n 2000 -s "$SIZE" >/dev/null 2>&1 ||
            die "warm-up produce to public/$ns/$t failed"
    done
done

echo "== idle broker (background transactions: leases, checkpoints)"
pg_snapshot "$TMP/pg0"
sleep 8.5
pg_snapshot "$TMP/pg1"
python3 -c 'import sys; (t0, x0), (t1, x1) = ([float(v) for v in open(f).read().split()] for f in sys.argv[1:]); print(f"  postgresql: {x1 - x0 - 1:.0f} transactions in {t1 - t0:.1f} s = {(x1 - x0 - 1) / (t1 - t0):.1f}/s")' "$TMP/pg0" "$TMP/pg1"

for mode in local object-store; do
    echo "== $mode: throughput, $N messages of $SIZE bytes"
    phase "$mode" t throughput 1000 -n "$N"
    phase "$mode" "p$PARTITIONS" throughput 1000 -n "$N"
    phase "$mode" "p$PARTITIONS" throughput 10000 -n "$N"
    echo "== $mode: latency at $RATE msg/s for $SECS s"
    phase "$mode" t latency 1000 -n $((RATE * SECS)) --rate "$RATE"
    phase "$mode" "p$PARTITIONS" latency 1000 -n $((RATE * SECS)) --rate "$RATE"
done

echo "== summary (window $WINDOW_MS ms; PUT figures from the broker's counters, GETs from SeaweedFS's)"
python3 - "$TMP/rows" <<'PY'
import ast, sys
rows = [ast.literal_eval(l) for l in open(sys.argv[1])]
print("| mode | partitions | load | in flight | msg/s | MB/s | ack p50 / p99 / p99.9 ms | WAL fsync p99 ms (over 100 ms) | PostgreSQL tx/s | PUTs/s | KiB per PUT | PUTs per GB | PUT p99 ms | GETs/s | targets |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
for r in rows:
    obj = r["mode"] == "object-store"
    cell = lambda v, f: (f % v) if obj and v is not None else "—"
    print(f"| {r['mode']} | {r['parts']} | {r['kind']} | {int(r['inflight']):,} | {r['rate']:,.0f} | {r['mbs']:.1f} | "
          f"{r['p50']:.2f} / {r['p99']:.2f} / {r['p999']:.2f} | {r['fsync_p99']:.1f} ({r['fsync_slow']:.0f}) | {r['tps']:.1f} | {cell(r['puts_s'], '%.1f')} | "
          f"{cell(r['bytes_put'] / 1024, '%.0f')} | {cell(r['puts_gb'], '%.0f')} | {cell(r['put_p99'], '%.1f')} | "
          f"{cell(r['s3_get_s'], '%.1f')} | {r['target'] or '—'} |")
PY
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "broker peak RSS: $(awk '/VmHWM/ {printf "%.0f MB", $2/1024}' /proc/"${PIDS[0]}"/status)"
