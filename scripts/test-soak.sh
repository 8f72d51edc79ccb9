#!/usr/bin/env bash
# Runs the test suite again and again, to find tests that fail only sometimes. Prints, for each run, its counts
# and the tests that failed, then a summary: how often each failing test failed. Exits 1 when any run failed.
#   npm run test:soak -- --runs 10            ten runs in a row
#   npm run test:soak -- --runs 5 --pin 0     five runs on one core (taskset -c 0): a loaded CI box, exaggerated
# Extra arguments after -- go to vitest (e.g. a file filter). Run `npm test` once first (it installs what is
# missing and builds the server that test/compiled-server.test.ts runs).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

runs=10
pin=""
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) runs="$2"; shift 2 ;;
    --pin) pin="$2"; shift 2 ;;
    --) shift; break ;;
    *) break ;;
  esac
done
case "$runs" in ''|*[!0-9]*) echo "--runs takes a whole number, got '$runs'" >&2; exit 2 ;; esac

out=.redlease/soak
mkdir -p "$out"
rm -f "$out"/run-*.json
export TEST_COMPILED_SERVER_BUILT=1
[ -f dist/server/main.js ] || npm run -s build
prefix=()
[ -n "$pin" ] && prefix=(taskset -c "$pin")

failed_runs=0
for i in $(seq 1 "$runs"); do
  report="$out/run-$i.json"
  start=$(date +%s)
  status=0
  "${prefix[@]}" npx vitest run --reporter=dot --reporter=json --outputFile.json="$report" "$@" >"$out/run-$i.log" 2>&1 ||
    status=$?
  [ "$status" -ne 0 ] && failed_runs=$((failed_runs + 1))
  node -e '
    const fs = require("node:fs");
    const [file, i, seconds] = process.argv.slice(1);
    if (!fs.existsSync(file)) { console.log(`run ${i}: no report (vitest crashed; see ${file.replace(".json", ".log")})`); process.exit(0); }
    const r = JSON.parse(fs.readFileSync(file, "utf8"));
    const failed = r.testResults.flatMap((f) => f.assertionResults.filter((a) => a.status === "failed")
      .map((a) => `${f.name.replace(process.cwd() + "/", "")} > ${a.fullName}`));
    console.log(`run ${i}: ${r.numPassedTests} passed, ${r.numFailedTests} failed, ${r.numPendingTests + r.numTodoTests} skipped (${seconds} s)`);
    for (const name of failed) console.log(`  failed: ${name}`);
  ' "$report" "$i" "$(( $(date +%s) - start ))"
done

node -e '
  const fs = require("node:fs");
  const dir = process.argv[1];
  const counts = new Map();
  for (const file of fs.readdirSync(dir).filter((f) => /^run-\d+\.json$/.test(f))) {
    const r = JSON.parse(fs.readFileSync(`${dir}/${file}`, "utf8"));
    for (const f of r.testResults)
      for (const a of f.assertionResults.filter((a) => a.status === "failed")) {
        const name = `${f.name.replace(process.cwd() + "/", "")} > ${a.fullName}`;
        counts.set(name, (counts.get(name) ?? 0) + 1);
      }
  }
  console.log(counts.size === 0 ? "no test failed" : "failures by test:");
  for (const [name, n] of [...counts].sort((a, b) => b[1] - a[1])) console.log(`  ${n}× ${name}`);
' "$out"
echo "soak: $((runs - failed_runs)) passed, $failed_runs failed (runs)"
[ "$failed_runs" -eq 0 ]
