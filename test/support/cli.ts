/**
 * Test harness: the `redlease` command line as a real child process (`node --import tsx client/src/cli/main.ts`,
 * what `npm run cli` runs), its output collected; killed when the test ends. `onTerminal` runs it under a pseudo
 * terminal (util-linux `script`), to see what a person at a terminal sees.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { onTestFinished } from 'vitest';
import { waitFor } from '../../scripts/lib/wait.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const MAIN = 'client/src/cli/main.ts';
/** After the CLI exits, how long its pipes may stay open before its output is taken as complete. */
const CLOSE_WAIT_MS = 2_000;

export interface CliExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** From spawn to exit. */
  elapsedMs: number;
}

/** The environment of whoever runs the tests, without its REDLEASE_* (they would become the CLI's options). */
function baseEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(
    Object.entries(process.env).filter(([name]) => !name.startsWith('REDLEASE_') && name !== 'NO_COLOR'),
  );
}

/** Quotes for sh. */
export function shellQuote(word: string): string {
  return `'${word.replaceAll("'", "'\\''")}'`;
}

export class CliProcess {
  stdout = '';
  stderr = '';
  readonly exited: Promise<CliExit>;
  private exit: CliExit | undefined;
  private readonly started = performance.now();

  private constructor(readonly child: ChildProcess) {
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (this.stdout += chunk));
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (this.stderr += chunk));
    const closed = new Promise<void>((resolve) => child.once('close', () => resolve()));
    this.exited = new Promise((resolve) => {
      child.once('exit', async (code, signal) => {
        const elapsedMs = performance.now() - this.started;
        // The rest of its output, unless something it left behind holds its stdout or stderr open (a CMD that
        // survived it: then the test fails on that, not by hanging here).
        await Promise.race([closed, sleep(CLOSE_WAIT_MS)]);
        this.exit = { code, signal, stdout: this.stdout, stderr: this.stderr, elapsedMs };
        resolve(this.exit);
      });
    });
  }

  /** `redlease …args` with `env` added to the test runner's environment (less its REDLEASE_*). */
  static start(args: readonly string[], env: NodeJS.ProcessEnv = {}): CliProcess {
    const child = spawn(process.execPath, ['--import', 'tsx', MAIN, ...args], {
      cwd: ROOT,
      env: { ...baseEnv(), ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    return CliProcess.track(new CliProcess(child));
  }

  /**
   * `redlease …args` on a pseudo terminal (stdin, stdout and stderr all the terminal), through `script`; stdout
   * then carries everything written to the terminal, escapes and carriage returns included.
   */
  static onTerminal(args: readonly string[], env: NodeJS.ProcessEnv = {}): CliProcess {
    const line = [process.execPath, '--import', 'tsx', MAIN, ...args].map(shellQuote).join(' ');
    const child = spawn('script', ['--quiet', '--return', '--flush', '--command', line, '/dev/null'], {
      cwd: ROOT,
      env: { ...baseEnv(), TERM: 'xterm', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    return CliProcess.track(new CliProcess(child));
  }

  private static track(cli: CliProcess): CliProcess {
    onTestFinished(async () => {
      if (!cli.exit) cli.child.kill('SIGKILL');
      await cli.exited;
    });
    return cli;
  }

  /** Waits for the exit; SIGKILL after `timeoutMs`, so a stuck CLI cannot hang the test. */
  async finish(timeoutMs = 30_000): Promise<CliExit> {
    const timer = setTimeout(() => this.child.kill('SIGKILL'), timeoutMs);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Waits until stderr holds a JSON line (--json events) matching `match`; fails early if the CLI exits. */
  async event(
    name: string,
    match: (event: Record<string, unknown>) => boolean = () => true,
    timeoutMs = 20_000,
  ): Promise<Record<string, unknown>> {
    return await waitFor(
      `event "${name}" from redlease`,
      () => {
        const found = jsonLines(this.stderr).find((e) => e.event === name && match(e));
        if (found) return found;
        if (this.exit)
          throw new Error(`redlease exited (${this.exit.code}) without "${name}":\n${this.stderr}`);
        return undefined;
      },
      timeoutMs,
      20,
    );
  }
}

/** Runs `redlease …args` to its exit. */
export async function runCli(
  args: readonly string[],
  env: NodeJS.ProcessEnv = {},
  timeoutMs = 30_000,
): Promise<CliExit> {
  return await CliProcess.start(args, env).finish(timeoutMs);
}

/** The JSON lines of a text (the events `--json` writes on stderr). */
export function jsonLines(text: string): Record<string, unknown>[] {
  return text
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

/** True while `pid` runs (a zombie has finished running: it only waits to be reaped). */
export function running(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /s, '')[0] !== 'Z';
  } catch {
    return false;
  }
}
