/**
 * One workload worker of the fault suite (docs/chaos.md: the history it records, the workloads), run as its
 * own process so a scenario can pause (SIGSTOP), kill or cut it off:
 *
 *   node --import tsx chaos/worker.ts --name w3 --address 127.0.0.1:P --store http://127.0.0.1:Q \
 *     --history DIR --workload lock|fenced-set|unfenced-set --resources r1,r2 --ttl-ms 1000 --seconds 20 --seed 7
 *
 * Each round: acquire a random resource (auto-renewed by the SDK), then
 * - `lock`: hold it for a random 0–hold-max-factor × ttl, stopping early if the lease is lost;
 * - `fenced-set` / `unfenced-set` (Jepsen set-full): read the set from the store service, sleep 0–0.6 × ttl, write
 *   set ∪ {x} (x unique per worker and round);
 * then release. Every operation is recorded to `<history>/<name>.jsonl` (chaos/history.ts) as it happens, one
 * synchronous write per event, so a SIGKILL loses nothing already recorded.
 *
 * stdout: `{"event":"about-to-write",…}` before a --pause-before-write-ms pause, and one `{"event":"done",…}` line
 * with the counts at exit. SIGTERM / SIGINT: finish the current step, release, exit 0 (a second one exits at once
 * with 1). Exit codes: 0 done, 1 failed, 2 bad option (`--help` lists the flags).
 */
import { type Stats, statSync } from 'node:fs';
import { request } from 'node:http';
import { parseArgs } from 'node:util';
import { delay, isAbortError } from 'abort-controller-x';
import {
  type Lease,
  type LeaseLostError,
  LockClient,
  LockError,
  UnavailableError,
} from '../client/src/index.js';
import { mulberry32 } from '../testkit/random.js';
import { type EventBody, type EventError, HistoryWriter, now } from './history.js';

type Workload = 'lock' | 'fenced-set' | 'unfenced-set';

interface Options {
  name: string;
  address: string;
  /** The store service's `http://127.0.0.1:port` (set workloads only). */
  store: string | undefined;
  history: string;
  workload: Workload;
  resources: string[];
  ttlMs: number;
  seconds: number;
  /** Stop after this many rounds (acquire attempts); Infinity = until --seconds. */
  rounds: number;
  seed: number;
  holdMaxFactor: number;
  waitMs: number;
  /** Check lease.isHeld() right before a store write (off: --no-hold-check). */
  holdCheck: boolean;
  pauseBeforeWriteMs: number;
  /** Makes the set elements unique across workers: x = workerIndex × ELEMENTS_PER_WORKER + round. */
  workerIndex: number;
  /** Bearer token for the server, from REDLEASE_TOKEN only (argv is visible to every local user). */
  token: string | undefined;
  /** How the SDK sends Acquire, Release and Extend (LockClientOptions.transport). */
  transport: 'unary' | 'session';
}

class OptionsError extends Error {}

/** Elements one worker can add: its rounds are numbered below this, so workers' elements never collide. */
const ELEMENTS_PER_WORKER = 1_000_000;
/** The server's (and SDK's) ttl bounds. */
const MIN_TTL_MS = 100;
const MAX_TTL_MS = 3_600_000;
/** The longest wait the server accepts (DESIGN: wait ≤ 5 min). */
const MAX_WAIT_MS = 300_000;
/** Pause between rounds: 0–50 ms, so workers interleave differently from round to round. */
const MAX_ROUND_PAUSE_MS = 50;
/** The set workloads' work between read and write: 0–0.6 × ttl, so some need a renewal. */
const WORK_FACTOR = 0.6;
/**
 * A store call without an answer after this long is an `info`. Longer than the store's own Redis command timeout
 * (2 s), so a stalled store Redis normally comes back as a 503 the store has recorded.
 */
const STORE_TIMEOUT_MS = 5_000;

