import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect as connectTcp, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ClientError, Status } from 'nice-grpc';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { LockClient } from '../client/src/index.js';
import { sendControl } from '../scripts/lib/control-client.js';
import type { ProcessStatus } from '../scripts/lib/control-protocol.js';
import { DemoState } from '../scripts/lib/demo-state.js';
import { processStartTime } from '../scripts/lib/process-start-time.js';
import {
  allPorts,
  type DemoPorts,
  demoArgs,
  freeDemoPorts,
  ScriptRun,
  START_TIMEOUT_MS,
  startLauncher,
  UP_LINE,
} from './support/demo.js';
import { connect, type LockClient as GrpcLockClient, uniqueResource, waitFor } from './support/server.js';

/** A node command answers within the launcher's bounded redis stop / start (≤ about 12 s; usually < 1 s). */
const COMMAND_TIMEOUT_MS = 20_000;
/** "Fails fast": a request without a quorum is answered within about a second (no waiting for timeouts). */
const FAST_FAILURE_MS = 1_000;
/** gRPC calls in this file (a relative deadline: nice-grpc's deadline option takes a Date or an offset). */
const CALL_DEADLINE_MS = 5_000;

/** Launcher flags for `ports` and `stateDir`: short ttls, so that a restarted node's quarantine (≤ the max ttl,
 *  1 s) ends quickly. */
function launcherArgs(ports: DemoPorts, stateDir: string, more: string[] = []): string[] {
  return demoArgs(ports, stateDir, [
    '--ttl-ms',
    '1000',
    '--max-ttl-ms',
    '1000',
    '--pause-ms',
    '200',
    ...more,
  ]);
}

/** Runs the node-control command to its end. */
async function nodes(stateDir: string, ...args: string[]) {
  const run = new ScriptRun('scripts/nodes.ts', [...args, '--state-dir', stateDir]);
  const exit = await run.finish(COMMAND_TIMEOUT_MS);
  return { code: exit.code, stdout: run.stdout, stderr: run.stderr };
}

/** Every process of the demo, asked over its control socket as `npm run nodes -- status` does (in this process:
 *  each command run costs half a second of tsx start-up; the command's own output is tested separately). */
async function status(stateDir: string): Promise<ProcessStatus[]> {
  const record = DemoState.read(stateDir);
  if (record === undefined) throw new Error(`no demo state in ${stateDir}`);
  const response = await sendControl(record.control, { action: 'status' });
  if (!response.ok) throw new Error(response.error);
  return response.processes;
}

function stateOf(processes: readonly ProcessStatus[], name: string): string | undefined {
  return processes.find((p) => p.name === name)?.state;
}

/** Outcome of a TCP connection to 127.0.0.1:port: 'connected' or the error code (e.g. 'ECONNREFUSED'). */
function tryConnect(port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = connectTcp({ host: '127.0.0.1', port });
    socket.setTimeout(2_000, () => {
      socket.destroy();
      resolve('timeout');
    });
    socket.once('connect', () => {
      socket.destroy();
      resolve('connected');
    });
    socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
  });
}

/** Whether this process can listen on 127.0.0.1:port (nobody else does). */
function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen({ host: '127.0.0.1', port, exclusive: true }, () => server.close(() => resolve(true)));
  });
}

/** True when `pid` is no process, or a zombie (dead, waiting for its new parent to reap it). */
function gone(pid: number): boolean {
  return processStartTime(pid) === undefined;
}

/** One acquire and release over gRPC with the generated client (no retries): the lease's nodes. */
async function grpcRoundTrip(lock: GrpcLockClient): Promise<string[]> {
  const resource = uniqueResource('demo-grpc');
  const { lease } = await lock.acquire({ resource, ttlMs: 1_000 }, { deadline: CALL_DEADLINE_MS });
  expect(lease?.fencingToken).toBeGreaterThan(0);
  await lock.release({ resource, lockId: lease!.lockId }, { deadline: CALL_DEADLINE_MS });
  return lease!.nodes;
}

