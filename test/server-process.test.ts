// The real server binary (`node --import tsx server/main.ts`) as a child process: graceful shutdown on SIGTERM and
// SIGINT, a second signal, one-line configuration errors with exit code 2, and --help.
import { once } from 'node:events';
import { type Client, ClientError, createClient, Status } from 'nice-grpc';
import { describe, expect, it, onTestFinished } from 'vitest';
import {
  ServerReflectionDefinition,
  type ServerReflectionRequest,
} from '../gen/grpc/reflection/v1/reflection.js';
import { LeaseState } from '../gen/redlease/v1/lock.js';
import { RedisCluster } from '../scripts/lib/redis-process.js';
import { ServerProcess } from '../scripts/lib/server-process.js';
import { defaultText, OPTIONS } from '../server/config.js';
import { openStream } from './support/keepalive-stream.js';
import { connect, rejection, startServerProcess, uniqueResource, waitFor } from './support/server.js';

async function startCluster(): Promise<RedisCluster> {
  const cluster = await RedisCluster.start(3);
  onTestFinished(() => cluster.dispose());
  return cluster;
}

/** Spawns the server and resolves once it has exited and its stdout and stderr are fully read. */
async function runToEnd(args: readonly string[], env: NodeJS.ProcessEnv = {}) {
  const server = ServerProcess.spawn(args, env);
  // 'exit' (what `exited` waits for) can come before the last output is read; 'close' comes after.
  const closed = once(server.child, 'close');
  const timer = setTimeout(() => server.child.kill('SIGKILL'), 15_000);
  try {
    const [exit] = await Promise.all([server.exited, closed]);
    return { exit, server, text: server.output.join('') };
  } finally {
    clearTimeout(timer);
  }
}

