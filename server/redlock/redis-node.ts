import { EventEmitter } from 'node:events';
import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { isNodeTimeout, withinNodeTimeout } from './node-timeout.js';
import type { ResolvedNode, ResolvedOptions } from './options.js';
import { boundReadyCheck } from './ready-check.js';
import { runScript, type Script } from './scripts.js';
import type { NodeStatus } from './types.js';

/** What a node's INFO says about its identity and safety. */
interface NodeIdentity {
  runId: string;
  uptimeSeconds: number;
  maxmemoryPolicy: string;
  aofEnabled: boolean;
}

/** A node's answer to one command, stamped with whether it may count as a vote. */
export type NodeReply<T> =
  | { ok: true; value: T; voting: boolean; detail: string }
  | { ok: false; voting: false; detail: string };

/**
 * One Redis node: a single multiplexed connection that fails fast (no offline queue, a per-command timeout,
 * no resending after a reconnect), plus the node's identity.
 *
 * Vote gating: every connection loss bumps `generation`, and a node votes only after its INFO was read on the
 * current connection. A node that restarted therefore cannot vote through its new incarnation before the engine
 * has seen its new run_id and quarantined it — there is no window between restart and detection.
 */
export class RedisNode extends EventEmitter {
  readonly name: string;
  readonly address: string;
  readonly redis: Redis;
  private generation = 0;
  private verifiedGeneration = -1;
  private identity: NodeIdentity | undefined;
  private readonly markerKey: string;
  private marker: string | null = null;
  /** First identified, not yet admitted by the engine (see Redlock.admitFirstContacts). */
  private pending = false;
  /** Admitted, but not to be marked yet: the engine cannot vouch for its data (see Redlock.admitFirstContacts). */
  private markerHeld = false;
  /** The generation last recycled (see recycle). */
  private recycled = -1;
  /** Has answered, or failed to connect, at least once since the engine started. */
  contacted = false;
  /** The marker as found at first contact: null = missing (fresh, or data lost); undefined = not yet seen. */
  markerAtFirstContact: string | null | undefined;
  private latencyMs = 0;
  private lastError = '';
  private healthy = false;
  private restarts = 0;
  private quarantineUntil = 0;
  private quarantineReason = '';
  private closed = false;
  /** Per-command timeout (the engine's nodeTimeoutMs), applied by withinNodeTimeout. */
  private readonly timeoutMs: number;

  constructor(
    config: ResolvedNode,
    options: ResolvedOptions,
    private readonly log: Logger | undefined,
  ) {
    super();
    this.name = config.name;
    this.address = config.address;
    this.markerKey = `${options.systemPrefix}run-id`;
    this.timeoutMs = options.nodeTimeoutMs;
    this.redis = new Redis({
      host: config.host,
      port: config.port,
      username: config.username,
      password: config.password,
      tls: config.tls,
      db: config.db,
      connectionName: 'redlease',
      enableOfflineQueue: false,
      enableReadyCheck: true,
      // No commandTimeout: every command goes through bounded(), whose timeout tells a slow node from a stalled
      // process and resets the connection.
      connectTimeout: options.connectTimeoutMs,
      maxRetriesPerRequest: 0,
      // A command cut off by a disconnect has an unknown outcome; resending it to a restarted node could
      // create a lock nobody waits for. It counts as no vote instead.
      autoResendUnfulfilledCommands: false,
      enableAutoPipelining: true,
      // Reconnect quickly at first (a restarted node should rejoin in well under a second), then back off to
      // 1 s with jitter so a dead node costs little.
      retryStrategy: (times: number) =>
        Math.min(25 * 2 ** Math.min(times, 6), 1_000) + Math.floor(Math.random() * 25),
    });
    this.redis.on('error', (error: Error) => {
      this.recordError(error);
      this.markContacted();
    });
    this.redis.on('close', () => {
      this.generation++;
      if (this.healthy && !this.closed) this.log?.warn({ node: this.name }, 'node connection lost');
      this.healthy = false;
      this.markContacted();
      this.emit('change');
    });
    this.redis.on('ready', () => void this.check());
    // A blackholed link would otherwise leave the node out even once it heals.
    boundReadyCheck(this.redis, options.connectTimeoutMs, () => this.recycle('no answer to the ready check'));
  }

  /**
   * A command that timed out leaves the connection in an unknown state: its reply may still come (it is then
   * matched to it, harmlessly), or never (the request or the reply was lost on the way, say by a middlebox), and
   * then every later reply would be matched to the command before it: a vote read from another command's reply.
   * So the connection is dropped and made again: its generation changes, so nothing still in flight on it
   * counts as a vote, and the new one votes only after its identity was checked. Once per connection.
   */
  private recycle(why: string): void {
    if (this.recycled === this.generation || this.closed) return;
    this.recycled = this.generation;
    this.log?.warn({ node: this.name, why }, 'node connection reset');
    this.redis.disconnect(true);
  }

