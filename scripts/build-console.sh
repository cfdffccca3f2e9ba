#!/usr/bin/env bash
# Builds the web console (web-admin/) into web-admin/dist, which the broker embeds in release
# builds (services/console). Does only what is needed: `npm ci` when node_modules is missing or
# older than package-lock.json, `npm run build` when a source is newer than dist.
#   scripts/build-console.sh          build if needed
#   scripts/build-console.sh --force  always rebuild
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../web-admin"

die() { printf 'scripts/build-console.sh: error: %s\n' "$*" >&2; exit 1; }

command -v npm >/dev/null ||
    die "npm not found: the console needs Node.js 20.19 or later with npm; Debian 12's own nodejs package is older, so install a recent Node.js with npm"
node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a===20&&b>=19)?0:1)' ||
    die "Node.js $(node --version) is too old: the console needs Node.js 20.19 or later"

force=0
[[ "${1:-}" == --force ]] && force=1

# Installs when node_modules is missing or package-lock.json changed since the last install.
if [[ ! -f node_modules/.package-lock.json || package-lock.json -nt node_modules/.package-lock.json ]]; then
    echo "console: npm ci"
    npm ci --no-audit --no-fund --loglevel=error
fi

newest_source() {
    find src public scripts index.html package.json package-lock.json vite.config.ts tsconfig.json ../services/api/openapi.json \
        -type f -newer dist/index.html -print -quit 2>/dev/null
}
if ((force)) || [[ ! -f dist/index.html ]] || [[ -n "$(newest_source)" ]]; then
    echo "console: npm run build"
    npm run build --silent
else
    echo "console: web-admin/dist is up to date"
fi
