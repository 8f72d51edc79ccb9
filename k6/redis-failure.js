// @ts-check
/**
 * Lab exercise 6, with a Redis node failure: a steady stream of acquire and release on distinct resources while
 * you stop lock nodes from another terminal. With one node down the quorum (2 of 3) holds and every acquire is
 * still granted; with two down every acquire is answered 503 QUORUM_UNAVAILABLE at once, with Retry-After, until
 * the nodes are back and have voted again. Each virtual user reports how long it went without a lock.
 *
 *   docker compose run --rm lab37-k6 run /scripts/redis-failure.js      # then: docker compose stop lab37-redis-2
 *   npm run k6 -- run k6/redis-failure.js                               # then: npm run nodes -- stop redis-2
 *
 * Stages, thresholds and the workload are in redis-failure.json, which the twin reads too. `lock_outcomes` counts
 * acquires by outcome (acquired, unavailable, held, error); `lock_recovery_ms` is, per outage a virtual user saw,
 * the time from its first 503 to its next grant.
 */
import { check, sleep } from 'k6';
import http from 'k6/http';
import { Counter, Rate, Trend } from 'k6/metrics';

const profile = JSON.parse(open('./redis-failure.json'));
const BASE_URL = __ENV.BASE_URL || 'http://localhost:8000';
const JSON_HEADERS = { 'content-type': 'application/json' };

export const options = {
  stages: profile.stages,
  thresholds: profile.thresholds,
};

/** Acquire attempts by outcome. */
const outcomes = new Counter('lock_outcomes');
/** Share of acquire attempts that got the lock. */
const acquired = new Rate('lock_acquired');
/** Per outage seen by a virtual user: from its first 503 to its next grant. */
const recovery = new Trend('lock_recovery_ms', true);

// Without a quorum the server answers 503: expected while nodes are down, so not a failed request.
http.setResponseCallback(http.expectedStatuses(200, 503));

/** When this virtual user's current outage began (ms since the epoch), or 0 while it is served. */
let outageSince = 0;

export default function () {
  const resource = `${profile.resource_prefix}-${__VU}-${__ITER}`;
  const res = http.post(
    `${BASE_URL}/lock/acquire`,
    JSON.stringify({ resource, client_id: `k6-vu-${__VU}`, ttl_ms: profile.ttl_ms }),
    { headers: JSON_HEADERS, tags: { name: 'acquire' } },
  );
  const outcome =
    res.status === 200
      ? 'acquired'
      : res.status === 503
        ? 'unavailable'
        : res.status === 409
          ? 'held'
          : 'error';
  outcomes.add(1, { outcome });
  acquired.add(outcome === 'acquired');
  check(res, {
    'acquire: granted, or 503 without a quorum': () => outcome === 'acquired' || outcome === 'unavailable',
    'a 503 says QUORUM_UNAVAILABLE and when to retry': (r) =>
      r.status !== 503 ||
      (r.json('error.reason') === 'QUORUM_UNAVAILABLE' && r.headers['Retry-After'] !== undefined),
  });

  if (outcome === 'unavailable' && outageSince === 0) {
    outageSince = Date.now();
    console.log(`VU ${__VU}: no quorum (503 QUORUM_UNAVAILABLE)`);
  }
  if (outcome === 'acquired') {
    if (outageSince !== 0) {
      const ms = Date.now() - outageSince;
      recovery.add(ms);
      console.log(`VU ${__VU}: served again after ${(ms / 1000).toFixed(1)} s without a quorum`);
      outageSince = 0;
    }
    const lockId = /** @type {string} */ (res.json('lock_id'));
    const released = http.post(`${BASE_URL}/lock/release`, JSON.stringify({ resource, lock_id: lockId }), {
      headers: JSON_HEADERS,
      tags: { name: 'release' },
    });
    // A node that stopped after the grant is fine: the release still reaches a quorum, or the lock runs out.
    check(released, { 'release: answered': (r) => r.status === 200 || r.status === 503 });
  }
  sleep(profile.pause_ms / 1000);
}
