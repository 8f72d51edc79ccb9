import type { Redis } from 'ioredis';

/**
 * ioredis bounds the TCP connect (`connectTimeout`), not the ready check it sends once connected: on a link that
 * accepts connections but lost the check (a healed blackhole, a half-open peer) the connection would wait for
 * ever. Calls `onStuck` when a connection made is not ready within `timeoutMs`; the caller makes it again.
 */
export function boundReadyCheck(redis: Redis, timeoutMs: number, onStuck: () => void): void {
  let timer: NodeJS.Timeout | undefined;
  redis.on('connect', () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      if (redis.status !== 'ready') onStuck();
    }, timeoutMs);
    timer.unref();
  });
  redis.on('ready', () => clearTimeout(timer));
  redis.on('close', () => clearTimeout(timer));
}
