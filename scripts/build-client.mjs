// Builds the SDK package in client/ (its `prepack` and `build` scripts run this): a clean client/dist/ so a
// module deleted from src/ is never packed from an older build, then tsc, then the Lua scripts that FencedStore
// reads next to its compiled module (new URL('./lua/…', import.meta.url)).
import { execFileSync } from 'node:child_process';
import { cpSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const client = fileURLToPath(new URL('../client/', import.meta.url));
// The repo's own TypeScript (root node_modules), found by module resolution rather than PATH, so this works
// whether npm, npx or plain node runs it and from whichever directory.
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');

rmSync(`${client}dist`, { recursive: true, force: true });
try {
  // tsc's diagnostics go to stderr, so the stdout of `npm pack --json` (which runs this as prepack) stays JSON.
  execFileSync(process.execPath, [tsc, '-p', `${client}tsconfig.build.json`], { stdio: ['ignore', 2, 2] });
} catch {
  process.exit(1); // tsc has printed its errors; a stack trace of this script would only bury them
}
cpSync(`${client}src/lua`, `${client}dist/client/src/lua`, { recursive: true });
