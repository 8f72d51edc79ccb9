/**
 * The history format of the fault-injection suite (docs/chaos.md): every writer (a worker process, the
 * nemesis, the fenced store) appends JSON Lines to its own file; the checker merges them by (t, writer, seq).
 * Times are `process.hrtime.bigint()` (CLOCK_MONOTONIC, shared by every process on one Linux host) as decimal
 * strings: never `performance.now()`, whose origin is per process.
 */
import { closeSync, fsyncSync, openSync, readdirSync, readFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';

export type EventType = 'invoke' | 'ok' | 'fail' | 'info';

export type EventF =
  | 'acquire'
  | 'extend'
  | 'keepalive'
  | 'release'
  | 'lost'
  | 'renewed'
  | 'store_write'
  | 'store_read'
  | 'nemesis'
  | 'voting';

export interface EventError {
  /** gRPC status name (`UNAVAILABLE`, `ABORTED`, …) or `TIMEOUT` / `STALE_TOKEN` for non-gRPC failures. */
  code: string;
  /** The server's `redlease-reason` when there is one. */
  reason?: string;
  msg?: string;
}

export interface NemesisInfo {
  /** kill, restart, pause, proxy mode (`blackhole`, `delay`…), `clock-jump`, … */
  fault: string;
  /** R1..R3 (Redis nodes), C (coordinator), W names, P1..P3 (proxies). */
  target: string[];
  phase: 'start' | 'stop';
  /** Anything else worth keeping (delay ms, whether the node restarted empty…). */
  detail?: Record<string, unknown>;
}

export interface HistoryEvent {
  /** process.hrtime.bigint() as a decimal string. */
  t: string;
  /** The file's writer: `w3`, `nemesis`, `store`. */
  writer: string;
  /** Per writer, from 0, no gaps. */
  seq: number;
  /** Logical process: `w3#2`. After an `info` completion the writer moves on to a new one (Jepsen). */
  proc: string;
  type: EventType;
  f: EventF;
  /** Pairs an invoke with its completion (same proc). Absent on one-off events (lost, renewed, nemesis). */
  req?: string;
  resource?: string;
  lock?: string;
  /** Fencing token as a decimal string. */
  token?: string;
  ttl_ms?: number;
  /**
   * Acquire invokes: how long the call may wait in the server's queue (0 = try once). The checker holds a
   * non-waiting grant to `validity_ms ≤ ttl − drift` and `ok − inv < ttl` (S2); a waiting one (or one that does
   * not say) only to a deadline within `ttl − drift` of its answer, because the SDK re-sends a grant that arrives
   * late and counts the validity from that re-send.
   */
  wait_ms?: number;
  validity_ms?: number;
  /** Store operations: the element added (store_write) or the set read (store_read). */
  value?: unknown;
  /** Store operations: `fenced` or `unfenced`. */
  store?: 'fenced' | 'unfenced';
  error?: EventError;
  nemesis?: NemesisInfo;
  /** `voting` events (nemesis writer): how many Redis nodes the harness believes can vote from now on. */
  voting?: number;
}

/** What a writer fills in itself. */
export type EventBody = Omit<HistoryEvent, 't' | 'writer' | 'seq' | 'proc'> & { proc?: string };

export const now = (): bigint => process.hrtime.bigint();

/**
 * Appends one writer's events to `<dir>/<writer>.jsonl`, one synchronous write per event, so a process killed
 * with SIGKILL loses nothing it recorded (the checker turns its open invocations into `info`).
 */
export class HistoryWriter {
  private readonly fd: number;
  private seq = 0;
  private generation = 1;
  private closed = false;

  constructor(
    readonly dir: string,
    readonly writer: string,
  ) {
    this.fd = openSync(join(dir, `${writer}.jsonl`), 'a');
  }

  /** The current logical process (`w3#1`, then `w3#2` after {@link retire}). */
  get proc(): string {
    return `${this.writer}#${this.generation}`;
  }

  /** After an `info` completion: later operations belong to a new logical process. */
  retire(): void {
    this.generation++;
  }

  /** Records an event now; returns it. `t` may be given (e.g. a time taken just before a call was sent). */
  record(body: EventBody, t: bigint = now()): HistoryEvent {
    if (this.closed) throw new Error(`history writer ${this.writer} is closed`);
    const event: HistoryEvent = {
      t: t.toString(),
      writer: this.writer,
      seq: this.seq++,
      proc: this.proc,
      ...body,
    };
    writeSync(this.fd, `${JSON.stringify(event)}\n`);
    return event;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    fsyncSync(this.fd);
    closeSync(this.fd);
  }
}

export interface LoadedHistory {
  events: HistoryEvent[];
  /** Lines that did not parse (a writer killed mid-line): the history is then incomplete (`valid: "unknown"`). */
  truncated: { file: string; line: number; text: string }[];
}

/** Every `*.jsonl` in `dir`, merged by (t, writer, seq). */
export function loadHistory(dir: string): LoadedHistory {
  const events: HistoryEvent[] = [];
  const truncated: LoadedHistory['truncated'] = [];
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.jsonl'))) {
    const lines = readFileSync(join(dir, file), 'utf8').split('\n');
    lines.forEach((text, i) => {
      if (text === '') return;
      try {
        events.push(JSON.parse(text) as HistoryEvent);
      } catch {
        truncated.push({ file, line: i + 1, text: text.slice(0, 200) });
      }
    });
  }
  return { events: sortEvents(events), truncated };
}

export function sortEvents(events: HistoryEvent[]): HistoryEvent[] {
  return events.sort((a, b) => {
    const ta = BigInt(a.t);
    const tb = BigInt(b.t);
    if (ta !== tb) return ta < tb ? -1 : 1;
    if (a.writer !== b.writer) return a.writer < b.writer ? -1 : 1;
    return a.seq - b.seq;
  });
}
