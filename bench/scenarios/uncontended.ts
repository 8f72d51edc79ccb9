/**
 * uncontended-1 and uncontended-64: `loops` closed loops, each doing acquire + release cycles back to back on
 * resources of its own (no two loops ever want the same resource). All loops share one client (one connection),
 * as the tasks of one process would. Counts the cycles that started after the warmup and ended within the
 * measured seconds; latency is one whole cycle (acquire sent → release answered).
 */
import type { LockSystem } from '../lock-system.js';
import type { CpuUsage } from '../proc-usage.js';
import { Samples } from '../samples.js';
import { errorText, measurementWindow, pause, type RunContext, tickProgress } from './run-context.js';

export interface UncontendedOptions {
  loops: number;
  seconds: number;
  warmupSeconds: number;
  /** Every cycle on a resource never locked before (see RESOURCES_PER_LOOP). */
  freshResources: boolean;
}

export interface UncontendedResult {
  cycles: number;
  cyclesPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  /** Failed cycles (each followed by a 10 ms pause, so a broken system cannot spin). */
  errors: number;
  firstError?: string;
  /** Cores used by each process group during the measured seconds. */
  cpuCores: Record<string, number>;
  /**
   * Cores' worth of run-queue wait per process group, and the machine's idle cores ("machineIdle"): see
   * CpuUsage.queued. Absent from results written before it was measured.
   */
  queuedCores?: Record<string, number>;
}

/**
 * Each loop cycles through this many resources of its own, so consecutive cycles never take the same one, and
 * after the first 16 cycles of a loop (within the warmup) every acquire is of a resource locked before: the
 * steady state of an application that locks its records again and again. A resource's very first acquire costs
 * redlease one more Redis round trip (each node seeds its fence counter from its own clock, so the tokens differ
 * and the token is written back to the lagging nodes); `freshResources` measures that case instead.
 */
const RESOURCES_PER_LOOP = 16;
const ERROR_PAUSE_MS = 10;

export async function runUncontended(
  system: LockSystem,
  options: UncontendedOptions,
  context: RunContext,
): Promise<UncontendedResult> {
  const locker = await system.connect(`bench-${context.resourcePrefix}`);
  const samples = new Samples();
  let errors = 0;
  let firstError: string | undefined;
  const meter = context.cpuMeter();
  const window = measurementWindow(options.warmupSeconds, options.seconds);
  const stopTicks = tickProgress(context, window, () => {
    const elapsed = (performance.now() - window.from) / 1_000;
    return elapsed > 0 ? `${Math.round(samples.length / elapsed)} cycles/s` : '';
  });
  const cpuStarted = pause(window.from - performance.now(), context.signal).then(() => meter.start());

  const loop = async (index: number): Promise<void> => {
    for (let i = 0; performance.now() < window.to && !context.signal.aborted; i++) {
      const resource = `${context.resourcePrefix}-${index}-${options.freshResources ? i : i % RESOURCES_PER_LOOP}`;
      const started = performance.now();
      try {
        const held = await locker.acquire(resource, 0, context.signal);
        if (held === null) throw new Error(`${resource} was held: nobody else should be using it`);
        await held.release();
      } catch (error) {
        if (context.signal.aborted) return;
        errors++;
        firstError ??= errorText(error);
        await pause(ERROR_PAUSE_MS, context.signal);
        continue;
      }
      const ended = performance.now();
      if (started >= window.from && ended <= window.to) samples.push(ended - started);
    }
  };

  let usage: CpuUsage;
  try {
    await Promise.all(Array.from({ length: options.loops }, (_, index) => loop(index)));
    await cpuStarted;
    usage = meter.stop();
  } finally {
    stopTicks();
    await locker.close();
  }
  return {
    cycles: samples.length,
    cyclesPerSecond: samples.length / options.seconds,
    p50Ms: samples.percentile(50),
    p99Ms: samples.percentile(99),
    maxMs: samples.max,
    errors,
    ...(firstError !== undefined && { firstError }),
    cpuCores: usage.cores,
    queuedCores: usage.queued,
  };
}
