import { Writable } from 'node:stream';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { startCluster, uniqueResource } from '../../test/support/engine.js';
import { stall } from '../../test/support/stall.js';

/**
 * CPU starvation (chaos fault F24), seen from the engine: when this process stalls for longer than the node
 * timeout, the nodes' replies wait in the sockets and the command timers fire before they are read. A reply that
 * arrived on time but was read late is not a timed-out node: the engine must neither lose those votes nor reset
 * its node connections (each reset takes the node out until its identity is checked again).
 */
describe('the engine after its own process stalled', () => {
  it('counts replies that arrived while it was busy, and keeps its node connections', async () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk, _encoding, done) {
        lines.push(String(chunk));
        done();
      },
    });
    const { engine } = await startCluster({ nodeTimeoutMs: 100, logger: pino({ level: 'warn' }, sink) });

    for (let i = 0; i < 5; i++) {
      const acquiring = engine.acquire(uniqueResource('stall'), { ttlMs: 5_000 });
      // The scripts are written to the nodes on the next turn of the loop; the replies come back while the
      // loop is blocked here, for three times the node timeout.
      await new Promise((resolve) => setImmediate(resolve));
      stall(300);
      const lease = await acquiring;
      expect(lease.nodes.sort()).toEqual(['redis-1', 'redis-2', 'redis-3']);
      expect(lease.attempts).toBe(1);
    }
    for (const node of engine.status().nodes) {
      expect(node.up, `${node.name}: ${node.error}`).toBe(true);
      expect(node.voting).toBe(true);
    }
    // No 'node connection reset', no 'node connection lost': the same connections throughout.
    expect(lines).toEqual([]);
  });
});
