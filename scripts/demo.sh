#!/usr/bin/env bash
# The engine demo: three local Redis nodes (127.0.0.1:6381–6383), two workers, crashes and empty restarts.
# Installs what is missing first (redis-server with apt, npm dependencies with npm ci; see scripts/lib/ensure-deps.sh),
# then runs scripts/demo.ts. Extra arguments go to it. Ctrl-C stops it and its Redis nodes (exit 130).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. scripts/lib/ensure-deps.sh
# Installing the package may start Debian's own redis-server service on 6379: the demo neither uses nor touches it.
ensure_redis_server
ensure_node_modules

exec node --import tsx scripts/demo.ts "$@"
