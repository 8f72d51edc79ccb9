import { describe, expect, it } from 'vitest';
import { ACL_RULES } from '../../test/support/acl.js';
import { startCluster, uniqueResource, waitFor } from '../../test/support/engine.js';

describe('Redis ACL', () => {
  it('works with only the documented commands, keys and channel, which cannot flush, reconfigure or list keys', async () => {
    const { cluster, newEngine } = await startCluster();
    for (const node of cluster.nodes) await node.command('ACL', 'SETUSER', 'redlease', ...ACL_RULES);
    const engine = await newEngine({
      nodes: cluster.nodes.map((n) => ({
        host: n.host,
        port: n.port,
        username: 'redlease',
        password: 's3cret-for-tests',
      })),
    });
    expect(engine.status().nodes.every((n) => n.voting)).toBe(true);
    // The engine's connections (named "redlease") really are authenticated as the restricted user.
    const clients = String(await cluster.nodes[0]!.command('CLIENT', 'LIST'))
      .split('\n')
      .filter((line) => line.includes(' name=redlease '));
    expect(clients.length).toBeGreaterThan(0);
    expect(clients.filter((line) => !line.includes(' user=redlease '))).toHaveLength(1); // the startCluster engine

    const r = uniqueResource();
    const a = await engine.acquire(r, { ttlMs: 3_000, clientId: 'acl' });
    await engine.extend(r, a.lockId, 3_000);
    expect(await engine.inspect(r)).toMatchObject({ locked: true, holderClientId: 'acl' });
    await engine.release(r, a.lockId);
    // The quarantine scan (SCAN + PTTL) and the marker (GET/SET redlease:run-id) work under the same rights.
    await waitFor(
      'markers to be written',
      async () => (await cluster.nodes[0]!.command('GET', 'redlease:run-id')) !== null,
    );
    const held = await engine.acquire(r, { ttlMs: 3_000 });
    await cluster.nodes[1]!.restart({ keepData: false });
    await cluster.nodes[1]!.command('ACL', 'SETUSER', 'redlease', ...ACL_RULES);
    await waitFor('redis-2 to be quarantined until the held lock expires', () => {
      const s = engine.status().nodes[1]!;
      return s.restarts === 1 && s.up && s.quarantined && s.quarantineRemainingMs <= 3_100;
    });
    await engine.release(r, held.lockId);

    for (const command of [
      ['FLUSHALL'],
      ['CONFIG', 'SET', 'maxmemory-policy', 'allkeys-lru'],
      ['KEYS', '*'],
    ]) {
      const verdict = await cluster.nodes[0]!.command('ACL', 'DRYRUN', 'redlease', ...command);
      expect(String(verdict), command.join(' ')).toMatch(/no permissions/);
    }
  });

  it('a node with a wrong password is down with "authentication failed", and the others carry on', async () => {
    const { cluster, newEngine } = await startCluster();
    await cluster.nodes[0]!.command('ACL', 'SETUSER', 'redlease', ...ACL_RULES);
    const engine = await newEngine(
      {
        nodes: cluster.nodes.map((n, i) =>
          i === 0
            ? { host: n.host, port: n.port, username: 'redlease', password: 'wrong' }
            : { host: n.host, port: n.port },
        ),
      },
      { allRunningNodesUp: false },
    );
    const n1 = engine.status().nodes[0]!;
    expect(n1).toMatchObject({ up: false, voting: false });
    expect(n1.error).toContain("authentication failed: check this node's username and password (WRONGPASS)");
    const lease = await engine.acquire(uniqueResource());
    expect(lease.nodes.sort()).toEqual(['redis-2', 'redis-3']);
  });
});
