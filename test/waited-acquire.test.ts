/**
 * An Acquire that waited in the server's queue longer than a third of its ttl is answered once and used as it
 * is: the Lease carries queued_ms, and the SDK counts the deadline from send + queued + validity, so it has no
 * reason to re-send the Acquire to refresh a grant that only looked late. Three demo workers (defaults: ttl 3 s,
 * work 1 s) take turns for a minute; each waits one or two turns, well past a third of the ttl.
 */
import { describe, expect, it, onTestFinished } from 'vitest';
import { RedisProcess } from '../scripts/lib/redis-process.js';
import { scrape } from './support/prometheus.js';
import { startTestServer, uniqueResource } from './support/server.js';
import { WorkerProcess } from './support/worker-process.js';

const RUN_MS = 60_000;
const TTL_MS = 3_000;

describe('an Acquire that waited longer than a third of its ttl', () => {
  it('is answered once and used as it is: no reclaim through a 60 s run of three demo workers', async () => {
    const [t, store] = await Promise.all([
      startTestServer(),
      RedisProcess.start({ name: 'waited-acquire-store' }),
    ]);
    onTestFinished(() => store.dispose());
    const resource = uniqueResource('demo-like');
    const workers = ['w1', 'w2', 'w3'].map((name) =>
      WorkerProcess.start([
        ...['--address', t.address, '--store', `redis://${store.address}`, '--resource', resource],
        ...['--name', name, '--ttl-ms', String(TTL_MS), '--work-ms', '1000', '--duration-ms', String(RUN_MS)],
      ]),
    );
    for (const worker of workers) {
      const exit = await worker.finish(RUN_MS + 30_000);
      expect(exit, worker.dump()).toEqual({ code: 0, signal: null });
    }

    const { metrics } = await scrape(t.server.httpPort);
    const acquisitions = (result: string) => metrics.value('redlease_acquisitions_total', { result }) ?? 0;
    // The run did what it claims: many grants, and many of them after a wait longer than a third of the ttl.
    const longWaits = t.logs.filter(
      (l) => l.event === 'waited' && l.outcome === 'acquired' && Number(l.waited_ms) > TTL_MS / 3,
    );
    expect(acquisitions('acquired')).toBeGreaterThanOrEqual(20);
    expect(longWaits.length).toBeGreaterThanOrEqual(10);
    // Each of them was used as answered.
    expect(acquisitions('reclaimed')).toBe(0);
    expect(t.logs.filter((l) => l.event === 'lost')).toEqual([]);
  }, 120_000);
});
