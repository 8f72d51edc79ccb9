#!/usr/bin/env bash
# The demo: three Redis lock nodes (127.0.0.1:6381–6383), the workers' store Redis (6390), the redlease server
# (gRPC 50051, HTTP 8000) and three workers as child processes, their logs interleaved, until Ctrl-C (exit 0).
# Installs what is missing first (redis-server with apt, npm dependencies with npm ci; see scripts/lib/ensure-deps.sh),
# then runs scripts/demo.ts. Extra arguments go to it (--help lists them). Control the nodes from another terminal
# with `npm run nodes -- <stop|start|restart|pause|resume|status> <redis-1|redis-2|redis-3|store>`.
# package.json runs this file with `exec`, and it execs the launcher in turn: npm forwards SIGINT and SIGTERM to its
# own child only, so without a terminal (where Ctrl-C reaches every process of the foreground group) a signal sent
# to npm reaches the launcher only if the launcher is that child, not a shell waiting for it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. scripts/lib/ensure-deps.sh
# Installing the package may start Debian's own redis-server service on 6379: the demo neither uses nor touches it.
ensure_redis_server
ensure_lab_tools
ensure_node_modules

exec node --import tsx scripts/demo.ts "$@"
