import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { connect, createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { freePort } from '../scripts/lib/free-port.js';
import { RedisCluster, RedisProcess, redisServerPath } from '../scripts/lib/redis-process.js';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const harnessUrl = pathToFileURL(join(repoRoot, 'scripts/lib/redis-process.ts')).href;

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  await Promise.allSettled(cleanups.splice(0).map((fn) => fn()));
});

async function startNode(opts: Parameters<typeof RedisProcess.start>[0] = {}): Promise<RedisProcess> {
  const node = await RedisProcess.start(opts);
  cleanups.push(() => node.dispose());
  return node;
}

/** Connection outcome on 127.0.0.1:port: 'connected' or the error code (e.g. 'ECONNREFUSED'). */
function tryConnect(port: number): Promise<string> {
  return new Promise((resolvePromise) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolvePromise('connected');
    });
    socket.once('error', (err: NodeJS.ErrnoException) => resolvePromise(err.code ?? err.message));
  });
}

/**
 * Whether pid is a live process. A zombie counts as dead: children SIGKILLed by an exiting host are reparented to
 * PID 1, which in some containers never reaps them, so kill(pid, 0) would still succeed for a dead process.
 */
function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return false;
    throw err;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

function expectEsrch(pid: number): void {
  let code: string | undefined;
  try {
    process.kill(pid, 0);
  } catch (err) {
    code = (err as NodeJS.ErrnoException).code;
  }
  expect(code, `pid ${pid} should be gone`).toBe('ESRCH');
}

describe('redisServerPath', () => {
  it('finds an executable redis-server', () => {
    expect(redisServerPath()).toMatch(/\/redis-server$/);
  });
});

describe('RedisCluster', () => {
  it('starts 3 nodes on distinct ports that answer PING, and dispose leaves no process or temp dir', async () => {
    const cluster = await RedisCluster.start(3);
    cleanups.push(() => cluster.dispose());
    const ports = cluster.nodes.map((node) => node.port);
    expect(new Set(ports).size).toBe(3);
    expect(cluster.addresses).toEqual(ports.map((port) => `127.0.0.1:${port}`));
    expect(cluster.nodes.map((node) => node.name)).toEqual(['redis-1', 'redis-2', 'redis-3']);
    expect(await Promise.all(cluster.nodes.map((node) => node.command('PING')))).toEqual([
      'PONG',
      'PONG',
      'PONG',
    ]);

    const pids = cluster.nodes.map((node) => node.pid);
    const dirs = cluster.nodes.map((node) => node.dir);
    expect(pids.every((pid) => typeof pid === 'number')).toBe(true);
    await cluster.dispose();
    for (const pid of pids) expectEsrch(pid!);
    for (const dir of dirs) expect(existsSync(dir)).toBe(false);
    expect(cluster.nodes.every((node) => !node.running && node.pid === undefined)).toBe(true);
  });
});

