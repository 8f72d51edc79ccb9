/**
 * Test/demo harness: real `redis-server` processes on loopback ports that can be killed, paused, stopped and
 * restarted. No mocks — every RedisProcess is a child process of this Node process.
 *
 * Leave-nothing-behind guarantees:
 * - every live child is in a module-level registry; a process 'exit' hook SIGKILLs them synchronously (SIGCONT
 *   first for paused ones) and removes the temp dirs this module created;
 * - for SIGINT/SIGTERM/SIGHUP a handler is installed only when nobody else listens for that signal (a vitest fork
 *   worker is stopped with a plain SIGTERM, which would otherwise skip 'exit' hooks). It kills the children and, if
 *   it is still the only listener, removes itself and re-raises the signal, so the host dies exactly as it would
 *   have without us. If the host installs its own handler later, ours does nothing and the host decides.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { accessSync, constants as fsConstants, rmSync } from 'node:fs';
import { mkdir, mkdtemp, open, readdir, rm, stat } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join, resolve as resolvePath } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { freePort } from './free-port.js';
import { withParentDeathSignal } from './parent-death-signal.js';

export type Persistence = 'none' | 'aof-always';

export interface RedisProcessOptions {
  /** e.g. 'redis-1' (used in errors/logs and in the temp dir name). Default 'redis'. */
  name?: string;
  /** Fixed port (the demo uses 6381..6383). Default: a free port, re-picked if another process grabs it first. */
  port?: number;
  /** Data dir (created if missing, never deleted). Default: a fresh mkdtemp `redlease-<name>-` under os.tmpdir(). */
  dir?: string;
  /** 'none' => --save "" --appendonly no; 'aof-always' => --appendonly yes --appendfsync always --save "". */
  persistence?: Persistence;
  /** Appended to the command line, e.g. ['--maxmemory-policy', 'allkeys-lru']. */
  extraArgs?: string[];
  /** redis --logfile. Default: <dir>/redis.log. */
  logFile?: string;
  /** Run redis-server in its own session and process group (a terminal's Ctrl-C then reaches only this
   *  process, which stops the node itself). Default false. */
  detached?: boolean;
  /** Sent to redis-server by the kernel when this process dies, even by SIGKILL (Linux; see parent-death-signal.ts).
   *  Default none. */
  parentDeathSignal?: NodeJS.Signals;
}

const HOST = '127.0.0.1' as const;
const START_TIMEOUT_MS = 10_000;
const EXIT_TIMEOUT_MS = 5_000;
const STOP_GRACE_MS = 5_000;
const SIGTERM_GRACE_MS = 2_000;
const POLL_INTERVAL_MS = 20;
const PROBE_TIMEOUT_MS = 500;
const RAW_REQUEST_TIMEOUT_MS = 2_000;
const MAX_PORT_ATTEMPTS = 5;
const LOG_TAIL_LINES = 20;

const NOT_FOUND_MESSAGE =
  'redis-server not found on PATH: install it with `apt-get install -y redis-server` (npm test and npm run demo do this for you: scripts/lib/ensure-deps.sh)';

let cachedServerPath: string | undefined;

/** Absolute path of `redis-server` from PATH (then /usr/bin, /usr/sbin, /usr/local/bin); throws a helpful Error. */
export function redisServerPath(): string {
  if (cachedServerPath !== undefined) return cachedServerPath;
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/bin', '/usr/sbin', '/usr/local/bin'];
  for (const dir of dirs) {
    if (dir === '') continue;
    const candidate = join(dir, 'redis-server');
    try {
      accessSync(candidate, fsConstants.X_OK);
      cachedServerPath = candidate;
      return candidate;
    } catch {
      // not here
    }
  }
  throw new Error(NOT_FOUND_MESSAGE);
}

