// The demo workers (workers/worker.ts) as real processes against a real server process, three real Redis lock
// nodes and a fourth Redis for the FencedStore: the counter they share through fenced writes, a stalled worker's
// late write refused, SIGTERM while holding, and option errors.
import { describe, expect, it, onTestFinished } from 'vitest';
import { FencedStore, LockClient } from '../client/src/index.js';
import { RedisCluster, RedisProcess } from '../scripts/lib/redis-process.js';
import { startServerProcess, uniqueResource, waitFor } from './support/server.js';
import { type WorkerLog, WorkerProcess } from './support/worker-process.js';

/** Lock nodes, a store Redis, a server process; an SDK client and a store connection for the test to look. */
async function setup(serverFlags: readonly string[] = []) {
  const [cluster, storeRedis] = await Promise.all([
    RedisCluster.start(3),
    RedisProcess.start({ name: 'fenced-store' }),
  ]);
  onTestFinished(() => cluster.dispose());
  onTestFinished(() => storeRedis.dispose());
  const server = await startServerProcess(cluster, serverFlags);
  const address = `127.0.0.1:${server.grpcPort}`;
  const storeUrl = `redis://${storeRedis.address}`;
  const store = await FencedStore.connect({ redis: storeUrl });
  onTestFinished(() => store.close());
  const client = new LockClient({ address, clientId: 'test' });
  onTestFinished(() => client.close());
  const resource = uniqueResource('shared');
  const base = ['--address', address, '--store', storeUrl, '--resource', resource];
  return {
    store,
    client,
    resource,
    counterKey: `counter:${resource}`,
    /** Worker flags pointing at this setup, then `more`. */
    flags: (...more: string[]) => [...base, ...more],
  };
}

/** The worker's exit, with everything it logged when it is not the expected one. */
async function expectExit(worker: WorkerProcess, code: number): Promise<void> {
  const exit = await worker.finish();
  expect(exit, worker.dump()).toEqual({ code, signal: null });
}

const num = (line: WorkerLog | undefined, field: string): number => Number(line?.[field]);

