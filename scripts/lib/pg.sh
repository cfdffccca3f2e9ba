# A throwaway PostgreSQL for the benchmarks (the `postgres` user's initdb/pg_ctl, as
# scripts/test.sh does; MAGNETAR_PG_BIN points at them). Sourced; sets TMP, PG_PORT, PIDS and an
# EXIT trap that stops the processes in PIDS and PostgreSQL and removes TMP.
PG_BIN="${MAGNETAR_PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)}"
[[ -x "$PG_BIN/initdb" ]] || { echo "initdb not found: set MAGNETAR_PG_BIN" >&2; exit 1; }
TMP="$(mktemp -d)"
chmod 755 "$TMP"
PIDS=()
as_pg() { if [[ "$(id -u)" == 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi; }
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    [[ -d "$TMP/pg/data" ]] && as_pg "$PG_BIN/pg_ctl" stop -D "$TMP/pg/data" -m immediate >/dev/null 2>&1 || true
    rm -rf "$TMP"
}
trap cleanup EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

PG_PORT="$(port)"
mkdir -p "$TMP/pg/sock"
[[ "$(id -u)" == 0 ]] && chown -R postgres: "$TMP/pg"
as_pg "$PG_BIN/initdb" -D "$TMP/pg/data" -U postgres --auth=trust --no-sync -E UTF8 --locale=C >/dev/null
as_pg "$PG_BIN/pg_ctl" start -D "$TMP/pg/data" -W -l "$TMP/pg/log" -o \
    "-c listen_addresses=127.0.0.1 -p $PG_PORT -c unix_socket_directories=$TMP/pg/sock" >/dev/null
until "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" -U postgres -t 1; do sleep 0.1; done

