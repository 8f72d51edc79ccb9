// @ts-check
/**
 * Lab exercise 6: virtual users contend for three hot locks through the lab HTTP API, more and more of them as the
 * stages ramp up. Half of them wait in the server's queue for their turn (`wait_timeout_ms`); the other half try
 * once and take a refusal (409 LOCK_HELD) as an answer. A winner holds the lock briefly, then releases it.
 *
 *   docker compose run --rm lab37-k6 run /scripts/lock-contention.js     # in the compose lab
 *   npm run k6 -- run k6/lock-contention.js                              # without Docker (k6/README.md)
 *
 * Stages, thresholds and the workload are in lock-contention.json, which the twin reads too. Every acquire is
 * counted in `lock_outcomes` by outcome (acquired, held, unavailable, error) and by mode (wait, try); the
 * Grafana dashboard shows the same from the server's side (held refusals, queued acquires, waiters, hand-offs).
 */
import { check, sleep } from 'k6';
import http from 'k6/http';
import { Counter, Rate, Trend } from 'k6/metrics';

const profile = JSON.parse(open('./lock-contention.json'));
const BASE_URL = __ENV.BASE_URL || 'http://localhost:8000';
const JSON_HEADERS = { 'content-type': 'application/json' };

export const options = {
  stages: profile.stages,
  thresholds: profile.thresholds,
};

/** Acquire attempts by outcome and mode. */
const outcomes = new Counter('lock_outcomes');
/** Share of acquire attempts that got the lock, by mode. */
const acquired = new Rate('lock_acquired');
/** How long an acquire took to answer (for a waiter: its time in the queue), by outcome and mode. */
const acquireTime = new Trend('lock_acquire_ms', true);

// 409 (held) is an answer here, not a failure; anything else but 200 counts in http_req_failed.
http.setResponseCallback(http.expectedStatuses(200, 409));

/**
 * @param {import('k6/http').RefinedResponse<'text'>} res
 * @returns {'acquired' | 'held' | 'unavailable' | 'error'}
 */
function outcomeOf(res) {
  if (res.status === 200) return 'acquired';
  if (res.status === 409) return 'held';
  if (res.status === 503) return 'unavailable';
  return 'error';
}

export default function () {
  const resource = profile.resources[__VU % profile.resources.length];
  const mode = __VU % 2 === 0 ? 'wait' : 'try';
  const res = http.post(
    `${BASE_URL}/lock/acquire`,
    JSON.stringify({
      resource,
      client_id: `k6-vu-${__VU}`,
      ttl_ms: profile.ttl_ms,
      wait_timeout_ms: mode === 'wait' ? profile.wait_timeout_ms : 0,
    }),
    { headers: JSON_HEADERS, tags: { name: 'acquire', mode } },
  );
  const outcome = outcomeOf(res);
  outcomes.add(1, { outcome, mode });
  acquired.add(outcome === 'acquired', { mode });
  acquireTime.add(res.timings.duration, { outcome, mode });
  check(res, {
    'acquire: granted, or refused because the lock is held': () =>
      outcome === 'acquired' || outcome === 'held',
  });

  if (outcome === 'acquired') {
    const lockId = /** @type {string} */ (res.json('lock_id'));
    sleep(profile.hold_ms / 1000); // the critical section
    const released = http.post(`${BASE_URL}/lock/release`, JSON.stringify({ resource, lock_id: lockId }), {
      headers: JSON_HEADERS,
      tags: { name: 'release' },
    });
    check(released, { 'release: released': (r) => r.status === 200 && r.json('released') === true });
  }
  sleep(profile.pause_ms / 1000);
}
