// Entry of `npm run ghz -- <config.json> [ghz flags…]` (or `npm run ghz -- [ghz flags…] <host>`): runs the real
// ghz when it is on PATH, with `--config <file>` and the other arguments as given, and passes its exit code
// through; otherwise the built-in runner (ghz/builtin.ts) with the same arguments. GHZ_BUILTIN=1 picks the
// built-in runner even when ghz is installed (the lab test's ghz shim sets it, so it never calls itself).
import { spawnSync } from 'node:child_process';
import { accessSync, constants, statSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { text } from 'node:stream/consumers';
import { runBuiltinGhz } from './builtin.js';

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

const isFile = (path: string) => {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
};

const args = process.argv.slice(2);
// A first argument that is a file is the config (ghz itself wants `--config <file>`).
const argv =
  args[0] !== undefined && !args[0].startsWith('-') && isFile(args[0]) ? ['--config', ...args] : args;

const ghz = process.env.GHZ_BUILTIN ? undefined : onPath('ghz');
if (ghz !== undefined) {
  const result = spawnSync(ghz, argv, { stdio: 'inherit' });
  if (result.error) {
    console.error(`ghz: ${result.error.message}`);
    process.exitCode = 1;
  } else {
    process.exitCode = result.status ?? 1;
  }
} else {
  process.exitCode = await runBuiltinGhz(argv, {
    stdout: (chunk) => process.stdout.write(chunk),
    stderr: (chunk) => process.stderr.write(chunk),
    readStdin: () => text(process.stdin),
    onStart: (stop) => process.once('SIGINT', stop),
  });
}