/** Thrown by start()/startAgain() when redis-server could not bind its port. */
export class PortInUseError extends Error {
  override readonly name = 'PortInUseError';
  constructor(
    message: string,
    readonly port: number,
  ) {
    super(message);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Module-level registry and exit hooks
// ---------------------------------------------------------------------------------------------------------------

interface LiveChild {
  readonly child: ChildProcess;
  paused: boolean;
}

const liveChildren = new Set<LiveChild>();
const ownedDirs = new Set<string>();
/** Ports handed to RedisProcess instances of this module that have not been disposed (avoids self-collisions). */
const claimedPorts = new Set<number>();
let hooksInstalled = false;

function sendSignal(pid: number | undefined, signal: NodeJS.Signals): void {
  if (pid === undefined) return;
  try {
    process.kill(pid, signal);
  } catch {
    // already gone (ESRCH): nothing to do
  }
}

/** Synchronous, so it can run inside process.on('exit'). */
function killAllChildrenSync(): void {
  for (const entry of liveChildren) {
    if (entry.paused) sendSignal(entry.child.pid, 'SIGCONT');
    sendSignal(entry.child.pid, 'SIGKILL');
  }
  liveChildren.clear();
}

function cleanupSync(): void {
  killAllChildrenSync();
  for (const dir of ownedDirs) {
    try {
      rmSync(dir, { recursive: true, force: true });
    } catch {
      // best effort at exit
    }
  }
  ownedDirs.clear();
}

function installExitHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.on('exit', cleanupSync);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    // The host handles this signal itself: its handler decides, and our 'exit' hook runs when it exits.
    if (process.listenerCount(signal) > 0) continue;
    const handler = (): void => {
      if (process.listenerCount(signal) > 1) return; // someone installed a handler after us: not ours to decide
      cleanupSync();
      process.removeListener(signal, handler);
      // No listeners left => default disposition again; re-raise so the host dies by the signal as it would have.
      process.kill(process.pid, signal);
    };
    process.on(signal, handler);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------------------------------------------

interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
  error?: Error;
}

/** Resolves true when `promise` settles within `ms`, false otherwise. */
async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([promise.then(() => true as const), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

async function pickPort(): Promise<number> {
  for (let i = 0; i < 20; i++) {
    const port = await freePort(HOST);
    if (!claimedPorts.has(port)) {
      claimedPorts.add(port);
      return port;
    }
  }
  throw new Error('could not find a free loopback port that this process has not already handed out');
}

async function fileSize(file: string): Promise<number> {
  try {
    return (await stat(file)).size;
  } catch {
    return 0;
  }
}

/** Last `maxLines` lines of `file` written after byte `offset` (reads at most the last 64 KiB). */
async function readTail(file: string, offset: number, maxLines: number): Promise<string> {
  let handle: Awaited<ReturnType<typeof open>> | undefined;
  try {
    handle = await open(file, 'r');
    const size = (await handle.stat()).size;
    const start = Math.max(offset, size - 64 * 1024, 0);
    const length = Math.max(size - start, 0);
    const buf = Buffer.alloc(length);
    if (length > 0) await handle.read(buf, 0, length, start);
    return buf.toString('utf8').split('\n').filter(Boolean).slice(-maxLines).join('\n');
  } catch {
    return '';
  } finally {
    await handle?.close();
  }
}

/** Keeps the last `limit` characters of a child's stdout/stderr (drained so the child never blocks on a pipe). */
class OutputTail {
  #text = '';
  constructor(private readonly limit = 8192) {}
  push(chunk: Buffer | string): void {
    this.#text = (this.#text + chunk.toString()).slice(-this.limit);
  }
  get text(): string {
    return this.#text.trim();
  }
}

type ProbeResult = 'ready' | 'loading' | 'foreign' | 'down';

/** Parse `+PONG` + INFO server bulk reply; `undefined` means "need more bytes". */
function parseProbeReply(buf: Buffer, pid: number | undefined): ProbeResult | undefined {
  const eol = buf.indexOf('\r\n');
  if (eol < 0) return undefined;
  const first = buf.toString('latin1', 0, eol);
  if (first.startsWith('-LOADING')) return 'loading';
  if (first !== '+PONG') return 'foreign';
  const rest = buf.subarray(eol + 2);
  const eol2 = rest.indexOf('\r\n');
  if (eol2 < 0) return undefined;
  const header = rest.toString('latin1', 0, eol2);
  const length = Number(header.slice(1));
  if (!header.startsWith('$') || !Number.isInteger(length) || length < 0) return 'foreign';
  if (rest.length < eol2 + 2 + length) return undefined;
  const body = rest.toString('latin1', eol2 + 2, eol2 + 2 + length);
  const match = /^process_id:(\d+)\r?$/m.exec(body);
  return match !== null && Number(match[1]) === pid ? 'ready' : 'foreign';
}

/**
 * One readiness probe over a raw socket: `PING` then `INFO server`. Ready only when PING answers +PONG and the
 * server's process_id is our child's pid — so a redis-server of a parallel test that won a port race is never
 * mistaken for ours.
 */
function probe(port: number, pid: number | undefined): Promise<ProbeResult> {
  return new Promise((resolve) => {
    let buf = Buffer.alloc(0);
    let settled = false;
    const socket = connect({ host: HOST, port });
    const finish = (result: ProbeResult): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(result);
    };
    const timer = setTimeout(() => finish('down'), PROBE_TIMEOUT_MS);
    socket.setNoDelay(true);
    socket.once('connect', () => socket.write('PING\r\nINFO server\r\n'));
    socket.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      const result = parseProbeReply(buf, pid);
      if (result !== undefined) finish(result);
    });
    socket.once('error', () => finish('down'));
    socket.once('close', () => finish('down'));
  });
}