  private recycleOnTimeout(error: unknown): void {
    if (isNodeTimeout(error)) this.recycle('a command timed out');
  }

  /**
   * One command on this node's connection, bounded by the node timeout (withinNodeTimeout); a timeout resets the
   * connection (recycle). Every command the engine sends goes through here.
   */
  bounded<T>(command: Promise<T>): Promise<T> {
    return withinNodeTimeout(command, this.timeoutMs).catch((error: unknown) => {
      this.recycleOnTimeout(error);
      throw error;
    });
  }

  /** Counted toward quorums now. */
  get voting(): boolean {
    return this.canVote(this.generation);
  }

  get quarantined(): boolean {
    return this.quarantineRemainingMs() > 0;
  }

  get up(): boolean {
    return this.healthy && this.verifiedGeneration === this.generation;
  }

  get runId(): string {
    return this.identity?.runId ?? '';
  }

  private canVote(generation: number): boolean {
    return (
      generation === this.generation &&
      this.verifiedGeneration === generation &&
      !this.pending &&
      this.refusal() === '' &&
      performance.now() >= this.quarantineUntil
    );
  }

  /** Why an evicting node may not vote: Redis could silently drop lock keys under memory pressure. */
  private refusal(): string {
    const policy = this.identity?.maxmemoryPolicy;
    if (policy === undefined || policy === 'noeviction') return '';
    return `maxmemory-policy is ${policy}: Redis may evict lock keys; set maxmemory-policy noeviction on this node`;
  }

  quarantineRemainingMs(now = performance.now()): number {
    return Math.max(0, Math.ceil(this.quarantineUntil - now));
  }

  /** Keep the node out of quorums until `until` (monotonic ms); only ever lengthens unless `shorten`. */
  setQuarantine(until: number, reason: string, shorten = false): void {
    if (!shorten && until <= this.quarantineUntil) return;
    this.quarantineUntil = until;
    this.quarantineReason = reason;
    this.emit('change');
  }

  /** Runs a script; the reply counts as a vote only if the node could vote when it was sent and still can. */
  async run<T>(
    script: Script,
    keys: readonly string[],
    args: readonly (string | number)[],
  ): Promise<NodeReply<T>> {
    const generation = this.generation;
    const votingAtSend = this.canVote(generation);
    try {
      const value = (await this.bounded(runScript(this.redis, script, keys, args))) as T;
      const voting = votingAtSend && this.canVote(generation);
      return { ok: true, value, voting, detail: voting ? '' : this.notVotingDetail() };
    } catch (error) {
      this.lastError = describeError(error);
      return { ok: false, voting: false, detail: this.lastError };
    }
  }

  private notVotingDetail(): string {
    if (this.verifiedGeneration !== this.generation) return 'identity not yet checked on this connection';
    if (this.pending) return 'first contact: checking whether it lost data while no engine watched';
    const refusal = this.refusal();
    if (refusal) return refusal;
    const left = this.quarantineRemainingMs();
    if (left > 0) return `quarantined for ${left} ms more: ${this.quarantineReason}`;
    return 'reconnected while the command was in flight';
  }

  /** Reads INFO: latency, run_id (a change means the node restarted), eviction policy, persistence. */
  async check(): Promise<void> {
    if (this.closed || this.redis.status !== 'ready') {
      this.healthy = false;
      return;
    }
    const generation = this.generation;
    const started = performance.now();
    let info: string;
    let marker: string | null;
    try {
      [info, marker] = await Promise.all([
        this.bounded(this.redis.info()),
        this.bounded(this.redis.get(this.markerKey)),
      ]);
    } catch (error) {
      // Cut off by close(): not the node's failure, and nobody is left to tell.
      if (this.closed) return;
      this.recordError(error);
      if (this.healthy)
        this.log?.warn({ node: this.name, err: describeError(error) }, 'node health check failed');
      this.healthy = false;
      this.emit('change');
      return;
    }
    if (generation !== this.generation) return;
    this.latencyMs = performance.now() - started;
    const identity = parseInfo(info);
    const wasUp = this.up;
    const previousRefusal = this.refusal();
    const previousRunId = this.identity?.runId;
    this.identity = identity;
    this.marker = marker;
    const firstContact = previousRunId === undefined;
    if (firstContact) {
      this.markerAtFirstContact = marker;
      this.pending = true;
    } else if (previousRunId !== identity.runId) {
      this.log?.warn(
        { node: this.name, uptimeSeconds: identity.uptimeSeconds },
        'node restarted (run_id changed)',
      );
      this.emit('restart', { previousRunId, runId: identity.runId });
    }
    this.verifiedGeneration = generation;
    this.healthy = true;
    this.lastError = '';
    const refusal = this.refusal();
    if (refusal && refusal !== previousRefusal) this.log?.error({ node: this.name }, refusal);
    if (!wasUp) this.log?.info({ node: this.name, latencyMs: Math.round(this.latencyMs) }, 'node up');
    this.markContacted();
    if (firstContact) this.emit('first-contact');
    this.recordMarker();
    this.emit('change');
  }

