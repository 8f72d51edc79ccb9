import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/**
 * Compiles the server with `npm run build` (into dist/, exactly as the container image is built) and returns the
 * compiled entry point relative to the repository root, for ServerProcess's `entry`.
 */
export async function buildServer(): Promise<string> {
  try {
    await promisify(execFile)('npm', ['run', '-s', 'build'], { cwd: ROOT, maxBuffer: 16 * 1024 * 1024 });
  } catch (error) {
    const { stdout, stderr } = error as { stdout?: string; stderr?: string };
    throw new Error(`npm run build failed:\n${stdout ?? ''}${stderr ?? String(error)}`);
  }
  return 'dist/server/main.js';
}
