import { randomFillSync } from 'node:crypto';

/** Random bytes fetched from the OS CSPRNG at a time: one syscall serves 256 lock ids instead of one each. */
const POOL_BYTES = 4_096;
const ID_BYTES = 16;
const pool = Buffer.allocUnsafe(POOL_BYTES);
let offset = POOL_BYTES;

/** A fresh lock id: 128 random bits from the OS CSPRNG as 32 lowercase hex chars. Never derived from time,
 *  pid or counters: the lock id is the capability to release, so it must be unguessable. Bytes come from a pool
 *  that is refilled from the CSPRNG when used up; each byte is handed out once. */
export function newLockId(): string {
  if (offset + ID_BYTES > POOL_BYTES) {
    randomFillSync(pool);
    offset = 0;
  }
  const id = pool.toString('hex', offset, offset + ID_BYTES);
  offset += ID_BYTES;
  return id;
}

export const LOCK_ID_PATTERN = /^[0-9a-f]{32}$/;