/** An acquire over gRPC that must fail: its status code and how long it took. */
async function grpcFailure(lock: GrpcLockClient): Promise<{ code: Status; ms: number }> {
  const started = performance.now();
  try {
    await lock.acquire(
      { resource: uniqueResource('demo-grpc'), ttlMs: 1_000 },
      { deadline: CALL_DEADLINE_MS },
    );
  } catch (error) {
    if (!(error instanceof ClientError)) throw error;
    return { code: error.code, ms: performance.now() - started };
  }
  throw new Error('the acquire succeeded');
}

async function postJson(port: number, path: string, body: unknown) {
  const started = performance.now();
  const response = await fetch(`http://127.0.0.1:${port}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(5_000),
  });
  return {
    status: response.status,
    body: (await response.json()) as Record<string, unknown>,
    ms: performance.now() - started,
  };
}

describe('npm run demo and npm run nodes', () => {
  let ports: DemoPorts;
  let stateDir: string;
  let launcher: ScriptRun;
  /** Every pid the demo reported while it ran: none may be alive after Ctrl-C. */
  const pids = new Set<number>();
  const remember = (processes: readonly ProcessStatus[]): void => {
    for (const p of processes) if (p.pid !== null) pids.add(p.pid);
  };

  beforeAll(async () => {
    stateDir = await mkdtemp(join(tmpdir(), 'redlease-demo-test-'));
    ({ launcher, ports } = await startLauncher((p) => launcherArgs(p, stateDir, ['--workers', '1'])));
  });
  afterAll(async () => {
    if (launcher?.exit === undefined) launcher?.child.kill('SIGKILL');
    if (stateDir) await rm(stateDir, { recursive: true, force: true });
  });

  it('is up: every process runs where the options put it, with the banner and prefixed logs', async () => {
    const processes = await status(stateDir);
    remember(processes);
    expect(processes.map((p) => [p.name, p.role, p.state])).toEqual([
      ['redis-1', 'lock node', 'running'],
      ['redis-2', 'lock node', 'running'],
      ['redis-3', 'lock node', 'running'],
      ['store', 'store', 'running'],
      ['server', 'server', 'running'],
      ['w1', 'worker', 'running'],
    ]);
    expect(processes.find((p) => p.name === 'redis-2')?.addresses).toEqual([`127.0.0.1:${ports.redis[1]}`]);
    for (const p of processes) expect(p.pid, p.name).toEqual(expect.any(Number));
    const table = await nodes(stateDir, 'status');
    expect(table.code, table.stderr).toBe(0);
    expect(table.stdout).toMatch(
      new RegExp(
        `^redis-2 +lock node +running +${processes[1]?.pid} +127\\.0\\.0\\.1:${ports.redis[1]}$`,
        'm',
      ),
    );
    // Fixed-width prefixes; pino lines as one readable line each (no JSON).
    expect(launcher.stdout).toMatch(/^server {2}│ \d\d:\d\d:\d\d\.\d{3} INFO {2}redlease listening /m);
    expect(launcher.stdout).toMatch(/^redis-1 │ .*Ready to accept connections/m);
    expect(launcher.stdout).toContain(`curl -s -XPOST 127.0.0.1:${ports.http}/lock/acquire`);
    expect(launcher.stdout).toContain('npm run nodes -- stop redis-2 --state-dir');
    // The worker works: it wins the shared resource and writes through the store.
    await waitFor(
      'w1 to write the counter',
      () => /^w1 {6}│ .* wrote token=\d+ value=\d+/m.test(launcher.stdout),
      10_000,
    );
  });

  it('a lock round trip over gRPC with the SDK', async () => {
    const client = new LockClient({ address: `127.0.0.1:${ports.grpc}`, clientId: 'demo-test' });
    onTestFinished(() => client.close());
    const lease = await client.acquire(uniqueResource('demo-sdk'), { ttlMs: 1_000 });
    expect(lease.fencingToken).toBeGreaterThan(0);
    expect(lease.isHeld()).toBe(true);
    await lease.release();
  });

  it('a lock round trip over HTTP: POST /lock/acquire, then /lock/release', async () => {
    const resource = uniqueResource('demo-http');
    const acquired = await postJson(ports.http, '/lock/acquire', { resource });
    expect(acquired.status, JSON.stringify(acquired.body)).toBe(200);
    expect(acquired.body).toMatchObject({
      acquired: true,
      lock_id: expect.stringMatching(/^[0-9a-f]{32}$/),
      fencing_token: expect.any(Number),
    });
    const released = await postJson(ports.http, '/lock/release', {
      resource,
      lock_id: acquired.body.lock_id,
    });
    expect(released.status, JSON.stringify(released.body)).toBe(200);
    expect(released.body).toMatchObject({ released: true });
  });

  it('a second launcher on the same ports and state dir: "already running", and the first is not disturbed', async () => {
    const second = new ScriptRun('scripts/demo.ts', launcherArgs(ports, stateDir, ['--workers', '1']));
    const exit = await second.finish(START_TIMEOUT_MS);
    expect(exit.code, second.dump()).toBe(1);
    expect(second.stderr).toMatch(new RegExp(`a demo is already running \\(pid ${launcher.child.pid}`));
    expect(second.stdout).not.toContain('starting'); // it started nothing, and stopped nothing
    expect(launcher.exit).toBeUndefined();
    expect((await status(stateDir)).every((p) => p.state === 'running')).toBe(true);
    const { lock } = connect(`127.0.0.1:${ports.grpc}`);
    expect(await grpcRoundTrip(lock)).toHaveLength(3);
  });

  it('one node stopped: locks still granted; two: UNAVAILABLE and HTTP 503 at once; both started again: it recovers', async () => {
    const { lock } = connect(`127.0.0.1:${ports.grpc}`);

    const stop1 = await nodes(stateDir, 'stop', 'redis-1');
    expect(stop1.code, stop1.stderr).toBe(0);
    expect(stop1.stdout).toContain('redis-1 stopped');
    expect(stateOf(await status(stateDir), 'redis-1')).toBe('stopped');
    expect(await canListen(ports.redis[0])).toBe(true);
    expect((await grpcRoundTrip(lock)).sort()).toEqual(['redis-2', 'redis-3']);

    const stop2 = await nodes(stateDir, 'stop', '2'); // the short name
    expect(stop2.code, stop2.stderr).toBe(0);
    expect(stop2.stdout).toContain('no quorum');
    const grpc = await grpcFailure(lock);
    expect(grpc.code).toBe(Status.UNAVAILABLE);
    expect(grpc.ms).toBeLessThan(FAST_FAILURE_MS);
    const http = await postJson(ports.http, '/lock/acquire', { resource: uniqueResource('demo-http') });
    expect(http.status, JSON.stringify(http.body)).toBe(503);
    expect(http.body).toMatchObject({ acquired: false, error: { code: 'UNAVAILABLE' } });
    expect(http.ms).toBeLessThan(FAST_FAILURE_MS);

    const again = await nodes(stateDir, 'stop', 'lab37-redis-1'); // the compose lab's name
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('redis-1 is already stopped');

    for (const node of ['redis-1', 'redis-2']) {
      const started = await nodes(stateDir, 'start', node);
      expect(started.code, started.stderr).toBe(0);
      expect(started.stdout).toContain(`${node} started on 127.0.0.1:`);
      expect(started.stdout).toContain('quarantines');
    }
    const processes = await status(stateDir);
    remember(processes);
    expect(processes.every((p) => p.state === 'running')).toBe(true);
    // Both restarted empty: quarantined for at most the max ttl (1 s) plus drift, then every node votes again.
    await waitFor(
      'all three nodes to grant a lock again',
      async () => (await grpcRoundTrip(lock).catch(() => [])).length === 3,
      10_000,
      100,
    );
    const http2 = await postJson(ports.http, '/lock/acquire', { resource: uniqueResource('demo-http') });
    expect(http2.status, JSON.stringify(http2.body)).toBe(200);
    expect(launcher.stdout).toMatch(/^demo {4}│ .*npm run nodes -- stop redis-1: redis-1 stopped/m);
  });

  it('pause and resume: a paused node keeps its pid but answers nothing; the other two still grant', async () => {
    const { lock } = connect(`127.0.0.1:${ports.grpc}`);
    const before = (await status(stateDir)).find((p) => p.name === 'redis-3');

    const paused = await nodes(stateDir, 'pause', 'redis-3');
    expect(paused.code, paused.stderr).toBe(0);
    const during = (await status(stateDir)).find((p) => p.name === 'redis-3');
    expect(during).toMatchObject({ state: 'paused', pid: before?.pid });
    expect((await grpcRoundTrip(lock)).sort()).toEqual(['redis-1', 'redis-2']);
    const twice = await nodes(stateDir, 'pause', '3');
    expect(twice.code).toBe(1);
    expect(twice.stderr).toContain('redis-3 is already paused');

    const resumed = await nodes(stateDir, 'resume', 'redis-3');
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(stateOf(await status(stateDir), 'redis-3')).toBe('running');
    await waitFor(
      'redis-3 to grant again',
      async () => (await grpcRoundTrip(lock).catch(() => [])).length === 3,
      5_000,
      50,
    );
  });

  it('Ctrl-C: workers, then the server, then Redis stop; exit 0; no process and no port left', async () => {
    remember(await status(stateDir));
    launcher.child.kill('SIGINT');
    const exit = await launcher.finish(30_000);
    expect(exit, launcher.dump()).toEqual({ code: 0, signal: null });

    const out = launcher.stdout;
    const order = ['stopping w1', 'stopping the server', 'stopping redis-1'].map((text) => out.indexOf(text));
    expect(
      order.every((i) => i >= 0),
      out.slice(-2_000),
    ).toBe(true);
    expect([...order].sort((a, b) => a - b)).toEqual(order);
    expect(out).toMatch(/^w1 {6}│ .* done rounds=/m); // the worker ended on its own, after releasing

    for (const pid of pids) expect(gone(pid), `pid ${pid}`).toBe(true);
    for (const port of allPorts(ports)) {
      expect(await tryConnect(port), `port ${port}`).toBe('ECONNREFUSED');
      expect(await canListen(port), `port ${port}`).toBe(true);
    }
    expect(out).toMatch(/^demo {4}│ .* everything stopped$/m);
    expect(existsSync(join(stateDir, 'demo.json'))).toBe(false);
    const after = await nodes(stateDir, 'status');
    expect(after.code).toBe(1);
    expect(after.stderr).toContain('no demo is running');
  });

  it('starts again after a stop, on the same ports and state dir; SIGTERM stops it too, with exit 0', async () => {
    const { launcher: again } = await startLauncher(
      (p) => launcherArgs(p, stateDir, ['--workers', '0']),
      ports,
    );
    expect(again.stdout).not.toContain('cleaned up'); // the last stop left nothing to clean up
    const { lock } = connect(`127.0.0.1:${ports.grpc}`);
    expect(await grpcRoundTrip(lock)).toHaveLength(3);
    again.child.kill('SIGTERM');
    expect(await again.finish(30_000), again.dump()).toEqual({ code: 0, signal: null });
  });
});

describe('npm run demo: start-up failures and leftovers', () => {
  it('a port taken by another process is named, and nothing is left running', async () => {
    const ports = await freeDemoPorts();
    const stateDir = await mkdtemp(join(tmpdir(), 'redlease-demo-test-'));
    onTestFinished(() => rm(stateDir, { recursive: true, force: true }));
    const squatter = createServer();
    await new Promise<void>((resolve) => squatter.listen({ host: '127.0.0.1', port: ports.store }, resolve));
    onTestFinished(() => new Promise<void>((resolve) => squatter.close(() => resolve())));

    const run = new ScriptRun('scripts/demo.ts', launcherArgs(ports, stateDir));
    const exit = await run.finish(START_TIMEOUT_MS);
    expect(exit.code, run.dump()).toBe(1);
    expect(run.stderr).toContain(`port ${ports.store} (store) is already in use by another process`);
    for (const port of [...ports.redis, ports.grpc, ports.http]) expect(await canListen(port)).toBe(true);
    expect(existsSync(join(stateDir, 'demo.json'))).toBe(false);
  });

  it('a SIGKILLed launcher takes its children with it; the next start cleans up its state file', async () => {
    const stateDir = await mkdtemp(join(tmpdir(), 'redlease-demo-test-'));
    onTestFinished(() => rm(stateDir, { recursive: true, force: true }));
    const args = (p: DemoPorts) => launcherArgs(p, stateDir, ['--workers', '0']);

    const { launcher: first, ports } = await startLauncher(args);
    const processes = await status(stateDir);
    expect(await nodes(stateDir, 'pause', 'store')).toMatchObject({ code: 0 }); // a stopped process dies too
    first.child.kill('SIGKILL');
    await first.finish(5_000);
    await waitFor(
      'the children of the killed launcher to die',
      () => processes.every((p) => p.pid === null || gone(p.pid)),
      5_000,
      20,
    );
    for (const port of allPorts(ports)) expect(await tryConnect(port), `port ${port}`).toBe('ECONNREFUSED');
    const stale = await nodes(stateDir, 'status');
    expect(stale.code).toBe(1);
    expect(stale.stderr).toContain('is gone without cleaning up');

    const { launcher: second } = await startLauncher(args, ports); // the same ports: they are free again
    expect(second.stdout).toContain(
      `cleaned up after a demo that was stopped without cleaning up (pid ${first.child.pid})`,
    );
    second.child.kill('SIGTERM');
    expect(await second.finish(30_000), second.dump()).toEqual({ code: 0, signal: null });
  });
});

describe('npm run demo without a terminal', () => {
  // In a terminal, Ctrl-C reaches every process of the foreground group. Without one (a background job, a service
  // manager, a CI step) only the npm process is signalled, and npm passes the signal to its child, the shell it
  // runs the script in: the launcher must be that child, or it never hears the signal.
  it.each(['SIGINT', 'SIGTERM'] as const)(
    '%s to the npm process stops everything, as Ctrl-C does: exit 0, no process and no port left',
    async (signal) => {
      const stateDir = await mkdtemp(join(tmpdir(), 'redlease-demo-test-'));
      onTestFinished(() => rm(stateDir, { recursive: true, force: true }));
      const ports = await freeDemoPorts();
      const npm = spawn(
        'npm',
        ['run', '-s', 'demo', '--', ...launcherArgs(ports, stateDir, ['--workers', '1'])],
        {
          env: { ...process.env, NO_COLOR: '1' },
          stdio: ['ignore', 'pipe', 'pipe'],
          detached: true, // a process group of its own, so that cleaning up after a failure reaches all of it
        },
      );
      const killAll = (): void => {
        try {
          process.kill(-npm.pid!, 'SIGKILL');
        } catch {
          // gone already
        }
      };
      let output = '';
      npm.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
      npm.stderr.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
      const exited = once(npm, 'close') as Promise<[number | null, NodeJS.Signals | null]>;
      onTestFinished(async () => {
        // A failed test may leave npm, its shell or the launcher running: kill the group (the launcher's own
        // children die with it).
        killAll();
        if (npm.exitCode === null && npm.signalCode === null) await exited;
      });
      await waitFor('the demo to be up', () => output.includes(UP_LINE), START_TIMEOUT_MS, 50);
      const processes = await status(stateDir);
      expect(processes.map((p) => p.state)).toEqual(processes.map(() => 'running'));

      npm.kill(signal);
      const timer = setTimeout(killAll, 30_000);
      const [code, killedBy] = await exited;
      clearTimeout(timer);
      expect({ code, signal: killedBy }, output.slice(-2_000)).toEqual({ code: 0, signal: null });
      expect(output).toContain(`${signal}: stopping everything`);
      expect(output).toMatch(/^demo {4}│ .* everything stopped$/m);
      for (const p of processes) expect(p.pid === null || gone(p.pid), `${p.name} pid ${p.pid}`).toBe(true);
      for (const port of allPorts(ports)) expect(await tryConnect(port), `port ${port}`).toBe('ECONNREFUSED');
      expect(existsSync(join(stateDir, 'demo.json'))).toBe(false);
    },
    START_TIMEOUT_MS + 40_000,
  );
});
