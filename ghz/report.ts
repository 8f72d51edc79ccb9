// ghz's reporter (runner/reporter.go): tallies each call's result as it ends, then computes the report ghz
// prints: count, total, average (over every call), fastest / slowest, histogram and latency percentiles (over
// the OK calls only, unless --count-errors), rates, and the status code and error distributions. The field
// names and units are those of ghz's JSON report: durations in nanoseconds, histogram marks in seconds.
import type { RunOptions } from './options.js';
import { formatRfc3339 } from './rfc3339.js';

/** ghz keeps the details of at most this many calls (its maxResult). */
const MAX_DETAILS = 1_000_000;

/** One finished call. */
export interface CallResult {
  latencyNs: number;
  /** grpc-go's code name: "OK", "Aborted"… */
  status: string;
  /** '' for OK, else the status error text. */
  error: string;
  timestamp: Date;
}

/** Why the run ended: all requests made, Ctrl-C, or the -z/-x duration ran out. */
export type EndReason = 'normal' | 'cancel' | 'timeout';

export interface LatencyDistribution {
  percentage: number;
  latency: number;
}

export interface Bucket {
  /** Upper bound of the bucket, in seconds. */
  mark: number;
  count: number;
  /** count / number of latencies counted. */
  frequency: number;
}

export interface ResultDetail {
  timestamp: string;
  latency: number;
  error: string;
  status: string;
}

/** ghz's Report, field for field (the JSON output), times in nanoseconds. */
export interface Report {
  date: string;
  name?: string;
  endReason: EndReason;
  options: Record<string, unknown>;
  count: number;
  total: number;
  average: number;
  fastest: number;
  slowest: number;
  rps: number;
  errorDistribution: Record<string, number>;
  statusCodeDistribution: Record<string, number>;
  latencyDistribution: LatencyDistribution[] | null;
  histogram: Bucket[] | null;
  details: ResultDetail[] | null;
  tags?: Record<string, string>;
}

/** Go's Duration.Seconds(): whole seconds plus the remaining nanoseconds, as float64. */
const seconds = (ns: number) => Math.trunc(ns / 1e9) + (ns % 1e9) / 1e9;
/** Go's time.Duration(float64 seconds * 1e9): truncated toward zero. */
const nanos = (s: number) => Math.trunc(s * 1e9);

export class Reporter {
  readonly #options: RunOptions;
  #skipped = 0;
  #count = 0;
  #totalLatencySeconds = 0;
  readonly #details: CallResult[] = [];
  readonly #statusCodes = new Map<string, number>();
  readonly #errors = new Map<string, number>();

  constructor(options: RunOptions) {
    this.#options = options;
  }

