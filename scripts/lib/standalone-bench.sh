# Shared by the standalone benchmarks (bench-binary.sh, bench-chunked.sh, bench-isolation.sh):
# the release binary (or BENCH_MAGNETAR_BIN), a scratch directory removed on exit, free ports,
# and one standalone broker on them, ready when this returns. Sourced; sets BIN, TMP, PIDS,
# PORT, BPORT, URL (HTTP), PULSAR (pulsar://) and WS.
if [[ -z "${BENCH_MAGNETAR_BIN:-}" ]]; then
    cargo build --release -p magnetar >/dev/null
fi
BIN="${BENCH_MAGNETAR_BIN:-$PWD/target/release/magnetar}"
TMP="$(mktemp -d)"
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$TMP"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
PORT="$(free_port)"
BPORT="$(free_port)"
URL="http://127.0.0.1:$PORT"
PULSAR="pulsar://127.0.0.1:$BPORT"
WS="ws://127.0.0.1:$PORT"
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GB", $2/1048576}' /proc/meminfo), $(uname -sr)"
# start_standalone: the broker on $TMP/data, reading the TOML file STANDALONE_CONFIG (`--config`,
# e.g. an S3 object store or PostgreSQL metadata) when that is set; its pid is ${PIDS[0]}.
start_standalone() {
    mkdir -p "$TMP/data"
    MAGNETAR_BINARY__ADDR="127.0.0.1:$BPORT" MAGNETAR_LOG=warn "$BIN" standalone --data-dir "$TMP/data" \
        --http-addr "127.0.0.1:$PORT" ${STANDALONE_CONFIG:+--config "$STANDALONE_CONFIG"} >"$TMP/log" 2>&1 &
    PIDS+=($!)
    for _ in $(seq 1 300); do curl -sf "$URL/admin/v2/brokers/health" >/dev/null && break; sleep 0.2; done
    curl -sf "$URL/admin/v2/brokers/health" >/dev/null || { echo "the broker did not start:" >&2; cat "$TMP/log" >&2; exit 1; }
}
