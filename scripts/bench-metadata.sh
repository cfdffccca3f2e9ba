#!/usr/bin/env bash
# What the broker tier costs PostgreSQL per operation (issue 11's paper estimate): runs
# `services/metadata/examples/tier_ops.rs` against a throwaway PostgreSQL (scripts/lib/pg.sh).
#
#   scripts/bench-metadata.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p magnetar-metadata --example tier_ops
# shellcheck source=lib/pg.sh
source scripts/lib/pg.sh
MAGNETAR_BENCH_PG_URL="postgres://postgres@127.0.0.1:$PG_PORT/postgres" target/release/examples/tier_ops