type RawResult = { kind: 'reply'; line: string } | { kind: 'closed' } | { kind: 'failed'; reason: string };

/** Send raw RESP inline command(s); resolve with the first reply line, or how the connection ended. */
function rawRequest(port: number, payload: string, timeoutMs: number): Promise<RawResult> {
  return new Promise((resolve) => {
    let buf = '';
    let settled = false;
    const socket = connect({ host: HOST, port });
    const finish = (result: RawResult): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(result);
    };
    const timer = setTimeout(
      () => finish({ kind: 'failed', reason: `no answer within ${timeoutMs} ms` }),
      timeoutMs,
    );
    socket.once('connect', () => socket.write(payload));
    socket.on('data', (chunk: Buffer) => {
      buf += chunk.toString('latin1');
      const eol = buf.indexOf('\r\n');
      if (eol >= 0) finish({ kind: 'reply', line: buf.slice(0, eol) });
    });
    socket.once('error', (err: NodeJS.ErrnoException) => {
      // A reset after SHUTDOWN means the server went away, which is what we asked for.
      finish(err.code === 'ECONNRESET' ? { kind: 'closed' } : { kind: 'failed', reason: err.message });
    });
    socket.once('close', () => finish({ kind: 'closed' }));
  });
}

function describeExit(info: ExitInfo): string {
  if (info.error) return `failed to spawn (${info.error.message})`;
  if (info.signal) return `was killed by ${info.signal}`;
  return `exited with code ${info.code}`;
}

function sanitizeForPath(name: string): string {
  return name.replace(/[^A-Za-z0-9_.-]/g, '_');
}

// ---------------------------------------------------------------------------------------------------------------
// RedisProcess
// ---------------------------------------------------------------------------------------------------------------

export class RedisProcess {
  readonly name: string;
  readonly host: typeof HOST = HOST;
  readonly dir: string;
  readonly logFile: string;
  readonly persistence: Persistence;
  readonly extraArgs: readonly string[];
  readonly #spawnOptions: Pick<RedisProcessOptions, 'detached' | 'parentDeathSignal'>;

  #port: number;
  readonly #portFixed: boolean;
  readonly #ownsDir: boolean;
  #entry: LiveChild | undefined;
  #exited: Promise<ExitInfo> | undefined;
  #starting = false;
  #disposed = false;

