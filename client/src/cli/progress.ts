/**
 * The line `redlease lock` shows on a terminal while it waits in the server's queue, redrawn in place:
 *
 *   waiting for "deploy": 2nd of 3 in line, 4.2s waited (held by ci-7:4121, token 17)
 *
 * The server does not tell a waiter its place, so it is estimated from Describe, polled once a second: the
 * number waiting when this Acquire joined, less the holders seen since (a new fencing token each), and never
 * more than the number waiting now. Holders that come and go between two polls, or waiters ahead that give up,
 * only make it an overestimate.
 */
import { performance } from 'node:perf_hooks';
import type { LockClient } from '../lock-client.js';
import { formatDuration, type Style } from './output.js';

const REDRAW_MS = 200;
const POLL_MS = 1_000;

export class QueueProgress {
  private readonly redraw: NodeJS.Timeout;
  private readonly poll: NodeJS.Timeout;
  private polling = false;
  /** Waiters seen by the first poll that saw any (this Acquire among them), and holders seen since. */
  private joined: { waiters: number; holders: number } | undefined;
  private lastToken = 0;
  private line = '';

  constructor(
    private readonly client: LockClient,
    private readonly resource: string,
    private readonly stream: NodeJS.WritableStream,
    private readonly style: Style,
    private readonly started: number,
  ) {
    this.redraw = setInterval(() => this.draw(), REDRAW_MS).unref();
    this.poll = setInterval(() => void this.describe(), POLL_MS).unref();
    this.draw();
    void this.describe();
  }

  stop(): void {
    clearInterval(this.redraw);
    clearInterval(this.poll);
    this.stream.write('\r\x1b[2K');
  }

  private async describe(): Promise<void> {
    if (this.polling) return;
    this.polling = true;
    try {
      const d = await this.client.describe(this.resource);
      if (d.locked && d.fencingToken !== this.lastToken) {
        this.lastToken = d.fencingToken;
        if (this.joined) this.joined.holders++;
      }
      if (!this.joined && d.waiters > 0) this.joined = { waiters: d.waiters, holders: 0 };
      let place = '';
      if (this.joined && d.waiters > 0) {
        const position = Math.min(d.waiters, Math.max(1, this.joined.waiters - this.joined.holders));
        place = `${ordinal(position)} of ${d.waiters} in line, `;
      }
      const holder = d.locked
        ? ` (held by ${d.holderClientId || '(no client id)'}, token ${d.fencingToken})`
        : '';
      this.line = `${place}{waited}${holder}`;
    } catch {
      // The Acquire itself reports a server that cannot be reached; the line just stays as it was.
    } finally {
      this.polling = false;
    }
  }

  private draw(): void {
    const waited = `${formatDuration(performance.now() - this.started)} waited`;
    const detail = this.line ? this.line.replace('{waited}', waited) : waited;
    this.stream.write(`\r\x1b[2K${this.style.dim(`waiting for "${this.resource}": ${detail}`)}`);
  }
}

function ordinal(n: number): string {
  const tens = n % 100;
  const suffix = tens >= 11 && tens <= 13 ? 'th' : (['th', 'st', 'nd', 'rd'][n % 10] ?? 'th');
  return `${n}${suffix}`;
}