describe('workers sharing a counter through fenced writes', () => {
  it('three workers: the counter equals the accepted writes, values run 1..N with rising tokens, none lost or duplicated', async () => {
    const { store, counterKey, flags } = await setup();
    const workers = ['w1', 'w2', 'w3'].map((name) =>
      WorkerProcess.start(flags('--name', name, '--rounds', '4', '--work-ms', '100', '--ttl-ms', '1000')),
    );
    for (const worker of workers) await expectExit(worker, 0);

    const wrote = workers.flatMap((w) => w.events('wrote'));
    const { value, token } = await store.peek(counterKey);
    expect(Number(value)).toBe(wrote.length);
    // Each accepted write added one to what the previous one wrote: no write was lost (a gap) or duplicated
    // (a repeat), and the holders came in token order.
    const byValue = [...wrote].sort((a, b) => num(a, 'value') - num(b, 'value'));
    expect(byValue.map((l) => num(l, 'value'))).toEqual(wrote.map((_, i) => i + 1));
    const tokens = byValue.map((l) => num(l, 'token'));
    for (let i = 1; i < tokens.length; i++) expect(tokens[i]).toBeGreaterThan(tokens[i - 1]!);
    expect(token).toBe(tokens.at(-1));

    for (const worker of workers) {
      const won = worker.events('won').map((l) => num(l, 'token'));
      expect(won.length, worker.dump()).toBeGreaterThanOrEqual(1);
      // A worker writes only with a token it won, and its summary agrees with its own lines.
      for (const line of worker.events('wrote')) expect(won).toContain(num(line, 'token'));
      expect(worker.events('done')).toEqual([
        expect.objectContaining({
          worker: worker.name,
          rounds: 4,
          wins: won.length,
          writes: worker.events('wrote').length,
          lost: 0, // no fault, so no lease may be lost (L6); a release is not a loss
        }),
      ]);
      for (const line of worker.events('won')) expect(line.waited_ms).toEqual(expect.any(Number));
    }
  });

  it('a worker stalled past its ttl: its late write is refused by the store, and its lease signal had aborted', async () => {
    // A waiting Acquire notices an expired (never released) lock at its next look: every 50 ms, not 1 s.
    const { store, client, resource, counterKey, flags } = await setup(['--wait-fallback-ms', '50']);
    const waiters = async () => (await client.describe(resource)).waiters;

    // The stall: a 500 ms lease, frozen for 2 s right after its last check. The work before it is long
    // (its lease renews meanwhile) so that the normal worker is up and queued before the stall starts: it then
    // takes the lock as soon as the staller's expires and reads the counter long before the stall ends,
    // however slowly processes start on this machine.
    const stall = ['--stall', '--stall-ms', '2000', '--ttl-ms', '500', '--work-ms', '5000'];
    const staller = WorkerProcess.start(flags('--name', 'staller', '--rounds', '1', ...stall));
    const stallerWon = await staller.next('won');
    // It waits far longer than its own 1 s ttl; the SDK reclaims such a late grant rather than losing it.
    const patient = ['--wait-ms', '20000', '--ttl-ms', '1000', '--work-ms', '100'];
    const normal = WorkerProcess.start(flags('--name', 'normal', '--rounds', '1', ...patient));
    await waitFor('the normal worker to queue', async () => (await waiters()) === 1, 20_000);
    expect(staller.events('stalling'), 'the staller stalled before the normal worker queued').toEqual([]);

    const normalWon = await normal.next('won');
    expect(num(normalWon, 'token')).toBeGreaterThan(num(stallerWon, 'token'));
    await expectExit(normal, 0);
    await expectExit(staller, 0);

    const normalWrote = normal.events('wrote');
    expect(normalWrote).toEqual([expect.objectContaining({ token: normalWon.token, value: 1 })]);

    const refused = staller.events('stale write refused');
    expect(refused, staller.dump()).toEqual([
      expect.objectContaining({
        token: stallerWon.token,
        highest_token: normalWon.token,
        lease_signal_aborted: true,
        lease_held: false,
      }),
    ]);
    // The lease was lost (its deadline passed during the stall) before the refusal came back.
    const lost = staller.logs.findIndex((l) => l.event === 'lease lost' && l.token === stallerWon.token);
    expect(lost, staller.dump()).toBeGreaterThanOrEqual(0);
    expect(lost).toBeLessThan(staller.logs.indexOf(refused[0]!));
    expect(staller.events('wrote')).toEqual([]);
    expect(staller.events('done')).toEqual([
      expect.objectContaining({ wins: 1, writes: 0, refused: 1, lost: 1 }),
    ]);

    // Only the normal worker's write landed.
    expect(await store.peek(counterKey)).toEqual({ value: '1', token: normalWon.token });
  });

  it('SIGTERM while holding: exits 0, and the lock is free right afterwards (released, not left to expire)', async () => {
    const { store, client, resource, counterKey, flags } = await setup();
    // Work far longer than the test, and a 10 s ttl: were the lock left to expire, Describe would still see it.
    const worker = WorkerProcess.start(
      flags('--name', 'holder', '--rounds', '1', '--work-ms', '60000', '--ttl-ms', '10000'),
    );
    const won = await worker.next('won');
    expect(await client.describe(resource)).toMatchObject({ locked: true, fencingToken: won.token });

    expect(await worker.stop('SIGTERM')).toEqual({ code: 0, signal: null });
    expect(await client.describe(resource)).toMatchObject({ locked: false });
    expect(worker.events('round abandoned')).toEqual([expect.objectContaining({ reason: 'stopping' })]);
    expect(worker.events('lease lost')).toEqual([]);
    expect(worker.events('done')).toEqual([
      expect.objectContaining({ wins: 1, writes: 0, refused: 0, lost: 0 }),
    ]);
    // It read (registering its token) but never wrote.
    expect(await store.peek(counterKey)).toEqual({ value: null, token: won.token });
  });
});

describe('worker options', () => {
  /** Runs the worker to its exit; nothing is listening, so a worker that got past its options would fail. */
  async function run(...args: string[]) {
    const nowhere = ['--address', '127.0.0.1:1', '--store', 'redis://127.0.0.1:1'];
    const worker = WorkerProcess.start([...nowhere, ...args]);
    const exit = await worker.finish();
    return { exit, worker, stderr: worker.output.join('') };
  }

  it('an invalid value exits 2 with one line naming the flag; --help lists every flag', async () => {
    const cases = [
      { args: ['--ttl-ms', 'abc'], flag: '--ttl-ms' },
      { args: ['--work-ms', '-5'], flag: '--work-ms' },
      { args: ['--rounds', '0'], flag: '--rounds' },
      { args: ['--log-level', 'loud'], flag: '--log-level' },
      { args: ['--stall-ms', '100'], flag: '--stall-ms' },
      { args: ['--bogus'], flag: '--bogus' },
    ];
    const [help, ...results] = await Promise.all([run('--help'), ...cases.map((c) => run(...c.args))]);
    cases.forEach((c, i) => {
      const { exit, worker, stderr } = results[i]!;
      expect(exit, stderr).toEqual({ code: 2, signal: null });
      expect(worker.logs).toEqual([]);
      expect(stderr).toMatch(/^worker: [^\n]+\n$/);
      expect(stderr).toContain(c.flag);
    });

    expect(help!.exit).toEqual({ code: 0, signal: null });
    const text = help!.worker.output.join('\n');
    for (const flag of [
      '--address',
      '--store',
      '--resource',
      '--name',
      '--ttl-ms',
      '--work-ms',
      '--wait-ms',
      '--pause-ms',
      '--rounds',
      '--duration-ms',
      '--stall',
      '--stall-ms',
      '--log-level',
      'REDLEASE_TOKEN',
    ]) {
      expect(text).toContain(flag);
    }
  });
});
