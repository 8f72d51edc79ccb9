import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const run = promisify(execFile);

/**
 * Compiles the server the way the container image does (`npm run build`: tsc -p tsconfig.build.json, then the
 * files it reads at run time) into `outDir`, a folder of the repository (so the compiled code finds node_modules),
 * and returns the compiled entry point relative to the repository root, for ServerProcess's `entry`.
 */
export async function buildServer(outDir = 'dist'): Promise<string> {
  const options = { cwd: ROOT, maxBuffer: 16 * 1024 * 1024 };
  try {
    await run(
      process.execPath,
      [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json', '--outDir', outDir],
      options,
    );
    await run(process.execPath, [join(ROOT, 'scripts/copy-assets.mjs'), outDir], options);
  } catch (error) {
    const { stdout, stderr } = error as { stdout?: string; stderr?: string };
    throw new Error(`building the server into ${outDir}/ failed:\n${stdout ?? ''}${stderr ?? String(error)}`);
  }
  return `${outDir}/server/main.js`;
}
