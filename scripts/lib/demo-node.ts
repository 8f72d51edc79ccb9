/**
 * One Redis of the demo (a lock node or the workers' store): a RedisProcess on a fixed port with its data dir and
 * log under the state dir, no persistence, and its log file streamed to the demo output. Stop, start, pause and
 * resume refuse what makes no sense in the node's state with a message that says what to do instead.
 */
import { mkdir, rm } from 'node:fs/promises';
import type { NodeName, ProcessStatus } from './control-protocol.js';
import type { DemoOutput } from './demo-output.js';
import { FileTail } from './file-tail.js';
import { processStartTime } from './process-start-time.js';
import { RedisProcess } from './redis-process.js';

/**
 * redis-server start-up lines that say nothing about the demo: its banner, config and clock notices, and the
 * memory-overcommit warning, which concerns fork() for background saves (the demo never saves).
 */
const STARTUP_CHATTER =
  /oO0OoO0OoO0Oo|Configuration loaded|monotonic clock|Running mode=|Server initialized|Memory overcommit/;

export class DemoNode {
  readonly role: 'lock node' | 'store';
  #process: RedisProcess | undefined;
  #tail: FileTail | undefined;
  #startTime: number | null = null;
  /** Set while the demo itself stops the node, so that exit is not reported as a crash. */
  #stopping = false;

  constructor(
    readonly name: NodeName,
    readonly port: number,
    readonly dir: string,
    private readonly out: DemoOutput,
    /** Called when the node exits on its own (killed from outside, crashed). */
    private readonly onUnexpectedExit: (node: DemoNode) => void,
  ) {
    this.role = name === 'store' ? 'store' : 'lock node';
  }

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  get state(): ProcessStatus['state'] {
    if (this.#process?.running !== true) return 'stopped';
    return this.#process.paused ? 'paused' : 'running';
  }

  get pid(): number | null {
    return this.#process?.pid ?? null;
  }

  /** Start time of the running process (see process-start-time.ts), for the state file. */
  get startTime(): number | null {
    return this.state === 'stopped' ? null : this.#startTime;
  }

  status(): ProcessStatus {
    return { name: this.name, role: this.role, state: this.state, pid: this.pid, addresses: [this.address] };
  }

  /**
   * Starts redis-server with an empty dataset (the first time in a wiped data dir; later after wiping it, as a
   * restart without persistence loses everything) and waits until it answers PING (≤ 10 s).
   */
  async start(): Promise<void> {
    if (this.#process?.running) throw new Error(`${this.name} is already running (pid ${this.pid})`);
    if (this.#process === undefined) {
      await rm(this.dir, { recursive: true, force: true });
      await mkdir(this.dir, { recursive: true });
      this.#process = await RedisProcess.start({
        name: this.name,
        port: this.port,
        dir: this.dir,
        persistence: 'none',
        detached: true,
        // No persistence, so nothing to save: SIGKILL also ends a paused (SIGSTOPped) node at once.
        parentDeathSignal: 'SIGKILL',
      });
      this.#tail = new FileTail(this.#process.logFile, (line) => {
        if (!STARTUP_CHATTER.test(line)) this.out.log(this.name, line);
      }).start();
    } else {
      await this.#process.wipeData();
      await this.#process.startAgain();
    }
    this.#stopping = false;
    const redis = this.#process;
    const pid = redis.pid;
    this.#startTime = pid === undefined ? null : (processStartTime(pid) ?? null);
    void redis.whenExited().then(() => {
      if (!this.#stopping) this.onUnexpectedExit(this);
    });
  }

  /** SHUTDOWN NOSAVE (after SIGCONT when paused), then SIGTERM and SIGKILL if it will not go; bounded. */
  async stop(): Promise<void> {
    if (this.state === 'stopped') {
      throw new Error(`${this.name} is already stopped; start it with: npm run nodes -- start ${this.name}`);
    }
    this.#stopping = true;
    await this.#process?.stop();
  }

  /** SIGSTOP: it keeps its port, the kernel still accepts connections, but it answers nothing. */
  pause(): void {
    if (this.state === 'stopped') throw new Error(`${this.name} is stopped; start it first`);
    if (this.state === 'paused') throw new Error(`${this.name} is already paused (pid ${this.pid})`);
    this.#process?.pause();
  }

  /** SIGCONT. */
  resume(): void {
    if (this.state !== 'paused') throw new Error(`${this.name} is not paused (it is ${this.state})`);
    this.#process?.resume();
  }

  /** The demo's end: stop the node if it runs (bounded), release the harness, read the rest of the log. */
  async dispose(): Promise<void> {
    this.#stopping = true;
    try {
      if (this.state !== 'stopped') await this.#process?.stop();
    } finally {
      await this.#process?.dispose();
      await this.#tail?.stop();
    }
  }
}
