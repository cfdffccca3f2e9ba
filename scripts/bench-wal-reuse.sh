#!/usr/bin/env bash
# Reused WAL files against none, on one build (docs/benchmarks.md, "Reused WAL files"):
# alternating, each on a fresh standalone broker, saturated 1 KB produce over the binary protocol
# (`magnetar perf bin-produce`, Pulsar clients' default batching and 1,000 pending) with
# `wal_recycle_files` 0 ("off") and 2 ("on", the default), and the broker's mean WAL write +
# fdatasync (`magnetar_wal_fsync_seconds`). N messages make about N / 65,000 WAL files, so
# files are reused from the third one on.
#
#   scripts/bench-wal-reuse.sh [ROUNDS] [N]   (defaults 3 and 2000000)
#
# BENCH_MAGNETAR_BIN reuses a built broker instead of building the release one.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS="${1:-3}"
N="${2:-2000000}"
# shellcheck source=lib/standalone-bench.sh
source scripts/lib/standalone-bench.sh

fsync_mean() {
    curl -sf "$URL/metrics" | awk '/^magnetar_wal_fsync_seconds_sum/ {s=$2} /^magnetar_wal_fsync_seconds_count/ {c=$2}
        END {printf "%d fsyncs, mean %.3f ms", c, c ? s / c * 1000 : 0}'
}

for round in $(seq 1 "$ROUNDS"); do
    for variant in off on; do
        if [[ "$variant" == off ]]; then export MAGNETAR_STORAGE__WAL_RECYCLE_FILES=0; else unset MAGNETAR_STORAGE__WAL_RECYCLE_FILES; fi
        rm -rf "$TMP/data"
        start_standalone
        result="$("$BIN" perf bin-produce --url "$PULSAR" --topic persistent://public/default/reuse -n "$N" -s 1024 2>/dev/null | tail -1)"
        printf 'round %s reuse %-3s | %s | WAL write + fdatasync: %s\n' "$round" "$variant" "$result" "$(fsync_mean)"
        kill "${PIDS[0]}"
        wait "${PIDS[0]}" 2>/dev/null || true
        PIDS=()
    done
done
