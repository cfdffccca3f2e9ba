#!/usr/bin/env bash
# Broker-tier benchmarks (issue 11), on one machine: every broker, PostgreSQL and the clients
# share its cores, so aggregate figures show the cost of the tier, not its scaling.
#
#   scripts/bench-tier.sh [MESSAGES_PER_TOPIC] [RATE_PER_TOPIC]   (defaults 30000 200)
#
# 1. Aggregate produce throughput with 1, 2 and 3 brokers: six topics; one `magnetar perf
#    produce` (REST, batches of 100, 4 in flight) and then one `perf ws-produce` per topic, each
#    through broker (topic mod brokers), all at once; the sum over the wall time. Brokers join one
#    by one and the leader's balance spreads the bundles before each phase.
# 2. Handover time of one bundle: every owned bundle unloaded in turn through broker a; the
#    owners' log lines give each handover's duration (p50, max), curl the unload call's.
# 3. Produce latency at a steady rate (RATE_PER_TOPIC msg/s per topic, one message per request,
#    8 in flight) through broker a, once steady and once while brokers b and c are restarted in
#    turn (SIGTERM, which hands their bundles over, then start again): p50/p99 per topic; this
#    phase runs with the default balance settings.
# Uses scripts/lib/tier-bench.sh (a throwaway PostgreSQL, a local object store, release binary or
# BENCH_MAGNETAR_BIN).
set -euo pipefail
cd "$(dirname "$0")/.."
M="${1:-30000}"
RATE="${2:-200}"
BENCH_LOG="warn,magnetar_broker::handover=info"
# shellcheck source=lib/tier-bench.sh
source scripts/lib/tier-bench.sh

EXTRA=$'rebalance_interval_ms = 500\nbundle_cooldown_ms = 2000\nmax_moves_per_minute = 60\ndrain_timeout_ms = 20000'
declare -A PORT
for n in a b c; do PORT[$n]="$(port)"; done
start_broker a "${PORT[a]}" "$EXTRA"
api() { curl -sf -X "$1" -H 'content-type: application/json' ${3:+-d "$3"} "http://127.0.0.1:${PORT[a]}$2"; }
api PUT /admin/v2/tenants/bench '{"allowedClusters":["bench"]}' >/dev/null
api PUT /admin/v2/namespaces/bench/ns >/dev/null
for t in 0 1 2 3 4 5; do api PUT "/admin/v2/persistent/bench/ns/t$t" >/dev/null; done

# Owned bundles per broker, as "id:count ..."; and whether counts differ by at most one.
counts() {
    api GET /admin/v2/brokers/bench/bundles | python3 -c '
import json, sys, collections
rows = [r for r in json.load(sys.stdin) if r["state"] == "owned"]
c = collections.Counter(r["owner"] for r in rows)
print(" ".join(f"{k}:{v}" for k, v in sorted(c.items())))'
}
wait_balanced() {
    local want="$1"
    for _ in $(seq 1 120); do
        local c; c="$(counts)"
        if python3 - "$want" "$c" <<'PY'
import sys
want, text = int(sys.argv[1]), sys.argv[2].split()
n = [int(x.rsplit(":", 1)[1]) for x in text]
sys.exit(0 if len(n) == want and max(n) - min(n) <= 1 else 1)
PY
        then echo "  bundles: $c"; return; fi
        sleep 0.5
    done
    echo "  not balanced: $(counts)"
}

throughput() {
    local brokers=("$@") start end
    for kind in produce ws-produce; do
        start="$(date +%s.%N)"
        local pids=()
        for t in 0 1 2 3 4 5; do
            local b="${brokers[$((t % ${#brokers[@]}))]}"
            if [[ "$kind" == produce ]]; then
                "$BIN" perf produce --url "http://127.0.0.1:${PORT[$b]}" --topic "persistent://bench/ns/t$t" \
                    -n "$M" -s 1024 -b 100 -c 4 >"$TMP/perf-$t.out" 2>/dev/null &
            else
                "$BIN" perf ws-produce --url "ws://127.0.0.1:${PORT[$b]}" --topic "persistent://bench/ns/t$t" \
                    -n "$M" -s 1024 -w 256 >"$TMP/perf-$t.out" 2>/dev/null &
            fi
            pids+=($!)
        done
        local failed=0
        for p in "${pids[@]}"; do wait "$p" || failed=$((failed + 1)); done
        end="$(date +%s.%N)"
        python3 -c "import sys; m,s,e,n,f=map(float,sys.argv[1:6]); print(f'  {sys.argv[6]:>10}: {n:.0f} brokers, 6 topics x {m:.0f} msgs in {e-s:.2f}s = {6*m/(e-s):,.0f} msg/s aggregate, {f:.0f} failed clients')" \
            "$M" "$start" "$end" "${#brokers[@]}" "$failed" "$kind"
    done
}

