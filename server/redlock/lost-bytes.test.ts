import { describe, expect, it, onTestFinished } from 'vitest';
import { RedisCluster } from '../../scripts/lib/redis-process.js';
import { FAST, uniqueResource, waitFor } from '../../test/support/engine.js';
import { FaultProxy } from '../../testkit/fault-proxy.js';
import { Redlock } from './redlock.js';

/**
 * Chaos faults F9, F11, F14: a link that loses requests or replies (a fault proxy's drop and blackhole modes).
 * A command that timed out then never gets its reply, and every later reply on that connection would be matched
 * to the command before it: votes read from other commands' replies.
 */
describe('a node link that lost bytes', () => {
  it.each(['drop-requests', 'drop-responses', 'blackhole'] as const)(
    '%s: after it heals, every vote of that node matches its real key (the connection is made again)',
    async (kind) => {
      const cluster = await RedisCluster.start(3);
      const proxy = await FaultProxy.start({ target: cluster.nodes[0]!.address, name: 'P1' });
      const engine = new Redlock({ ...FAST, nodes: [proxy.address, ...cluster.addresses.slice(1)] });
      onTestFinished(async () => {
        await engine.close();
        await proxy.close();
        await cluster.dispose();
      });
      await engine.ready();

      await proxy.set(kind);
      // Commands go out while the link loses them: acquires (granted by redis-2 + redis-3) and health checks.
      for (let i = 0; i < 5; i++) {
        const lease = await engine.acquire(uniqueResource('lost'), { ttlMs: 5_000 });
        expect(lease.nodes).not.toContain('redis-1');
      }
      await proxy.set('pass');

      // It comes back on a new connection (its old one may wait out the connect timeout first).
      let lastToken = 0;
      const acquireChecked = async () => {
        const resource = uniqueResource('after');
        const lease = await engine.acquire(resource, { ttlMs: 5_000 });
        expect(Number.isSafeInteger(lease.fencingToken)).toBe(true);
        expect(lease.fencingToken).toBeGreaterThan(lastToken);
        lastToken = lease.fencingToken;
        // A vote from redis-1 must be redis-1's answer to this acquire: its key holds this lock id.
        if (lease.nodes.includes('redis-1'))
          expect(await cluster.nodes[0]!.command('GET', `lk:${resource}`)).toBe(lease.lockId);
        await engine.release(resource, lease.lockId);
        return lease.nodes.includes('redis-1');
      };
      await waitFor('redis-1 to vote again', acquireChecked, 5_000, 20);
      for (let i = 0; i < 20; i++) expect(await acquireChecked()).toBe(true);
    },
  );
});
