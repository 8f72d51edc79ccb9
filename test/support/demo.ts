import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freeFixedPort } from '../../scripts/lib/free-port.js';
import { waitFor } from '../../scripts/lib/wait.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
/** The banner's last line: everything is up. */
const UP_LINE = 'Ctrl-C stops everything.';
/** Four Redis, the server and the workers, each started with tsx: a few seconds, more on a busy machine. */
const START_TIMEOUT_MS = 30_000;

export interface DemoPorts {
  redis: [number, number, number];
  store: number;
  grpc: number;
  http: number;
}

export interface DemoRun {
  readonly ports: DemoPorts;
  readonly stateDir: string;
  readonly child: ChildProcess;
  /** Everything the launcher printed so far (colour off). */
  output(): string;
  /** The last lines, for failure messages. */
  tail(lines?: number): string;
  waitForOutput(pattern: RegExp, timeoutMs: number): Promise<void>;
  /** SIGINT, as Ctrl-C; SIGKILL after a grace period; removes the state dir. */
  stop(): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/**
 * Starts the demo launcher (`node --import tsx scripts/demo.ts`) on six free loopback ports below the ephemeral
 * range, with a state dir of its own, plus `args`; resolves once its banner says everything is up. A port taken
 * by someone else between the choice and the bind makes the launcher exit at once: then it is tried again on new
 * ports, three times at most.
 */
export async function startDemo(args: readonly string[] = []): Promise<DemoRun> {
  for (let attempt = 1; ; attempt++) {
    const [a, b, c, store, grpc, http] = await Promise.all(Array.from({ length: 6 }, () => freeFixedPort()));
    const ports: DemoPorts = { redis: [a!, b!, c!], store: store!, grpc: grpc!, http: http! };
    const stateDir = await mkdtemp(join(tmpdir(), 'redlease-demo-'));
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        'scripts/demo.ts',
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
        ...args,
      ],
      { cwd: ROOT, env: { ...process.env, NO_COLOR: '1' }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let text = '';
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
    const closed = once(child, 'close').then(([code, signal]) => ({
      code: code as number | null,
      signal: signal as NodeJS.Signals | null,
    }));
    let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
    void closed.then((e) => (exit = e));
    const run: DemoRun = {
      ports,
      stateDir,
      child,
      output: () => text,
      tail: (lines = 60) => text.split('\n').slice(-lines).join('\n'),
      async waitForOutput(pattern, timeoutMs) {
        await waitFor(
          `the demo to print ${pattern}`,
          () => {
            if (exit) throw new Error(`the demo exited (${JSON.stringify(exit)}):\n${run.tail()}`);
            return pattern.test(text);
          },
          timeoutMs,
          50,
        );
      },
      async stop() {
        if (!exit) child.kill('SIGINT');
        const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
        try {
          return await closed;
        } finally {
          clearTimeout(timer);
          await rm(stateDir, { recursive: true, force: true });
        }
      },
    };
    try {
      await run.waitForOutput(new RegExp(UP_LINE.replace('.', '\\.')), START_TIMEOUT_MS);
      return run;
    } catch (error) {
      await run.stop();
      if (attempt < 3 && /already in use|EADDRINUSE/.test(text)) continue;
      throw error;
    }
  }
}
