import { randomUUID } from 'node:crypto';
import { onTestFinished } from 'vitest';
import { RedisCluster, type RedisClusterOptions } from '../../scripts/lib/redis-process.js';
import { Redlock, type RedlockOptions } from '../../server/redlock/index.js';

/** Short timings so fault tests run in seconds: detection within a health tick, quarantine fallback small. */
export const FAST: Partial<RedlockOptions> = {
  nodeTimeoutMs: 100,
  healthIntervalMs: 50,
  defaultTtlMs: 5_000,
  maxTtlMs: 10_000,
  retryCount: 2,
};

/** A resource name no other test uses, so tests sharing nodes never see each other's keys. */
export function uniqueResource(tag = 'r'): string {
  return `${tag}-${randomUUID().slice(0, 8)}`;
}

/** Three real redis-server processes and an engine on them, torn down when the current test ends. */
export async function startCluster(
  engineOptions: Partial<RedlockOptions> = {},
  clusterOptions: RedisClusterOptions = {},
): Promise<{
  cluster: RedisCluster;
  engine: Redlock;
  newEngine: (o?: Partial<RedlockOptions>) => Promise<Redlock>;
}> {
  const cluster = await RedisCluster.start(3, clusterOptions);
  const engines: Redlock[] = [];
  onTestFinished(async () => {
    await Promise.all(engines.map((e) => e.close()));
    await cluster.dispose();
  });
  const newEngine = async (o: Partial<RedlockOptions> = {}): Promise<Redlock> => {
    const engine = new Redlock({ ...FAST, ...engineOptions, ...o, nodes: cluster.addresses });
    engines.push(engine);
    const status = await engine.ready();
    if (!status.nodes.every((n) => n.up || !cluster.nodes.find((p) => p.address === n.address)?.running)) {
      throw new Error(`engine not ready: ${JSON.stringify(status.nodes)}`);
    }
    return engine;
  };
  return { cluster, engine: await newEngine(), newEngine };
}

/** Waits for a condition (an event we cannot subscribe to directly), bounded; fails with what was awaited. */
export async function waitFor<T>(
  what: string,
  check: () => T | Promise<T>,
  timeoutMs = 5_000,
): Promise<NonNullable<T>> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value as NonNullable<T>;
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Expects a promise to reject with an instance of `type`; returns the error for further assertions. */
export async function rejection<E extends Error>(
  promise: Promise<unknown>,
  type: abstract new (...args: never[]) => E,
): Promise<E> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof type) return error;
    throw new Error(`expected ${type.name}, got ${String(error)}`, { cause: error });
  }
  throw new Error(`expected ${type.name}, but the call succeeded`);
}
