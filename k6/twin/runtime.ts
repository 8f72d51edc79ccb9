/**
 * What a k6 script gets from k6, for the twin's scenarios: virtual users (`vu`, `iter`, like `__VU` and `__ITER`)
 * started and stopped by stages as k6's ramping-VUs executor does, HTTP requests timed into `http_reqs`,
 * `http_req_duration` and `http_req_failed`, `check`, `sleep`, and console lines stamped like k6's. Every wait is
 * bounded: a run lasts its stages plus at most GRACEFUL_STOP_MS, and each request at most REQUEST_TIMEOUT_MS.
 */
import { setMaxListeners } from 'node:events';
import { setTimeout as delay } from 'node:timers/promises';
import { Metrics, type Tags } from './metrics.js';

/** k6's defaults: a ramp-down or the end lets running iterations finish for 30 s, then stops them. */
export const GRACEFUL_STOP_MS = 30_000;
/** k6's default per-request timeout. */
export const REQUEST_TIMEOUT_MS = 60_000;
/** How often the executor looks at the stages to add or retire virtual users. */
const TICK_MS = 100;

export interface Stage {
  /** `30s`, `1m30s`, `500ms`, as k6 writes durations. */
  duration: string;
  target: number;
}

/** A k6 duration (`1h2m3s`, `1.5s`, `500ms`) in ms. */
export function parseDuration(text: string): number {
  const parts = [...text.matchAll(/(\d+(?:\.\d+)?)(ms|h|m|s)/g)];
  if (parts.length === 0 || parts.map((p) => p[0]).join('') !== text) {
    throw new Error(`${JSON.stringify(text)} is not a duration (as 30s, 1m30s or 500ms)`);
  }
  const unit = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 } as const;
  return parts.reduce((ms, p) => ms + Number(p[1]) * unit[p[2] as keyof typeof unit], 0);
}

/** A response, with what the scenarios read of it. */
export interface Response {
  status: number;
  /** Milliseconds from sending to the end of the body. */
  duration: number;
  /** A header by name, in any case. */
  header(name: string): string | undefined;
  /** The JSON body, or undefined when it is not JSON. */
  json(): Record<string, unknown> | undefined;
}

/** One virtual user: its number (from 1), its iteration (from 0), and state kept between iterations. */
export interface VirtualUser {
  readonly vu: number;
  iter: number;
  readonly state: Record<string, unknown>;
}

export class Runtime {
  readonly metrics = new Metrics();
  readonly #started = performance.now();
  readonly #abort = new AbortController();
  readonly #expected: ReadonlySet<number>;
  readonly #checks = new Map<string, { passes: number; fails: number }>();
  readonly #failures = new Set<string>();

