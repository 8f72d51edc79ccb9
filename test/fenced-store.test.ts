import { randomUUID } from 'node:crypto';
import { createServer, type Socket } from 'node:net';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { FencedStore, StaleTokenError } from '../client/src/fenced-store.js';
import { freePort } from '../scripts/lib/free-port.js';
import { RedisProcess } from '../scripts/lib/redis-process.js';
import { rejection } from '../scripts/lib/wait.js';

let redis: RedisProcess;

beforeAll(async () => {
  redis = await RedisProcess.start({ name: 'fenced-store' });
});

afterAll(async () => {
  await redis?.dispose();
});

/** A key prefix no other test uses, so tests sharing the Redis never see each other's keys. */
function uniquePrefix(): string {
  return `test-${randomUUID().slice(0, 8)}:`;
}

/** A store on the shared Redis with its own key prefix, closed when the test ends. */
async function openStore(keyPrefix = uniquePrefix()): Promise<FencedStore> {
  const store = await FencedStore.connect({ redis: `redis://${redis.address}`, keyPrefix });
  onTestFinished(() => store.close());
  return store;
}

type WriteFn = (key: string, value: string, token: number) => Promise<{ previousToken: number }>;
type Attempt =
  | { token: number; accepted: true; previousToken: number }
  | { token: number; accepted: false; highestToken: number };

