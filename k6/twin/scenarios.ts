/**
 * The twins of k6/lock-contention.js and k6/redis-failure.js: the same requests, checks, metrics and tags, step
 * for step, against the lab HTTP API. Read each beside its script; a change to one is a change to both.
 */
import type { Runtime, VirtualUser } from './runtime.js';

/** The workload part of a profile file (k6/<script>.json); stages and thresholds are read by the runner. */
export interface Profile {
  resources?: string[];
  resource_prefix?: string;
  ttl_ms: number;
  wait_timeout_ms?: number;
  hold_ms?: number;
  pause_ms: number;
}

export interface Scenario {
  /** What http.setResponseCallback(http.expectedStatuses(…)) says in the script. */
  expectedStatuses: number[];
  /** Declares the script's custom metrics, so thresholds on them find them even with no samples. */
  declare(rt: Runtime): void;
  iteration(rt: Runtime, vu: VirtualUser, profile: Profile, baseUrl: string): Promise<void>;
}

type Outcome = 'acquired' | 'held' | 'unavailable' | 'error';

function outcomeOf(status: number): Outcome {
  if (status === 200) return 'acquired';
  if (status === 409) return 'held';
  if (status === 503) return 'unavailable';
  return 'error';
}

const lockContention: Scenario = {
  expectedStatuses: [200, 409],
  declare(rt) {
    rt.metrics.get('lock_outcomes', 'counter');
    rt.metrics.get('lock_acquired', 'rate');
    rt.metrics.get('lock_acquire_ms', 'trend', true);
  },
  async iteration(rt, { vu }, profile, baseUrl) {
    const resources = profile.resources ?? [];
    const resource = resources[vu % resources.length]!;
    const mode = vu % 2 === 0 ? 'wait' : 'try';
    const res = await rt.post(
      `${baseUrl}/lock/acquire`,
      {
        resource,
        client_id: `k6-vu-${vu}`,
        ttl_ms: profile.ttl_ms,
        wait_timeout_ms: mode === 'wait' ? profile.wait_timeout_ms : 0,
      },
      { name: 'acquire', mode },
    );
    const outcome = outcomeOf(res.status);
    rt.metrics.get('lock_outcomes', 'counter').add(1, { outcome, mode });
    rt.metrics.get('lock_acquired', 'rate').add(outcome === 'acquired', { mode });
    rt.metrics.get('lock_acquire_ms', 'trend', true).add(res.duration, { outcome, mode });
    rt.check({
      'acquire: granted, or refused because the lock is held': outcome === 'acquired' || outcome === 'held',
    });

    if (outcome === 'acquired') {
      const lockId = res.json()?.lock_id;
      await rt.sleep(profile.hold_ms ?? 0); // the critical section
      const released = await rt.post(
        `${baseUrl}/lock/release`,
        { resource, lock_id: lockId },
        { name: 'release' },
      );
      rt.check({ 'release: released': released.status === 200 && released.json()?.released === true });
    }
    await rt.sleep(profile.pause_ms);
  },
};

const redisFailure: Scenario = {
  expectedStatuses: [200, 503],
  declare(rt) {
    rt.metrics.get('lock_outcomes', 'counter');
    rt.metrics.get('lock_acquired', 'rate');
    rt.metrics.get('lock_recovery_ms', 'trend', true);
  },
  async iteration(rt, { vu, iter, state }, profile, baseUrl) {
    const resource = `${profile.resource_prefix}-${vu}-${iter}`;
    const res = await rt.post(
      `${baseUrl}/lock/acquire`,
      { resource, client_id: `k6-vu-${vu}`, ttl_ms: profile.ttl_ms },
      { name: 'acquire' },
    );
    const outcome = outcomeOf(res.status);
    rt.metrics.get('lock_outcomes', 'counter').add(1, { outcome });
    rt.metrics.get('lock_acquired', 'rate').add(outcome === 'acquired');
    const error = res.json()?.error as { reason?: unknown } | undefined;
    rt.check({
      'acquire: granted, or 503 without a quorum': outcome === 'acquired' || outcome === 'unavailable',
      'a 503 says QUORUM_UNAVAILABLE and when to retry':
        res.status !== 503 ||
        (error?.reason === 'QUORUM_UNAVAILABLE' && res.header('Retry-After') !== undefined),
    });

    const outageSince = (state.outageSince as number | undefined) ?? 0;
    if (outcome === 'unavailable' && outageSince === 0) {
      state.outageSince = Date.now();
      rt.console(`VU ${vu}: no quorum (503 QUORUM_UNAVAILABLE)`);
    }
    if (outcome === 'acquired') {
      if (outageSince !== 0) {
        const ms = Date.now() - outageSince;
        rt.metrics.get('lock_recovery_ms', 'trend', true).add(ms);
        rt.console(`VU ${vu}: served again after ${(ms / 1000).toFixed(1)} s without a quorum`);
        state.outageSince = 0;
      }
      const lockId = res.json()?.lock_id;
      const released = await rt.post(
        `${baseUrl}/lock/release`,
        { resource, lock_id: lockId },
        { name: 'release' },
      );
      // A node that stopped after the grant is fine: the release still reaches a quorum, or the lock runs out.
      rt.check({ 'release: answered': released.status === 200 || released.status === 503 });
    }
    await rt.sleep(profile.pause_ms);
  },
};

/** The scripts the twin knows, by file name. */
export const SCENARIOS: Readonly<Record<string, Scenario>> = {
  'lock-contention.js': lockContention,
  'redis-failure.js': redisFailure,
};