  private constructor(init: {
    name: string;
    port: number;
    portFixed: boolean;
    dir: string;
    ownsDir: boolean;
    logFile: string;
    persistence: Persistence;
    extraArgs: string[];
    spawnOptions: Pick<RedisProcessOptions, 'detached' | 'parentDeathSignal'>;
  }) {
    this.name = init.name;
    this.#port = init.port;
    this.#portFixed = init.portFixed;
    this.dir = init.dir;
    this.#ownsDir = init.ownsDir;
    this.logFile = init.logFile;
    this.persistence = init.persistence;
    this.extraArgs = [...init.extraArgs];
    this.#spawnOptions = init.spawnOptions;
  }

  /** Spawn redis-server and wait (≤ 10 s) until it answers PING; rejects with the tail of its log otherwise. */
  static async start(opts: RedisProcessOptions = {}): Promise<RedisProcess> {
    const name = opts.name ?? 'redis';
    redisServerPath(); // fail fast, before creating anything
    if (opts.port !== undefined && (!Number.isInteger(opts.port) || opts.port <= 0 || opts.port > 65_535)) {
      throw new Error(`${name}: invalid port ${opts.port}`);
    }
    let dir: string;
    let ownsDir: boolean;
    if (opts.dir !== undefined) {
      dir = resolvePath(opts.dir);
      await mkdir(dir, { recursive: true });
      ownsDir = false;
    } else {
      dir = await mkdtemp(join(tmpdir(), `redlease-${sanitizeForPath(name)}-`));
      ownsDir = true;
      ownedDirs.add(dir);
      installExitHooks();
    }
    let port: number;
    try {
      port = opts.port ?? (await pickPort());
    } catch (err) {
      if (ownsDir) {
        ownedDirs.delete(dir);
        await rm(dir, { recursive: true, force: true });
      }
      throw err;
    }
    const proc = new RedisProcess({
      name,
      port,
      portFixed: opts.port !== undefined,
      dir,
      ownsDir,
      logFile: resolvePath(opts.logFile ?? join(dir, 'redis.log')),
      persistence: opts.persistence ?? 'none',
      extraArgs: opts.extraArgs ?? [],
      spawnOptions: { detached: opts.detached, parentDeathSignal: opts.parentDeathSignal },
    });
    try {
      await proc.#launch(true);
    } catch (err) {
      await proc.dispose().catch(() => undefined);
      throw err;
    }
    return proc;
  }

  get port(): number {
    return this.#port;
  }

  /** '127.0.0.1:PORT' */
  get address(): string {
    return `${this.host}:${this.#port}`;
  }

  /** pid of the running child; undefined while not running. */
  get pid(): number | undefined {
    return this.#entry?.child.pid;
  }

  get running(): boolean {
    return this.#entry !== undefined;
  }

  get paused(): boolean {
    return this.#entry?.paused ?? false;
  }

