/**
 * What every check reads: operations paired from invocations and completions, grants with their belief windows,
 * and the quorum and fault timelines, derived once from the merged history.
 */
import type { HistoryEvent } from '../history.js';
import { type Findings, getOrInit, lastAtOrBefore, maxBig, nsOfMs, parseToken } from './support.js';

/** Nemesis targets on the Redis side (nodes and their proxies); any other target (C, PC, workers) is not. */
const REDIS_SIDE = /^[RP]\d+$/;

/** Sorted disjoint intervals [start, end) (end undefined: until the end of the history). */
export interface Interval {
  start: bigint;
  end: bigint | undefined;
  event: HistoryEvent;
}

/** Does any interval of the sorted disjoint list meet [a, b]? */
export function meets(intervals: readonly Interval[], a: bigint, b: bigint): Interval | undefined {
  const i = lastAtOrBefore(intervals, (x) => x.start, b);
  if (i < 0) return undefined;
  const iv = intervals[i]!;
  return iv.end === undefined || iv.end > a ? iv : undefined;
}

/** The interval containing the whole of [a, b], if any. */
export function contains(intervals: readonly Interval[], a: bigint, b: bigint): Interval | undefined {
  const i = lastAtOrBefore(intervals, (x) => x.start, a);
  if (i < 0) return undefined;
  const iv = intervals[i]!;
  return iv.end === undefined || iv.end > b ? iv : undefined;
}

// ---- derived objects ------------------------------------------------------------------------------------------

/** An invocation and its completion (the real one, or `info` made up for a process that ended). */
export interface Op {
  f: string;
  proc: string;
  writer: string;
  invoke: HistoryEvent;
  done: HistoryEvent;
  inv: bigint;
  doneT: bigint;
  type: 'ok' | 'fail' | 'info';
  synthesized: boolean;
}

export type EndReason = 'deadline' | 'release' | 'lost' | 'crash' | 'retired';

/** One OK acquire with its belief window [ok, E): from the answer to the end of the holder's belief. */
export interface Grant {
  resource: string;
  lock: string;
  token: bigint | undefined;
  proc: string;
  writer: string;
  op: Op;
  inv: bigint;
  ok: bigint;
  /** The largest ttl asked for (the acquire's or an OK extend's); undefined: the server's default. */
  ttlMs: number | undefined;
  D: bigint;
  dEvent: HistoryEvent;
  release?: { t: bigint; event: HistoryEvent };
  lost?: { t: bigint; event: HistoryEvent };
  crash?: { t: bigint; event: HistoryEvent };
  retired?: { t: bigint; event: HistoryEvent };
  /** End of belief for S1/S3: min(D, release invoke, lost, crash, the owning process's `info`). */
  E: bigint;
  endReason: EndReason;
  endEvent: HistoryEvent;
  /**
   * The end the client itself knows of: as E but without the logical-process retirement, which is the
   * history's bookkeeping (the SDK keeps the lease). Client honesty and L1 use it.
   */
  Ec: bigint;
  ecReason: EndReason;
  ecEvent: HistoryEvent;
}

/** Everything the checks share. */
export interface Model {
  events: HistoryEvent[];
  time: (e: HistoryEvent) => bigint;
  t0: bigint;
  tEnd: bigint;
  rel: (t: bigint) => string;
  ops: Op[];
  completionOf: Map<HistoryEvent, Op>;
  grants: Grant[];
  grantsByResource: Map<string, Grant[]>;
  grantsByLock: Map<string, Grant[]>;
  acquiresByResource: Map<string, Op[]>;
  /** Quorum-lost intervals (fewer than `quorum` voting). */
  lost: Interval[];
  /** Any nemesis fault active (start … stop), or a quorum lost. */
  disturbed: Interval[];
  /** Faults on targets other than Redis nodes and their proxies (coordinator, client proxy, workers). */
  otherFaults: Interval[];
  nemesis: HistoryEvent[];
  voting: HistoryEvent[];
  maxTtlMs: number;
  drift: (ttlMs: number) => number;
}

/** Short, printable lock id (ids are 32 hex chars; 8 are plenty to tell two apart in a report). */
export const shortLock = (lock: string): string => (lock.length > 8 ? lock.slice(0, 8) : lock);

export function describeGrant(m: Model, g: Grant): string {
  const token = g.token === undefined ? '?' : g.token.toString();
  return `${g.proc} lock ${shortLock(g.lock)} token ${token} [ok ${m.rel(g.ok)} → end ${m.rel(g.E)} (${g.endReason})]`;
}

