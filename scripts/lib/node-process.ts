/**
 * A TypeScript entry point of this repository run as a child process (`node --import tsx <script>`), its pino
 * JSON log lines parsed as they arrive. Base of the server and worker harnesses, and of the demo launcher's
 * processes (which also stream every line, run in their own process group and die with the launcher). Children
 * still alive when this process exits are killed, so none is left behind.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { withParentDeathSignal } from './parent-death-signal.js';

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

/** How the child is run; every field is optional and off by default (the test harnesses use none). */
export interface NodeProcessOptions {
  /** Its own session and process group: a terminal's Ctrl-C then reaches only this process, which stops it. */
  detached?: boolean;
  /** Sent to it by the kernel when this process dies, even by SIGKILL (Linux; see parent-death-signal.ts). */
  parentDeathSignal?: NodeJS.Signals;
  /** Called with every line it writes (stdout and stderr, without the newline) as it arrives. */
  onLine?: (line: string, stream: 'stdout' | 'stderr') => void;
  /** Keep only about the last this many entries of `logs` and `output` (a long-running child); default all. */
  keepLines?: number;
}

export class NodeProcess {
  readonly logs: LogLine[] = [];
  /** Lines on stdout that were not JSON, and everything on stderr. */
  readonly output: string[] = [];
  /** Resolves once the process has exited and its output has been read to the end ('close', not 'exit'). */
  readonly exited: Promise<Exit>;
  protected exitInfo: Exit | undefined;

  protected constructor(
    readonly child: ChildProcess,
    options: Pick<NodeProcessOptions, 'onLine' | 'keepLines'> = {},
  ) {
    live.add(child);
    const { onLine, keepLines } = options;
    /** Drops the oldest entries once there are twice `keepLines`, so trimming costs O(1) per line on average. */
    const trim = (list: unknown[]): void => {
      if (keepLines !== undefined && list.length > 2 * keepLines) list.splice(0, list.length - keepLines);
    };
    let pending = '';
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
      pending += chunk;
      let newline = pending.indexOf('\n');
      while (newline >= 0) {
        const line = pending.slice(0, newline);
        pending = pending.slice(newline + 1);
        try {
          this.logs.push(JSON.parse(line) as LogLine);
          trim(this.logs);
        } catch {
          this.output.push(line);
          trim(this.output);
        }
        onLine?.(line, 'stdout');
        newline = pending.indexOf('\n');
      }
    });
    let pendingErr = '';
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
      this.output.push(chunk);
      trim(this.output);
      if (onLine === undefined) return;
      pendingErr += chunk;
      let newline = pendingErr.indexOf('\n');
      while (newline >= 0) {
        onLine(pendingErr.slice(0, newline), 'stderr');
        pendingErr = pendingErr.slice(newline + 1);
        newline = pendingErr.indexOf('\n');
      }
    });
    this.exited = once(child, 'close').then(([code, signal]) => {
      live.delete(child);
      this.exitInfo = { code: code as number | null, signal: signal as NodeJS.Signals | null };
      return this.exitInfo;
    });
  }

  /** Spawns `node --import tsx <script> ...args` in the repository root with `env` as its whole environment; a
   *  compiled `.js` script (e.g. `dist/server/main.js`, what the container image runs) runs without tsx. */
  protected static spawnScript(
    script: string,
    args: readonly string[],
    env: NodeJS.ProcessEnv,
    options: Pick<NodeProcessOptions, 'detached' | 'parentDeathSignal'> = {},
  ): ChildProcess {
    const command = withParentDeathSignal(
      process.execPath,
      script.endsWith('.js') ? [script, ...args] : ['--import', 'tsx', script, ...args],
      options.parentDeathSignal,
    );
    return spawn(command.command, command.args, {
      cwd: ROOT,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: options.detached ?? false,
    });
  }

  /** Any script of this repository (`node --import tsx <script> ...args`), e.g. a demo worker. */
  static launch(
    script: string,
    args: readonly string[],
    env: NodeJS.ProcessEnv,
    options: NodeProcessOptions = {},
  ): NodeProcess {
    return new NodeProcess(NodeProcess.spawnScript(script, args, env, options), options);
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
