import { EventEmitter } from 'node:events';
import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { isNodeTimeout, withinNodeTimeout } from './node-timeout.js';
import type { ResolvedNode, ResolvedOptions } from './options.js';
import { boundReadyCheck } from './ready-check.js';
import { runScript, type Script } from './scripts.js';
import type { NodeStatus } from './types.js';

/** What a node's INFO says about its identity and safety. */
export interface NodeIdentity {
  runId: string;
  uptimeSeconds: number;
  maxmemoryPolicy: string;
  aofEnabled: boolean;
}

/** A node's answer to one command, stamped with whether it may count as a vote. */
/** The admission part of a node's status (NodeAdmission decides it). */
export type AdmissionStatus = Pick<
  NodeStatus,
  'voting' | 'quarantined' | 'quarantineRemainingMs' | 'quarantineReason' | 'restarts'
>;

/** What a node reports to the engine's admission (NodeAdmission), and asks it: whether it may vote. */
export interface NodeAdmissionPort {
  contacted(node: RedisNode): void;
  identified(
    node: RedisNode,
    identity: NodeIdentity,
    previous: NodeIdentity | undefined,
    marker: string | null,
  ): void;
  checked(node: RedisNode, firstContact: boolean): void;
  mayVote(node: RedisNode): boolean;
  whyNotVoting(node: RedisNode): string;
  status(node: RedisNode): AdmissionStatus;
}

export type NodeReply<T> =
  | { ok: true; value: T; voting: boolean; detail: string }
  | { ok: false; voting: false; detail: string };

/**
 * One Redis node: a single multiplexed connection that fails fast (no offline queue, a per-command timeout,
 * no resending after a reconnect), plus the node's identity.
 *
 * Whether it votes is the engine's NodeAdmission's answer. The part that is this connection's: every connection
 * loss bumps `generation`, a node counts as identified only once its INFO was read on the current connection, and
 * a reply counts as a vote only if the connection did not change between send and reply. A node that restarted
 * therefore cannot vote through its new incarnation before the admission has seen its new run_id and quarantined
 * it — there is no window between restart and detection.
 */
export class RedisNode extends EventEmitter {
  readonly name: string;
  readonly address: string;
  readonly host: string;
  readonly port: number;
  readonly redis: Redis;
  private generation = 0;
  private verifiedGeneration = -1;
  private identity: NodeIdentity | undefined;
  /** The run_id marker's key (what it means: NodeAdmission). */
  private readonly markerKey: string;
  /** The generation last recycled (see recycle). */
  private recycled = -1;
  private latencyMs = 0;
  private lastError = '';
  private healthy = false;
  private closed = false;
  /** Per-command timeout (the engine's nodeTimeoutMs), applied by withinNodeTimeout. */
  private readonly timeoutMs: number;
  private readonly log: Logger | undefined;

  constructor(
    config: ResolvedNode,
    options: ResolvedOptions,
    private readonly admission: NodeAdmissionPort,
  ) {
    super();
    this.name = config.name;
    this.address = config.address;
    this.host = config.host;
    this.port = config.port;
    this.markerKey = `${options.systemPrefix}run-id`;
    this.timeoutMs = options.nodeTimeoutMs;
    this.log = options.logger;
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
      this.admission.contacted(this);
    });
    this.redis.on('close', () => {
      this.generation++;
      if (this.healthy && !this.closed) this.log?.warn({ node: this.name }, 'node connection lost');
      this.healthy = false;
      this.admission.contacted(this);
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

  /** Counted toward quorums now (NodeAdmission.mayVote). */
  get voting(): boolean {
    return this.canVote(this.generation);
  }

  /** Its identity was read on the current connection. */
  get identified(): boolean {
    return this.verifiedGeneration === this.generation;
  }

  get up(): boolean {
    return this.healthy && this.identified;
  }

  get runId(): string {
    return this.identity?.runId ?? '';
  }

  /** As of the last check; undefined before the first. */
  get maxmemoryPolicy(): string | undefined {
    return this.identity?.maxmemoryPolicy;
  }

  /** A reply on the connection of `generation` counts as a vote: still that connection, and admitted to vote. */
  private canVote(generation: number): boolean {
    return generation === this.generation && this.admission.mayVote(this);
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
    return this.admission.whyNotVoting(this) || 'reconnected while the command was in flight';
  }

  /** Reads INFO (latency, run_id, eviction policy, persistence) and the marker, and reports them to the
   *  admission, which tells a first contact or a restart (a changed run_id) and decides what it means. */
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
    const previous = this.identity;
    this.identity = identity;
    // Before the new identity counts: a first contact is noted, a changed run_id quarantines the node.
    this.admission.identified(this, identity, previous, marker);
    this.verifiedGeneration = generation;
    this.healthy = true;
    this.lastError = '';
    if (!wasUp) this.log?.info({ node: this.name, latencyMs: Math.round(this.latencyMs) }, 'node up');
    this.admission.checked(this, previous === undefined);
    this.emit('change');
  }

  /** Sets the marker to `runId` (NodeAdmission decides when); false when the write failed (error recorded). */
  async writeMarker(runId: string): Promise<boolean> {
    try {
      await this.bounded(this.redis.set(this.markerKey, runId));
      return true;
    } catch (error) {
      this.recordError(error);
      return false;
    }
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

  /** Uptime in ms as of the last check, rounded down to whole seconds by Redis (so: a later restart time). */
  get uptimeMs(): number {
    return (this.identity?.uptimeSeconds ?? 0) * 1_000;
  }

  status(): NodeStatus {
    const admission = this.admission.status(this);
    return {
      name: this.name,
      address: this.address,
      up: this.up,
      voting: admission.voting,
      latencyMs: Math.round(this.latencyMs * 100) / 100,
      runId: this.runId,
      quarantined: admission.quarantined,
      quarantineRemainingMs: admission.quarantineRemainingMs,
      quarantineReason: admission.quarantineReason,
      error: this.up ? '' : this.lastError || 'not connected',
      restarts: admission.restarts,
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