/** A configuration error: exit code 2, nothing on stdout, one line on stderr; returns that line. */
async function configError(args: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<string> {
  const { exit, server, text } = await runToEnd(['--grpc-listen', '127.0.0.1:0', ...args], env);
  expect(exit).toEqual({ code: 2, signal: null });
  expect(server.logs).toEqual([]);
  expect(text.endsWith('\n')).toBe(true);
  const lines = text.split('\n').slice(0, -1);
  expect(lines).toHaveLength(1);
  return lines[0]!;
}

describe('graceful shutdown of the server process', () => {
  it('SIGTERM: the waiter and the KeepAlive stream get UNAVAILABLE, exit 0, the held lock is left to expire', async () => {
    const cluster = await startCluster();
    const server = await startServerProcess(cluster);
    const { lock } = connect(`127.0.0.1:${server.grpcPort}`);
    const a = uniqueResource('kept');
    const b = uniqueResource('waited-for');

    const { lease: leaseA } = await lock.acquire({ resource: a, ttlMs: 8_000, clientId: 'holder-a' });
    const stream = openStream(lock);
    stream.send({ resource: a, lockId: leaseA!.lockId, ttlMs: 8_000 });
    expect(await stream.nth(1)).toMatchObject({
      resource: a,
      lockId: leaseA!.lockId,
      state: LeaseState.LEASE_STATE_HELD,
    });

    const { lease: leaseB } = await lock.acquire({ resource: b, ttlMs: 8_000, clientId: 'holder-b' });
    const waiter = rejection(
      lock.acquire({ resource: b, ttlMs: 8_000, waitTimeoutMs: 20_000, clientId: 'waiter-b' }),
      ClientError,
    );
    await waitFor(
      'the waiter to be queued',
      async () => (await lock.describe({ resource: b })).waiters === 1,
    );

    const exit = await server.stop('SIGTERM');
    expect(exit).toEqual({ code: 0, signal: null });
    const failed = await waiter;
    expect(failed.code).toBe(Status.UNAVAILABLE);
    expect(failed.details).toContain('shutting down');
    await stream.done;
    const streamError = stream.error;
    expect(streamError).toBeInstanceOf(ClientError);
    expect((streamError as ClientError).code).toBe(Status.UNAVAILABLE);
    expect((streamError as ClientError).details).toContain('shutting down');
    expect(stream.received).toHaveLength(1);

    const messages = server.logs.map((l) => l.msg);
    const shuttingDown = messages.indexOf('shutting down');
    expect(shuttingDown).toBeGreaterThanOrEqual(0);
    expect(server.logs[shuttingDown]).toMatchObject({ signal: 'SIGTERM' });
    expect(messages.indexOf('redlease stopped')).toBeGreaterThan(shuttingDown);
    // Every call ended when the shutdown failed it: nothing was left for the grace period to cut off.
    expect(messages).not.toContain('calls still running after the grace period: cancelling them');

    // Not released: both leases stay in Redis until their ttl runs out (a quorum of nodes still has them).
    for (const lease of [leaseA!, leaseB!]) {
      const held = await Promise.all(cluster.nodes.map((n) => n.command('GET', `lk:${lease.resource}`)));
      expect(held.filter((v) => v === lease.lockId).length, lease.resource).toBeGreaterThanOrEqual(2);
      const exists = await Promise.all(cluster.nodes.map((n) => n.command('EXISTS', `lk:${lease.resource}`)));
      expect(exists.filter((v) => v === 1).length).toBeGreaterThanOrEqual(2);
    }
    expect(server.events('released')).toEqual([]);

    // Lock events are logged without lock ids (a lock id is the capability to release).
    const acquired = server.events('acquired');
    expect(acquired.map((l) => [l.resource, l.client_id])).toEqual([
      [a, 'holder-a'],
      [b, 'holder-b'],
    ]);
    const waited = server.events('waited');
    expect(waited).toHaveLength(1);
    expect(waited[0]).toMatchObject({ resource: b, client_id: 'waiter-b', outcome: 'shutdown' });
    for (const line of [...acquired, ...waited]) {
      expect(JSON.stringify(line)).not.toContain(leaseA!.lockId);
      expect(JSON.stringify(line)).not.toContain(leaseB!.lockId);
    }
  });

  it('SIGINT stops it the same way: exit 0, "redlease stopped"; the port is closed afterwards', async () => {
    const cluster = await startCluster();
    const server = await startServerProcess(cluster);
    const { lock } = connect(`127.0.0.1:${server.grpcPort}`);
    const { lease } = await lock.acquire({ resource: uniqueResource() });
    expect(lease?.quorum).toBe(2);

    expect(await server.stop('SIGINT')).toEqual({ code: 0, signal: null });
    expect(server.logs.find((l) => l.msg === 'shutting down')).toMatchObject({ signal: 'SIGINT' });
    expect(server.logs.at(-1)?.msg).toBe('redlease stopped');
    const after = await rejection(
      lock.describe({ resource: uniqueResource() }, { deadline: 2_000 }),
      ClientError,
    );
    expect(after.code).toBe(Status.UNAVAILABLE);
  });

  it('a call still open after the grace period is cancelled, and the server still exits 0', async () => {
    const cluster = await startCluster();
    const server = await startServerProcess(cluster, ['--shutdown-grace-ms', '300']);
    const { channel } = connect(`127.0.0.1:${server.grpcPort}`);
    const reflection = openReflection(createClient(ServerReflectionDefinition, channel));
    await reflection.listed;

    const exit = await server.stop('SIGTERM');
    expect(exit).toEqual({ code: 0, signal: null });
    const messages = server.logs.map((l) => l.msg);
    expect(messages).toContain('calls still running after the grace period: cancelling them');
    expect(server.logs.find((l) => l.msg?.startsWith('calls still running'))).toMatchObject({
      grace_ms: 300,
    });
    expect(messages.at(-1)).toBe('redlease stopped');
    // grpc-js's forced shutdown resets the stream (CANCELLED) or drops the connection (UNAVAILABLE).
    const cut = await reflection.done;
    expect(cut).toBeInstanceOf(ClientError);
    expect([Status.CANCELLED, Status.UNAVAILABLE]).toContain((cut as ClientError).code);
  });

  it('a second signal during a slow shutdown exits at once with code 1', async () => {
    const cluster = await startCluster();
    const server = await startServerProcess(cluster, ['--shutdown-grace-ms', '20000']);
    const { channel } = connect(`127.0.0.1:${server.grpcPort}`);
    // A reflection stream the client never half-closes: the graceful shutdown waits for it.
    const reflection = openReflection(createClient(ServerReflectionDefinition, channel));
    await reflection.listed;

    server.child.kill('SIGTERM');
    await waitFor('the shutdown to begin', () => server.logs.some((l) => l.msg === 'shutting down'));
    expect(server.running).toBe(true);
    const second = performance.now();
    const exit = await server.stop('SIGINT');
    const ms = performance.now() - second;
    expect(exit).toEqual({ code: 1, signal: null });
    expect(ms).toBeLessThan(5_000);
    expect(server.logs.find((l) => l.msg === 'second signal: exiting now')).toMatchObject({
      signal: 'SIGINT',
    });
    expect(server.logs.map((l) => l.msg)).not.toContain('redlease stopped');
    expect(await reflection.done).toBeInstanceOf(ClientError);
  });
});

/** A reflection stream that asks list_services once and stays open (no half-close) until the test ends. */
function openReflection(client: Client<typeof ServerReflectionDefinition>) {
  const abort = new AbortController();
  onTestFinished(() => abort.abort());
  let hold: () => void = () => {};
  onTestFinished(() => hold());
  async function* requests(): AsyncGenerator<Partial<ServerReflectionRequest>> {
    yield { host: '', messageRequest: { $case: 'listServices', value: '' } };
    await new Promise<void>((resolve) => (hold = resolve));
  }
  let answered = 0;
  const done = (async (): Promise<unknown> => {
    try {
      for await (const _ of client.serverReflectionInfo(requests(), { signal: abort.signal })) answered++;
      return undefined;
    } catch (error) {
      return error;
    }
  })();
  return { listed: waitFor('the list_services answer', () => answered === 1), done };
}

describe('start-up configuration errors and --help', () => {
  it('an invalid flag value: exit 2 and one line naming the flag', async () => {
    const line = await configError(['--default-ttl-ms', 'abc']);
    expect(line).toMatch(/^redlease: --default-ttl-ms \(REDLEASE_DEFAULT_TTL_MS\): /);
    expect(line).toContain('"abc"');
  });

  it('a malformed admin network: exit 2 and one line naming --admin-networks', async () => {
    expect(await configError(['--admin-networks', '172.16.37.0/24,10.0.0.0/33'])).toBe(
      'redlease: --admin-networks (REDLEASE_ADMIN_NETWORKS): "10.0.0.0/33" is not a network: write address/prefix, as 172.16.37.0/24 or fd00::/8',
    );
    const line = await configError([], { REDLEASE_ADMIN_NETWORKS: 'lab-net' });
    expect(line).toMatch(
      /^redlease: --admin-networks \(REDLEASE_ADMIN_NETWORKS\): "lab-net" is not a network/,
    );
  });

  it('an unknown flag: exit 2 and one line naming it', async () => {
    const line = await configError(['--nope']);
    expect(line).toMatch(/^redlease: --nope: unknown option/);
    expect(line).toContain('--help');
  });

  it('an invalid environment variable: exit 2 and one line naming the variable', async () => {
    const line = await configError([], { REDLEASE_MAX_TTL_MS: '0' });
    expect(line).toMatch(/^redlease: --max-ttl-ms \(REDLEASE_MAX_TTL_MS\): /);
    expect(line).toContain('"0"');
  });

  it('--help prints every flag with its variable and default, and exits 0 without starting', async () => {
    const { exit, server, text } = await runToEnd(['--help']);
    expect(exit).toEqual({ code: 0, signal: null });
    expect(server.logs).toEqual([]);
    expect(text).toContain('Usage: redlease server [options]');
    const lines = server.output;
    const lineOf = (needle: string) => lines.find((l) => l.includes(needle));
    expect(lineOf('--nodes ')).toMatch(
      /--nodes <host:port,\.\.\.>\s+REDLEASE_NODES\s+default 127\.0\.0\.1:6381,127\.0\.0\.1:6382,127\.0\.0\.1:6383$/,
    );
    expect(lineOf('--grpc-listen ')).toMatch(
      /--grpc-listen <host:port>\s+REDLEASE_GRPC_LISTEN\s+default 127\.0\.0\.1:50051$/,
    );
    // Every option of the table, flag and variable on one line with its default; env-only ones marked so.
    for (const spec of OPTIONS) {
      const line = lineOf(` ${spec.env} `);
      expect(line, spec.env).toBeDefined();
      expect(line, spec.env).toContain(spec.flag ? `${spec.flag} ` : '(environment only)');
      expect(line?.endsWith(` default ${defaultText(spec)}`), `${spec.env}: ${line}`).toBe(true);
    }
  });
});