  /**
   * The marker (`<systemPrefix>run-id`, no expiry) holds the run_id under which the node was last admitted as a
   * voter. An engine starting later compares it with the node's run_id: missing while other nodes have theirs
   * means the node lost its data; different means it restarted. Written only while the node votes, so a node in
   * quarantine stays marked as suspect for every replica, including ones that start during the quarantine.
   */
  private recordMarker(): void {
    const runId = this.identity?.runId;
    if (!runId || this.marker === runId || !this.voting || this.markerHeld) return;
    this.marker = runId;
    this.bounded(this.redis.set(this.markerKey, runId)).catch((error: unknown) => {
      this.marker = null;
      this.recordError(error);
    });
  }

  /** Writes no marker until releaseMarker(): the node votes, but this engine does not vouch for it yet. */
  holdMarker(): void {
    this.markerHeld = true;
  }

  releaseMarker(): void {
    if (!this.markerHeld) return;
    this.markerHeld = false;
    this.recordMarker();
  }

  /** The marker as the node holds it now; null when missing or unreadable. */
  async readMarker(): Promise<string | null> {
    try {
      return await this.bounded(this.redis.get(this.markerKey));
    } catch (error) {
      this.recordError(error);
      return null;
    }
  }

  recordRestart(): void {
    this.restarts++;
  }

  /** Uptime in ms as of the last check, rounded down to whole seconds by Redis (so: a later restart time). */
  get uptimeMs(): number {
    return (this.identity?.uptimeSeconds ?? 0) * 1_000;
  }

  /** Lets a first-contact node vote (after the engine has quarantined it if needed). */
  admit(): void {
    if (!this.pending) return;
    this.pending = false;
    this.recordMarker();
    this.emit('change');
  }

  get isPending(): boolean {
    return this.pending;
  }

  private markContacted(): void {
    if (this.contacted) return;
    this.contacted = true;
    this.emit('contacted');
  }

  status(): NodeStatus {
    const remaining = this.quarantineRemainingMs();
    const refusal = this.refusal();
    return {
      name: this.name,
      address: this.address,
      up: this.up,
      voting: this.voting,
      latencyMs: Math.round(this.latencyMs * 100) / 100,
      runId: this.runId,
      quarantined: remaining > 0,
      quarantineRemainingMs: remaining,
      quarantineReason: refusal || (remaining > 0 ? this.quarantineReason : ''),
      error: this.up ? '' : this.lastError || 'not connected',
      restarts: this.restarts,
      maxmemoryPolicy: this.identity?.maxmemoryPolicy ?? '',
      aofEnabled: this.identity?.aofEnabled ?? false,
    };
  }

  private recordError(error: unknown): void {
    this.lastError = describeError(error);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.redis.disconnect(false);
  }
}

function parseInfo(info: string): NodeIdentity {
  const field = (name: string): string => new RegExp(`^${name}:(.*)$`, 'm').exec(info)?.[1]?.trim() ?? '';
  return {
    runId: field('run_id'),
    uptimeSeconds: Number(field('uptime_in_seconds')) || 0,
    maxmemoryPolicy: field('maxmemory_policy') || 'noeviction',
    aofEnabled: field('aof_enabled') === '1',
  };
}

export function describeError(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const code = (error as NodeJS.ErrnoException).code;
  if (isNodeTimeout(error)) return 'timed out';
  if (code === 'ECONNREFUSED') return 'connection refused';
  if (error.message.includes("Stream isn't writeable")) return 'not connected';
  // ioredis's wording when the connection drops with the command in flight (we never retry such commands).
  if (error.message.startsWith('Reached the max retries per request'))
    return 'connection closed with the command in flight';
  if (error.message.startsWith('OOM')) return 'out of memory (maxmemory reached): the node refuses writes';
  if (/^(WRONGPASS|NOAUTH)/.test(error.message)) {
    return `authentication failed: check this node's username and password (${error.message.split(/[\s.]+/)[0]})`;
  }
  return error.message.split('\n')[0] ?? error.message;
}