export function grantEvidence(g: Grant): HistoryEvent[] {
  return [g.op.invoke, g.op.done, g.endEvent];
}

// ---- pairing, windows, timelines ---------------------------------------------------------------------------

export function buildModel(
  events: HistoryEvent[],
  time: (e: HistoryEvent) => bigint,
  t0: bigint,
  tEnd: bigint,
  rel: (t: bigint) => string,
  quorum: number,
  votingLag: bigint,
  drift: (ttlMs: number) => number,
  history: Findings,
): Model {
  const writers = new Set(events.map((e) => e.writer));
  const lastOfWriter = new Map<string, bigint>();
  for (const e of events) lastOfWriter.set(e.writer, time(e));

  // Kills of worker processes: a `kill` nemesis start naming a writer ends that writer's windows.
  const kills = new Map<string, HistoryEvent[]>();
  const nemesis: HistoryEvent[] = [];
  const voting: HistoryEvent[] = [];
  for (const e of events) {
    if (e.f === 'nemesis' && e.nemesis) {
      nemesis.push(e);
      if (e.nemesis.fault === 'kill' && e.nemesis.phase === 'start') {
        for (const target of e.nemesis.target ?? []) {
          if (!writers.has(target)) continue;
          const list = getOrInit(kills, target, () => []);
          list.push(e);
        }
      }
    } else if (e.f === 'voting' && typeof e.voting === 'number') voting.push(e);
  }
  const killAtOrAfter = (writer: string, t: bigint): HistoryEvent | undefined => {
    const list = kills.get(writer);
    if (!list) return undefined;
    const i = lastAtOrBefore(list, time, t - 1n) + 1;
    return list[i];
  };

  // Pairing: a completion has the invoke's req and proc. After an `info` completion the process is
  // retired (Jepsen): nothing may come from it again.
  const open = new Map<string, HistoryEvent>();
  const retiredAt = new Map<string, { t: bigint; event: HistoryEvent }>();
  const completionOf = new Map<HistoryEvent, Op>();
  const ops: Op[] = [];
  const pairKey = (e: HistoryEvent): string => `${e.proc}\u0000${e.req}`;
  for (const e of events) {
    const retired = retiredAt.get(e.proc);
    if (retired && e.f !== 'nemesis' && e.f !== 'voting') {
      history.add(`${e.proc} recorded ${e.f} ${e.type} at ${rel(time(e))} after it was retired by an info`, [
        retired.event,
        e,
      ]);
    }
    if (e.type === 'invoke') {
      if (e.req === undefined) {
        history.add(`${e.proc} invoked ${e.f} without a req: it cannot be paired`, [e]);
        continue;
      }
      const key = pairKey(e);
      const already = open.get(key);
      if (already) history.add(`${e.proc} invoked req ${e.req} twice`, [already, e]);
      open.set(key, e);
      continue;
    }
    if (e.req === undefined) continue; // one-off event
    const invoke = open.get(pairKey(e));
    if (!invoke) {
      // Store and final-read events may carry a req of their own without an invoke; a lock operation may not.
      if (e.f === 'acquire' || e.f === 'extend' || e.f === 'release') {
        history.add(`${e.proc} completed ${e.f} req ${e.req} (${e.type}) with no open invoke`, [e]);
      }
      continue;
    }
    open.delete(pairKey(e));
    const op: Op = {
      f: invoke.f,
      proc: invoke.proc,
      writer: invoke.writer,
      invoke,
      done: e,
      inv: time(invoke),
      doneT: time(e),
      type: e.type as Op['type'],
      synthesized: false,
    };
    ops.push(op);
    completionOf.set(e, op);
    if (e.type === 'info' && !retiredAt.has(e.proc)) retiredAt.set(e.proc, { t: time(e), event: e });
  }
  // Open invocations of a process that ended: `info` at its kill, or else at its writer's last event.
  for (const invoke of open.values()) {
    const inv = time(invoke);
    const kill = killAtOrAfter(invoke.writer, inv);
    const t = kill ? time(kill) : (lastOfWriter.get(invoke.writer) ?? inv);
    const done: HistoryEvent = {
      ...invoke,
      t: t.toString(),
      type: 'info',
      error: {
        code: 'CRASHED',
        msg: kill
          ? `no completion: its writer was killed at ${rel(t)} (made up by the checker)`
          : `no completion: its writer's last event is at ${rel(t)} (made up by the checker)`,
      },
    };
    const op: Op = {
      f: invoke.f,
      proc: invoke.proc,
      writer: invoke.writer,
      invoke,
      done,
      inv,
      doneT: t,
      type: 'info',
      synthesized: true,
    };
    ops.push(op);
    const retired = retiredAt.get(invoke.proc);
    if (!retired || retired.t > t) retiredAt.set(invoke.proc, { t, event: done });
  }
  ops.sort((a, b) => (a.inv < b.inv ? -1 : a.inv > b.inv ? 1 : 0));

  // Grants and what moves their ends, in time order (the current ttl of a lease changes with OK extends).
  const grants: Grant[] = [];
  const grantsByLock = new Map<string, Grant[]>();
  const grantsByResource = new Map<string, Grant[]>();
  const acquiresByResource = new Map<string, Op[]>();
  const grantsOf = (lock: string | undefined, t: bigint): Grant[] =>
    lock === undefined ? [] : (grantsByLock.get(lock) ?? []).filter((g) => g.inv <= t);
  let maxTtlMs = 0;
  for (const op of ops) {
    if (op.f !== 'acquire') continue;
    const ttl = op.invoke.ttl_ms;
    if (typeof ttl === 'number' && ttl > maxTtlMs) maxTtlMs = ttl;
    const r = op.invoke.resource ?? '';
    const list = getOrInit(acquiresByResource, r, () => []);
    list.push(op);
  }
  for (const e of events) {
    if (e.type === 'ok' && e.f === 'acquire') {
      const op = completionOf.get(e);
      if (!op) continue;
      const lock = e.lock ?? op.invoke.lock;
      const resource = e.resource ?? op.invoke.resource ?? '';
      const validity = e.validity_ms ?? 0;
      // ttl 0 asks for the server's default: unknown here, so the ttl-relative bounds are skipped.
      const ttl = op.invoke.ttl_ms !== undefined && op.invoke.ttl_ms > 0 ? op.invoke.ttl_ms : undefined;
      if (ttl === undefined && validity > maxTtlMs) maxTtlMs = Math.ceil(validity);
      const D = op.inv + nsOfMs(validity);
      const g: Grant = {
        resource,
        lock: lock ?? `(no lock id: ${e.proc} ${e.req})`,
        token: parseToken(e.token),
        proc: op.proc,
        writer: op.writer,
        op,
        inv: op.inv,
        ok: op.doneT,
        ttlMs: ttl,
        D,
        dEvent: e,
        E: D,
        endReason: 'deadline',
        endEvent: e,
        Ec: D,
        ecReason: 'deadline',
        ecEvent: e,
      };
      grants.push(g);
      const byLock = getOrInit(grantsByLock, g.lock, () => []);
      byLock.push(g);
      const byResource = getOrInit(grantsByResource, resource, () => []);
      byResource.push(g);
    } else if (e.type === 'ok' && e.f === 'extend') {
      const op = completionOf.get(e);
      if (!op || typeof e.validity_ms !== 'number') continue;
      const D = op.inv + nsOfMs(e.validity_ms);
      const ttl = op.invoke.ttl_ms;
      for (const g of grantsOf(e.lock ?? op.invoke.lock, op.inv)) {
        if (D > g.D) {
          g.D = D;
          g.dEvent = e;
        }
        if (typeof ttl === 'number' && ttl > 0 && g.ttlMs !== undefined) g.ttlMs = Math.max(g.ttlMs, ttl);
      }
    } else if ((e.f === 'keepalive' || e.f === 'renewed') && e.type !== 'invoke' && e.type !== 'fail') {
      if (typeof e.validity_ms !== 'number' || e.req !== undefined) continue;
      const D = time(e) + nsOfMs(e.validity_ms);
      for (const g of grantsOf(e.lock, time(e))) {
        if (D > g.D) {
          g.D = D;
          g.dEvent = e;
        }
      }
    } else if (e.type === 'invoke' && e.f === 'release') {
      // The release's invoke ends the window whatever its completion (Jepsen's etcd rule).
      for (const g of grantsOf(e.lock, time(e))) {
        if (!g.release) g.release = { t: time(e), event: e };
      }
    } else if (e.f === 'lost' && e.type !== 'invoke') {
      for (const g of grantsOf(e.lock, time(e))) {
        if (!g.lost) g.lost = { t: time(e), event: e };
      }
    }
  }
  for (const g of grants) {
    const kill = killAtOrAfter(g.writer, g.inv);
    if (kill) g.crash = { t: time(kill), event: kill };
    const retired = retiredAt.get(g.proc);
    if (retired && retired.t >= g.inv) g.retired = retired;
    let E = g.D;
    let reason: EndReason = 'deadline';
    let endEvent = g.dEvent;
    const candidates: [EndReason, { t: bigint; event: HistoryEvent } | undefined][] = [
      ['release', g.release],
      ['lost', g.lost],
      ['crash', g.crash],
    ];
    for (const [why, end] of candidates) {
      if (end && end.t < E) {
        E = end.t;
        reason = why;
        endEvent = end.event;
      }
    }
    g.Ec = E;
    g.ecReason = reason;
    g.ecEvent = endEvent;
    if (g.retired && g.retired.t < E) {
      E = g.retired.t;
      reason = 'retired';
      endEvent = g.retired.event;
    }
    g.E = E;
    g.endReason = reason;
    g.endEvent = endEvent;
  }
  for (const list of grantsByResource.values()) list.sort((a, b) => (a.ok < b.ok ? -1 : a.ok > b.ok ? 1 : 0));
  if (maxTtlMs === 0) maxTtlMs = 1_000;

  // Quorum timeline: 3 voting until the first `voting` event.
  const lostBuilder = new IntervalBuilder();
  for (const e of voting) lostBuilder.update((e.voting ?? 3) < quorum, time(e), e);
  const lost = lostBuilder.intervals;
  for (const iv of lost) {
    if (iv.end !== undefined) iv.end = maxBig(iv.start, iv.end - votingLag);
  }

  // Fault timeline: a fault is active from its start to the stop with the same fault and targets; a stop
  // aimed at `*` (the harness's final heal) ends them all. A start that never stops lasts to the end.
  const activeAll = new Map<string, HistoryEvent>();
  const activeOther = new Map<string, HistoryEvent>();
  const allFaults = new IntervalBuilder();
  const otherFaults = new IntervalBuilder();
  for (const e of nemesis) {
    const n = e.nemesis!;
    const targets = [...(n.target ?? [])].sort();
    const key = `${n.fault}|${targets.join(',')}`;
    const other = targets.some((x) => !REDIS_SIDE.test(x) && x !== '*');
    if (n.phase === 'start') {
      activeAll.set(key, e);
      if (other) activeOther.set(key, e);
    } else if (targets.includes('*')) {
      activeAll.clear();
      activeOther.clear();
    } else {
      activeAll.delete(key);
      activeOther.delete(key);
    }
    allFaults.update(activeAll.size > 0, time(e), e);
    otherFaults.update(activeOther.size > 0, time(e), e);
  }

  return {
    events,
    time,
    t0,
    tEnd,
    rel,
    ops,
    completionOf,
    grants,
    grantsByResource,
    grantsByLock,
    acquiresByResource,
    lost,
    disturbed: union(allFaults.intervals, lost),
    otherFaults: otherFaults.intervals,
    nemesis,
    voting,
    maxTtlMs,
    drift,
  };
}

