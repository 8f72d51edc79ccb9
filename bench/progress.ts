/**
 * The progress line on stderr. On a terminal it is one line rewritten in place; otherwise (CI, a pipe) each step
 * is a plain line and updates within a step at most every 10 s, so logs stay readable.
 */
const PLAIN_UPDATE_MS = 10_000;

export class Progress {
  readonly #tty: boolean;
  #shown = '';
  #lastPlainAt = 0;

  constructor(private readonly stream: NodeJS.WriteStream = process.stderr) {
    this.#tty = stream.isTTY === true;
  }

  /** A new step (e.g. "contended-16 run 2/5: etcd"). */
  step(text: string): void {
    this.#lastPlainAt = performance.now();
    if (this.#tty) this.#draw(text);
    else this.stream.write(`${text}\n`);
  }

  /** An update within the step (e.g. seconds left, cycles/s so far). */
  update(text: string): void {
    if (this.#tty) {
      this.#draw(text);
    } else if (performance.now() - this.#lastPlainAt >= PLAIN_UPDATE_MS) {
      this.#lastPlainAt = performance.now();
      this.stream.write(`${text}\n`);
    }
  }

  /** A line that stays (a result, a warning), above the progress line. */
  log(text: string): void {
    const shown = this.#shown;
    this.clear();
    this.stream.write(`${text}\n`);
    if (shown !== '') this.#draw(shown);
  }

  /** Removes the progress line (before the tables are printed). */
  clear(): void {
    if (this.#tty && this.#shown !== '') this.stream.write('\r\x1b[K');
    this.#shown = '';
  }

  #draw(text: string): void {
    const width = Math.max(20, (this.stream.columns ?? 120) - 1);
    const line = text.length > width ? `${text.slice(0, width - 1)}…` : text;
    this.stream.write(`\r\x1b[K${line}`);
    this.#shown = line;
  }
}
