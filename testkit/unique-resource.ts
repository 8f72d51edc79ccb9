import { randomUUID } from 'node:crypto';

/** A resource name no other test uses, so tests sharing nodes never see each other's keys. */
export function uniqueResource(tag = 'r'): string {
  return `${tag}-${randomUUID().slice(0, 8)}`;
}