echo "== 1. aggregate throughput (1 KB messages)"
throughput a
start_broker b "${PORT[b]}" "$EXTRA"
wait_balanced 2
throughput a b
start_broker c "${PORT[c]}" "$EXTRA"
wait_balanced 3
throughput a b c

echo "== 2. handover of one bundle (admin unload through broker a)"
: >"$TMP/unload.ms"
for range in $(api GET /admin/v2/brokers/bench/bundles | python3 -c '
import json, sys
print("\n".join(r["bundle"].split("/")[-1] for r in json.load(sys.stdin) if r["state"] == "owned"))'); do
    curl -sf -o /dev/null -w '%{time_total}\n' -X PUT \
        "http://127.0.0.1:${PORT[a]}/admin/v2/namespaces/bench/ns/$range/unload" >>"$TMP/unload.ms"
    sleep 0.5
done
# Every handover so far (balance moves included), from the owners' logs (colour codes removed).
sed 's/\x1b\[[0-9;]*m//g' "$TMP"/[abc].log | grep -o 'bundle handed over.*millis=[0-9]*' | sed 's/.*millis=//' \
    >"$TMP/handover.ms" || true
python3 - "$TMP/handover.ms" "$TMP/unload.ms" <<'PY'
import sys, statistics
h = sorted(int(x) for x in open(sys.argv[1]) if x.strip())
u = sorted(float(x) * 1000 for x in open(sys.argv[2]) if x.strip())
if h: print(f"  handover (owner side, stop → released): n={len(h)} p50 {statistics.median(h):.0f} ms max {max(h)} ms")
if u: print(f"  unload call (until the bundle left releasing): n={len(u)} p50 {statistics.median(u):.0f} ms max {max(u):.0f} ms")
PY

latency() {
    local label="$1" pids=()
    for t in 0 1 2 3 4 5; do
        "$BIN" perf produce --url "http://127.0.0.1:${PORT[a]}" --topic "persistent://bench/ns/t$t" \
            -n "$((RATE * 20))" -s 1024 -b 1 -c 8 --rate "$RATE" >"$TMP/lat-$t.out" 2>/dev/null &
        pids+=($!)
    done
    if [[ "$label" == restart ]]; then
        sleep 3
        for n in b c; do
            kill -TERM "${BROKER_PID[$n]}"; wait "${BROKER_PID[$n]}" || true
            start_broker "$n" "${PORT[$n]}" "$EXTRA"
            sleep 3
        done
    fi
    local failed=0
    for p in "${pids[@]}"; do wait "$p" || failed=$((failed + 1)); done
    echo "  $label ($failed clients failed):"
    sed 's/^/    /' "$TMP"/lat-*.out
}
after_restart_handovers() {
    sed 's/\x1b\[[0-9;]*m//g' "$TMP"/[abc].log | grep -o 'bundle handed over.*millis=[0-9]*' | sed 's/.*millis=//' |
        python3 -c 'import sys; h=sorted(int(x) for x in sys.stdin if x.strip()); print(f"  handovers so far: n={len(h)} p50 {h[len(h)//2]} ms max {h[-1]} ms" if h else "  no handover logged")'
}
# Phase 3 runs with the default balance settings (moves at most every 5 s, a bundle at most once
# a minute), as a rolling restart in production would: every broker restarted with them first.
for n in a b c; do
    kill -TERM "${BROKER_PID[$n]}"; wait "${BROKER_PID[$n]}" || true
    start_broker "$n" "${PORT[$n]}" "drain_timeout_ms = 20000"
done
EXTRA="drain_timeout_ms = 20000"
wait_balanced 3
# Warm-up: each partition is loaded by its owner on first use (from the object store here).
for t in 0 1 2 3 4 5; do
    "$BIN" perf produce --url "http://127.0.0.1:${PORT[a]}" --topic "persistent://bench/ns/t$t" -n 200 -s 1024 -b 1 -c 8 \
        >/dev/null 2>&1
done
sleep 2
echo "== 3. produce latency through broker a, $RATE msg/s per topic x 6 topics, 20 s"
latency steady
latency restart
after_restart_handovers