const USAGE = `Usage: node --import tsx chaos/worker.ts --name <w> --address <host:port> --history <dir> --resources <r1,r2> [options]

A fault-suite workload worker: rounds of acquire (auto-renewed) → hold or read-modify-write a set in the store
service → release, each operation recorded to <history>/<name>.jsonl. Stops after --seconds or on SIGTERM /
SIGINT (releases what it holds, exits 0). Prints {"event":"done",…} with its counts on exit.

Options:
  --name <name>                   history writer and client id; required
  --address <host:port>           redlease server; required
  --history <dir>                 existing directory for <name>.jsonl; required
  --resources <r1,r2,…>           resources to pick from at random; required
  --workload <w>                  lock | fenced-set | unfenced-set (default lock)
  --store <url>                   store service, http://127.0.0.1:<port>; required by the set workloads
  --ttl-ms <ms>                   lease ttl [${MIN_TTL_MS}–${MAX_TTL_MS}] (default 1000)
  --seconds <s>                   start no round after this long (default 20)
  --rounds <n>                    stop after n rounds (acquire attempts) [1–${ELEMENTS_PER_WORKER - 1}] (default: until --seconds)
  --seed <n>                      PRNG seed (mulberry32) for every random choice (default 1)
  --hold-max-factor <f>           lock: hold 0–f × ttl (default 1.5)
  --wait-ms <ms>                  how long an acquire waits in the server's queue [0–${MAX_WAIT_MS}] (default 2000)
  --no-hold-check                 set workloads: write without checking lease.isHeld() first (a paused worker
                                  then writes with its stale token: the fenced store must refuse it)
  --pause-before-write-ms <ms>    set workloads: print {"event":"about-to-write",…} then sleep this long before
                                  the write, for a harness to SIGSTOP the worker there (default 0)
  --worker-index <n>              set elements are n × ${ELEMENTS_PER_WORKER} + round (default: the number ending --name)
  --transport <t>                 unary | session: how the SDK sends its lock calls (default session, as the SDK)
  -h, --help                      show this help

Environment: REDLEASE_TOKEN  bearer token for the server.
Exit codes: 0 done, 1 failed, 2 bad option.
`;

