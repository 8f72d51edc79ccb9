/**
 * The redlease server as a child process for tests (test/ and chaos/ alike): short timings, free loopback ports,
 * stopped when the test ends.
 */
import { onTestFinished } from 'vitest';
import type { RedisCluster } from '../scripts/lib/redis-process.js';
import { ServerProcess } from '../scripts/lib/server-process.js';

/** Short timings so fault tests run in seconds (node checks every 50 ms; a restarted node waits ≤ 10 s), and the
 *  HTTP API on a free port (tests run in parallel; the default 8000 is the demo's). */
export const FAST_FLAGS = [
  '--http-listen',
  '127.0.0.1:0',
  '--health-interval-ms',
  '50',
  '--default-ttl-ms',
  '5000',
  '--max-ttl-ms',
  '10000',
  '--shutdown-grace-ms',
  '2000',
];

/** FAST_FLAGS, minus those `flags` set themselves (the server refuses a flag given twice), then `flags`. */
export function withDefaults(flags: readonly string[]): string[] {
  const merged: string[] = [];
  for (let i = 0; i < FAST_FLAGS.length; i += 2) {
    if (!flags.includes(FAST_FLAGS[i]!)) merged.push(FAST_FLAGS[i]!, FAST_FLAGS[i + 1]!);
  }
  return [...merged, ...flags];
}

/** A redlease server as a separate process on the cluster's nodes, stopped when the test ends. */
export async function startServerProcess(
  cluster: RedisCluster,
  flags: readonly string[] = [],
  env: Record<string, string> = {},
): Promise<ServerProcess> {
  const server = await ServerProcess.start(
    ['--nodes', cluster.addresses.join(','), '--grpc-listen', '127.0.0.1:0', ...withDefaults(flags)],
    env,
  );
  onTestFinished(() => server.stop('SIGKILL').then(() => undefined));
  return server;
}
