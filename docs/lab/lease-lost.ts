/**
 * Lab exercise 5 with the SDK (docs/lab.md): a holder that freezes past its lease learns it the moment it runs
 * again (its lease's signal aborts, `isHeld()` is false), and its late write is refused by the fenced store,
 * because the next holder's fencing token is larger.
 *
 *   npx tsx docs/lab/lease-lost.ts      # against the demo: server 127.0.0.1:50051, store Redis 127.0.0.1:6390
 */
import { FencedStore, LockClient, StaleTokenError } from '../../client/src/index.js';

const address = process.env.REDLEASE_ADDRESS ?? '127.0.0.1:50051';
const store = await FencedStore.connect({ redis: process.env.REDLEASE_STORE ?? 'redis://127.0.0.1:6390' });
const slow = new LockClient({ address, clientId: 'slow' });
const fast = new LockClient({ address, clientId: 'fast' });
const resource = `lab-5-sdk-${process.pid}`;
const key = `report:${resource}`;

const lease = await slow.acquire(resource, { ttlMs: 1_000 });
lease.signal.addEventListener('abort', () => {
  console.log(`slow: my lease's signal aborted: ${(lease.signal.reason as Error).message}`);
});
console.log(`slow: holding ${resource} with fencing token ${lease.fencingToken}`);
await store.read(key, lease.fencingToken);

// A stop-the-world pause (a long GC, a VM migration, SIGSTOP): nothing runs, so no renewal goes out, and the
// 1 s lease expires in Redis while the holder still "has" it.
Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 2_500);
console.log(`slow: awake again, isHeld() = ${lease.isHeld()}`);

const next = await fast.acquire(resource, { ttlMs: 5_000, waitMs: 5_000 });
console.log(`fast: holding ${resource} with fencing token ${next.fencingToken}`);
await store.write(key, 'written by fast', next.fencingToken);

try {
  // What a holder that ignores its signal would do: write anyway.
  await store.write(key, 'written by slow', lease.fencingToken);
  console.log('slow: my late write landed (this must not happen)');
  process.exitCode = 1;
} catch (error) {
  if (!(error instanceof StaleTokenError)) throw error;
  console.log(`slow: late write refused: ${error.message}`);
}
console.log(`store: ${(await store.peek(key)).value}`);

await next.release();
await Promise.all([slow.close(), fast.close(), store.close()]);