  /** Tallies one call (the first --skipFirst calls to end are left out). */
  add(result: CallResult): void {
    if (this.#skipped < this.#options.skipFirst) {
      this.#skipped++;
      return;
    }
    this.#count++;
    this.#totalLatencySeconds += seconds(result.latencyNs);
    this.#statusCodes.set(result.status, (this.#statusCodes.get(result.status) ?? 0) + 1);
    if (result.error !== '') this.#errors.set(result.error, (this.#errors.get(result.error) ?? 0) + 1);
    if (this.#details.length < MAX_DETAILS) this.#details.push(result);
  }

  /** The report of the run, which took `totalNs` and ended for `endReason`. */
  finalize(endReason: EndReason, totalNs: number): Report {
    const report: Report = {
      date: formatRfc3339(new Date()),
      ...(this.#options.name && { name: this.#options.name }),
      endReason,
      options: reportOptions(this.#options),
      count: this.#count,
      total: totalNs,
      average: 0,
      fastest: 0,
      slowest: 0,
      rps: 0,
      errorDistribution: sorted(this.#errors),
      statusCodeDistribution: sorted(this.#statusCodes),
      latencyDistribution: null,
      histogram: null,
      details: null,
      ...(this.#options.tags && { tags: this.#options.tags }),
    };
    if (this.#details.length === 0) return report;
    report.average = nanos(this.#totalLatencySeconds / this.#count);
    report.rps = this.#count / seconds(totalNs);
    const latencies = this.#details
      .filter((d) => d.error === '' || this.#options.countErrors)
      .map((d) => seconds(d.latencyNs))
      .sort((a, b) => a - b);
    if (latencies.length > 0) {
      const fastest = latencies[0]!;
      const slowest = latencies.at(-1)!;
      report.fastest = nanos(fastest);
      report.slowest = nanos(slowest);
      report.histogram = histogram(latencies, slowest, fastest);
      report.latencyDistribution = percentiles(latencies);
    }
    report.details = this.#details.map((d) => ({
      timestamp: formatRfc3339(d.timestamp, true),
      latency: d.latencyNs,
      error: d.error,
      status: d.status,
    }));
    return report;
  }
}

/** A map as Go's encoding/json writes it: keys sorted. */
function sorted(map: Map<string, number>): Record<string, number> {
  return Object.fromEntries([...map].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/** ghz's latencies(): the 10/25/50/75/90/95/99th percentile of sorted `latencies` (nearest rank). */
function percentiles(latencies: number[]): LatencyDistribution[] {
  return [10, 25, 50, 75, 90, 95, 99].map((percentage) => {
    const rank = (percentage / 100) * latencies.length;
    let index = Math.trunc(rank);
    if (rank === index) index--; // a whole rank lands on the percentile itself
    const latency = latencies[Math.max(index, 0)]!;
    return latency > 0 ? { percentage, latency: nanos(latency) } : { percentage: 0, latency: 0 };
  });
}

/** ghz's histogram(): 10 equal buckets from fastest to slowest plus one at slowest, counts per bucket. */
function histogram(latencies: number[], slowest: number, fastest: number): Bucket[] {
  const bucketCount = 10;
  const size = (slowest - fastest) / bucketCount;
  const marks = Array.from({ length: bucketCount + 1 }, (_, i) =>
    i < bucketCount ? fastest + size * i : slowest,
  );
  const counts = marks.map(() => 0);
  let bucket = 0;
  for (let i = 0; i < latencies.length; ) {
    if (latencies[i]! <= marks[bucket]!) {
      i++;
      counts[bucket]!++;
    } else if (bucket < marks.length - 1) {
      bucket++;
    } else {
      break; // cannot happen: the last mark is the slowest latency
    }
  }
  return marks.map((mark, i) => ({ mark, count: counts[i]!, frequency: counts[i]! / latencies.length }));
}

/** The `options` object of ghz's report (runner.Options), same keys, same order, zero values left out. */
function reportOptions(o: RunOptions): Record<string, unknown> {
  const parsed = (text: string): unknown => {
    try {
      return JSON.parse(text);
    } catch {
      return undefined;
    }
  };
  const data = parsed(o.dataText);
  const metadata = parsed(o.metadataText);
  return {
    call: o.call,
    host: o.host,
    ...(o.proto && { proto: o.proto }),
    ...(o.protoset && { protoset: o.protoset }),
    ...(o.importPaths.length > 0 && { 'import-paths': o.importPaths }),
    ...(o.enableCompression && { 'enable-compression': true }),
    ...(o.cacert && { cacert: o.cacert }),
    ...(o.cert && { cert: o.cert }),
    ...(o.key && { key: o.key }),
    ...(o.cname && { cname: o.cname }),
    ...(o.skipTLS && { skipTLS: true }),
    insecure: o.insecure,
    ...(o.authority && { authority: o.authority }),
    ...(o.rps > 0 && { rps: o.rps }),
    'load-schedule': 'const',
    'load-start': 0,
    'load-end': 0,
    'load-step': 0,
    'load-step-duration': 0,
    'load-max-duration': 0,
    concurrency: o.concurrency,
    'concurrency-schedule': 'const',
    'concurrency-start': 0,
    'concurrency-end': 0,
    'concurrency-step': 0,
    'concurrency-step-duration': 0,
    'concurrency-max-duration': 0,
    total: o.total,
    connections: o.connections,
    ...(o.durationNs > 0 && { duration: o.durationNs }),
    ...(o.timeoutNs > 0 && { timeout: o.timeoutNs }),
    ...(o.connectTimeoutNs > 0 && { 'dial-timeout': o.connectTimeoutNs }),
    ...(o.keepaliveNs > 0 && { keepalive: o.keepaliveNs }),
    ...(data !== undefined && data !== null && { data }),
    binary: false,
    ...(metadata !== undefined && metadata !== null && { metadata }),
    CPUs: o.cpus,
    ...(o.name && { name: o.name }),
    ...(o.skipFirst > 0 && { skipFirst: o.skipFirst }),
  };
}
