#!/usr/bin/env bash
# Verify that gen/ (TypeScript and descriptors.binpb) is exactly what `npm run gen` (buf generate,
# buf build) produces from proto/. Generates into a temporary directory and compares; never writes to the
# working tree.
# Exit 0 when up to date, 1 when stale (the diff is printed), other codes on tool errors.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

gen_dir="gen"
descriptors="gen/descriptors.binpb"
buf="node_modules/.bin/buf"
if [[ ! -x "$buf" ]]; then
  echo "gen-check: $buf not found; run npm ci first" >&2
  exit 2
fi

tmp="$(mktemp -d "${TMPDIR:-/tmp}/redlease-gen-check.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT

# -o prefixes every plugin `out` in buf.gen.yaml with $tmp, so this writes $tmp/gen
# (and buf.gen.yaml's `clean: true` only cleans that temporary copy).
"$buf" generate -o "$tmp"

if [[ ! -d "$gen_dir" ]]; then
  echo "generated code in $gen_dir is stale: the directory is missing; run npm run gen and commit" >&2
  exit 1
fi

if ! diff -r -u -x descriptors.binpb "$tmp/$gen_dir" "$gen_dir"; then
  echo >&2
  echo "generated code in $gen_dir is stale: run npm run gen and commit" >&2
  exit 1
fi

# The FileDescriptorSet served by gRPC reflection: a stale one would describe an old wire contract to grpcurl
# and ghz. `buf build` output is deterministic, so a byte comparison is exact.
"$buf" build -o "$tmp/descriptors.binpb"
if [[ ! -f "$descriptors" ]]; then
  echo "descriptor set $descriptors is stale: the file is missing; run npm run gen and commit" >&2
  exit 1
fi
if ! cmp -s "$tmp/descriptors.binpb" "$descriptors"; then
  echo "descriptor set $descriptors is stale: run npm run gen and commit" >&2
  exit 1
fi

echo "generated code in $gen_dir and descriptor set $descriptors are up to date"