  constructor(
    /** HTTP statuses that do not count as failed requests (k6's http.expectedStatuses). */
    expectedStatuses: readonly number[],
    private readonly log: (line: string) => void,
  ) {
    this.#expected = new Set(expectedStatuses);
    setMaxListeners(0, this.#abort.signal); // every request and sleep of every VU listens to it
    // Declared up front, as k6's built-in metrics are, so a threshold on them always finds them.
    this.metrics.get('checks', 'rate');
    this.metrics.get('http_reqs', 'counter');
    this.metrics.get('http_req_duration', 'trend', true);
    this.metrics.get('http_req_failed', 'rate');
    this.metrics.get('iterations', 'counter');
  }

  get elapsedMs(): number {
    return performance.now() - this.#started;
  }

  /** Checks by name, in the order first seen: passes and fails. */
  get checks(): ReadonlyMap<string, { passes: number; fails: number }> {
    return this.#checks;
  }

  /** POST `body` as JSON; `tags` go on the request's samples (k6's `tags: { name: … }`). */
  async post(url: string, body: unknown, tags: Tags): Promise<Response> {
    const started = performance.now();
    let status = 0;
    let text = '';
    let headers = new Headers();
    try {
      const res = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
        signal: AbortSignal.any([this.#abort.signal, AbortSignal.timeout(REQUEST_TIMEOUT_MS)]),
      });
      status = res.status;
      headers = res.headers;
      text = await res.text();
    } catch (error) {
      // k6 reports a request that got no answer as status 0, with the error in its log (here once per kind).
      const message = `request to ${url} failed: ${(error as Error).message}`;
      if (!this.#abort.signal.aborted && !this.#failures.has(message)) {
        this.#failures.add(message);
        this.log(
          `WARN[${this.#stamp()}] ${message} (logged once; every failed request counts in http_req_failed)`,
        );
      }
    }
    const duration = performance.now() - started;
    const all = { method: 'POST', status: String(status), ...tags };
    this.metrics.get('http_reqs', 'counter').add(1, all);
    this.metrics.get('http_req_duration', 'trend', true).add(duration, all);
    this.metrics.get('http_req_failed', 'rate').add(!this.#expected.has(status), all);
    return {
      status,
      duration,
      header: (name) => headers.get(name) ?? undefined,
      json: () => {
        try {
          const value: unknown = JSON.parse(text);
          return typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : undefined;
        } catch {
          return undefined;
        }
      },
    };
  }

  /** k6's check(): each named condition is one sample of `checks`; returns whether all held. */
  check(conditions: Readonly<Record<string, boolean>>): boolean {
    let all = true;
    for (const [name, ok] of Object.entries(conditions)) {
      this.metrics.get('checks', 'rate').add(ok, { check: name });
      const counts = this.#checks.get(name) ?? { passes: 0, fails: 0 };
      counts[ok ? 'passes' : 'fails']++;
      this.#checks.set(name, counts);
      all &&= ok;
    }
    return all;
  }

  /** k6's sleep(), in ms; cut short when the run stops its virtual users. */
  async sleep(ms: number): Promise<void> {
    await delay(ms, undefined, { signal: this.#abort.signal }).catch(() => undefined);
  }

  /** A console line as k6 prints one: `INFO[0012] message  source=console`. */
  console(message: string): void {
    this.log(`INFO[${this.#stamp()}] ${message}  source=console`);
  }

  /** Seconds since the start, as k6 stamps its log lines. */
  #stamp(): string {
    return String(Math.floor(this.elapsedMs / 1000)).padStart(4, '0');
  }

  /**
   * Runs `iteration` on virtual users as k6's ramping-VUs executor does with these stages: starting from one VU,
   * the number of VUs follows each stage's target linearly; a VU beyond the target finishes its iteration and
   * stops; after the last stage, iterations still running get GRACEFUL_STOP_MS, then their requests and sleeps
   * are cut short. `shouldStop` ends the run early (Ctrl-C).
   */
  async run(
    stages: readonly Stage[],
    iteration: (vu: VirtualUser) => Promise<void>,
    shouldStop: () => boolean,
  ): Promise<void> {
    const ends: number[] = [];
    let at = 0;
    for (const stage of stages) {
      at += parseDuration(stage.duration);
      ends.push(at);
    }
    const total = at;
    const targetAt = (t: number): number => {
      let from = 1;
      let start = 0;
      for (const [i, stage] of stages.entries()) {
        const end = ends[i]!;
        if (t < end) return Math.round(from + ((stage.target - from) * (t - start)) / (end - start));
        [from, start] = [stage.target, end];
      }
      return 0;
    };

    const running = new Map<number, { wanted: boolean; done: Promise<void> }>();
    const start = (n: number): void => {
      const vu: VirtualUser = { vu: n, iter: 0, state: {} };
      const entry = { wanted: true, done: Promise.resolve() };
      entry.done = (async () => {
        while (entry.wanted && !this.#abort.signal.aborted) {
          await iteration(vu);
          this.metrics.get('iterations', 'counter').add(1);
          vu.iter++;
        }
      })();
      running.set(n, entry);
    };

    while (this.elapsedMs < total && !shouldStop()) {
      const target = targetAt(this.elapsedMs);
      for (let n = 1; n <= target; n++) if (!running.get(n)?.wanted) start(n);
      for (const [n, entry] of running) if (n > target) entry.wanted = false;
      await delay(TICK_MS);
    }
    for (const entry of running.values()) entry.wanted = false;
    const finished = Promise.all([...running.values()].map((e) => e.done));
    const grace = delay(GRACEFUL_STOP_MS, undefined, { ref: false });
    await Promise.race([finished, grace]);
    this.#abort.abort();
    await finished;
  }
}
