/**
 * A single-member etcd on loopback ports, as a child process with a temporary data dir; installs Debian's
 * etcd-server when no etcd is on PATH (the bench machines are Debian and run as root).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { accessSync, constants, existsSync, rmSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { freePort } from '../../../scripts/lib/free-port.js';
import { withParentDeathSignal } from '../../../scripts/lib/parent-death-signal.js';

/** apt-get update + install may download tens of MB; bounded all the same. */
const INSTALL_TIMEOUT_MS = 10 * 60_000;
const START_TIMEOUT_MS = 20_000;
const STOP_TIMEOUT_MS = 5_000;

function findEtcd(): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/bin', '/usr/local/bin'];
  for (const dir of dirs) {
    if (dir === '') continue;
    const candidate = join(dir, 'etcd');
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** Runs a command to its end (bounded), passing each output line to `log`; rejects on a non-zero exit. */
async function run(command: string, args: string[], log: (line: string) => void): Promise<void> {
  const child = spawn(command, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), INSTALL_TIMEOUT_MS);
  const lines = (chunk: Buffer): void => {
    for (const line of chunk.toString().split('\n')) if (line.trim() !== '') log(line.trim());
  };
  child.stdout.on('data', lines);
  child.stderr.on('data', lines);
  const [code, signal] = (await once(child, 'close')) as [number | null, NodeJS.Signals | null];
  clearTimeout(timer);
  if (code !== 0) throw new Error(`${command} ${args.join(' ')} failed (${signal ?? `exit code ${code}`})`);
}

/** Path of etcd, installing etcd-server (apt-get update, then install) when it is missing. */
export async function ensureEtcd(log: (line: string) => void): Promise<string> {
  const found = findEtcd();
  if (found !== undefined) return found;
  if (process.getuid?.() !== 0) {
    throw new Error('etcd is not installed and this is not root: run `apt-get install -y etcd-server` first');
  }
  log('etcd not found: installing etcd-server (apt-get update && apt-get install -y etcd-server)');
  await run('apt-get', ['update'], log);
  await run('apt-get', ['install', '-y', 'etcd-server'], log);
  const installed = findEtcd();
  if (installed === undefined) throw new Error('etcd-server was installed but no etcd is on PATH');
  return installed;
}

export class EtcdProcess {
  #exit: Promise<unknown>;
  #stderr = '';
  #exited = false;

  private constructor(
    private readonly child: ChildProcess,
    readonly clientPort: number,
    readonly dataDir: string,
  ) {
    child.stderr?.on('data', (chunk: Buffer) => {
      this.#stderr = (this.#stderr + chunk.toString()).slice(-8_192);
    });
    this.#exit = once(child, 'exit').finally(() => {
      this.#exited = true;
    });
    process.once('exit', this.#cleanupSync);
  }

  /**
   * Starts etcd with its data under `dataParent` (default /dev/shm when it exists: in memory, as the Redis nodes
   * run without persistence; on disk every Lock and Unlock would wait for an fsync).
   */
  static async start(etcd: string, dataParent?: string): Promise<EtcdProcess> {
    const parent = dataParent ?? (existsSync('/dev/shm') ? '/dev/shm' : tmpdir());
    const dataDir = await mkdtemp(join(parent, 'redlease-bench-etcd-'));
    const [clientPort, peerPort] = [await freePort(), await freePort()];
    const client = `http://127.0.0.1:${clientPort}`;
    const peer = `http://127.0.0.1:${peerPort}`;
    const args = [
      '--name=bench',
      `--data-dir=${dataDir}`,
      `--listen-client-urls=${client}`,
      `--advertise-client-urls=${client}`,
      `--listen-peer-urls=${peer}`,
      `--initial-advertise-peer-urls=${peer}`,
      `--initial-cluster=bench=${peer}`,
      '--initial-cluster-state=new',
      '--logger=zap',
      '--log-outputs=stderr',
      '--log-level=warn',
    ];
    const command = withParentDeathSignal(etcd, args, 'SIGKILL');
    const child = spawn(command.command, command.args, { stdio: ['ignore', 'ignore', 'pipe'] });
    const proc = new EtcdProcess(child, clientPort, dataDir);
    try {
      await proc.#waitHealthy(client);
    } catch (error) {
      await proc.stop();
      throw error;
    }
    return proc;
  }

  /** host:port for gRPC. */
  get address(): string {
    return `127.0.0.1:${this.clientPort}`;
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** SIGTERM, SIGKILL after a bounded wait; removes the data dir. Idempotent. */
  async stop(): Promise<void> {
    if (!this.#exited) {
      this.child.kill('SIGTERM');
      const timer = setTimeout(() => this.child.kill('SIGKILL'), STOP_TIMEOUT_MS);
      await this.#exit;
      clearTimeout(timer);
    }
    this.#cleanupSync();
    process.removeListener('exit', this.#cleanupSync);
  }

  readonly #cleanupSync = (): void => {
    if (!this.#exited) this.child.kill('SIGKILL');
    rmSync(this.dataDir, { recursive: true, force: true });
  };

  async #waitHealthy(clientUrl: string): Promise<void> {
    const deadline = performance.now() + START_TIMEOUT_MS;
    for (;;) {
      if (this.#exited) throw new Error(`etcd exited during startup:\n${this.#stderr}`);
      try {
        const response = await fetch(`${clientUrl}/health`, { signal: AbortSignal.timeout(1_000) });
        const body = (await response.json()) as { health?: string };
        if (body.health === 'true') return;
      } catch {
        // not listening yet
      }
      if (performance.now() > deadline) {
        throw new Error(`etcd did not report healthy within ${START_TIMEOUT_MS} ms:\n${this.#stderr}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}