/** Intervals during which a condition held, from its value after each event in time order. */
class IntervalBuilder {
  readonly intervals: Interval[] = [];
  private open: Interval | undefined;

  update(active: boolean, t: bigint, event: HistoryEvent): void {
    if (active && !this.open) {
      this.open = { start: t, end: undefined, event };
      this.intervals.push(this.open);
    } else if (!active && this.open) {
      this.open.end = t;
      this.open = undefined;
    }
  }
}

/** The union of two sorted disjoint interval lists, merged into one sorted disjoint list. */
function union(a: Interval[], b: Interval[]): Interval[] {
  const all = [...a, ...b].sort((x, y) => (x.start < y.start ? -1 : x.start > y.start ? 1 : 0));
  const out: Interval[] = [];
  for (const iv of all) {
    const last = out[out.length - 1];
    if (last && (last.end === undefined || iv.start <= last.end)) {
      if (last.end !== undefined && (iv.end === undefined || iv.end > last.end)) last.end = iv.end;
    } else out.push({ ...iv });
  }
  return out;
}

/** The grant of `lock` a renewal or write at `t` belongs to: the latest one invoked by then. */
export function latestGrant(m: Model, lock: string | undefined, t: bigint): Grant | undefined {
  if (lock === undefined) return undefined;
  const list = m.grantsByLock.get(lock);
  if (!list) return undefined;
  let best: Grant | undefined;
  for (const g of list) if (g.inv <= t && (!best || g.inv > best.inv)) best = g;
  return best;
}
