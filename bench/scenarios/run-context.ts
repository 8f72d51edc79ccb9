import type { CpuMeter } from '../proc-usage.js';
import type { Progress } from '../progress.js';

/** What a scenario run gets from the harness. */
export interface RunContext {
  /** Aborted on Ctrl-C: stop at once. */
  signal: AbortSignal;
  progress: Progress;
  /** e.g. "uncontended-64 run 2/5 · redlease" */
  label: string;
  /** A meter of the harness's processes (server, Redis, etcd, echo, this process), not started yet. */
  cpuMeter(): CpuMeter;
  /** Unique to this run and system, so no two runs ever touch the same resource. */
  resourcePrefix: string;
}

/** The measurement window of a run: warmup first, then `seconds`. Times are performance.now() ms. */
export interface Window {
  from: number;
  to: number;
}

export function measurementWindow(warmupSeconds: number, seconds: number): Window {
  const from = performance.now() + warmupSeconds * 1_000;
  return { from, to: from + seconds * 1_000 };
}

/** Shows "<label>: warming up" / "<label>: N s left · <detail>" every half second until stopped. */
export function tickProgress(context: RunContext, window: Window, detail: () => string): () => void {
  const show = (): void => {
    const now = performance.now();
    const state =
      now < window.from ? 'warming up' : `${Math.max(0, Math.ceil((window.to - now) / 1_000))} s left`;
    context.progress.update(`${context.label}: ${state} · ${detail()}`);
  };
  const timer = setInterval(show, 500);
  timer.unref();
  return () => clearInterval(timer);
}

/** One-line text of an error, for the results. */
export function errorText(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

/** Resolves after `ms`, or at once when `signal` aborts (never rejects). */
export function pause(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}
