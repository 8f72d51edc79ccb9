import { Writable } from 'node:stream';
import { type Channel, type Client, createChannel, createClientFactory, type Metadata } from 'nice-grpc';
import { type DeadlineOptions, deadlineMiddleware } from 'nice-grpc-client-middleware-deadline';
import { pino } from 'pino';
import { onTestFinished } from 'vitest';
import { HealthDefinition } from '../../gen/grpc/health/v1/health.js';
import { AdminServiceDefinition } from '../../gen/redlease/v1/admin.js';
import { LockServiceDefinition } from '../../gen/redlease/v1/lock.js';
import {
  RedisCluster as Cluster,
  type RedisCluster,
  type RedisClusterOptions,
  RedisProcess,
} from '../../scripts/lib/redis-process.js';
import { type RunningServer, startServer } from '../../server/app.js';
import { parseConfig } from '../../server/config.js';
import { withDefaults } from '../../testkit/server-process.js';

export { rejection, waitFor } from '../../scripts/lib/wait.js';
export { FAST_FLAGS, startServerProcess } from '../../testkit/server-process.js';
export { uniqueResource } from '../../testkit/unique-resource.js';

export type LockClient = Client<typeof LockServiceDefinition, DeadlineOptions>;
export type AdminClient = Client<typeof AdminServiceDefinition, DeadlineOptions>;
export type HealthClient = Client<typeof HealthDefinition, DeadlineOptions>;

export interface Clients {
  channel: Channel;
  lock: LockClient;
  admin: AdminClient;
  health: HealthClient;
}

/** A real gRPC channel and clients to `address`, closed when the test ends. */
export function connect(address: string, metadata?: Metadata): Clients {
  const channel = createChannel(address);
  onTestFinished(() => channel.close());
  const defaults = metadata ? { '*': { metadata } } : undefined;
  const factory = createClientFactory().use(deadlineMiddleware);
  return {
    channel,
    lock: factory.create(LockServiceDefinition, channel, defaults),
    admin: factory.create(AdminServiceDefinition, channel, defaults),
    health: factory.create(HealthDefinition, channel, defaults),
  };
}

export interface TestServer extends Clients {
  cluster: RedisCluster;
  nodes: [RedisProcess, RedisProcess, RedisProcess];
  server: RunningServer;
  address: string;
  /** Every log line the server wrote, parsed. */
  logs: Record<string, unknown>[];
}

/**
 * Three real redis-server processes and a redlease server in this process on a free loopback port, with a real
 * gRPC client; all torn down when the test ends. `flags` are server/config.ts flags added after FAST_FLAGS.
 */
export async function startTestServer(
  flags: readonly string[] = [],
  options: {
    cluster?: RedisCluster;
    clusterOptions?: RedisClusterOptions;
    env?: Record<string, string>;
  } = {},
): Promise<TestServer> {
  const cluster = options.cluster ?? (await Cluster.start(3, options.clusterOptions));
  if (!options.cluster) onTestFinished(() => cluster.dispose());
  // A free loopback port unless `flags` choose where to listen.
  const listen = flags.includes('--grpc-listen') ? [] : ['--grpc-listen', '127.0.0.1:0'];
  const parsed = parseConfig(
    ['--nodes', cluster.addresses.join(','), ...listen, ...withDefaults(flags)],
    options.env ?? {},
  );
  if (!('config' in parsed)) throw new Error('unexpected --help');
  const logs: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line) logs.push(JSON.parse(line));
      done();
    },
  });
  const server = await startServer(parsed.config, pino({ level: 'debug' }, sink));
  onTestFinished(() => server.close());
  const address = `127.0.0.1:${server.grpcPort}`;
  return {
    cluster,
    nodes: cluster.nodes as [RedisProcess, RedisProcess, RedisProcess],
    server,
    address,
    logs,
    ...connect(address),
  };
}

export { RedisProcess };
