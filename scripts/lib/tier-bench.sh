# Shared by the broker-tier benchmarks (bench-forward.sh, bench-tier.sh): a throwaway PostgreSQL
# (scripts/lib/pg.sh), the release binary (or BENCH_MAGNETAR_BIN), and `start_broker NAME PORT
# [EXTRA_TOML]` for a broker with `[broker.tier] enabled` and a local object store shared by all.
# Sourced; sets BIN besides what pg.sh sets.
# shellcheck source=pg.sh
source scripts/lib/pg.sh
if [[ -n "${BENCH_MAGNETAR_BIN:-}" ]]; then
    BIN="$BENCH_MAGNETAR_BIN"
else
    cargo build --release -p magnetar >/dev/null
    BIN="$PWD/target/release/magnetar"
fi
# start_broker NAME PORT [EXTRA_TOML]: starts (or restarts, on the same data directory) a broker
# and waits until it is ready; its pid is in BROKER_PID[NAME].
declare -A BROKER_PID
start_broker() {
    local name="$1" port="$2" extra="${3:-}"
    mkdir -p "$TMP/$name"
    cat >"$TMP/$name/magnetar.toml" <<TOML
http_addr = "127.0.0.1:$port"
data_dir = "$TMP/$name"
[metadata]
url = "postgres://postgres@127.0.0.1:$PG_PORT/postgres"
[object_store]
kind = "local"
root = "$TMP/objects"
[broker]
cluster = "bench"
[broker.tier]
enabled = true
refresh_interval_ms = 200
$extra
TOML
    MAGNETAR_LOG="${BENCH_LOG:-warn}" MAGNETAR_BINARY__ADDR=127.0.0.1:0 \
        "$BIN" broker --insecure --config "$TMP/$name/magnetar.toml" >>"$TMP/$name.log" 2>&1 &
    PIDS+=($!)
    BROKER_PID[$name]=$!
    for _ in $(seq 1 300); do curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && return; sleep 0.2; done
    echo "broker $name did not start" >&2; tail "$TMP/$name.log" >&2; exit 1
}