describe('RedisProcess', () => {
  it('kill() frees the port; startAgain() answers on the same port with a new run_id', async () => {
    const node = await startNode({ name: 'kill-test' });
    const port = node.port;
    const runId = await node.runId();
    const pid = node.pid!;

    await node.kill();
    expect(node.running).toBe(false);
    expect(node.pid).toBeUndefined();
    expectEsrch(pid);
    expect(await tryConnect(port)).toBe('ECONNREFUSED');
    await node.kill(); // idempotent

    await node.startAgain();
    expect(node.port).toBe(port);
    expect(node.pid).not.toBe(pid);
    expect(await node.command('PING')).toBe('PONG');
    expect(await node.runId()).not.toBe(runId);
  });

  it('pause() makes it unresponsive (connections still accepted) until resume(); paused nodes stop and kill', async () => {
    const node = await startNode({ name: 'pause-test' });
    const client = new Redis({
      host: node.host,
      port: node.port,
      lazyConnect: true,
      enableOfflineQueue: false,
      enableReadyCheck: false,
      commandTimeout: 300,
      maxRetriesPerRequest: 0,
      retryStrategy: null,
    });
    client.on('error', () => undefined);
    cleanups.push(async () => client.disconnect());
    await client.connect();
    expect(await client.ping()).toBe('PONG');

    node.pause();
    expect(node.paused).toBe(true);
    const t0 = performance.now();
    await expect(client.ping()).rejects.toThrow(/timed out/i);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(280);
    expect(await tryConnect(node.port)).toBe('connected'); // the kernel still completes the handshake

    node.resume();
    node.resume(); // no-op when not paused
    expect(node.paused).toBe(false);
    expect(await client.ping()).toBe('PONG'); // the late PONG of the timed-out PING is consumed, not misattributed
    expect(await node.command('PING')).toBe('PONG');

    // stop() of a paused process: SIGCONT, then a graceful SHUTDOWN (well under the SIGTERM fallback delay).
    node.pause();
    let pid = node.pid!;
    const t1 = performance.now();
    await node.stop();
    expect(performance.now() - t1).toBeLessThan(2_000);
    expect(node.running).toBe(false);
    expectEsrch(pid);

    // kill() of a paused process.
    await node.startAgain();
    node.pause();
    pid = node.pid!;
    await node.kill();
    expectEsrch(pid);
    expect(await tryConnect(node.port)).toBe('ECONNREFUSED');
  });

  it('restart({keepData:false}) empties the dataset; restart({keepData:true}) keeps keys and their expiry', async () => {
    const node = await startNode({ name: 'restart-test' });
    await node.command('SET', 'gone', 'v');
    const runId1 = await node.runId();

    await node.restart({ keepData: false });
    expect(await node.command('GET', 'gone')).toBeNull();
    expect(await node.command('DBSIZE')).toBe(0);
    const runId2 = await node.runId();
    expect(runId2).not.toBe(runId1);

    expect(await node.command('SET', 'kept', 'v', 'PX', 60_000)).toBe('OK');
    await node.restart({ keepData: true });
    expect(await node.command('GET', 'kept')).toBe('v');
    const pttl = Number(await node.command('PTTL', 'kept'));
    expect(pttl).toBeGreaterThan(0);
    expect(pttl).toBeLessThanOrEqual(60_000);
    expect(await node.runId()).not.toBe(runId2);
    expect(existsSync(node.logFile)).toBe(true); // the wipe keeps the log
  });

  it("persistence 'aof-always': a key written before SIGKILL survives startAgain()", async () => {
    const node = await startNode({ name: 'aof-test', persistence: 'aof-always' });
    expect(await node.command('CONFIG', 'GET', 'appendfsync')).toEqual(['appendfsync', 'always']);
    await node.command('SET', 'durable', 'yes');
    await node.kill();
    await node.startAgain();
    expect(await node.command('GET', 'durable')).toBe('yes');
  });

  it('a fixed port that is busy fails with a clear error naming the port, leaving nothing behind', async () => {
    const port = await freePort();
    // A foreign listener that hangs up on whoever connects (so close() does not wait on idle connections).
    const blocker: Server = createServer((socket) => socket.destroy());
    await new Promise<void>((ok) => blocker.listen(port, '127.0.0.1', ok));
    cleanups.push(() => new Promise((ok) => blocker.close(ok)));
    const name = `busy-${process.pid}`;

    await expect(RedisProcess.start({ name, port })).rejects.toThrow(
      new RegExp(`port ${port} is already in use`),
    );
    expect(readdirSync(tmpdir()).filter((entry) => entry.startsWith(`redlease-${name}-`))).toEqual([]);
  });

  it('a startup failure reports the tail of redis-server output', async () => {
    await expect(
      RedisProcess.start({ name: 'bad-config', extraArgs: ['--no-such-directive', 'x'] }),
    ).rejects.toThrow(/bad-config: .*exited with code 1 during startup[\s\S]*Bad directive/);
  });

  it('extraArgs reach the command line', async () => {
    const node = await startNode({ name: 'args-test', extraArgs: ['--maxmemory-policy', 'allkeys-lru'] });
    expect(await node.command('CONFIG', 'GET', 'maxmemory-policy')).toEqual([
      'maxmemory-policy',
      'allkeys-lru',
    ]);
    expect(await node.command('CONFIG', 'GET', 'bind')).toEqual(['bind', '127.0.0.1']);
  });
});

describe('leaving nothing behind when the host process ends', () => {
  /**
   * Runs a separate Node process that starts two nodes (one paused), prints their pids/dirs, then is ended with
   * SIGTERM — the way vitest stops its fork workers.
   */
  async function runHost(withOwnSigtermHandler: boolean) {
    const script = `
      ${withOwnSigtermHandler ? "process.on('SIGTERM', () => process.exit(3));" : ''}
      const { RedisCluster } = await import(${JSON.stringify(harnessUrl)});
      const cluster = await RedisCluster.start(2);
      cluster.nodes[1].pause();
      console.log(JSON.stringify({ pids: cluster.nodes.map((n) => n.pid), dirs: cluster.nodes.map((n) => n.dir) }));
    `;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      cwd: repoRoot,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((ok) =>
      child.once('exit', (code, signal) => ok({ code, signal })),
    );
    const line = await new Promise<string>((ok, fail) => {
      let out = '';
      child.stdout.on('data', (chunk: Buffer) => {
        out += chunk.toString();
        const eol = out.indexOf('\n');
        if (eol >= 0) ok(out.slice(0, eol));
      });
      void exited.then(() => fail(new Error(`host exited before reporting: ${stderr}`)));
    });
    const { pids, dirs } = JSON.parse(line) as { pids: number[]; dirs: string[] };
    expect(pids.every(isAlive)).toBe(true);
    child.kill('SIGTERM');
    return { pids, dirs, exit: await exited };
  }

  it('SIGTERM with no host handler: children are killed and the host still dies by SIGTERM', async () => {
    const { pids, dirs, exit } = await runHost(false);
    expect(exit).toEqual({ code: null, signal: 'SIGTERM' });
    expect(pids.filter(isAlive)).toEqual([]);
    expect(dirs.filter((dir) => existsSync(dir))).toEqual([]);
  });

  it("SIGTERM with the host's own handler: the handler runs (exit code 3) and the 'exit' hook kills children", async () => {
    const { pids, dirs, exit } = await runHost(true);
    expect(exit).toEqual({ code: 3, signal: null });
    expect(pids.filter(isAlive)).toEqual([]);
    expect(dirs.filter((dir) => existsSync(dir))).toEqual([]);
  });
});
