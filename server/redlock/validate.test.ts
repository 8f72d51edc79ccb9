import { describe, expect, it } from 'vitest';
import { rejection, startCluster } from '../../test/support/engine.js';
import { InvalidArgumentError } from './errors.js';
import { LOCK_ID_PATTERN, newLockId } from './lock-id.js';
import { resolveOptions } from './options.js';

describe('bad input is refused before anything reaches Redis', () => {
  const resources: [string, unknown, string][] = [
    ['empty', '', 'RESOURCE_NAME_REQUIRED'],
    ['missing', undefined, 'RESOURCE_NAME_REQUIRED'],
    ['257 bytes', 'x'.repeat(257), 'RESOURCE_NAME_TOO_LONG'],
    ['a newline', 'a\nb', 'RESOURCE_NAME_INVALID'],
    ['a NUL', 'a\u0000b', 'RESOURCE_NAME_INVALID'],
    ['a space', 'a b', 'RESOURCE_NAME_INVALID'],
    ['non-ASCII (NFC é)', 'caf\u00e9', 'RESOURCE_NAME_INVALID'],
    ['DEL', 'a\u007f', 'RESOURCE_NAME_INVALID'],
  ];
  const ttls: [unknown, string][] = [
    [0, 'TTL_OUT_OF_RANGE'],
    [-5, 'TTL_OUT_OF_RANGE'],
    [99, 'TTL_OUT_OF_RANGE'],
    [10_001, 'TTL_OUT_OF_RANGE'],
    [1.5, 'TTL_NOT_INTEGER'],
    [Number.NaN, 'TTL_NOT_INTEGER'],
    [Number.POSITIVE_INFINITY, 'TTL_NOT_INTEGER'],
    ['100', 'TTL_NOT_INTEGER'],
    [2 ** 53 + 1, 'TTL_OUT_OF_RANGE'],
  ];

  it('names the field and says what to fix, for every bad resource, ttl, lock id and client id', async () => {
    const { cluster, engine } = await startCluster();
    for (const [what, resource, reason] of resources) {
      const error = await rejection(engine.acquire(resource as string), InvalidArgumentError);
      expect(error, what).toMatchObject({ field: 'resource', reason, code: 'INVALID_ARGUMENT' });
      expect(error.message, what).toMatch(/resource/);
    }
    for (const [ttlMs, reason] of ttls) {
      const error = await rejection(engine.acquire('ok', { ttlMs: ttlMs as number }), InvalidArgumentError);
      expect(error, String(ttlMs)).toMatchObject({ field: 'ttl_ms', reason });
      expect(error.message).toContain('[100, 10000]');
    }
    for (const lockId of ['', 'xyz', 'A'.repeat(32), `${'a'.repeat(31)}g`, 'a'.repeat(33)]) {
      const error = await rejection(engine.release('ok', lockId), InvalidArgumentError);
      expect(error).toMatchObject({ field: 'lock_id', reason: 'LOCK_ID_INVALID' });
      await rejection(engine.extend('ok', lockId, 1_000), InvalidArgumentError);
      await rejection(engine.acquire('ok', { lockId }), InvalidArgumentError);
    }
    expect(
      await rejection(engine.acquire('ok', { clientId: 'c'.repeat(129) }), InvalidArgumentError),
    ).toMatchObject({
      field: 'client_id',
      reason: 'CLIENT_ID_TOO_LONG',
    });
    expect(await rejection(engine.acquire('ok', { clientId: 'a\tb' }), InvalidArgumentError)).toMatchObject({
      field: 'client_id',
    });
    expect(await rejection(engine.extend('ok', newLockId(), 0), InvalidArgumentError)).toMatchObject({
      field: 'ttl_ms',
    });
    // Only the engine's own marker exists: no lock, holder or fence key was ever written.
    for (const node of cluster.nodes) {
      const keys = (await node.command('KEYS', '*')) as string[];
      expect(keys.filter((k) => k !== 'redlease:run-id')).toEqual([]);
    }
  });

  it('with an empty key prefix (shared keys with other Redlock clients), names that hit internal keys are refused', async () => {
    const { cluster, engine } = await startCluster({ keyPrefix: '' });
    for (const name of ['fence:a', 'lkh:a', 'redlease:released']) {
      expect(await rejection(engine.acquire(name), InvalidArgumentError)).toMatchObject({
        reason: 'RESOURCE_NAME_RESERVED',
      });
    }
    const lease = await engine.acquire('a');
    expect(await cluster.nodes[0]!.command('GET', 'a')).toBe(lease.lockId);
  });
});

describe('lock ids', () => {
  it('are 128-bit random hex: 100 000 of them are distinct, well-formed and not sequential', () => {
    const ids = Array.from({ length: 100_000 }, newLockId);
    expect(new Set(ids).size).toBe(ids.length);
    for (const id of ids) if (!LOCK_ID_PATTERN.test(id)) throw new Error(`malformed lock id ${id}`);
    const consecutive = ids.slice(1).filter((id, i) => BigInt(`0x${id}`) - BigInt(`0x${ids[i]}`) === 1n);
    expect(consecutive).toHaveLength(0);
  });
});

describe('engine configuration', () => {
  it('rejects unusable options with a message naming the option', () => {
    expect(() => resolveOptions({ nodes: [] })).toThrow('at least one Redis node');
    expect(() => resolveOptions({ nodes: ['localhost'] })).toThrow('expected host:port, got "localhost"');
    expect(() => resolveOptions({ nodes: ['127.0.0.1:70000'] })).toThrow('port must be an integer 1–65535');
    expect(() => resolveOptions({ nodes: ['127.0.0.1:1'], nodeTimeoutMs: 0 })).toThrow('nodeTimeoutMs');
    expect(() => resolveOptions({ nodes: ['127.0.0.1:1'], minTtlMs: 5_000, maxTtlMs: 1_000 })).toThrow(
      'minTtlMs',
    );
    expect(() => resolveOptions({ nodes: ['127.0.0.1:1'], fencePrefix: 'lk:x' })).toThrow('overlap');
    expect(() =>
      resolveOptions({
        nodes: ['127.0.0.1:1', '127.0.0.1:1'].map((a, i) => ({
          name: 'n',
          host: a.split(':')[0]!,
          port: i + 1,
        })),
      }),
    ).toThrow('unique');
    expect(() => resolveOptions({ nodes: ['127.0.0.1:1'], mode: 'quorum' as 'redlock' })).toThrow(
      'mode must be',
    );
    expect(resolveOptions({ nodes: ['[::1]:6379', 'redis.local:6380'] }).nodes.map((n) => n.address)).toEqual(
      ['[::1]:6379', 'redis.local:6380'],
    );
  });
});
