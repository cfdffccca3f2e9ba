#!/usr/bin/env bash
# The quickest way to run Magnetar with its web console: builds the console (if needed), then
# `cargo run --release -- standalone ARGS...`. The console is at http://127.0.0.1:8080/.
#   scripts/standalone.sh            SQLite metadata and local storage under ./data
#   scripts/standalone.sh --auth     authentication on; prints a superuser token to sign in with
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/build-console.sh
exec cargo run --release -p magnetar -- standalone "$@"
