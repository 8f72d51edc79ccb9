/**
 * The twin's metrics, as k6 keeps them: counters, rates and trends of samples with tags, thresholds written in
 * k6's syntax (`p(95)<500`, `rate>0.99`, `count<1`, on a metric or a tagged submetric such as
 * `http_req_duration{name:release}`), and an end-of-test summary in the spirit of k6's.
 */

export type Tags = Readonly<Record<string, string>>;
export type Kind = 'counter' | 'rate' | 'trend';

interface Sample {
  value: number;
  tags: Tags;
}

/** One metric: its kind and every sample added to it. A run is bounded in time, so samples are few enough to keep. */
export class Metric {
  readonly samples: Sample[] = [];

  constructor(
    readonly name: string,
    readonly kind: Kind,
    /** A trend of durations, shown in ms/s rather than as bare numbers. */
    readonly isTime = false,
  ) {}

  add(value: number | boolean, tags: Tags = {}): void {
    this.samples.push({ value: Number(value), tags });
  }

  /** The samples whose tags include every one of `filter`. */
  select(filter: Tags): number[] {
    const wanted = Object.entries(filter);
    return this.samples.filter((s) => wanted.every(([k, v]) => s.tags[k] === v)).map((s) => s.value);
  }
}

export class Metrics {
  readonly byName = new Map<string, Metric>();

  get(name: string, kind: Kind, isTime = false): Metric {
    let metric = this.byName.get(name);
    if (!metric) {
      metric = new Metric(name, kind, isTime);
      this.byName.set(name, metric);
    }
    if (metric.kind !== kind) throw new Error(`metric ${name} is a ${metric.kind}, not a ${kind}`);
    return metric;
  }
}

/** What an aggregation of a metric's samples gives, for thresholds and the summary. */
export function aggregate(kind: Kind, values: readonly number[], seconds: number): Record<string, number> {
  if (kind === 'counter') {
    const count = values.reduce((a, b) => a + b, 0);
    return { count, rate: seconds > 0 ? count / seconds : 0 };
  }
  if (kind === 'rate') {
    const passes = values.filter((v) => v !== 0).length;
    return { rate: values.length > 0 ? passes / values.length : 0, passes, fails: values.length - passes };
  }
  const sorted = [...values].sort((a, b) => a - b);
  const out: Record<string, number> = {
    avg: sorted.length > 0 ? sorted.reduce((a, b) => a + b, 0) / sorted.length : Number.NaN,
    min: sorted[0] ?? Number.NaN,
    med: percentile(sorted, 50),
    max: sorted.at(-1) ?? Number.NaN,
    count: sorted.length,
  };
  for (const p of [90, 95, 99]) out[`p(${p})`] = percentile(sorted, p);
  return out;
}

/** k6's percentile: linear interpolation between the closest ranks. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = (p / 100) * (sorted.length - 1);
  const low = Math.floor(rank);
  const high = Math.ceil(rank);
  return sorted[low]! + (sorted[high]! - sorted[low]!) * (rank - low);
}

export interface ThresholdResult {
  /** As written: `http_req_duration{name:release}`. */
  key: string;
  expression: string;
  /** The aggregated value the expression was judged on, e.g. `p(95)=12.30ms`. */
  shown: string;
  ok: boolean;
}

const EXPRESSION =
  /^\s*(avg|min|max|med|count|rate|p\((\d+(?:\.\d+)?)\))\s*(<=|>=|==|===|!=|<|>)\s*(-?\d+(?:\.\d+)?)\s*$/;

/** Parses `name{tag:value,…}` into the metric name and the tag filter. */
export function parseThresholdKey(key: string): { name: string; filter: Tags } {
  const match = /^([A-Za-z_][A-Za-z0-9_]*)(?:\{([^}]*)\})?$/.exec(key);
  if (!match) throw new Error(`threshold ${JSON.stringify(key)}: not a metric name, or name{tag:value}`);
  const filter: Record<string, string> = {};
  for (const pair of (match[2] ?? '').split(',').filter((p) => p.trim() !== '')) {
    const colon = pair.indexOf(':');
    if (colon < 0) throw new Error(`threshold ${JSON.stringify(key)}: write its tags as {tag:value}`);
    filter[pair.slice(0, colon).trim()] = pair.slice(colon + 1).trim();
  }
  return { name: match[1]!, filter };
}

/** Judges every threshold; throws for one that names no metric of the run or cannot be read. */
export function evaluateThresholds(
  thresholds: Readonly<Record<string, readonly string[]>>,
  metrics: Metrics,
  seconds: number,
): ThresholdResult[] {
  const results: ThresholdResult[] = [];
  for (const [key, expressions] of Object.entries(thresholds)) {
    const { name, filter } = parseThresholdKey(key);
    const metric = metrics.byName.get(name);
    if (!metric) throw new Error(`threshold on ${name}: the script defines no such metric`);
    const values = aggregate(metric.kind, metric.select(filter), seconds);
    for (const expression of expressions) {
      const match = EXPRESSION.exec(expression);
      if (!match) throw new Error(`threshold ${key}: cannot read ${JSON.stringify(expression)}`);
      const aggregation = match[2] ? `p(${match[2]})` : match[1]!;
      if (match[2] && !(aggregation in values))
        values[aggregation] = percentile(
          [...metric.select(filter)].sort((a, b) => a - b),
          Number(match[2]),
        );
      const value = values[aggregation];
      if (value === undefined) throw new Error(`threshold ${key}: a ${metric.kind} has no ${aggregation}`);
      const limit = Number(match[4]);
      const ok = compare(value, match[3]!, limit);
      results.push({ key, expression, shown: `${aggregation}=${format(metric, aggregation, value)}`, ok });
    }
  }
  return results;
}

function compare(value: number, op: string, limit: number): boolean {
  switch (op) {
    case '<':
      return value < limit;
    case '<=':
      return value <= limit;
    case '>':
      return value > limit;
    case '>=':
      return value >= limit;
    case '!=':
      return value !== limit;
    default:
      return value === limit;
  }
}

/** A value as the summary shows it: rates as percentages, times with their unit, counts as integers. */
export function format(metric: Metric, aggregation: string, value: number): string {
  if (Number.isNaN(value)) return '-';
  if (aggregation === 'rate' && metric.kind === 'rate') return `${(value * 100).toFixed(2)}%`;
  if (aggregation === 'rate') return `${value.toFixed(2)}/s`;
  if (aggregation === 'count' || aggregation === 'passes' || aggregation === 'fails') return String(value);
  if (!metric.isTime) return value.toFixed(2);
  return value >= 1_000 ? `${(value / 1000).toFixed(2)}s` : `${value.toFixed(2)}ms`;
}