function parseOptions(argv: string[], env: NodeJS.ProcessEnv): Options | 'help' {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        name: { type: 'string' },
        address: { type: 'string' },
        store: { type: 'string' },
        history: { type: 'string' },
        workload: { type: 'string' },
        resources: { type: 'string' },
        'ttl-ms': { type: 'string' },
        seconds: { type: 'string' },
        rounds: { type: 'string' },
        seed: { type: 'string' },
        'hold-max-factor': { type: 'string' },
        'wait-ms': { type: 'string' },
        'no-hold-check': { type: 'boolean' },
        'pause-before-write-ms': { type: 'string' },
        'worker-index': { type: 'string' },
        transport: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (error) {
    // parseArgs names the flag in its message (unknown option, missing value, value given to a boolean).
    throw new OptionsError(
      `${error instanceof Error ? error.message.replace(/\s+/g, ' ') : error} (see --help)`,
    );
  }
  if (values.help === true) return 'help';
  const text = (flag: string): string | undefined => {
    const value = values[flag];
    return typeof value === 'string' ? value : undefined;
  };
  const required = (flag: string): string => {
    const value = text(flag);
    if (value === undefined || value === '') throw new OptionsError(`--${flag} is required (see --help)`);
    return value;
  };

  const name = required('name');
  if (!/^[A-Za-z0-9_.-]+$/.test(name)) {
    throw new OptionsError(
      `--name: use letters, digits, _ . - only (it names a file), got ${JSON.stringify(name)}`,
    );
  }
  const address = required('address');
  if (!/^[^\s/]+:\d{1,5}$/.test(address)) {
    throw new OptionsError(`--address: must be host:port, got ${JSON.stringify(address)}`);
  }
  const history = required('history');
  let stats: Stats | undefined;
  try {
    stats = statSync(history);
  } catch {
    stats = undefined;
  }
  if (!stats?.isDirectory())
    throw new OptionsError(`--history: ${JSON.stringify(history)} is not a directory`);

  const workload = text('workload') ?? 'lock';
  if (workload !== 'lock' && workload !== 'fenced-set' && workload !== 'unfenced-set') {
    throw new OptionsError(
      `--workload: must be lock, fenced-set or unfenced-set, got ${JSON.stringify(workload)}`,
    );
  }
  const store = text('store');
  if (store !== undefined && !/^http:\/\/[^\s/]+:\d{1,5}\/?$/.test(store)) {
    throw new OptionsError(`--store: must be http://host:port, got ${JSON.stringify(store)}`);
  }
  if (workload !== 'lock' && store === undefined) {
    throw new OptionsError(`--store is required by --workload ${workload}`);
  }
  const resources = required('resources').split(',');
  if (resources.some((r) => r === '')) {
    throw new OptionsError('--resources: a comma-separated list of non-empty names, like r1,r2');
  }

  const indexText = text('worker-index') ?? /(\d+)$/.exec(name)?.[1];
  if (indexText === undefined) {
    throw new OptionsError(`--worker-index is required when --name does not end in a number (${name})`);
  }
  const pauseBeforeWriteMs =
    integer('pause-before-write-ms', text('pause-before-write-ms'), 0, MAX_TTL_MS) ?? 0;
  if (pauseBeforeWriteMs > 0 && workload === 'lock') {
    throw new OptionsError(
      '--pause-before-write-ms: used only by the set workloads (there is no write in lock)',
    );
  }
  return {
    name,
    address,
    store: store?.replace(/\/$/, ''),
    history,
    workload,
    resources,
    ttlMs: integer('ttl-ms', text('ttl-ms'), MIN_TTL_MS, MAX_TTL_MS) ?? 1_000,
    seconds: decimal('seconds', text('seconds'), 0.001, 86_400) ?? 20,
    rounds: integer('rounds', text('rounds'), 1, ELEMENTS_PER_WORKER - 1) ?? Number.POSITIVE_INFINITY,
    seed: integer('seed', text('seed'), 0, 2 ** 32 - 1) ?? 1,
    holdMaxFactor: decimal('hold-max-factor', text('hold-max-factor'), 0, 100) ?? 1.5,
    waitMs: integer('wait-ms', text('wait-ms'), 0, MAX_WAIT_MS) ?? 2_000,
    holdCheck: values['no-hold-check'] !== true,
    pauseBeforeWriteMs,
    workerIndex: integer(
      'worker-index',
      indexText,
      0,
      Math.floor(Number.MAX_SAFE_INTEGER / ELEMENTS_PER_WORKER) - 1,
    )!,
    token: env.REDLEASE_TOKEN || undefined,
    transport: oneOf('transport', text('transport'), ['unary', 'session'] as const) ?? 'session',
  };
}

function oneOf<T extends string>(flag: string, raw: string | undefined, values: readonly T[]): T | undefined {
  if (raw === undefined) return undefined;
  if ((values as readonly string[]).includes(raw)) return raw as T;
  throw new OptionsError(`--${flag}: must be one of ${values.join(', ')}, got ${JSON.stringify(raw)}`);
}

function integer(flag: string, raw: string | undefined, min: number, max: number): number | undefined {
  if (raw === undefined) return undefined;
  const value = /^\d+$/.test(raw) ? Number(raw) : Number.NaN;
  if (Number.isSafeInteger(value) && value >= min && value <= max) return value;
  throw new OptionsError(`--${flag}: must be a whole number in [${min}, ${max}], got ${JSON.stringify(raw)}`);
}

