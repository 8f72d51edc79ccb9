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
import { ServerProcess } from '../../scripts/lib/server-process.js';
import { type RunningServer, startServer } from '../../server/app.js';
import { parseConfig } from '../../server/config.js';

export { rejection, waitFor } from '../../scripts/lib/wait.js';
export { uniqueResource } from './engine.js';

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
function withDefaults(flags: readonly string[]): string[] {
  const merged: string[] = [];
  for (let i = 0; i < FAST_FLAGS.length; i += 2) {
    if (!flags.includes(FAST_FLAGS[i]!)) merged.push(FAST_FLAGS[i]!, FAST_FLAGS[i + 1]!);
  }
  return [...merged, ...flags];
}

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

export { RedisProcess };
