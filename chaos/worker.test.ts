// The fault suite's workload worker (chaos/worker.ts) and store service (chaos/store.ts) against real processes:
// three Redis lock nodes, a store Redis, the server process, worker processes. No faults here: what is checked is
// the recording (pairing, fields, order), and that without faults nothing the workers saw acknowledged is lost.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { LockClient } from '../client/src/index.js';
import { NodeProcess } from '../scripts/lib/node-process.js';
import { RedisCluster, RedisProcess } from '../scripts/lib/redis-process.js';
import { waitFor } from '../scripts/lib/wait.js';
import { startServerProcess } from '../testkit/server-process.js';
import { uniqueResource } from '../testkit/unique-resource.js';
import type { HistoryEvent } from './history.js';
import { StoreService } from './store.js';

const TTL_MS = 1_000;

/** A fresh history directory, removed when the test ends. */
function historyDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'redlease-chaos-worker-'));
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Everything a worker needs: lock nodes, the server process, a store Redis and the store service. */
async function setup() {
  const [cluster, storeRedis] = await Promise.all([
    RedisCluster.start(3),
    RedisProcess.start({ name: 'chaos-store' }),
  ]);
  onTestFinished(() => cluster.dispose());
  onTestFinished(() => storeRedis.dispose());
  const server = await startServerProcess(cluster);
  const dir = historyDir();
  const store = await StoreService.start({ dir, redis: `redis://${storeRedis.address}` });
  onTestFinished(() => store.close());
  const address = `127.0.0.1:${server.grpcPort}`;
  return { dir, store, address, server };
}

/** `node --import tsx chaos/worker.ts …args`, SIGKILLed when the test ends if still running. */
function startWorker(args: readonly string[]): NodeProcess {
  // The REDLEASE_ variables of whoever runs the tests must not reach the worker (REDLEASE_TOKEN is read).
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('REDLEASE_')));
  const worker = NodeProcess.launch('chaos/worker.ts', args, env);
  onTestFinished(() => worker.stop('SIGKILL').then(() => undefined));
  return worker;
}

function readEvents(dir: string, writer: string): HistoryEvent[] {
  return readFileSync(join(dir, `${writer}.jsonl`), 'utf8')
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as HistoryEvent);
}

/** Every invoke has exactly one completion with its req, from the same proc, after it; none is unpaired. */
function expectPaired(events: HistoryEvent[]): void {
  const open = new Map<string, HistoryEvent>();
  const done = new Set<string>();
  expect(events.map((event) => event.seq)).toEqual(events.map((_, i) => i));
  for (const event of events) {
    if (event.req === undefined) continue; // one-off (keepalive, lost)
    if (event.type === 'invoke') {
      expect(open.has(event.req) || done.has(event.req), `req ${event.req} invoked twice`).toBe(false);
      open.set(event.req, event);
      continue;
    }
    const invoke = open.get(event.req);
    expect(invoke, `completion of ${event.req} without an open invoke`).toBeDefined();
    expect(event.proc).toBe(invoke!.proc);
    expect(event.f).toBe(invoke!.f);
    open.delete(event.req);
    done.add(event.req);
  }
  expect([...open.keys()], 'invokes without completion').toEqual([]);
}

const outcomes = (events: HistoryEvent[], f: string) => ({
  ok: events.filter((e) => e.f === f && e.type === 'ok').length,
  fail: events.filter((e) => e.f === f && e.type === 'fail').length,
  info: events.filter((e) => e.f === f && e.type === 'info').length,
});

async function expectExit(worker: NodeProcess, code: number): Promise<void> {
  expect(await worker.finish(20_000), worker.dump()).toEqual({ code, signal: null });
}