function decimal(flag: string, raw: string | undefined, min: number, max: number): number | undefined {
  if (raw === undefined) return undefined;
  const value = /^\d+(\.\d+)?$/.test(raw) ? Number(raw) : Number.NaN;
  if (value >= min && value <= max) return value;
  throw new OptionsError(`--${flag}: must be a number in [${min}, ${max}], got ${JSON.stringify(raw)}`);
}

type Outcome = 'ok' | 'fail' | 'info';
type Tally = Record<Outcome, number>;

interface Counts {
  rounds: number;
  acquire: Tally;
  store_write: Tally;
  release: Tally;
  keepalive: number;
  lost: number;
  /** Set workloads: reads the store refused (a newer token was seen) or failed; the round wrote nothing. */
  read_refused: number;
  read_failed: number;
  /** Set workloads: writes skipped because the lease was no longer held (or the worker was stopping). */
  write_skipped: number;
}

const tally = (): Tally => ({ ok: 0, fail: 0, info: 0 });

/**
 * How a failed call completes in the history: `fail` only when it certainly had no effect — the server
 * decided (held by another, bad request, not held, credentials), or answered "no quorum" after undoing its
 * partial votes (UNAVAILABLE *with* a reason trailer: a transport failure has none). Everything else may have
 * taken effect: `info` (timeouts, cancellations, a broken connection, INTERNAL / UNKNOWN, a limit, anything
 * unexpected).
 */
function classify(error: unknown): { type: 'fail' | 'info'; error: EventError } {
  if (error instanceof LockError) {
    const definite =
      ['ABORTED', 'FAILED_PRECONDITION', 'INVALID_ARGUMENT', 'PERMISSION_DENIED', 'UNAUTHENTICATED'].includes(
        error.code,
      ) ||
      (error instanceof UnavailableError && error.reason !== '');
    return {
      type: definite ? 'fail' : 'info',
      error: { code: error.code, reason: error.reason, msg: error.message },
    };
  }
  if (isAbortError(error)) return { type: 'info', error: { code: 'CANCELLED', msg: message(error) } };
  return { type: 'info', error: { code: 'UNKNOWN', msg: message(error) } };
}

interface StoreAnswer {
  status: number;
  body: Record<string, unknown>;
}

/** A store call that got no HTTP answer: timed out or the connection failed. */
class StoreCallError extends Error {
  constructor(
    readonly code: 'TIMEOUT' | 'UNAVAILABLE',
    msg: string,
  ) {
    super(msg);
  }
}

/**
 * POST a JSON body to the store service. A new connection per call (agent: false): a kept-alive socket that the
 * server closed while this worker was paused would fail the next call with a reset, and a POST is not retried, so
 * the write a scenario wants the store to see (a stale one after SIGCONT) would never reach it.
 */
function post(url: string, body: unknown): Promise<StoreAnswer> {
  const text = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const call = request(
      url,
      {
        method: 'POST',
        agent: false,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) },
        signal: AbortSignal.timeout(STORE_TIMEOUT_MS),
      },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('error', (error) => reject(new StoreCallError('UNAVAILABLE', error.message)));
        response.on('end', () => {
          let parsed: unknown;
          try {
            parsed = JSON.parse(Buffer.concat(chunks).toString('utf8'));
          } catch {
            parsed = {};
          }
          const record =
            typeof parsed === 'object' && parsed !== null ? (parsed as Record<string, unknown>) : {};
          resolve({ status: response.statusCode ?? 0, body: record });
        });
      },
    );
    call.on('error', (error) => {
      if (error.name === 'AbortError' || error.name === 'TimeoutError') {
        reject(new StoreCallError('TIMEOUT', `no answer from the store within ${STORE_TIMEOUT_MS} ms`));
      } else {
        reject(new StoreCallError('UNAVAILABLE', `store unreachable: ${error.message}`));
      }
    });
    call.end(text);
  });
}

