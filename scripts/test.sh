#!/usr/bin/env bash
# The whole test suite, from a fresh clone: installs what is missing (redis-server, npm dependencies), checks that
# the generated protobuf code is current, lints and type-checks, then runs every test against real redis-server
# processes that the tests start on free loopback ports. Extra arguments go to vitest (e.g. a file filter).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. scripts/lib/ensure-deps.sh
ensure_redis_server
ensure_lab_tools
ensure_test_tools
ensure_node_modules

echo "==> generated code is current"
bash scripts/gen-check.sh
echo "==> lint (biome, buf), types (tsc --noEmit; the k6 scripts against @types/k6) and the import rules (.dependency-cruiser.cjs)"
npx biome check --error-on-warnings .
npx buf lint
npx tsc -p tsconfig.json --noEmit
npx tsc -p k6/tsconfig.json
npm run -s deps:check

echo "==> compile the server as the container image does (test/compiled-server.test.ts runs it)"
# Built here, before the suite, so tsc's CPU burst does not compete with timing-sensitive tests running in parallel.
npm run -s build
export TEST_COMPILED_SERVER_BUILT=1

# The history checker must prove it can fail before any fault scenario is judged by it.
echo "==> history checker self-tests"
npx vitest run chaos/checker.test.ts chaos/check.test.ts chaos/checks/

echo "==> tests"
mkdir -p .redlease
report=.redlease/vitest-report.json
rm -f "$report"
status=0
npx vitest run --reporter=default --reporter=json --outputFile.json="$report" "$@" || status=$?
# One plain closing line that any CI can read, whatever the reporter printed above. A skipped test (it.skip,
# it.todo, a runIf/skipIf that did not run, or one left out by a -t name filter) proves nothing, so it fails the
# run like a failed one: its name is printed, and the exit status is 1 unless vitest already failed.
node -e '
  const fs = require("node:fs");
  const path = require("node:path");
  const file = process.argv[1];
  if (!fs.existsSync(file)) { console.log("tests: 0 passed, 1 failed (vitest wrote no report)"); process.exit(0); }
  const r = JSON.parse(fs.readFileSync(file, "utf8"));
  const skipped = (r.numPendingTests ?? 0) + (r.numTodoTests ?? 0);
  console.log(`tests: ${r.numPassedTests} passed, ${r.numFailedTests} failed, ${skipped} skipped`);
  if (skipped === 0) process.exit(0);
  for (const result of r.testResults ?? []) {
    for (const test of result.assertionResults ?? []) {
      if (["pending", "skipped", "todo"].includes(test.status))
        console.log(`skipped (${test.status}): ${path.relative(process.cwd(), result.name)} > ${test.fullName}`);
    }
  }
  console.log(`tests: FAILED: ${skipped} test(s) skipped; every test must run (run one file or name with npx vitest run)`);
  process.exit(1);
' "$report" || { [ "$status" -ne 0 ] || status=1; }
exit "$status"