  /** Resolves when the redis-server process running now has exited (at once when none runs). */
  async whenExited(): Promise<void> {
    if (this.#entry !== undefined) await this.#exited;
  }

  /** The argv passed to redis-server (without the binary). */
  args(): string[] {
    const persistence =
      this.persistence === 'aof-always'
        ? ['--appendonly', 'yes', '--appendfsync', 'always', '--save', '']
        : ['--save', '', '--appendonly', 'no'];
    return [
      '--port',
      String(this.#port),
      '--bind',
      HOST,
      '--protected-mode',
      'yes',
      '--dir',
      this.dir,
      '--logfile',
      this.logFile,
      '--daemonize',
      'no',
      '--loglevel',
      'notice',
      ...persistence,
      ...this.extraArgs,
    ];
  }

  /** SIGKILL; resolves once the process has exited and been reaped (bounded: 5 s). */
  async kill(): Promise<void> {
    const entry = this.#entry;
    const exited = this.#exited;
    if (entry === undefined || exited === undefined) return;
    if (entry.paused) {
      sendSignal(entry.child.pid, 'SIGCONT');
      entry.paused = false;
    }
    sendSignal(entry.child.pid, 'SIGKILL');
    if (!(await settlesWithin(exited, EXIT_TIMEOUT_MS))) {
      throw new Error(
        `${this.name}: pid ${entry.child.pid} did not exit within ${EXIT_TIMEOUT_MS} ms of SIGKILL`,
      );
    }
  }

  /** SIGSTOP: the process keeps its port (the kernel still accepts connections) but answers nothing. */
  pause(): void {
    const entry = this.#entry;
    if (entry?.child.pid === undefined) throw new Error(`${this.name}: cannot pause, it is not running`);
    if (entry.paused) return;
    process.kill(entry.child.pid, 'SIGSTOP');
    entry.paused = true;
  }

  /** SIGCONT; no-op when not paused. */
  resume(): void {
    const entry = this.#entry;
    if (entry === undefined || !entry.paused) return;
    sendSignal(entry.child.pid, 'SIGCONT');
    entry.paused = false;
  }

  /**
   * Graceful stop: SHUTDOWN SAVE|NOSAVE over a raw connection (resuming a paused process first); falls back to
   * SIGTERM, then SIGKILL, each after a bounded wait. Resolves once the process has exited. With `save: true`,
   * rejects (after the process is gone) if the server did not honour SHUTDOWN SAVE, since data may be lost.
   */
  async stop(opts: { save?: boolean } = {}): Promise<void> {
    const save = opts.save ?? false;
    const entry = this.#entry;
    const exited = this.#exited;
    if (entry === undefined || exited === undefined) return;
    this.resume();
    const result = await rawRequest(
      this.#port,
      `SHUTDOWN ${save ? 'SAVE' : 'NOSAVE'}\r\n`,
      RAW_REQUEST_TIMEOUT_MS,
    );
    // SHUTDOWN succeeds silently (the connection just closes); a reply means it was refused.
    const refused = result.kind !== 'closed';
    if (await settlesWithin(exited, refused ? 250 : STOP_GRACE_MS)) {
      // Exited: if SHUTDOWN answered at all (it normally just closes), it exited anyway; treat as graceful.
      return;
    }
    sendSignal(entry.child.pid, 'SIGTERM');
    if (!(await settlesWithin(exited, SIGTERM_GRACE_MS))) {
      sendSignal(entry.child.pid, 'SIGKILL');
      if (!(await settlesWithin(exited, EXIT_TIMEOUT_MS))) {
        throw new Error(`${this.name}: pid ${entry.child.pid} survived SHUTDOWN, SIGTERM and SIGKILL`);
      }
    }
    if (save) {
      const how =
        result.kind === 'reply' ? result.line : result.kind === 'failed' ? result.reason : 'no reply';
      throw new Error(
        `${this.name}: SHUTDOWN SAVE was not honoured (${how}); the process was terminated by signal, so its ` +
          `dataset may not have been saved. Log tail:\n${await this.logTail()}`,
      );
    }
  }

  /** Start again on the same port, dir and options (after kill/stop); waits for PING. */
  async startAgain(): Promise<void> {
    if (this.#disposed) throw new Error(`${this.name}: disposed`);
    if (this.running) throw new Error(`${this.name}: already running (pid ${this.pid})`);
    await this.#launch(false);
  }

  /**
   * keepData=false: SIGKILL, wipe the data dir's contents (the dir itself and the log file stay), start again
   * => empty dataset and a new run_id. keepData=true: stop({save: true}) then start again => keys and their absolute
   * expiry survive (via dump.rdb, or the AOF for 'aof-always').
   */
  async restart(opts: { keepData: boolean }): Promise<void> {
    if (opts.keepData) {
      await this.stop({ save: true });
    } else {
      await this.kill();
      await this.wipeData();
    }
    await this.startAgain();
  }

  /** Remove everything in the data dir except the log file. Only while not running. */
  async wipeData(): Promise<void> {
    if (this.running) throw new Error(`${this.name}: cannot wipe the data dir of a running process`);
    const entries = await readdir(this.dir);
    await Promise.all(
      entries
        .map((entry) => join(this.dir, entry))
        .filter((path) => path !== this.logFile)
        .map((path) => rm(path, { recursive: true, force: true })),
    );
  }

  /**
   * One command over a short-lived ioredis connection (no offline queue, no retries, 2 s command timeout, no ready
   * check so a paused server times out instead of hanging). The connection is closed afterwards.
   */
  async command(...args: (string | number)[]): Promise<unknown> {
    const [name, ...rest] = args;
    if (name === undefined) throw new Error('command: no command given');
    const client = new Redis({
      host: this.host,
      port: this.#port,
      lazyConnect: true,
      enableOfflineQueue: false,
      enableReadyCheck: false,
      commandTimeout: 2_000,
      connectTimeout: 2_000,
      maxRetriesPerRequest: 0,
      retryStrategy: null,
    });
    client.on('error', () => undefined); // failures surface through the rejected promises below
    try {
      await client.connect();
      return await client.call(String(name), rest);
    } finally {
      client.disconnect();
    }
  }

  /** run_id from INFO server (changes on every start). */
  async runId(): Promise<string> {
    const info = await this.command('INFO', 'server');
    const match = typeof info === 'string' ? /^run_id:([0-9a-f]+)\r?$/m.exec(info) : null;
    if (match?.[1] === undefined) throw new Error(`${this.name}: no run_id in INFO server`);
    return match[1];
  }

  /** Last lines of the redis log (for error messages and debugging). */
  async logTail(lines = LOG_TAIL_LINES): Promise<string> {
    return await readTail(this.logFile, 0, lines);
  }

  /** Kill if running, release the port, and remove the data dir if this harness created it. Idempotent. */
  async dispose(): Promise<void> {
    try {
      await this.kill();
    } finally {
      this.#disposed = true;
      if (!this.#portFixed) claimedPorts.delete(this.#port);
      if (this.#ownsDir && ownedDirs.has(this.dir)) {
        ownedDirs.delete(this.dir);
        await rm(this.dir, { recursive: true, force: true });
      }
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.dispose();
  }

  toString(): string {
    return `${this.name}@${this.address}`;
  }

  async #launch(mayPickNewPort: boolean): Promise<void> {
    if (this.#starting) throw new Error(`${this.name}: already starting`);
    this.#starting = true;
    try {
      for (let attempt = 1; ; attempt++) {
        try {
          await this.#launchOnce(mayPickNewPort ? attempt : 0);
          return;
        } catch (err) {
          if (
            !(err instanceof PortInUseError) ||
            !mayPickNewPort ||
            this.#portFixed ||
            attempt >= MAX_PORT_ATTEMPTS
          ) {
            throw err;
          }
          // Lost a freePort() race with another process: take a new port and try again.
          claimedPorts.delete(this.#port);
          this.#port = await pickPort();
        }
      }
    } finally {
      this.#starting = false;
    }
  }

  /** `attempt` > 0: this start may move to another port if this one is taken (used in the error message). */
  async #launchOnce(attempt: number): Promise<void> {
    const port = this.#port;
    const logOffset = await fileSize(this.logFile);
    const output = new OutputTail();
    installExitHooks();
    const command = withParentDeathSignal(
      redisServerPath(),
      this.args(),
      this.#spawnOptions.parentDeathSignal,
    );
    const child = spawn(command.command, command.args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: this.#spawnOptions.detached ?? false,
      cwd: this.dir,
    });
    child.stdout?.on('data', (chunk: Buffer) => output.push(chunk));
    child.stderr?.on('data', (chunk: Buffer) => output.push(chunk));
    const entry: LiveChild = { child, paused: false };
    liveChildren.add(entry);
    this.#entry = entry;
    const exited = new Promise<ExitInfo>((resolve) => {
      const done = (info: ExitInfo): void => {
        liveChildren.delete(entry);
        if (this.#entry === entry) this.#entry = undefined;
        resolve(info);
      };
      child.once('exit', (code, signal) => done({ code, signal }));
      child.on('error', (error) => {
        if (child.pid === undefined) done({ code: null, signal: null, error }); // spawn failed; no 'exit' follows
      });
    });
    this.#exited = exited;
    let exitInfo: ExitInfo | undefined;
    void exited.then((info) => {
      exitInfo = info;
    });

    const deadline = Date.now() + START_TIMEOUT_MS;
    for (;;) {
      if (exitInfo !== undefined)
        throw await this.#startupExitError(exitInfo, port, attempt, logOffset, output);
      if (Date.now() >= deadline) {
        const pid = child.pid;
        await this.kill();
        const tail = await this.#tails(logOffset, output);
        throw new Error(
          `${this.name}: redis-server (pid ${pid}) did not answer PING on ${HOST}:${port} within ` +
            `${START_TIMEOUT_MS} ms; killed it.${tail}`,
        );
      }
      // Racing with `exited` notices a startup failure at once even while a probe waits on a foreign listener.
      const result = await Promise.race([probe(port, child.pid), exited.then(() => 'down' as const)]);
      if (result === 'ready' && exitInfo === undefined) return;
      await Promise.race([sleep(POLL_INTERVAL_MS), exited]);
    }
  }

  async #tails(logOffset: number, output: OutputTail): Promise<string> {
    const log = await readTail(this.logFile, logOffset, LOG_TAIL_LINES);
    let text = '';
    if (log) text += `\n--- ${this.logFile} (last lines) ---\n${log}`;
    if (output.text) text += `\n--- redis-server stdout/stderr ---\n${output.text}`;
    return text;
  }

  async #startupExitError(
    info: ExitInfo,
    port: number,
    attempt: number,
    logOffset: number,
    output: OutputTail,
  ): Promise<Error> {
    const log = await readTail(this.logFile, logOffset, LOG_TAIL_LINES);
    const tail = await this.#tails(logOffset, output);
    if (/Address already in use/i.test(log) || /Address already in use/i.test(output.text)) {
      const hint = this.#portFixed
        ? ' (fixed port: not retrying)'
        : attempt === 0
          ? ' (startAgain keeps the port: free it, or start a new RedisProcess)'
          : attempt >= MAX_PORT_ATTEMPTS
            ? ` (gave up after ${attempt} free ports were taken before redis-server could bind them)`
            : '';
      return new PortInUseError(
        `${this.name}: cannot listen on ${HOST}:${port}: port ${port} is already in use${hint}.${tail}`,
        port,
      );
    }
    return new Error(
      `${this.name}: redis-server on ${HOST}:${port} ${describeExit(info)} during startup.${tail}`,
    );
  }
}

// ---------------------------------------------------------------------------------------------------------------
// RedisCluster
// ---------------------------------------------------------------------------------------------------------------

export type RedisClusterOptions = Omit<RedisProcessOptions, 'port' | 'name' | 'dir'> & { ports?: number[] };

/** n independent redis-server processes (not Redis Cluster mode): the Redlock quorum set. */
export class RedisCluster {
  private constructor(readonly nodes: RedisProcess[]) {}

  /** Start n nodes (default 3) in parallel, named redis-1..n. If any fails, the others are disposed. */
  static async start(n = 3, opts: RedisClusterOptions = {}): Promise<RedisCluster> {
    const { ports, ...rest } = opts;
    if (!Number.isInteger(n) || n < 1) throw new Error(`RedisCluster.start: invalid node count ${n}`);
    if (ports !== undefined && ports.length !== n) {
      throw new Error(`RedisCluster.start: ${ports.length} ports given for ${n} nodes`);
    }
    const results = await Promise.allSettled(
      Array.from({ length: n }, (_, i) =>
        RedisProcess.start({ ...rest, name: `redis-${i + 1}`, port: ports?.[i] }),
      ),
    );
    const nodes: RedisProcess[] = [];
    const errors: unknown[] = [];
    for (const result of results) {
      if (result.status === 'fulfilled') nodes.push(result.value);
      else errors.push(result.reason);
    }
    if (errors.length > 0) {
      await Promise.allSettled(nodes.map((node) => node.dispose()));
      throw errors[0];
    }
    return new RedisCluster(nodes);
  }

  get addresses(): string[] {
    return this.nodes.map((node) => node.address);
  }

  async dispose(): Promise<void> {
    const results = await Promise.allSettled(this.nodes.map((node) => node.dispose()));
    const failed = results.find((result) => result.status === 'rejected');
    if (failed !== undefined) throw failed.reason;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.dispose();
  }
}
