/**
 * The state file of a running demo (`<state dir>/demo.json`): who runs it (pid and start time, see
 * process-start-time.ts), where its control socket is, and every process it started. It makes the demo a
 * singleton per state dir, and lets a later start clean up after a launcher that was killed without stopping its
 * children (SIGKILL): the children die with it anyway where setpriv exists (parent-death-signal.ts); this is the rest.
 *
 * Claiming is atomic: the record is written to a temporary file and hard-linked to demo.json, which fails when
 * the file exists, so of two launchers started together exactly one gets it.
 */
import { readFileSync, rmSync } from 'node:fs';
import { link, mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { processStartTime } from './process-start-time.js';
import { waitFor } from './wait.js';

/** `.redlease/demo/` in the repository (git-ignored), as DESIGN.md lays out. */
export const DEFAULT_STATE_DIR = fileURLToPath(new URL('../../.redlease/demo', import.meta.url));

/** Unix socket paths are limited to 108 bytes (with the terminating NUL); keep a margin. */
const MAX_SOCKET_PATH_BYTES = 100;
/** How long a killed leftover may take to disappear (SIGKILL is immediate; this bounds a stuck kernel). */
const KILL_WAIT_MS = 5_000;

export interface ProcessRecord {
  name: string;
  pid: number;
  /** null where /proc is missing: identity then rests on the pid alone. */
  startTime: number | null;
}

export interface DemoRecord {
  pid: number;
  startTime: number | null;
  startedAt: string;
  /** The control socket (scripts/nodes.ts connects to it). */
  control: string;
  processes: ProcessRecord[];
}

/** Another demo runs in this state dir. */
export class AlreadyRunningError extends Error {
  override readonly name = 'AlreadyRunningError';
  constructor(readonly record: DemoRecord) {
    super(`a demo is already running (pid ${record.pid}, started ${record.startedAt})`);
  }
}

export class DemoState {
  readonly dir: string;
  readonly file: string;
  readonly controlPath: string;
  #record: DemoRecord | undefined;
  /** Writes one at a time, in order. */
  #writing: Promise<void> = Promise.resolve();

  constructor(dir: string = DEFAULT_STATE_DIR) {
    this.dir = resolve(dir);
    this.file = join(this.dir, 'demo.json');
    const socket = join(this.dir, 'control.sock');
    // A deep checkout can make the path too long for a unix socket: then one in the temp dir, named after the
    // state dir so two demos never share it. The record says where it is either way.
    this.controlPath =
      Buffer.byteLength(socket) <= MAX_SOCKET_PATH_BYTES
        ? socket
        : join(tmpdir(), `redlease-demo-${Buffer.from(this.dir).toString('base64url').slice(-40)}.sock`);
  }

  /** The record of the demo in `dir`, if a readable one is there (it may be stale: see isRunning). */
  static read(dir: string = DEFAULT_STATE_DIR): DemoRecord | undefined {
    return readRecord(join(resolve(dir), 'demo.json'));
  }

  /** Whether the launcher of `record` is still alive (the same process, not a reused pid). */
  static isRunning(record: DemoRecord): boolean {
    return isAlive(record.pid, record.startTime);
  }

  /**
   * Makes this process the demo of the state dir, or throws AlreadyRunningError. A record left by a launcher that
   * died is cleaned up first (its processes still alive are killed); returns what was done, for the log.
   */
  async claim(): Promise<string[]> {
    await mkdir(this.dir, { recursive: true });
    const record: DemoRecord = {
      pid: process.pid,
      startTime: processStartTime(process.pid) ?? null,
      startedAt: new Date().toISOString(),
      control: this.controlPath,
      processes: [],
    };
    const notes: string[] = [];
    // Three tries: a stale record is removed and the claim retried; losing that race to another launcher twice
    // in a row means something keeps starting demos here.
    for (let attempt = 0; attempt < 3; attempt++) {
      if (await this.#createExclusive(record)) {
        this.#record = record;
        return notes;
      }
      const existing = readRecord(this.file);
      if (existing === undefined) {
        // Records are written whole (temp file + link / rename), so an unreadable one is not being written now.
        notes.push(`removed the unreadable state file ${this.file}`);
      } else if (DemoState.isRunning(existing)) {
        throw new AlreadyRunningError(existing);
      } else {
        notes.push(...(await cleanUpAfter(existing)));
      }
      await rm(this.file, { force: true });
    }
    throw new Error(`could not claim ${this.file}: another demo keeps starting in ${this.dir}`);
  }

  /** Records the processes running now (replacing the list). Only after claim(). */
  async setProcesses(processes: readonly ProcessRecord[]): Promise<void> {
    const record = this.#record;
    if (record === undefined) return;
    record.processes = [...processes];
    const text = `${JSON.stringify(record, null, 2)}\n`;
    this.#writing = this.#writing.then(async () => {
      if (this.#record === undefined) return; // released meanwhile
      const temp = `${this.file}.${process.pid}.tmp`;
      await writeFile(temp, text);
      await rename(temp, this.file);
    });
    await this.#writing;
  }

  /** Removes the record and the control socket, if this process claimed them. Idempotent. */
  async release(): Promise<void> {
    await this.#writing.catch(() => undefined);
    this.releaseSync();
  }

  /** release() for an exit path that cannot wait. */
  releaseSync(): void {
    if (this.#record === undefined) return;
    this.#record = undefined;
    rmSync(this.file, { force: true });
    rmSync(this.controlPath, { force: true });
  }

  async #createExclusive(record: DemoRecord): Promise<boolean> {
    const temp = `${this.file}.${process.pid}.tmp`;
    await writeFile(temp, `${JSON.stringify(record, null, 2)}\n`);
    try {
      await link(temp, this.file);
      return true;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw error;
    } finally {
      await rm(temp, { force: true });
    }
  }
}

function readRecord(file: string): DemoRecord | undefined {
  try {
    const parsed = JSON.parse(readFileSync(file, 'utf8')) as Partial<DemoRecord>;
    if (typeof parsed.pid !== 'number' || typeof parsed.control !== 'string') return undefined;
    return {
      pid: parsed.pid,
      startTime: typeof parsed.startTime === 'number' ? parsed.startTime : null,
      startedAt: String(parsed.startedAt ?? 'at an unknown time'),
      control: parsed.control,
      processes: Array.isArray(parsed.processes) ? parsed.processes : [],
    };
  } catch {
    return undefined;
  }
}

function isAlive(pid: number, startTime: number | null): boolean {
  if (startTime !== null) return processStartTime(pid) === startTime;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Kills what the dead launcher of `record` left running, removes its socket; says what it did. */
async function cleanUpAfter(record: DemoRecord): Promise<string[]> {
  const left = record.processes.filter((p) => p.startTime !== null && isAlive(p.pid, p.startTime));
  for (const p of left) {
    for (const signal of ['SIGCONT', 'SIGKILL'] as const) {
      try {
        process.kill(p.pid, signal); // SIGCONT first: a paused node must not stay stopped
      } catch {
        // gone meanwhile
      }
    }
  }
  await waitFor(
    'the processes of a stale demo to exit after SIGKILL',
    () => left.every((p) => !isAlive(p.pid, p.startTime)),
    KILL_WAIT_MS,
    20,
  );
  await rm(record.control, { force: true });
  const what =
    left.length === 0
      ? 'none of its processes was still running'
      : `killed what it left running: ${left.map((p) => `${p.name} (pid ${p.pid})`).join(', ')}`;
  return [`cleaned up after a demo that was stopped without cleaning up (pid ${record.pid}): ${what}`];
}
