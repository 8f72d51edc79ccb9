/**
 * `tail -F` for one log file: reports every complete line appended to it, polling its size. Used for the demo's
 * redis-server logs, which redis writes to a file (the harness keeps the file to explain start-up failures).
 * A file that shrinks (truncated or replaced) is read again from its start; a missing file is waited for.
 */
import { open, stat } from 'node:fs/promises';

/** 100 ms: lines show up about as soon as the pino lines of the other processes, for 10 stat calls a second. */
const POLL_MS = 100;
/** Read at most this much per poll, so a burst never blocks the launcher for long. */
const MAX_READ_BYTES = 256 * 1024;

export class FileTail {
  #offset = 0;
  #pending = '';
  #timer: NodeJS.Timeout | undefined;
  #reading: Promise<void> = Promise.resolve();

  constructor(
    readonly file: string,
    private readonly onLine: (line: string) => void,
  ) {}

  /** Starts polling (reading from the file's start). */
  start(): this {
    this.#timer ??= setInterval(() => {
      this.#reading = this.#reading.then(() => this.#read());
    }, POLL_MS);
    return this;
  }

  /** Reads what is left, reports a last line without its newline too, and stops polling. */
  async stop(): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#reading;
    await this.#read();
    if (this.#pending !== '') this.onLine(this.#pending);
    this.#pending = '';
  }

  async #read(): Promise<void> {
    let size: number;
    try {
      size = (await stat(this.file)).size;
    } catch {
      return; // not there (yet)
    }
    if (size < this.#offset) {
      this.#offset = 0;
      this.#pending = '';
    }
    if (size === this.#offset) return;
    const length = Math.min(size - this.#offset, MAX_READ_BYTES);
    const handle = await open(this.file, 'r').catch(() => undefined);
    if (handle === undefined) return;
    try {
      const buffer = Buffer.alloc(length);
      const { bytesRead } = await handle.read(buffer, 0, length, this.#offset);
      this.#offset += bytesRead;
      this.#pending += buffer.toString('utf8', 0, bytesRead);
    } finally {
      await handle.close();
    }
    let newline = this.#pending.indexOf('\n');
    while (newline >= 0) {
      this.onLine(this.#pending.slice(0, newline));
      this.#pending = this.#pending.slice(newline + 1);
      newline = this.#pending.indexOf('\n');
    }
  }
}
