import { randomBytes } from 'node:crypto';

/** A fresh lock id: 128 random bits from the OS CSPRNG as 32 lowercase hex chars. Never derived from time,
 *  pid or counters: the lock id is the capability to release, so it must be unguessable. */
export function newLockId(): string {
  return randomBytes(16).toString('hex');
}

export const LOCK_ID_PATTERN = /^[0-9a-f]{32}$/;
