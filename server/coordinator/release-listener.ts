import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { ResolvedNode } from '../redlock/options.js';
import { boundReadyCheck } from '../redlock/ready-check.js';

/**
 * Subscribes to the engine's release channel on every node, so a waiter on this server is woken by a release
 * made through any server replica (the release script PUBLISHes the resource name on each node where it deleted
 * the lock). One subscriber connection per node, separate from the engine's command connection: a connection in
 * subscribe mode can run nothing else. A node that is down only delays wake-ups to the fallback timer; the
 * subscription is restored on reconnect (ioredis re-subscribes by itself).
 */
export class ReleaseListener {
  private readonly subscribers: Redis[];
  /** Settles per node when its first SUBSCRIBE succeeded or failed. */
  private readonly subscribed: Promise<void>[] = [];
  private closed = false;

  constructor(
    nodes: readonly ResolvedNode[],
    private readonly channel: string,
    private readonly onRelease: (resource: string) => void,
    private readonly log: Logger | undefined,
    /** How long a new connection may take to become ready (its ready check answered) before it is made again. */
    private readonly readyTimeoutMs = 2_000,
  ) {
    this.subscribers = nodes.map((node) => this.subscribe(node));
  }

  private subscribe(node: ResolvedNode): Redis {
    const redis = new Redis({
      host: node.host,
      port: node.port,
      username: node.username,
      password: node.password,
      tls: node.tls,
      connectionName: 'redlease-releases',
      // Waits for the connection instead of failing the SUBSCRIBE: there is nothing to fail fast for here.
      enableOfflineQueue: true,
      maxRetriesPerRequest: null,
      retryStrategy: (times: number) => Math.min(25 * 2 ** Math.min(times, 6), 1_000),
    });
    let reportedDown = false;
    redis.on('error', (error: Error) => {
      // The engine reports node outages; one debug line per outage here is enough.
      if (!reportedDown)
        this.log?.debug({ node: node.name, err: error.message }, 'release listener disconnected');
      reportedDown = true;
    });
    // Otherwise, after a healed blackhole, waiters here would hear of releases only by their timers.
    boundReadyCheck(redis, this.readyTimeoutMs, () => {
      if (!this.closed) redis.disconnect(true);
    });
    redis.on('ready', () => {
      reportedDown = false;
    });
    redis.on('message', (_channel: string, resource: string) => this.onRelease(resource));
    this.subscribed.push(
      redis.subscribe(this.channel).then(
        () => undefined,
        (error: Error) => {
          if (this.closed) return;
          // e.g. NOPERM when the node's ACL lacks the channel: waiters then fall back to timers.
          this.log?.warn(
            { node: node.name, err: error.message, channel: this.channel },
            'cannot subscribe to release announcements: hand-off to waiters falls back to timers; allow the channel in the ACL',
          );
        },
      ),
    );
    return redis;
  }

  /** Resolves once every node's subscription is in place (or failed), or after `timeoutMs` (nodes down). */
  async ready(timeoutMs: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.all(this.subscribed),
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, timeoutMs);
      }),
    ]);
    clearTimeout(timer);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const redis of this.subscribers) redis.disconnect();
  }
}
