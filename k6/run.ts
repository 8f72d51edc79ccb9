// Entry of `npm run k6 -- run [flags] <script>`: runs k6 when it is on PATH, with the arguments as given, and
// passes its exit code through; otherwise the built-in twin of the two lab scripts (k6/twin/runner.ts) with the
// same arguments. K6_BUILTIN=1 picks the twin even when k6 is installed.
import { spawnSync } from 'node:child_process';
import { accessSync, constants, statSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { runTwin } from './twin/runner.js';

/** The first executable `name` on PATH, if any. */
function onPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir === '') continue;
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      if (statSync(candidate).isFile()) return candidate;
    } catch {
      // not there, or not executable
    }
  }
  return undefined;
}

const args = process.argv.slice(2);
const k6 = process.env.K6_BUILTIN ? undefined : onPath('k6');
if (k6 !== undefined) {
  const result = spawnSync(k6, args, { stdio: 'inherit' });
  if (result.error) {
    console.error(`k6: ${result.error.message}`);
    process.exitCode = 1;
  } else {
    process.exitCode = result.status ?? 1;
  }
} else {
  process.exitCode = await runTwin(args, {
    stdout: (text) => process.stdout.write(text),
    stderr: (text) => process.stderr.write(text),
    env: process.env,
    onStart: (stop) => process.once('SIGINT', stop),
  });
}
