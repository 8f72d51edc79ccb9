/** The report's figures (op counts, latencies, the fault timeline) and its short human text. */
import type { HistoryEvent } from '../history.js';
import { type Model, meets } from './model.js';
import { msOfNs, quantiles, round3 } from './support.js';
import {
  CHECK_NAMES,
  CHECK_TITLES,
  type CheckResult,
  type Quantiles,
  type Report,
  type ReportStats,
  type Validity,
} from './types.js';

const FAULT_TIMELINE_MAX = 500;

export function reportStats(
  m: Model,
  meta: { truncated?: number; seed?: number },
  s1: CheckResult,
): ReportStats {
  const ops: Record<string, number> = {};
  const count = (e: HistoryEvent): void => {
    const k = `${e.f}:${e.type}${e.error?.code ? `:${e.error.code}` : ''}`;
    ops[k] = (ops[k] ?? 0) + 1;
  };
  for (const op of m.ops) count(op.done);
  for (const e of m.events) {
    if (e.type === 'invoke' || e.f === 'nemesis' || e.f === 'voting' || m.completionOf.has(e)) continue;
    count(e);
  }
  const all: number[] = [];
  const during: number[] = [];
  const outside: number[] = [];
  for (const op of m.ops) {
    if (op.f !== 'acquire' || op.type !== 'ok') continue;
    const ms = msOfNs(op.doneT - op.inv);
    all.push(ms);
    (meets(m.disturbed, op.inv, op.doneT) ? during : outside).push(ms);
  }
  const faultTimeline: ReportStats['faultTimeline'] = [];
  for (const e of m.events) {
    if (faultTimeline.length >= FAULT_TIMELINE_MAX) break;
    const s = round3(Number(m.time(e) - m.t0) / 1e9);
    if (e.f === 'nemesis' && e.nemesis) {
      faultTimeline.push({ s, fault: e.nemesis.fault, target: e.nemesis.target, phase: e.nemesis.phase });
    } else if (e.f === 'voting')
      faultTimeline.push({ s, fault: 'voting', target: [], phase: 'set', voting: e.voting });
  }
  return {
    events: m.events.length,
    writers: [...new Set(m.events.map((e) => e.writer))].sort(),
    durationMs: round3(msOfNs(m.tEnd - m.t0)),
    ...(meta.seed !== undefined && { seed: meta.seed }),
    truncated: meta.truncated ?? 0,
    ops: Object.fromEntries(Object.entries(ops).sort(([a], [b]) => (a < b ? -1 : 1))),
    latencyMs: {
      acquireOk: quantiles(all),
      duringFaults: quantiles(during),
      outsideFaults: quantiles(outside),
    },
    faults: m.nemesis.filter((e) => e.nemesis?.phase === 'start').length,
    acquisitions: m.grants.length,
    windows: Number(s1.stats?.windows ?? 0),
    faultTimeline,
  };
}

const label = (v: Validity): string => (v === true ? 'valid' : v === false ? 'INVALID' : 'UNKNOWN');

const q = (x: Quantiles): string =>
  x.count === 0 ? 'none' : `p50 ${x.p50} ms, p99 ${x.p99} ms, max ${x.max} ms (${x.count})`;

/** Short human text: a headline, one line per check, then the main figures. */
export function formatReport(report: Report): string {
  const s = report.stats;
  const lines = [
    `history check: ${label(report.valid)} (${s.events} events from ${s.writers.length} writers over ${(s.durationMs / 1000).toFixed(1)} s${s.seed === undefined ? '' : `, seed ${s.seed}`})`,
  ];
  for (const name of CHECK_NAMES) {
    const c = report.checks[name];
    const note =
      c.notCounted === 'expected'
        ? ' [expected in this assumption-breaking run: not counted]'
        : c.notCounted === 'ignored'
          ? ' [ignored: not counted]'
          : '';
    lines.push(
      c.valid === true
        ? `${CHECK_TITLES[name]}: valid (${c.summary})${note}`
        : `${CHECK_TITLES[name]}: ${label(c.valid)}${note}: ${c.summary}`,
    );
  }
  lines.push(
    `acquire ok latency: ${q(s.latencyMs.acquireOk)}; during faults ${q(s.latencyMs.duringFaults)}; outside ${q(s.latencyMs.outsideFaults)}`,
  );
  lines.push(`${s.acquisitions} acquisitions, ${s.windows} belief windows, ${s.faults} faults`);
  lines.push(
    `ops: ${Object.entries(s.ops)
      .map(([k, n]) => `${k} ${n}`)
      .join(', ')}`,
  );
  return lines.join('\n');
}
