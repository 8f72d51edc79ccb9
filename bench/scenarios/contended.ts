/**
 * contended-16: `clients` clients (each with its own connection) on ONE resource, each in a closed loop:
 * acquire (waiting up to waitMs) → hold holdMs → release → acquire again at once. Every grant is recorded with
 * its client and times, and the sequence of grants gives:
 * - hand-off latency: from the completion of a release (its answer arrived) to the next grant, when that grant
 *   went to another client. When the grant's answer overtook the release's own answer (both are in flight at
 *   once), that hand-off counts as 0 ms and is counted in `overtakes`;
 * - stalls: gaps of more than 1 s between consecutive grants (the window's edges count as grants, so a run that
 *   ends or starts stalled shows it);
 * - per-client share of grants and Jain's fairness index over them;
 * - how often the releaser itself took the lock again ("regrabs": ~100 % for a polling client that retries at
 *   once while the others sleep; ~0 % for a FIFO queue);
 * - overlaps: a grant seen before the previous holder had even sent its release — mutual exclusion broken as
 *   seen by the clients. Should be 0 for every system.
 */
import { setMaxListeners } from 'node:events';
import type { Held, LockSystem } from '../lock-system.js';
import type { CpuUsage } from '../proc-usage.js';
import { Samples } from '../samples.js';
import { jainIndex } from '../stats.js';
import { errorText, measurementWindow, pause, type RunContext, tickProgress } from './run-context.js';

export interface ContendedOptions {
  clients: number;
  seconds: number;
  warmupSeconds: number;
  waitMs: number;
  holdMs: number;
}

export interface ContendedResult {
  grants: number;
  grantsPerSecond: number;
  handoffs: number;
  handoffP50Ms: number;
  handoffP99Ms: number;
  handoffMaxMs: number;
  /** Gaps > STALL_MS between consecutive grants. */
  stalls: number;
  longestGapMs: number;
  /** Fraction of the grants each client got. */
  shares: number[];
  jainIndex: number;
  /** % of grants that went back to the client that had just released. */
  regrabPercent: number;
  overlaps: number;
  overtakes: number;
  /** Acquires still held after their wait (normal under contention; none expected with a FIFO queue). */
  timeouts: number;
  errors: number;
  firstError?: string;
  cpuCores: Record<string, number>;
  /**
   * Cores' worth of run-queue wait per process group, and the machine's idle cores ("machineIdle"): see
   * CpuUsage.queued. Absent from results written before it was measured.
   */
  queuedCores?: Record<string, number>;
}

/** A gap between grants longer than this is a stall (the threshold). */
export const STALL_MS = 1_000;
const ERROR_PAUSE_MS = 10;

interface Grant {
  client: number;
  grantedAt: number;
  releaseSentAt: number;
  releasedAt: number;
}

export async function runContended(
  system: LockSystem,
  options: ContendedOptions,
  context: RunContext,
): Promise<ContendedResult> {
  const resource = `${context.resourcePrefix}-contended`;
  const lockers = await Promise.all(
    Array.from({ length: options.clients }, (_, i) => system.connect(`bench-${context.resourcePrefix}-${i}`)),
  );
  const grants: Grant[] = [];
  let timeouts = 0;
  let errors = 0;
  let firstError: string | undefined;
  const meter = context.cpuMeter();
  const window = measurementWindow(options.warmupSeconds, options.seconds);
  // Ends every wait at the end of the window (node-redlock cannot be cancelled: its retry window ends it).
  const stop = new AbortController();
  const stopTimer = setTimeout(() => stop.abort(), window.to - performance.now());
  const signal = AbortSignal.any([context.signal, stop.signal]);
  setMaxListeners(0, signal); // every contender's call listens on it: not a leak
  const stopTicks = tickProgress(context, window, () => `${grants.length} grants`);
  const cpuStarted = pause(window.from - performance.now(), signal).then(() => meter.start());

  const loop = async (client: number): Promise<void> => {
    const locker = lockers[client]!;
    while (performance.now() < window.to && !signal.aborted) {
      let held: Held | null;
      try {
        held = await locker.acquire(resource, options.waitMs, signal);
      } catch (error) {
        if (signal.aborted) return;
        errors++;
        firstError ??= errorText(error);
        await pause(ERROR_PAUSE_MS, signal);
        continue;
      }
      if (held === null) {
        timeouts++;
        continue;
      }
      const grant: Grant = {
        client,
        grantedAt: performance.now(),
        releaseSentAt: Number.NaN,
        releasedAt: Number.NaN,
      };
      grants.push(grant);
      await pause(options.holdMs); // held: not cut short even when the run ends
      grant.releaseSentAt = performance.now();
      try {
        await held.release();
        grant.releasedAt = performance.now();
      } catch (error) {
        errors++;
        firstError ??= errorText(error);
      }
    }
  };

  let usage: CpuUsage;
  try {
    await Promise.all(lockers.map((_, client) => loop(client)));
    await cpuStarted;
    usage = meter.stop();
  } finally {
    clearTimeout(stopTimer);
    stopTicks();
    await Promise.all(lockers.map((locker) => locker.close()));
  }
  return {
    ...analyse(grants, window, options),
    timeouts,
    errors,
    ...(firstError !== undefined && { firstError }),
    cpuCores: usage.cores,
    queuedCores: usage.queued,
  };
}

/** The grant sequence's statistics within the measurement window. */
function analyse(
  grants: readonly Grant[],
  window: { from: number; to: number },
  options: ContendedOptions,
): Omit<ContendedResult, 'timeouts' | 'errors' | 'firstError' | 'cpuCores'> {
  const handoffs = new Samples();
  const perClient = new Array<number>(options.clients).fill(0);
  let counted = 0;
  let followers = 0;
  let regrabs = 0;
  let overlaps = 0;
  let overtakes = 0;
  let stalls = 0;
  let longestGapMs = 0;
  let previousAt = window.from;
  const gap = (at: number): void => {
    longestGapMs = Math.max(longestGapMs, at - previousAt);
    if (at - previousAt > STALL_MS) stalls++;
    previousAt = at;
  };
  // Grants are pushed in the order their answers arrived, so `grants` is sorted by grantedAt.
  for (let k = 0; k < grants.length; k++) {
    const grant = grants[k]!;
    if (grant.grantedAt < window.from || grant.grantedAt > window.to) continue;
    counted++;
    perClient[grant.client]!++;
    gap(grant.grantedAt);
    const before = grants[k - 1];
    if (before === undefined) continue;
    followers++;
    if (grant.grantedAt < before.releaseSentAt) overlaps++;
    if (before.client === grant.client) {
      regrabs++;
    } else if (!Number.isNaN(before.releasedAt)) {
      if (grant.grantedAt < before.releasedAt) overtakes++;
      handoffs.push(Math.max(0, grant.grantedAt - before.releasedAt));
    }
  }
  gap(window.to);
  const seconds = (window.to - window.from) / 1_000;
  return {
    grants: counted,
    grantsPerSecond: counted / seconds,
    handoffs: handoffs.length,
    handoffP50Ms: handoffs.percentile(50),
    handoffP99Ms: handoffs.percentile(99),
    handoffMaxMs: handoffs.max,
    stalls,
    longestGapMs,
    shares: perClient.map((n) => (counted === 0 ? 0 : n / counted)),
    jainIndex: jainIndex(perClient),
    regrabPercent: followers === 0 ? Number.NaN : (100 * regrabs) / followers,
    overlaps,
    overtakes,
  };
}
