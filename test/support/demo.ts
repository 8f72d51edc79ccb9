/**
 * The demo launcher (scripts/demo.ts) and the node-control command (scripts/nodes.ts) as real child processes,
 * for test/demo.test.ts and test/lab.test.ts: free ports below the ephemeral range, a state dir of their own,
 * bounded waits, and every process still running when a test file ends SIGKILLed (its children die with it:
 * the launcher starts them with a parent-death signal).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll } from 'vitest';
import { freeFixedPort } from '../../scripts/lib/free-port.js';
import { waitFor } from '../../scripts/lib/wait.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
/** The banner's last line: everything is up. */
export const UP_LINE = 'Ctrl-C stops everything.';
/** A launcher starts 4 Redis, the server and the workers with tsx: a few seconds, more on a busy machine. */
export const START_TIMEOUT_MS = 30_000;

export interface DemoPorts {
  redis: [number, number, number];
  store: number;
  grpc: number;
  http: number;
}

/** Six free loopback ports below the ephemeral range (see freeFixedPort): a node's port stays ours while it is
 *  stopped and started again, and a port the demo released is not taken by a random process in the meantime. */
export async function freeDemoPorts(): Promise<DemoPorts> {
  const [a, b, c, store, grpc, http] = await Promise.all(Array.from({ length: 6 }, () => freeFixedPort()));
  return { redis: [a!, b!, c!], store: store!, grpc: grpc!, http: http! };
}

export function allPorts(ports: DemoPorts): number[] {
  return [...ports.redis, ports.store, ports.grpc, ports.http];
}

/** The launcher flags that put a demo on `ports` with `stateDir`, then `more`. */
export function demoArgs(ports: DemoPorts, stateDir: string, more: readonly string[] = []): string[] {
  return [
    '--redis-ports',
    ports.redis.join(','),
    '--store-port',
    String(ports.store),
    '--grpc-port',
    String(ports.grpc),
    '--http-port',
    String(ports.http),
    '--state-dir',
    stateDir,
    ...more,
  ];
}

type Exit = { code: number | null; signal: NodeJS.Signals | null };
const runs = new Set<ScriptRun>();
afterAll(() => {
  // Still running here: a test failed. SIGKILL it; its children die with it (parent-death signal).
  for (const run of runs) if (run.exit === undefined) run.child.kill('SIGKILL');
});

/** `node --import tsx scripts/<script>` in the repository root (colour off), its output collected. */
export class ScriptRun {
  stdout = '';
  stderr = '';
  readonly exited: Promise<Exit>;
  exit: Exit | undefined;
  readonly child: ChildProcess;

  constructor(script: string, args: readonly string[], env: NodeJS.ProcessEnv = {}) {
    this.child = spawn(process.execPath, ['--import', 'tsx', script, ...args], {
      cwd: ROOT,
      env: { ...process.env, NO_COLOR: '1', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
      this.stdout += chunk;
    });
    this.child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
      this.stderr += chunk;
    });
    // 'close': the output has been read to the end.
    this.exited = once(this.child, 'close').then(([code, signal]) => {
      this.exit = { code: code as number | null, signal: signal as NodeJS.Signals | null };
      return this.exit;
    });
    runs.add(this);
  }

  /** Waits for the exit; SIGKILL after `timeoutMs`, so a stuck process cannot hang the test. */
  async finish(timeoutMs: number): Promise<Exit> {
    const timer = setTimeout(() => this.child.kill('SIGKILL'), timeoutMs);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Waits until stdout matches `pattern`; fails early, with the output, if the process exits first. */
  async waitForOutput(pattern: RegExp, timeoutMs: number): Promise<void> {
    await waitFor(
      `the output to show ${pattern}`,
      () => {
        if (this.exit) throw new Error(`${JSON.stringify(this.exit)} before ${pattern}:\n${this.dump()}`);
        return pattern.test(this.stdout);
      },
      timeoutMs,
      20,
    );
  }

  dump(): string {
    return `--- stdout ---\n${this.stdout}\n--- stderr ---\n${this.stderr}`;
  }
}

/**
 * Starts a launcher on `ports` (default: free ones) and waits for its banner. Another process may take one of the
 * ports between the choice and the launcher's bind (the race RedisProcess handles too): the launcher then says
 * "already in use" or EADDRINUSE, and it is started again on new free ports, three times at most.
 */
export async function startLauncher(
  args: (ports: DemoPorts) => string[],
  ports?: DemoPorts,
): Promise<{ launcher: ScriptRun; ports: DemoPorts }> {
  for (let attempt = 1; ; attempt++) {
    const use = ports ?? (await freeDemoPorts());
    const launcher = new ScriptRun('scripts/demo.ts', args(use));
    try {
      await launcher.waitForOutput(new RegExp(UP_LINE.replace('.', '\\.')), START_TIMEOUT_MS);
      return { launcher, ports: use };
    } catch (error) {
      await launcher.finish(START_TIMEOUT_MS);
      if (attempt >= 3 || !/already in use|EADDRINUSE/.test(launcher.dump())) throw error;
      ports = undefined;
    }
  }
}

/** A demo with a state dir of its own, as docs/lab.md is run against. */
export interface DemoRun {
  readonly ports: DemoPorts;
  readonly stateDir: string;
  readonly launcher: ScriptRun;
  /** SIGINT, as Ctrl-C; SIGKILL after a grace period; removes the state dir. */
  stop(): Promise<Exit>;
}

export async function startDemo(more: readonly string[] = []): Promise<DemoRun> {
  const stateDir = await mkdtemp(join(tmpdir(), 'redlease-demo-'));
  const { launcher, ports } = await startLauncher((p) => demoArgs(p, stateDir, more));
  return {
    ports,
    stateDir,
    launcher,
    async stop() {
      if (launcher.exit === undefined) launcher.child.kill('SIGINT');
      try {
        return await launcher.finish(20_000);
      } finally {
        await rm(stateDir, { recursive: true, force: true });
      }
    },
  };
}