/** Deterministic shuffle (mulberry32), so a failing order can be reproduced. */
function shuffled<T>(items: readonly T[], seed: number): T[] {
  const out = [...items];
  let state = seed;
  const random = (): number => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

/** Fires one write per token at once (round-robin over `writers`) and records how each ended. */
async function concurrentWrites(writers: WriteFn[], key: string, tokens: number[]): Promise<Attempt[]> {
  return await Promise.all(
    tokens.map(async (token, i): Promise<Attempt> => {
      try {
        const { previousToken } = await writers[i % writers.length]!(key, `v${token}`, token);
        return { token, accepted: true, previousToken };
      } catch (error) {
        if (!(error instanceof StaleTokenError)) throw error;
        return { token, accepted: false, highestToken: error.highestToken };
      }
    }),
  );
}

/**
 * S4 on a write history. Every accepted write reports the largest token seen before it, so the accepted writes
 * sorted by token must form one chain: each reports exactly the token of the one before (the first reports 0).
 * That holds only if each write saw every accepted write with a smaller token, i.e. accepted tokens are
 * non-decreasing in acceptance order. A check-then-set that is not atomic lets two writes see the same maximum
 * and both be accepted, which breaks the chain. Every refusal must name a larger token that was accepted.
 */
function s4Violations(attempts: Attempt[]): string[] {
  const violations: string[] = [];
  const accepted = attempts.filter((a) => a.accepted).sort((a, b) => a.token - b.token);
  const acceptedTokens = new Set(accepted.map((a) => a.token));
  accepted.forEach((a, i) => {
    const expected = i === 0 ? 0 : accepted[i - 1]!.token;
    if (a.previousToken !== expected) {
      violations.push(`token ${a.token} accepted after seeing ${a.previousToken}, expected ${expected}`);
    }
  });
  for (const a of attempts) {
    if (!a.accepted && (a.highestToken <= a.token || !acceptedTokens.has(a.highestToken))) {
      violations.push(`token ${a.token} refused for ${a.highestToken}, which is not a larger accepted token`);
    }
  }
  return violations;
}

/** Large tokens like the ones the coordinator issues (microseconds since the epoch and up), shuffled. */
function shuffledTokens(count: number, seed: number): number[] {
  return shuffled(
    Array.from({ length: count }, (_, i) => 1_700_000_000_000_000 + i),
    seed,
  );
}

describe('FencedStore', () => {
  it('round-trips a value through write, read and peek, as one hash per key', async () => {
    const prefix = uniquePrefix();
    const store = await openStore(prefix);

    expect(await store.peek('orders')).toEqual({ value: null, token: 0 });
    expect(await store.write('orders', 'v1', 5)).toEqual({ previousToken: 0 });
    expect(await store.peek('orders')).toEqual({ value: 'v1', token: 5 });
    expect(await store.read('orders', 5)).toEqual({ value: 'v1', highestToken: 5 });
    expect(await store.write('orders', 'v2', 7)).toEqual({ previousToken: 5 });
    expect(await store.read('orders', 9)).toEqual({ value: 'v2', highestToken: 7 });
    // The read registered token 9; the value is untouched.
    expect(await store.peek('orders')).toEqual({ value: 'v2', token: 9 });
    expect(await redis.command('HGETALL', `${prefix}orders`)).toEqual(['value', 'v2', 'token', '9']);

    // A read of a key nobody wrote registers the token and returns no value.
    expect(await store.read('fresh', 3)).toEqual({ value: null, highestToken: 0 });
    expect(await store.peek('fresh')).toEqual({ value: null, token: 3 });
  });

  it('refuses a write with a smaller token than one already seen, and changes nothing', async () => {
    const store = await openStore();
    await store.write('orders', 'from 42', 42);

    const error = await rejection(store.write('orders', 'from 41', 41), StaleTokenError);
    expect(error).toMatchObject({ name: 'StaleTokenError', operation: 'write', key: 'orders', token: 41 });
    expect(error.highestToken).toBe(42);
    expect(error.message).toBe(
      'fenced write to "orders" refused: token 41 is older than token 42 already seen',
    );
    expect(await store.peek('orders')).toEqual({ value: 'from 42', token: 42 });

    const readError = await rejection(store.read('orders', 41), StaleTokenError);
    expect(readError).toMatchObject({ operation: 'read', key: 'orders', token: 41, highestToken: 42 });
    expect(readError.message).toBe(
      'fenced read of "orders" refused: token 41 is older than token 42 already seen',
    );
    expect(await store.peek('orders')).toEqual({ value: 'from 42', token: 42 });
  });

  it('accepts an equal token (the same lease) for reads and writes', async () => {
    const store = await openStore();
    expect(await store.write('orders', 'a', 8)).toEqual({ previousToken: 0 });
    expect(await store.write('orders', 'b', 8)).toEqual({ previousToken: 8 });
    expect(await store.read('orders', 8)).toEqual({ value: 'b', highestToken: 8 });
    expect(await store.write('orders', 'c', 8)).toEqual({ previousToken: 8 });
    expect(await store.peek('orders')).toEqual({ value: 'c', token: 8 });
  });

  it('a fenced read registers its token: a later write with an older token is refused (read-modify-write)', async () => {
    const store = await openStore();
    await store.write('counter', '1', 10);

    // The holder of 11 reads and has not written yet; the paused holder of 10 wakes up and writes.
    expect(await store.read('counter', 11)).toEqual({ value: '1', highestToken: 10 });
    const error = await rejection(store.write('counter', 'stale', 10), StaleTokenError);
    expect(error).toMatchObject({ token: 10, highestToken: 11 });
    expect(await store.peek('counter')).toEqual({ value: '1', token: 11 });

    // The holder of 11 completes its read-modify-write on the value it read.
    expect(await store.write('counter', '2', 11)).toEqual({ previousToken: 11 });
    expect(await store.peek('counter')).toEqual({ value: '2', token: 11 });
  });

  it('compares tokens exactly up to 2^53-1', async () => {
    const store = await openStore();
    // Numbers, not strings: "10" sorts before "9".
    await store.write('digits', 'nine', 9);
    expect(await store.write('digits', 'ten', 10)).toEqual({ previousToken: 9 });
    expect(await rejection(store.read('digits', 9), StaleTokenError)).toMatchObject({ highestToken: 10 });

    const max = Number.MAX_SAFE_INTEGER;
    await store.write('edge', 'top', max);
    expect(await store.peek('edge')).toEqual({ value: 'top', token: max });
    expect(await rejection(store.write('edge', 'below', max - 1), StaleTokenError)).toMatchObject({
      token: max - 1,
      highestToken: max,
    });

    // Adjacent microsecond-sized tokens must not collapse into one (or print in exponent notation).
    await store.write('micros', 'later', 1_700_000_000_000_001);
    expect(
      await rejection(store.write('micros', 'earlier', 1_700_000_000_000_000), StaleTokenError),
    ).toMatchObject({ highestToken: 1_700_000_000_000_001 });
  });

  it('concurrent writes with shuffled tokens from many connections: accepted tokens only grow', async () => {
    const prefix = uniquePrefix();
    const stores = await Promise.all(Array.from({ length: 8 }, () => openStore(prefix)));
    const tokens = shuffledTokens(200, 0x5eed);

    const attempts = await concurrentWrites(
      stores.map((s) => s.write.bind(s)),
      'shared',
      tokens,
    );

    expect(s4Violations(attempts)).toEqual([]);
    const top = Math.max(...tokens);
    expect(attempts.find((a) => a.token === top)?.accepted).toBe(true);
    expect(await stores[0]!.peek('shared')).toEqual({ value: `v${top}`, token: top });
  });

  it('the S4 check above catches a check-then-set that is not atomic', async () => {
    // The same rule done as HGET then HSET from the client: the check and the write are separate commands.
    const prefix = uniquePrefix();
    const client = new Redis({ host: redis.host, port: redis.port, lazyConnect: true });
    await client.connect();
    onTestFinished(() => client.disconnect());
    const naiveWrite: WriteFn = async (key, value, token) => {
      const max = Number((await client.hget(prefix + key, 'token')) ?? 0);
      if (token < max) throw new StaleTokenError('write', key, token, max);
      await client.hset(prefix + key, 'value', value, 'token', String(token));
      return { previousToken: max };
    };

    // All 200 HGETs leave on the one connection before any HSET can, so every write sees the same maximum: the
    // check must report the broken chain whatever the timing.
    const attempts = await concurrentWrites([naiveWrite], 'shared', shuffledTokens(200, 0x5eed));
    expect(s4Violations(attempts).length).toBeGreaterThan(0);
  });

  it('rejects invalid arguments before reaching Redis, saying what to fix', async () => {
    const store = await openStore();
    const mib = 1024 * 1024;

    await expect(store.read('', 1)).rejects.toThrow(new RangeError('key must be a non-empty string'));
    await expect(store.write('é'.repeat(513), 'v', 1)).rejects.toThrow(
      new RangeError('key must be at most 1024 bytes in UTF-8, got 1026: use a shorter key'),
    );
    await expect(store.peek(7 as unknown as string)).rejects.toThrow(
      new TypeError('key must be a string, got number'),
    );
    for (const token of [0, -1, 1.5, Number.NaN, Number.MAX_SAFE_INTEGER + 1]) {
      await expect(store.write('k', 'v', token)).rejects.toThrow(RangeError);
      await expect(store.read('k', token)).rejects.toThrow(/^token must be a positive safe integer/);
    }
    await expect(store.write('k', 'v', '5' as unknown as number)).rejects.toThrow(
      new TypeError("token must be a number (the lease's fencing token), got string"),
    );
    await expect(store.write('k', { n: 1 } as unknown as string, 1)).rejects.toThrow(
      new TypeError('value must be a string (serialize other data first), got object'),
    );
    await expect(store.write('k', 'x'.repeat(mib + 1), 1)).rejects.toThrow(
      new RangeError(`value must be at most ${mib} bytes (1 MiB) in UTF-8, got ${mib + 1}`),
    );
    expect(await store.peek('k')).toEqual({ value: null, token: 0 });

    // The limits themselves are allowed.
    expect(await store.write('k'.repeat(1024), 'x'.repeat(mib), 1)).toEqual({ previousToken: 0 });
    expect((await store.peek('k'.repeat(1024))).value).toHaveLength(mib);

    await expect(FencedStore.connect({ redis: 'http://127.0.0.1:6379' })).rejects.toThrow(
      new TypeError('redis must use redis:// or rediss://, got "http:"'),
    );
    await expect(
      FencedStore.connect({ redis: `redis://${redis.address}`, commandTimeoutMs: 0 }),
    ).rejects.toThrow(
      new RangeError('commandTimeoutMs must be a positive integer number of milliseconds, got 0'),
    );
  });

  it('connecting where nothing listens rejects at once, naming the address', async () => {
    const port = await freePort();
    // A connect timeout longer than the test's own timeout: this passes only if the refusal is reported as such.
    const error = await rejection(
      FencedStore.connect({ redis: `redis://127.0.0.1:${port}`, connectTimeoutMs: 60_000 }),
      Error,
    );
    expect(error.message).toMatch(`FencedStore: cannot connect to Redis at 127.0.0.1:${port}: `);
    expect(error.message).toMatch('ECONNREFUSED');
  });

  it('connecting to a server that never answers rejects after connectTimeoutMs, naming the address', async () => {
    const sockets = new Set<Socket>();
    const silent = createServer((socket) => sockets.add(socket));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    onTestFinished(async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => silent.close(resolve));
    });
    const { port } = silent.address() as { port: number };

    const error = await rejection(
      FencedStore.connect({ redis: `redis://127.0.0.1:${port}`, connectTimeoutMs: 100 }),
      Error,
    );
    expect(error.message).toMatch(
      `FencedStore: Redis at 127.0.0.1:${port} did not answer within 100 ms (connectTimeoutMs)`,
    );
  });

  it('a Redis that stops answering fails calls with an error naming it, not a StaleTokenError', async () => {
    const own = await RedisProcess.start({ name: 'fenced-store-paused' });
    onTestFinished(() => own.dispose());
    const store = await FencedStore.connect({ redis: `redis://${own.address}`, commandTimeoutMs: 100 });
    await store.write('k', 'v', 1);

    own.pause();
    const error = await rejection(store.write('k', 'v2', 2), Error);
    expect(error).not.toBeInstanceOf(StaleTokenError);
    expect(error.message).toBe(
      `FencedStore: fenced write to "k" failed on Redis at ${own.address}: Command timed out`,
    );
    // close() does not hang on a Redis that does not answer.
    await store.close();
  });

  it('close is idempotent and later calls are rejected', async () => {
    const store = await FencedStore.connect({ redis: `redis://${redis.address}`, keyPrefix: uniquePrefix() });
    await store.write('k', 'v', 1);
    const first = store.close();
    expect(store.close()).toBe(first);
    await first;
    await store.close();
    await store[Symbol.asyncDispose]();
    await expect(store.write('k', 'v', 2)).rejects.toThrow('FencedStore: fenced write to "k" after close()');
    await expect(store.peek('k')).rejects.toThrow('after close()');
  });
});
