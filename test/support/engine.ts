import { onTestFinished } from 'vitest';
import {
  RedisCluster,
  type RedisClusterOptions,
  type RedisProcess,
} from '../../scripts/lib/redis-process.js';
import { Redlock, type RedlockOptions } from '../../server/redlock/index.js';

export { rejection, waitFor } from '../../scripts/lib/wait.js';
export { uniqueResource } from '../../testkit/unique-resource.js';

/** Short timings so fault tests run in seconds: detection within a health tick, quarantine fallback small. */
export const FAST: Partial<RedlockOptions> = {
  nodeTimeoutMs: 100,
  healthIntervalMs: 50,
  defaultTtlMs: 5_000,
  maxTtlMs: 10_000,
  retryCount: 2,
};

/** Three real redis-server processes and an engine on them, torn down when the current test ends. */
export async function startCluster(
  engineOptions: Partial<RedlockOptions> = {},
  clusterOptions: RedisClusterOptions = {},
): Promise<{
  cluster: RedisCluster;
  /** The cluster's three nodes, typed as a tuple so tests can destructure them. */
  nodes: [RedisProcess, RedisProcess, RedisProcess];
  engine: Redlock;
  /** allRunningNodesUp: fail unless every node whose process runs is up (off for tests of nodes that must not be). */
  newEngine: (o?: Partial<RedlockOptions>, check?: { allRunningNodesUp: boolean }) => Promise<Redlock>;
}> {
  const cluster = await RedisCluster.start(3, clusterOptions);
  const engines: Redlock[] = [];
  onTestFinished(async () => {
    await Promise.all(engines.map((e) => e.close()));
    await cluster.dispose();
  });
  const newEngine = async (
    o: Partial<RedlockOptions> = {},
    check = { allRunningNodesUp: true },
  ): Promise<Redlock> => {
    const engine = new Redlock({ ...FAST, nodes: cluster.addresses, ...engineOptions, ...o });
    engines.push(engine);
    const status = await engine.ready();
    if (
      check.allRunningNodesUp &&
      !status.nodes.every((n) => n.up || !cluster.nodes.find((p) => p.address === n.address)?.running)
    ) {
      throw new Error(`engine not ready: ${JSON.stringify(status.nodes)}`);
    }
    return engine;
  };
  const nodes = cluster.nodes as [RedisProcess, RedisProcess, RedisProcess];
  return { cluster, nodes, engine: await newEngine(), newEngine };
}
