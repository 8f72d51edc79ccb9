/**
 * Test harness: a real worker as a child process (`node --import tsx workers/worker.ts`), its JSON log lines
 * parsed as they arrive. Killed when the test ends, and any still alive when this process exits.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { onTestFinished } from 'vitest';
import { waitFor } from '../../scripts/lib/wait.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

export type WorkerLog = Record<string, unknown> & { event?: string; worker?: string; token?: number };
export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export class WorkerProcess {
  readonly logs: WorkerLog[] = [];
  /** Lines on stdout that were not JSON, and everything on stderr. */
  readonly output: string[] = [];
  /** Resolves once the process has exited and its output has been read to the end ('close', not 'exit'). */
  readonly exited: Promise<Exit>;
  private exitInfo: Exit | undefined;

  private constructor(readonly child: ChildProcess) {
    live.add(child);
    let pending = '';
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
      pending += chunk;
      let newline = pending.indexOf('\n');
      while (newline >= 0) {
        const line = pending.slice(0, newline);
        pending = pending.slice(newline + 1);
        try {
          this.logs.push(JSON.parse(line) as WorkerLog);
        } catch {
          this.output.push(line);
        }
        newline = pending.indexOf('\n');
      }
    });
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => this.output.push(chunk));
    this.exited = once(child, 'close').then(([code, signal]) => {
      live.delete(child);
      this.exitInfo = { code: code as number | null, signal: signal as NodeJS.Signals | null };
      return this.exitInfo;
    });
  }

  /** Spawns a worker with `args` (flags of workers/options.ts); killed when the current test ends. */
  static start(args: readonly string[], env: NodeJS.ProcessEnv = {}): WorkerProcess {
    const child = spawn(process.execPath, ['--import', 'tsx', 'workers/worker.ts', ...args], {
      cwd: ROOT,
      // The REDLEASE_ variables of whoever runs the tests must not leak into the workers' options.
      env: { ...withoutRedlease(process.env), ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const worker = new WorkerProcess(child);
    onTestFinished(() => worker.stop('SIGKILL').then(() => undefined));
    return worker;
  }

  get running(): boolean {
    return this.exitInfo === undefined;
  }

  /** The name it logs under (its --name). */
  get name(): string | undefined {
    return this.logs.find((l) => typeof l.worker === 'string')?.worker;
  }

  /** Log lines of one event ('won', 'wrote', …). */
  events(event: string): WorkerLog[] {
    return this.logs.filter((l) => l.event === event);
  }

  /** The first line of `event` (matching `match`), waiting for it; fails early if the worker exits first. */
  async next(event: string, match: (line: WorkerLog) => boolean = () => true, timeoutMs = 20_000) {
    return await waitFor(
      `"${event}" from the worker`,
      () => {
        const line = this.logs.find((l) => l.event === event && match(l));
        if (line) return line;
        if (this.exitInfo) {
          throw new Error(
            `the worker exited (${JSON.stringify(this.exitInfo)}) without "${event}": ${this.dump()}`,
          );
        }
        return undefined;
      },
      timeoutMs,
      20,
    );
  }

  /** Waits for the exit (SIGKILL after `timeoutMs`: a test must not hang on a stuck worker). */
  async finish(timeoutMs = 20_000): Promise<Exit> {
    const timer = setTimeout(() => this.child.kill('SIGKILL'), timeoutMs);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Sends `signal` and waits for the exit (SIGKILL after `timeoutMs`). */
  async stop(signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 15_000): Promise<Exit> {
    if (this.exitInfo) return this.exitInfo;
    this.child.kill(signal);
    return await this.finish(timeoutMs);
  }

  /** Everything it wrote, for failure messages. */
  dump(): string {
    return [...this.logs.map((l) => JSON.stringify(l)), ...this.output].join('\n');
  }
}

function withoutRedlease(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(env).filter(([name]) => !name.startsWith('REDLEASE_')));
}