describe('chaos workers without faults', () => {
  it('four workers on two resources: paired history, rising tokens, fenced and unfenced sets lose nothing', async () => {
    const { dir, store, address } = await setup();
    const resources = [uniqueResource('r1'), uniqueResource('r2')];
    const specs = [
      ['w1', 'fenced-set'],
      ['w2', 'fenced-set'],
      ['w3', 'unfenced-set'],
      ['w4', 'unfenced-set'],
    ] as const;
    const workers = specs.map(([name, workload], i) =>
      startWorker([
        ...['--name', name, '--address', address, '--store', store.url, '--history', dir],
        ...['--workload', workload, '--resources', resources.join(','), '--ttl-ms', String(TTL_MS)],
        ...['--seconds', '4', '--seed', String(7 + i), '--wait-ms', '2000'],
      ]),
    );
    for (const worker of workers) await expectExit(worker, 0);
    await store.flush();

    const all: HistoryEvent[] = [];
    const okElements = { fenced: new Set<number>(), unfenced: new Set<number>() };
    const failedElements = { fenced: new Set<number>(), unfenced: new Set<number>() };
    for (const [i, [name]] of specs.entries()) {
      const events = readEvents(dir, name);
      all.push(...events);
      expectPaired(events);
      for (const event of events) expect(event.writer).toBe(name);
      const acquires = events.filter((e) => e.f === 'acquire');
      expect(outcomes(events, 'acquire').ok, `${name} never acquired`).toBeGreaterThan(0);
      for (const invoke of acquires.filter((e) => e.type === 'invoke')) {
        expect(invoke).toMatchObject({
          req: expect.stringMatching(`^${name}-\\d+$`),
          ttl_ms: TTL_MS,
          wait_ms: 2_000,
        });
        expect(resources).toContain(invoke.resource);
      }
      for (const ok of acquires.filter((e) => e.type === 'ok')) {
        const invoke = acquires.find((e) => e.type === 'invoke' && e.req === ok.req)!;
        expect(ok.lock).toMatch(/^[0-9a-f]{32}$/);
        expect(ok.token).toMatch(/^[1-9]\d*$/);
        expect(ok.resource).toBe(invoke.resource);
        // validity_ms counts from the invoke: what is left of it at the ok is the SDK's remaining validity.
        const elapsedMs = Number(BigInt(ok.t) - BigInt(invoke.t)) / 1e6;
        expect(ok.validity_ms! - elapsedMs).toBeGreaterThan(0);
        expect(ok.validity_ms! - elapsedMs).toBeLessThanOrEqual(TTL_MS);
      }
      // Renewals of its own leases, with the token of their grant.
      for (const keepalive of events.filter((e) => e.f === 'keepalive')) {
        const grant = acquires.find((e) => e.type === 'ok' && e.lock === keepalive.lock);
        expect(grant?.token).toBe(keepalive.token);
        expect(keepalive.validity_ms).toBeGreaterThan(0);
      }
      // Writes: the element is unique to this worker and round; outcomes sorted for the set check.
      const store = specs[i]![1] === 'fenced-set' ? 'fenced' : 'unfenced';
      for (const write of events.filter((e) => e.f === 'store_write' && e.type !== 'invoke')) {
        expect(write.store).toBe(store);
        expect(Math.floor(Number(write.value) / 1_000_000)).toBe(i + 1);
        if (write.type === 'ok') okElements[store].add(Number(write.value));
        if (write.type === 'fail') failedElements[store].add(Number(write.value));
      }
      // The summary line agrees with the history.
      const done = workers[i]!.events('done');
      expect(done, workers[i]!.dump()).toEqual([
        expect.objectContaining({
          worker: name,
          acquire: outcomes(events, 'acquire'),
          store_write: outcomes(events, 'store_write'),
          release: outcomes(events, 'release'),
        }),
      ]);
    }
    expect(okElements.fenced.size).toBeGreaterThan(0);
    expect(okElements.unfenced.size).toBeGreaterThan(0);

    // S3: per resource, tokens strictly increase in the order the grants were seen (all workers merged).
    const grants = all.filter((e) => e.f === 'acquire' && e.type === 'ok');
    grants.sort((a, b) => (BigInt(a.t) < BigInt(b.t) ? -1 : 1));
    for (const resource of resources) {
      const tokens = grants.filter((g) => g.resource === resource).map((g) => BigInt(g.token!));
      for (let k = 1; k < tokens.length; k++) expect(tokens[k]! > tokens[k - 1]!).toBe(true);
    }

    // S4 on the store's own log: accepted fenced writes have non-decreasing tokens per resource, and every
    // refusal was of a token below the highest seen.
    const storeLog = readEvents(dir, 'store');
    const fencedWrites = storeLog.filter((e) => e.store === 'fenced' && e.f === 'store_write');
    expect(fencedWrites.filter((e) => e.type === 'ok').length).toBe(okElements.fenced.size);
    for (const resource of resources) {
      let highest = 0n;
      for (const event of storeLog.filter((e) => e.store === 'fenced' && e.resource === resource)) {
        const token = BigInt(event.token!);
        if (event.type === 'ok') {
          expect(token >= highest, `store accepted ${token} after ${highest}`).toBe(true);
          highest = token;
        } else {
          expect(event).toMatchObject({ type: 'fail', error: { code: 'STALE_TOKEN' } });
        }
      }
    }

    // Set-full: every element acknowledged as written is in the final read; none definitely refused is.
    for (const kind of ['fenced', 'unfenced'] as const) {
      const final = new Set<number>();
      for (const resource of resources) {
        const answer = await fetch(`${store.url}/final-read`, {
          method: 'POST',
          body: JSON.stringify({ store: kind, resource }),
        });
        expect(answer.status).toBe(200);
        for (const x of ((await answer.json()) as { value: number[] }).value) final.add(x);
      }
      for (const x of okElements[kind]) expect(final.has(x), `${kind} lost ${x}`).toBe(true);
      for (const x of failedElements[kind]) expect(final.has(x), `${kind} has refused ${x}`).toBe(false);
    }
    // The final reads are in the store's log, without a token.
    await store.flush();
    const finals = readEvents(dir, 'store').filter((e) => e.f === 'store_read' && e.token === undefined);
    expect(finals).toHaveLength(4);
  });

  it('SIGTERM while holding: releases, records the release, prints the summary, exits 0', async () => {
    const { dir, address } = await setup();
    const resource = uniqueResource('held');
    const worker = startWorker([
      ...['--name', 'w9', '--address', address, '--history', dir, '--resources', resource],
      ...['--workload', 'lock', '--ttl-ms', String(TTL_MS), '--seconds', '30', '--hold-max-factor', '5'],
    ]);
    // A renewal is recorded only while the lease is held: the worker is holding now.
    await waitFor(
      'a keepalive of w9',
      () => {
        if (!worker.running) throw new Error(`w9 exited: ${worker.dump()}`);
        try {
          return readEvents(dir, 'w9').some((e) => e.f === 'keepalive');
        } catch {
          return false;
        }
      },
      15_000,
      20,
    );
    const stopping = worker.stop('SIGTERM');
    expect(await stopping, worker.dump()).toEqual({ code: 0, signal: null });

    const events = readEvents(dir, 'w9');
    expectPaired(events);
    const lastGrant = events.filter((e) => e.f === 'acquire' && e.type === 'ok').at(-1)!;
    const release = events.filter((e) => e.f === 'release' && e.lock === lastGrant.lock);
    expect(release.map((e) => e.type)).toEqual(['invoke', 'ok']);
    expect(events.filter((e) => e.f === 'lost')).toEqual([]);
    expect(worker.events('done')).toEqual([expect.objectContaining({ worker: 'w9', lost: 0 })]);

    // Released for real: another client takes it at once.
    const client = new LockClient({ address, clientId: 'test' });
    onTestFinished(() => client.close());
    const lease = await client.tryAcquire(resource, { ttlMs: TTL_MS });
    expect(lease).not.toBeNull();
    expect(BigInt(lease!.fencingToken) > BigInt(lastGrant.token!)).toBe(true);
  });

  it('a lease lost while holding ends that hold, not the worker: it records the loss and carries on', async () => {
    const { dir, address, server } = await setup();
    const resource = uniqueResource('lost');
    // Seed 2 draws a first hold of 0.325 × 20 × ttl = 6.5 s: time enough to lose the lease while holding it.
    const worker = startWorker([
      ...['--name', 'w8', '--address', address, '--history', dir, '--resources', resource, '--seed', '2'],
      ...['--workload', 'lock', '--ttl-ms', String(TTL_MS), '--seconds', '30', '--hold-max-factor', '20'],
    ]);
    const events = (): HistoryEvent[] => {
      if (!worker.running) throw new Error(`w8 exited: ${worker.dump()}`);
      try {
        return readEvents(dir, 'w8');
      } catch {
        return [];
      }
    };
    await waitFor('a keepalive of w8', () => events().some((e) => e.f === 'keepalive'), 15_000, 20);
    // The server stops answering: no renewal reaches w8, and its lease runs out while it holds.
    process.kill(server.child.pid!, 'SIGSTOP');
    try {
      await waitFor('w8 to record its lease lost', () => events().some((e) => e.f === 'lost'), 10_000, 20);
    } finally {
      process.kill(server.child.pid!, 'SIGCONT');
    }
    await waitFor(
      'w8 to acquire again after the loss',
      () => {
        const all = events();
        return all
          .slice(all.findIndex((e) => e.f === 'lost'))
          .some((e) => e.f === 'acquire' && e.type === 'ok');
      },
      15_000,
      20,
    );
    expect(await worker.stop('SIGTERM'), worker.dump()).toEqual({ code: 0, signal: null });
    expectPaired(readEvents(dir, 'w8'));
    expect(worker.events('done')).toEqual([expect.objectContaining({ worker: 'w8', lost: 1 })]);
  });
});

