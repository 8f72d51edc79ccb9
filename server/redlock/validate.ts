import { InvalidArgumentError } from './errors.js';
import { LOCK_ID_PATTERN } from './lock-id.js';

export const MAX_RESOURCE_BYTES = 256;
export const MAX_CLIENT_ID_BYTES = 128;

/** Resource names: 1–256 bytes of visible ASCII (0x21–0x7E). No spaces, control characters or non-ASCII, so a
 *  name is exactly its bytes (no Unicode confusables) and safe in logs and Redis keys. */
export function validateResource(resource: unknown, reserved: readonly string[] = []): string {
  if (resource !== undefined && typeof resource !== 'string') {
    throw new InvalidArgumentError(
      'resource',
      'RESOURCE_NAME_INVALID',
      `resource must be a string of 1–256 visible ASCII characters, got ${describe(resource)}`,
    );
  }
  if (resource === undefined || resource.length === 0) {
    throw new InvalidArgumentError(
      'resource',
      'RESOURCE_NAME_REQUIRED',
      'resource is required: give a name of 1–256 visible ASCII characters',
    );
  }
  if (resource.length > MAX_RESOURCE_BYTES) {
    throw new InvalidArgumentError(
      'resource',
      'RESOURCE_NAME_TOO_LONG',
      `resource is ${resource.length} characters long; the limit is ${MAX_RESOURCE_BYTES}`,
    );
  }
  for (let i = 0; i < resource.length; i++) {
    const c = resource.charCodeAt(i);
    if (c < 0x21 || c > 0x7e) {
      throw new InvalidArgumentError(
        'resource',
        'RESOURCE_NAME_INVALID',
        `resource may contain only visible ASCII characters (0x21–0x7E); found U+${c.toString(16).toUpperCase().padStart(4, '0')} at position ${i}`,
      );
    }
  }
  for (const prefix of reserved) {
    if (resource.startsWith(prefix)) {
      throw new InvalidArgumentError(
        'resource',
        'RESOURCE_NAME_RESERVED',
        `resource may not start with "${prefix}": that prefix is reserved for internal keys`,
      );
    }
  }
  return resource;
}

export function validateTtl(ttlMs: unknown, minTtlMs: number, maxTtlMs: number, field = 'ttl_ms'): number {
  if (typeof ttlMs !== 'number' || !Number.isInteger(ttlMs)) {
    throw new InvalidArgumentError(
      field,
      'TTL_NOT_INTEGER',
      `${field} must be a whole number of milliseconds in [${minTtlMs}, ${maxTtlMs}], got ${describe(ttlMs)}`,
    );
  }
  if (ttlMs < minTtlMs || ttlMs > maxTtlMs) {
    throw new InvalidArgumentError(
      field,
      'TTL_OUT_OF_RANGE',
      `${field} must be in [${minTtlMs}, ${maxTtlMs}] ms, got ${ttlMs}`,
    );
  }
  return ttlMs;
}

export function validateLockId(lockId: unknown): string {
  if (typeof lockId !== 'string' || !LOCK_ID_PATTERN.test(lockId)) {
    const got = typeof lockId === 'string' ? `${lockId.length} characters` : describe(lockId);
    throw new InvalidArgumentError(
      'lock_id',
      'LOCK_ID_INVALID',
      `lock_id must be 32 lowercase hex characters, got ${got}`,
    );
  }
  return lockId;
}

export function validateClientId(clientId: unknown): string {
  if (clientId === undefined) return '';
  if (typeof clientId !== 'string') {
    throw new InvalidArgumentError(
      'client_id',
      'CLIENT_ID_INVALID',
      `client_id must be a string, got ${describe(clientId)}`,
    );
  }
  if (Buffer.byteLength(clientId) > MAX_CLIENT_ID_BYTES) {
    throw new InvalidArgumentError(
      'client_id',
      'CLIENT_ID_TOO_LONG',
      `client_id is longer than ${MAX_CLIENT_ID_BYTES} bytes`,
    );
  }
  // biome-ignore lint/suspicious/noControlCharactersInRegex: the point is to reject them
  if (/[\u0000-\u001f\u007f]/.test(clientId)) {
    throw new InvalidArgumentError(
      'client_id',
      'CLIENT_ID_INVALID',
      'client_id may not contain control characters',
    );
  }
  return clientId;
}

function describe(value: unknown): string {
  if (typeof value === 'number') return String(value);
  if (typeof value === 'string') return `the string "${value.slice(0, 20)}"`;
  return value === null ? 'null' : typeof value;
}
