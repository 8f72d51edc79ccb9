/**
 * Small helpers every check uses: time units, quantiles, binary search, and the collector of a check's
 * findings.
 */
import type { HistoryEvent } from '../history.js';
import type { Anomaly, CheckName, CheckResult, Quantiles, Validity } from './types.js';

const MAX_ANOMALIES_PER_CHECK = 50;

export const nsOfMs = (ms: number): bigint => BigInt(Math.round(ms * 1e6));
export const msOfNs = (ns: bigint): number => Number(ns) / 1e6;
export const minBig = (a: bigint, b: bigint): bigint => (a < b ? a : b);
export const maxBig = (a: bigint, b: bigint): bigint => (a > b ? a : b);

export function parseToken(token: string | undefined): bigint | undefined {
  return token !== undefined && /^\d+$/.test(token) ? BigInt(token) : undefined;
}

export function quantiles(values: number[]): Quantiles {
  if (values.length === 0) return { count: 0 };
  const sorted = [...values].sort((a, b) => a - b);
  const at = (q: number): number =>
    round3(sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!);
  return { count: sorted.length, p50: at(0.5), p99: at(0.99), max: round3(sorted[sorted.length - 1]!) };
}

export const round3 = (x: number): number => Math.round(x * 1000) / 1000;

/** Index of the last element with key ≤ x in an ascending array (−1 when none). */
export function lastAtOrBefore<T>(items: readonly T[], key: (item: T) => bigint, x: bigint): number {
  let lo = 0;
  let hi = items.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (key(items[mid]!) <= x) lo = mid + 1;
    else hi = mid;
  }
  return lo - 1;
}

/** `map.get(key)`, first setting it to `init()` when missing. */
export function getOrInit<K, V>(map: Map<K, V>, key: K, init: () => V): V {
  let value = map.get(key);
  if (value === undefined) {
    value = init();
    map.set(key, value);
  }
  return value;
}

/** Collects a check's anomalies, keeping the first few with their evidence and counting the rest. */
export class Findings {
  readonly anomalies: Anomaly[] = [];
  count = 0;
  constructor(readonly check: CheckName) {}

  add(message: string, events: (HistoryEvent | undefined)[], detail?: Record<string, unknown>): void {
    this.count++;
    if (this.anomalies.length >= MAX_ANOMALIES_PER_CHECK) return;
    const unique = [...new Set(events.filter((e): e is HistoryEvent => e !== undefined))];
    this.anomalies.push({ check: this.check, message, events: unique, ...(detail && { detail }) });
  }

  result(valid: Validity, okSummary: string, stats?: Record<string, unknown>): CheckResult {
    const summary =
      this.count === 0
        ? okSummary
        : `${this.anomalies[0]!.message}${this.count > 1 ? ` (+${this.count - 1} more)` : ''}`;
    return { valid, summary, anomalies: this.anomalies, anomalyCount: this.count, ...(stats && { stats }) };
  }
}
