#!/usr/bin/env bash
# The cost of a forwarded request in the broker tier (issue 11): REST produce latency through
# the broker owning the topic's bundle against the same produce through another broker, which
# forwards it once to the owner.
#
#   scripts/bench-forward.sh [N] [ROUNDS]   (defaults 5000 3)
#
# Starts a throwaway PostgreSQL and two release brokers (scripts/lib/tier-bench.sh) with `[broker.tier] enabled` and a
# local object store, creates a non-partitioned topic, asks the ownership view which broker owns
# it, then runs `magnetar perf produce` with one message per request and one request in flight
# (latency, not throughput) N times against the owner and against the other broker, ROUNDS
# times alternating. Prints perf's summary lines (p50/p99 in ms).
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-5000}"
ROUNDS="${2:-3}"
# shellcheck source=lib/tier-bench.sh
source scripts/lib/tier-bench.sh

A="$(port)"; B="$(port)"
start_broker a "$A"
start_broker b "$B"

call() { curl -sf -X "$1" -H 'content-type: application/json' ${3:+-d "$3"} "http://127.0.0.1:$A$2"; }
call PUT /admin/v2/tenants/bench '{"allowedClusters":["bench"]}' >/dev/null
call PUT /admin/v2/namespaces/bench/ns >/dev/null
call PUT /admin/v2/persistent/bench/ns/t >/dev/null
OWNER="$(call GET /admin/v2/brokers/bench/bundles | python3 -c 'import json,sys; print([r["owner"] for r in json.load(sys.stdin) if r["state"]=="owned"][0])')"
OTHER="127.0.0.1:$A"; [[ "$OWNER" == "$OTHER" ]] && OTHER="127.0.0.1:$B"
echo "owner $OWNER, forwarding broker $OTHER"

perf() { "$BIN" perf produce --url "http://$1" --topic persistent://bench/ns/t -n "$N" -s 1024 -b 1 -c 1 2>/dev/null | sed "s|^|$2 |"; }
perf "$OWNER" "warm-up" >/dev/null
perf "$OTHER" "warm-up" >/dev/null
for r in $(seq 1 "$ROUNDS"); do
    perf "$OWNER" "round $r direct:   "
    perf "$OTHER" "round $r forwarded:"
done
