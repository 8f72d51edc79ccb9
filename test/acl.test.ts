import { readFileSync } from 'node:fs';
import { describe, expect, it, onTestFinished } from 'vitest';
import { RedisCluster } from '../scripts/lib/redis-process.js';
import { ACL_PASSWORD, ACL_RULES, readmeAclRules } from './support/acl.js';
import { monitorScripts } from './support/script-monitor.js';
import { connect, startServerProcess, startTestServer, uniqueResource, waitFor } from './support/server.js';

/** A hand-off woken by an announcement takes milliseconds; by a timer here, seconds (see waiting.test.ts). */
const HANDOFF_BOUND_MS = 2_000;

describe('the server under the documented least-privilege Redis user', () => {
  it('grants, hands off across replicas through the release channel, and never falls back to the superuser', async () => {
    const cluster = await RedisCluster.start(3);
    onTestFinished(() => cluster.dispose());
    for (const node of cluster.nodes) await node.command('ACL', 'SETUSER', 'redlease', ...ACL_RULES);
    const env = { REDLEASE_REDIS_USERNAME: 'redlease', REDLEASE_REDIS_PASSWORD: ACL_PASSWORD };
    // B looks again only every 60 s, and A's lock would run 30 s: within the waiter's 10 s wait, only a release
    // announcement (SUBSCRIBE under the ACL) can wake it.
    const b = await startServerProcess(cluster, ['--wait-fallback-ms', '60000'], env);
    const { lock: a, logs, server } = await startTestServer(['--max-ttl-ms', '60000'], { cluster, env });
    const { lock: lockB } = connect(`127.0.0.1:${b.grpcPort}`);
    // Two engines starting together on a fresh cluster: A may find a node B has not marked yet, and keep it out of
    // quorums while it reads its marker again. That costs a call in flight a retry (an SDK retries UNAVAILABLE,
    // this plain client does not); this test is about the ACL, so it starts once A's decisions are made.
    await waitFor(
      'A to count every node',
      () => server.engine.admissionSettled && server.engine.status().nodes.every((n) => n.voting),
      10_000,
    );
    const resource = uniqueResource('acl');
    const { lease } = await a.acquire({ resource, ttlMs: 30_000 });
    const monitors = await monitorScripts(cluster.nodes);
    const waiting = lockB.acquire({ resource, ttlMs: 5_000, waitTimeoutMs: 10_000, clientId: 'on-b' });
    // Its first look found the lock held on every node: a release now cannot be met by that look.
    await waitFor('the waiter on B to have looked once on every node', () =>
      monitors.every((m) => m.count(resource, 'acquire') === 1),
    );
    const released = performance.now();
    await a.release({ resource, lockId: lease!.lockId });
    expect((await waiting).lease!.fencingToken).toBeGreaterThan(lease!.fencingToken);
    expect(performance.now() - released).toBeLessThan(HANDOFF_BOUND_MS);

    const clients = String(await cluster.nodes[0]!.command('CLIENT', 'LIST')).split('\n');
    const ours = clients.filter((l) => / name=redlease(-releases)? /.test(l));
    expect(ours.filter((l) => l.includes(' name=redlease-releases '))).toHaveLength(2); // one per server
    expect(ours.filter((l) => !l.includes(' user=redlease '))).toEqual([]);
    for (const line of [...logs, ...b.logs]) expect(String(line.msg)).not.toMatch(/cannot subscribe/);
  });

  it('takes its rules from the README line, whatever that line says', () => {
    const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
    const command = /^\s*ACL SETUSER redlease .*(\n\s+[^\s`].*)*/m.exec(readme)![0];
    expect(ACL_RULES.join(' ')).toBe(
      command.trim().split(/\s+/).slice(3).join(' ').replace('>PASSWORD', `>${ACL_PASSWORD}`),
    );
    // A changed line is what the tests then run; a README without one stops them.
    expect(readmeAclRules(readme.replace(' +subscribe', ' +subscribe +ping'))).toEqual([
      ...ACL_RULES,
      '+ping',
    ]);
    expect(() => readmeAclRules(readme.replace(command, ''))).toThrow(/expected one "ACL SETUSER redlease/);
  });
});
