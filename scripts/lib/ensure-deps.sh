# Sourced by scripts/demo.sh and scripts/test.sh: installs what a fresh Debian machine with Node 20 lacks.
# Idempotent and quiet when everything is there already.

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null 2>&1; then sudo "$@"; else
    echo "need root to run: $*" >&2; return 1; fi
}

# The package lists are read once per run, however many installs follow.
apt_update_once() {
  [ -n "${_apt_updated:-}" ] && return 0
  as_root apt-get update -qq
  _apt_updated=1
}

ensure_redis_server() {
  if command -v redis-server >/dev/null 2>&1 || [ -x /usr/bin/redis-server ]; then return 0; fi
  echo "==> installing redis-server (apt-get)"
  apt_update_once
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends redis-server >/dev/null
  # Debian's package may start a service on 6379; redlease starts its own nodes and never uses it.
}

# curl and jq: the lab walk-through (docs/lab.md) and its test use them.
ensure_lab_tools() {
  local missing=()
  command -v curl >/dev/null 2>&1 || missing+=(curl)
  command -v jq >/dev/null 2>&1 || missing+=(jq)
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "==> installing ${missing[*]} (apt-get)"
  apt_update_once
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# iproute2 (ip): test/contract-paths.test.ts makes a network namespace, a test host of its own, to call the
# server from a non-loopback address.
ensure_test_tools() {
  command -v ip >/dev/null 2>&1 && return 0
  echo "==> installing iproute2 (apt-get)"
  apt_update_once
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends iproute2 >/dev/null
}

ensure_node_modules() {
  local major
  major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
  if [ "$major" -lt 20 ]; then echo "Node.js 20 or newer is needed (found: $(node --version 2>/dev/null || echo none))" >&2; return 1; fi
  if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    echo "==> installing npm dependencies (npm ci)"
    npm ci --no-audit --no-fund --loglevel=error
  fi
}