describe('chaos worker options', () => {
  it('--help prints the flags and exits 0; a bad flag or value exits 2 naming it', async () => {
    const dir = historyDir();
    const base = ['--name', 'w1', '--address', '127.0.0.1:1', '--history', dir, '--resources', 'r1'];
    const help = startWorker(['--help']);
    const unknown = startWorker([...base, '--bogus']);
    const badTtl = startWorker([...base, '--ttl-ms', '5']);
    const noHistory = startWorker([
      ...base.slice(0, 4),
      '--history',
      join(dir, 'missing'),
      '--resources',
      'r',
    ]);
    const noStore = startWorker([...base, '--workload', 'fenced-set']);
    await expectExit(help, 0);
    expect(help.output.join('\n')).toMatch(/--no-hold-check[\s\S]*--pause-before-write-ms/);
    for (const [worker, flag] of [
      [unknown, '--bogus'],
      [badTtl, '--ttl-ms'],
      [noHistory, '--history'],
      [noStore, '--store'],
    ] as const) {
      await expectExit(worker, 2);
      expect(worker.output.join(''), flag).toContain(flag);
    }
  });
});

describe('store service', () => {
  it('fenced reads and writes refuse stale tokens (409), unfenced ignore them, every answer logged in order', async () => {
    const storeRedis = await RedisProcess.start({ name: 'chaos-store' });
    onTestFinished(() => storeRedis.dispose());
    const dir = historyDir();
    const store = await StoreService.start({ dir, redis: `redis://${storeRedis.address}` });
    onTestFinished(() => store.close());
    const post = async (path: string, body: unknown) => {
      const answer = await fetch(`${store.url}${path}`, { method: 'POST', body: JSON.stringify(body) });
      return { status: answer.status, body: (await answer.json()) as Record<string, unknown> };
    };

    expect(await post('/fenced/read', { resource: 'r', token: 5, lock: 'a' })).toEqual({
      status: 200,
      body: { value: [] },
    });
    expect(await post('/fenced/write', { resource: 'r', token: '5', lock: 'a', value: [1] })).toEqual({
      status: 200,
      body: { ok: true },
    });
    // A read registers its token, so the older holder's write is refused even before the newer one writes.
    expect((await post('/fenced/read', { resource: 'r', token: 7, lock: 'b' })).body).toEqual({ value: [1] });
    expect(await post('/fenced/write', { resource: 'r', token: 5, lock: 'a', value: [1, 2] })).toEqual({
      status: 409,
      body: { error: 'STALE_TOKEN', highestToken: 7 },
    });
    expect((await post('/fenced/read', { resource: 'r', token: 6, lock: 'c' })).status).toBe(409);
    // Unfenced: the token is not looked at.
    expect((await post('/unfenced/write', { resource: 'r', token: 9, value: [3] })).status).toBe(200);
    expect((await post('/unfenced/write', { resource: 'r', token: 1, value: [3, 4] })).status).toBe(200);
    expect((await post('/unfenced/read', { resource: 'r', token: 1 })).body).toEqual({ value: [3, 4] });
    expect((await post('/final-read', { store: 'fenced', resource: 'r' })).body).toEqual({ value: [1] });
    // Bad requests reach neither Redis nor the log.
    expect((await post('/fenced/write', { resource: 'r', token: 0, value: [1] })).status).toBe(400);
    expect((await post('/fenced/write', { resource: 'r', token: 8, value: ['x'] })).status).toBe(400);
    expect((await post('/final-read', { store: 'other', resource: 'r' })).status).toBe(400);
    expect((await post('/nowhere', {})).status).toBe(404);

    await store.flush();
    const log = readEvents(dir, 'store').map(({ type, f, store, token, value, error }) => ({
      type,
      f,
      store,
      token,
      value,
      code: error?.code,
    }));
    expect(log).toEqual([
      { type: 'ok', f: 'store_read', store: 'fenced', token: '5', value: [], code: undefined },
      { type: 'ok', f: 'store_write', store: 'fenced', token: '5', value: [1], code: undefined },
      { type: 'ok', f: 'store_read', store: 'fenced', token: '7', value: [1], code: undefined },
      { type: 'fail', f: 'store_write', store: 'fenced', token: '5', value: [1, 2], code: 'STALE_TOKEN' },
      { type: 'fail', f: 'store_read', store: 'fenced', token: '6', value: undefined, code: 'STALE_TOKEN' },
      { type: 'ok', f: 'store_write', store: 'unfenced', token: '9', value: [3], code: undefined },
      { type: 'ok', f: 'store_write', store: 'unfenced', token: '1', value: [3, 4], code: undefined },
      { type: 'ok', f: 'store_read', store: 'unfenced', token: '1', value: [3, 4], code: undefined },
      { type: 'ok', f: 'store_read', store: 'fenced', token: undefined, value: [1], code: undefined },
    ]);

    // Concurrent writes are logged in the order Redis ran them: the accepted tokens never go down.
    const writes = await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        post('/fenced/write', { resource: 'c', token: 100 + ((i * 7) % 40), lock: `l${i}`, value: [i] }),
      ),
    );
    await store.flush();
    const accepted = readEvents(dir, 'store')
      .filter((e) => e.resource === 'c' && e.type === 'ok')
      .map((e) => Number(e.token));
    expect(accepted.length).toBe(writes.filter((w) => w.status === 200).length);
    expect(accepted).toEqual([...accepted].sort((a, b) => a - b));
  });
});