/** Writes one line to stdout. On Linux, writes to a pipe or file are synchronous: the line is out on return. */
function say(line: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(line)}\n`);
}

class ChaosWorker {
  readonly counts: Counts = {
    rounds: 0,
    acquire: tally(),
    store_write: tally(),
    release: tally(),
    keepalive: 0,
    lost: 0,
    read_refused: 0,
    read_failed: 0,
    write_skipped: 0,
  };
  private readonly random: () => number;
  /** Leases this process holds (acquired, not yet released or lost): only these get keepalive / lost events. */
  private readonly held = new Set<Lease>();
  private requests = 0;

  constructor(
    private readonly options: Options,
    private readonly client: LockClient,
    private readonly history: HistoryWriter,
    /** Aborts on SIGTERM / SIGINT: waits end early, no new round starts. */
    private readonly stop: AbortSignal,
  ) {
    this.random = mulberry32(options.seed);
  }

  async run(): Promise<void> {
    const onRenewed = (lease: Lease): void => {
      if (!this.held.has(lease)) return;
      // The deadline the SDK now has, as `t + validity_ms` (the checker's D := max(D, t + validity_ms)). The SDK
      // counts it from the renewal's send time, so the time elapsed since is already taken off.
      const remainingMs = lease.remainingMs;
      const t = now();
      if (remainingMs <= 0) return; // ended meanwhile: its `lost` is recorded instead
      this.counts.keepalive++;
      this.history.record(
        { type: 'ok', f: 'keepalive', ...this.leaseFields(lease), validity_ms: remainingMs },
        t,
      );
    };
    const onLost = (lease: Lease, error: LeaseLostError): void => {
      if (!this.held.delete(lease)) return;
      this.counts.lost++;
      // One-off: no retire. It can fire between a release's invoke and completion (the server said "not held"),
      // and a retire there would split that pair across two logical processes.
      this.history.record({
        type: 'info',
        f: 'lost',
        ...this.leaseFields(lease),
        error: { code: error.kind, msg: error.message },
      });
    };
    this.client.on('renewed', onRenewed);
    this.client.on('lost', onLost);
    const deadline = performance.now() + this.options.seconds * 1_000;
    try {
      while (!this.stop.aborted && performance.now() < deadline && this.counts.rounds < this.options.rounds) {
        if (this.counts.rounds + 1 >= ELEMENTS_PER_WORKER) break; // its elements would reach the next worker's
        await this.round(++this.counts.rounds);
        await this.sleep(this.random() * MAX_ROUND_PAUSE_MS);
      }
    } finally {
      this.client.off('renewed', onRenewed);
      this.client.off('lost', onLost);
    }
  }

  private async round(n: number): Promise<void> {
    const { resources, ttlMs, waitMs } = this.options;
    const resource = resources[Math.floor(this.random() * resources.length)]!;
    const req = this.nextRequest();
    const invokedAt = now();
    // wait_ms tells the checker this grant may have queued: the SDK then re-sends a grant that arrived late and
    // counts its validity from that re-send, so validity_ms (from the invoke) can exceed the ttl (S2).
    this.history.record(
      { type: 'invoke', f: 'acquire', req, resource, ttl_ms: ttlMs, wait_ms: waitMs },
      invokedAt,
    );
    let lease: Lease;
    try {
      // Not cancelled by SIGTERM: a cancelled acquire is an `info` that may leave a lock behind; the wait is short.
      lease = await this.client.acquire(resource, { ttlMs, waitMs });
    } catch (error) {
      const { type, error: detail } = classify(error);
      this.complete(type, { f: 'acquire', req, resource, error: detail });
      return;
    }
    const remainingMs = lease.remainingMs;
    const okAt = now();
    this.held.add(lease);
    // Validity counted from the invoke, so the checker's D = inv + validity_ms is the SDK's own deadline
    // (okAt + remainingMs): the SDK counts from the send of the request that was granted, after the invoke.
    const validityMs = remainingMs + Number(okAt - invokedAt) / 1e6;
    this.complete(
      'ok',
      { f: 'acquire', req, ...this.leaseFields(lease), validity_ms: Math.round(validityMs * 1_000) / 1_000 },
      okAt,
    );
    try {
      if (this.options.workload === 'lock') {
        // Renewals happen meanwhile on the KeepAlive stream; a lost lease ends the hold at once.
        await this.sleep(this.random() * this.options.holdMaxFactor * ttlMs, lease.signal);
      } else {
        await this.readModifyWrite(lease, n);
      }
    } finally {
      await this.release(lease);
    }
  }

  /** Set workloads: read the set, work, write set ∪ {x}. */
  private async readModifyWrite(lease: Lease, n: number): Promise<void> {
    const store = this.options.workload === 'fenced-set' ? 'fenced' : 'unfenced';
    const { resource, lockId: lock, fencingToken: token } = lease;
    let set: number[];
    try {
      // The store records the read itself (in the order it ran them); the worker records only its write.
      const answer = await post(`${this.options.store}/${store}/read`, { resource, token, lock });
      if (answer.status === 409) {
        this.counts.read_refused++; // a newer token was seen: this lease is already superseded
        return;
      }
      const value = answer.body.value;
      if (answer.status !== 200 || !Array.isArray(value)) {
        this.counts.read_failed++;
        return;
      }
      set = value as number[];
    } catch (error) {
      if (!(error instanceof StoreCallError)) throw error;
      this.counts.read_failed++;
      return;
    }

    // With the hold check, losing the lease ends the work early (the check below then skips the write). Without
    // it, the work runs its course whatever happens to the lease, as in a client that does not look.
    await this.sleep(
      this.random() * WORK_FACTOR * this.options.ttlMs,
      this.options.holdCheck ? lease.signal : undefined,
    );
    if (this.options.pauseBeforeWriteMs > 0 && !this.stop.aborted) {
      say({ event: 'about-to-write', worker: this.options.name, resource, token: String(token) });
      await this.sleep(this.options.pauseBeforeWriteMs);
    }
    // isHeld() reads the clock itself, so a deadline that passed while this process was stopped counts even
    // before its timer has run. --no-hold-check skips it: the stale write must then be refused by the store.
    if (this.stop.aborted || (this.options.holdCheck && !lease.isHeld())) {
      this.counts.write_skipped++;
      return;
    }

    const x = this.options.workerIndex * ELEMENTS_PER_WORKER + n;
    const req = this.nextRequest();
    const fields = { f: 'store_write', req, store, ...this.leaseFields(lease) } as const;
    this.history.record({ type: 'invoke', ...fields, value: x });
    const next = set.includes(x) ? set : [...set, x];
    let answer: StoreAnswer;
    try {
      answer = await post(`${this.options.store}/${store}/write`, { resource, token, lock, value: next });
    } catch (error) {
      if (!(error instanceof StoreCallError)) throw error;
      this.complete('info', { ...fields, value: x, error: { code: error.code, msg: error.message } });
      return;
    }
    if (answer.status === 200) {
      this.complete('ok', { ...fields, value: x });
    } else if (answer.status === 409) {
      // Refused as stale: the store's script changed nothing.
      const msg = `stale token ${token}: the store has seen ${String(answer.body.highestToken)}`;
      this.complete('fail', { ...fields, value: x, error: { code: 'STALE_TOKEN', msg } });
    } else if (answer.status === 400) {
      this.complete('fail', {
        ...fields,
        value: x,
        error: { code: 'INVALID_ARGUMENT', msg: describe(answer) },
      });
    } else {
      // 503: Redis failed or did not answer in time, so the write may or may not have been applied.
      const code = answer.status === 503 ? 'UNAVAILABLE' : 'INTERNAL';
      this.complete('info', { ...fields, value: x, error: { code, msg: describe(answer) } });
    }
  }

  /**
   * Release, recorded whatever happens: the checker ends the belief window at the release's invoke, so it
   * must be recorded before the call, and before the lease stops being renewed.
   */
  private async release(lease: Lease): Promise<void> {
    const req = this.nextRequest();
    const fields = { f: 'release', req, ...this.leaseFields(lease) } as const;
    this.history.record({ type: 'invoke', ...fields });
    try {
      const released = await lease.release();
      if (released) this.complete('ok', fields);
      else {
        const error = { code: 'FAILED_PRECONDITION', msg: 'the lease was no longer held when released' };
        this.complete('fail', { ...fields, error });
      }
    } catch (error) {
      this.complete('info', { ...fields, error: classify(error).error });
    } finally {
      this.held.delete(lease);
    }
  }

  /** Records a completion; after `info` the logical process is retired, so later calls are a new one. */
  private complete(type: Outcome, body: Omit<EventBody, 'type'>, t?: bigint): void {
    const f = body.f as 'acquire' | 'store_write' | 'release';
    this.counts[f][type]++;
    this.history.record({ ...body, type }, t);
    if (type === 'info') this.history.retire();
  }

  private leaseFields(lease: Lease): { resource: string; lock: string; token: string } {
    return { resource: lease.resource, lock: lease.lockId, token: String(lease.fencingToken) };
  }

  private nextRequest(): string {
    return `${this.options.name}-${++this.requests}`;
  }

  /** Sleeps `ms`, ending early on SIGTERM or when `also` aborts (a lost or released lease). */
  private async sleep(ms: number, also?: AbortSignal): Promise<void> {
    const signal = also ? AbortSignal.any([this.stop, also]) : this.stop;
    try {
      await delay(signal, ms);
    } catch (error) {
      // delay() rejects with the signal's reason: a lease's signal aborts with its LeaseLostError, not an
      // AbortError, and a lost lease ends the hold, not the worker.
      if (!isAbortError(error) && !signal.aborted) throw error;
    }
  }
}

function describe(answer: StoreAnswer): string {
  const text = typeof answer.body.message === 'string' ? answer.body.message : JSON.stringify(answer.body);
  return `store answered ${answer.status}: ${text}`;
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

async function main(): Promise<number> {
  let options: Options;
  try {
    const parsed = parseOptions(process.argv.slice(2), process.env);
    if (parsed === 'help') {
      process.stdout.write(USAGE);
      return 0;
    }
    options = parsed;
  } catch (error) {
    if (!(error instanceof OptionsError)) throw error;
    process.stderr.write(`chaos worker: ${error.message}\n`);
    return 2;
  }

  const stop = new AbortController();
  const onSignal = (signal: NodeJS.Signals): void => {
    if (stop.signal.aborted) {
      // Whatever is open stays open in the history; the checker turns it into `info`.
      process.stderr.write(`chaos worker ${options.name}: second ${signal}, exiting now\n`);
      process.exit(1);
    }
    stop.abort();
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);

  const history = new HistoryWriter(options.history, options.name);
  const client = new LockClient({
    address: options.address,
    clientId: options.name,
    ttlMs: options.ttlMs,
    transport: options.transport,
    ...(options.token !== undefined && { token: options.token }),
  });
  const worker = new ChaosWorker(options, client, history, stop.signal);
  let code = 0;
  try {
    await worker.run();
  } catch (error) {
    process.stderr.write(
      `chaos worker ${options.name}: ${error instanceof Error ? (error.stack ?? error.message) : error}\n`,
    );
    code = 1;
  } finally {
    // Every round releases its lease, so this releases nothing unless a round failed; then the lock runs out.
    await client.close();
    history.close();
  }
  say({
    event: 'done',
    worker: options.name,
    workload: options.workload,
    transport: options.transport,
    ...worker.counts,
  });
  return code;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(
      `chaos worker: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
    process.exit(1);
  },
);
