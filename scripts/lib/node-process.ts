/**
 * A TypeScript entry point of this repository run as a child process (`node --import tsx <script>`), its pino
 * JSON log lines parsed as they arrive. Base of the server and worker harnesses. Children still alive when this
 * process exits are killed, so none is left behind.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

export type LogLine = Record<string, unknown> & { msg?: string; level?: number; event?: string };

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export class NodeProcess {
  readonly logs: LogLine[] = [];
  /** Lines on stdout that were not JSON, and everything on stderr. */
  readonly output: string[] = [];
  /** Resolves once the process has exited and its output has been read to the end ('close', not 'exit'). */
  readonly exited: Promise<Exit>;
  protected exitInfo: Exit | undefined;

  protected constructor(readonly child: ChildProcess) {
    live.add(child);
    let pending = '';
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
      pending += chunk;
      let newline = pending.indexOf('\n');
      while (newline >= 0) {
        const line = pending.slice(0, newline);
        pending = pending.slice(newline + 1);
        try {
          this.logs.push(JSON.parse(line) as LogLine);
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

  /** Spawns `node --import tsx <script> ...args` in the repository root with `env` as its whole environment. */
  protected static spawnScript(
    script: string,
    args: readonly string[],
    env: NodeJS.ProcessEnv,
  ): ChildProcess {
    return spawn(process.execPath, ['--import', 'tsx', script, ...args], {
      cwd: ROOT,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  }

  get running(): boolean {
    return this.exitInfo === undefined;
  }

  /** Log lines of one event ('acquired', 'won', …). */
  events(event: string): LogLine[] {
    return this.logs.filter((l) => l.event === event);
  }

  /** Waits for the exit (SIGKILL after `timeoutMs`, so a stuck child cannot hang its caller). */
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
