import { describe, expect, it, onTestFinished } from 'vitest';
import { RedisCluster } from '../scripts/lib/redis-process.js';
import { ACL_RULES } from './support/acl.js';
import { connect, startServerProcess, startTestServer, uniqueResource, waitFor } from './support/server.js';

describe('the server under the documented least-privilege Redis user', () => {
  it('grants, hands off across replicas through the release channel, and never falls back to the superuser', async () => {
    const cluster = await RedisCluster.start(3);
    onTestFinished(() => cluster.dispose());
    for (const node of cluster.nodes) await node.command('ACL', 'SETUSER', 'redlease', ...ACL_RULES);
    const env = { REDLEASE_REDIS_USERNAME: 'redlease', REDLEASE_REDIS_PASSWORD: 's3cret-for-tests' };
    // B polls only every 60 s: only a release announcement (SUBSCRIBE under the ACL) can wake its waiter.
    const b = await startServerProcess(cluster, ['--wait-fallback-ms', '60000'], env);
    const { lock: a, logs } = await startTestServer([], { cluster, env });
    const { lock: lockB } = connect(`127.0.0.1:${b.grpcPort}`);
    const resource = uniqueResource('acl');
    const { lease } = await a.acquire({ resource, ttlMs: 10_000 });
    const waiting = lockB.acquire({ resource, ttlMs: 5_000, waitTimeoutMs: 20_000, clientId: 'on-b' });
    await waitFor('the waiter queued on B', async () => (await lockB.describe({ resource })).waiters === 1);
    await a.release({ resource, lockId: lease!.lockId });
    expect((await waiting).lease!.fencingToken).toBeGreaterThan(lease!.fencingToken);

    const clients = String(await cluster.nodes[0]!.command('CLIENT', 'LIST')).split('\n');
    const ours = clients.filter((l) => / name=redlease(-releases)? /.test(l));
    expect(ours.filter((l) => l.includes(' name=redlease-releases '))).toHaveLength(2); // one per server
    expect(ours.filter((l) => !l.includes(' user=redlease '))).toEqual([]);
    for (const line of [...logs, ...b.logs]) expect(String(line.msg)).not.toMatch(/cannot subscribe/);
  });
});
