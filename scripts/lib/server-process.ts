/**
 * Test/demo harness: a real redlease server as a child process (`node --import tsx server/main.ts`), its JSON log
 * lines parsed as they arrive. Children are killed when this process exits, so none is left behind.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { waitFor } from './wait.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

export type LogLine = Record<string, unknown> & { msg?: string; level?: number };

export class ServerProcess {
  readonly logs: LogLine[] = [];
  /** Lines on stdout that were not JSON, and everything on stderr. */
  readonly output: string[] = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private exitInfo: { code: number | null; signal: NodeJS.Signals | null } | undefined;

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
          this.logs.push(JSON.parse(line) as LogLine);
        } catch {
          this.output.push(line);
        }
        newline = pending.indexOf('\n');
      }
    });
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => this.output.push(chunk));
    this.exited = new Promise((resolve) => {
      child.once('close', (code, signal) => {
        live.delete(child);
        this.exitInfo = { code, signal };
        resolve(this.exitInfo);
      });
    });
  }

  /** Spawns the server with `args` (flags of server/config.ts) without waiting for it. */
  static spawn(args: readonly string[], env: NodeJS.ProcessEnv = {}): ServerProcess {
    const child = spawn(process.execPath, ['--import', 'tsx', 'server/main.ts', ...args], {
      cwd: ROOT,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    return new ServerProcess(child);
  }

  /** Spawns the server and waits until it listens (its 'redlease listening' line: keep --log-level at info or
   *  lower); `grpcPort` is then known (use --grpc-listen 127.0.0.1:0). */
  static async start(args: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<ServerProcess> {
    const server = ServerProcess.spawn(args, env);
    try {
      await waitFor(
        'the server to listen',
        () => {
          if (server.exitInfo) {
            throw new Error(`server exited (${JSON.stringify(server.exitInfo)}): ${server.output.join('')}`);
          }
          return server.logs.some((l) => l.msg === 'redlease listening');
        },
        20_000,
        20,
      );
    } catch (error) {
      server.child.kill('SIGKILL');
      throw error;
    }
    return server;
  }

  get grpcPort(): number {
    const line = this.logs.find((l) => l.msg === 'redlease listening');
    const address = String(line?.grpc ?? '');
    return Number(address.slice(address.lastIndexOf(':') + 1));
  }

  get running(): boolean {
    return this.exitInfo === undefined;
  }

  /** Log lines of one lock event ('acquired', 'released', …). */
  events(event: string): LogLine[] {
    return this.logs.filter((l) => l.event === event);
  }

  /** Sends `signal` and waits for the exit (SIGKILL after `timeoutMs`). */
  async stop(
    signal: NodeJS.Signals = 'SIGTERM',
    timeoutMs = 15_000,
  ): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    if (this.exitInfo) return this.exitInfo;
    this.child.kill(signal);
    const timer = setTimeout(() => this.child.kill('SIGKILL'), timeoutMs);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }
}
