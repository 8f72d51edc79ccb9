import { EventEmitter } from 'node:events';
import { SpanStatusCode } from '@opentelemetry/api';
import { delay } from 'abort-controller-x';
import {
  HeldByAnotherError,
  type LockError,
  type NodeVote,
  NoQuorumError,
  NotHolderError,
} from './errors.js';
import { newLockId } from './lock-id.js';
import { NodeAdmission } from './node-admission.js';
import {
  driftMs,
  type RedlockOptions,
  type ResolvedOptions,
  reservedPrefixes,
  resolveOptions,
} from './options.js';
import { quorumOf } from './quorum.js';
import { type NodeReply, RedisNode } from './redis-node.js';
import { SCRIPTS } from './scripts.js';
import { inSpan, tracedRun, tracer } from './tracing.js';
import type { ClusterStatus, Lease, LockState, Mode, ReleaseResult } from './types.js';
import { validateClientId, validateLockId, validateResource, validateTtl } from './validate.js';

export interface AcquireOptions {
  /** Undefined: the configured default. */
  ttlMs?: number;
  /** Re-sending the lock id that already holds the resource returns that lease again (same token). */
  lockId?: string;
  clientId?: string;
  /** Overrides the configured retry count for this call (0 = one attempt). */
  retryCount?: number;
  /** Aborting stops retrying; a lock granted meanwhile is released before the abort is thrown. */
  signal?: AbortSignal;
}

type AcquireReply = [status: number, value: string, pttl: number];
type Attempt = { lease: Lease } | { error: LockError; retry: boolean };

const NEVER = new AbortController().signal;

/**
 * The Redlock algorithm over N independent Redis nodes, with fencing tokens. Which nodes vote (first contact,
 * restart quarantine, refusal) is NodeAdmission's answer. Knows nothing of gRPC or HTTP. Emits 'change' whenever
 * a node's status may have changed.
 */
export class Redlock extends EventEmitter {
  readonly options: ResolvedOptions;
  readonly releaseChannel: string;
  private readonly nodes: RedisNode[];
  /** Which nodes vote: first contact, run_id markers, restart quarantine, refusal. */
  private readonly admission: NodeAdmission;
  private readonly reserved: string[];
  private mode: Mode;
  private readonly healthTimer: NodeJS.Timeout;
  private closed = false;

  constructor(options: RedlockOptions) {
    super();
    this.options = resolveOptions(options);
    this.mode = this.options.mode;
    this.reserved = reservedPrefixes(this.options);
    this.releaseChannel = `${this.options.systemPrefix}released`;
    this.admission = new NodeAdmission(this.options, () => this.emit('change'));
    this.nodes = this.options.nodes.map((config) => {
      const node = new RedisNode(config, this.options, this.admission);
      node.on('change', () => this.emit('change'));
      return node;
    });
    this.admission.watch(this.nodes);
    this.healthTimer = setInterval(() => this.healthTick(), this.options.healthIntervalMs);
    this.healthTimer.unref();
  }

  /** Resolves once every node has connected and been identified, or `timeoutMs` has passed. */
  async ready(timeoutMs = this.options.connectTimeoutMs + 1_000): Promise<ClusterStatus> {
    const deadline = performance.now() + timeoutMs;
    while (!this.admission.settled() && performance.now() < deadline) {
      await new Promise<void>((resolve) => {
        const done = (): void => {
          clearTimeout(timer);
          this.off('change', done);
          resolve();
        };
        const timer = setTimeout(done, Math.max(1, deadline - performance.now()));
        this.on('change', done);
      });
    }
    return this.status();
  }

  getMode(): Mode {
    return this.mode;
  }

  setMode(mode: Mode): void {
    if (mode !== 'redlock' && mode !== 'single')
      throw new RangeError(`mode must be "redlock" or "single", got "${String(mode)}"`);
    if (mode === this.mode) return;
    this.options.logger?.warn({ from: this.mode, to: mode }, 'lock mode changed');
    this.mode = mode;
    this.emit('change');
  }

  /**
   * Every node has answered or failed once, and no first-contact decision is pending (no marker re-read under
   * way): until a node's identity or reachability changes, which nodes vote will not change by itself.
   */
  get admissionSettled(): boolean {
    return this.admission.settled();
  }

  status(): ClusterStatus {
    const active = this.activeNodes();
    const quorum = quorumOf(active.length);
    return {
      nodes: this.nodes.map((n) => n.status()),
      mode: this.mode,
      quorum,
      // Voting and answering health checks: a paused or unreachable node keeps its vote (its replies decide), but
      // cannot be counted on to form a quorum.
      quorumAvailable: active.filter((n) => n.voting && n.up).length >= quorum,
    };
  }

  /** Throws InvalidArgumentError for the first malformed field of an acquire, without touching Redis. */
  validateAcquire(
    resource: string,
    options: Pick<AcquireOptions, 'ttlMs' | 'lockId' | 'clientId'> = {},
  ): void {
    validateResource(resource, this.reserved);
    if (options.ttlMs !== undefined) this.ttl(options.ttlMs);
    if (options.lockId !== undefined) validateLockId(options.lockId);
    validateClientId(options.clientId);
  }

  /** Throws InvalidArgumentError when a release, extend or renewal names a malformed resource, lock id or ttl. */
  validateLease(resource: string, lockId: string, ttlMs?: number): void {
    validateResource(resource, this.reserved);
    validateLockId(lockId);
    if (ttlMs !== undefined) this.ttl(ttlMs);
  }

  async acquire(resource: string, options: AcquireOptions = {}): Promise<Lease> {
    validateResource(resource, this.reserved);
    const ttlMs = options.ttlMs === undefined ? this.options.defaultTtlMs : this.ttl(options.ttlMs);
    const lockId = options.lockId === undefined ? newLockId() : validateLockId(options.lockId);
    const clientId = validateClientId(options.clientId);
    const retries = options.retryCount ?? this.options.retryCount;
    const signal = options.signal ?? NEVER;
    for (let attempt = 1; ; attempt++) {
      signal.throwIfAborted();
      const outcome = await this.tracedAttempt(resource, lockId, ttlMs, clientId, attempt);
      if ('lease' in outcome) {
        if (signal.aborted) {
          await Promise.all(this.releaseEverywhere(resource, lockId));
          signal.throwIfAborted();
        }
        return outcome.lease;
      }
      if (!outcome.retry || attempt > retries) throw outcome.error;
      await delay(signal, this.options.retryDelayMs + Math.random() * this.options.retryJitterMs);
    }
  }

  /** attempt() inside its span `attempt`, which says how it ended; the node calls are its children. */
  private async tracedAttempt(
    resource: string,
    lockId: string,
    ttlMs: number,
    clientId: string,
    attempt: number,
  ): Promise<Attempt> {
    const span = tracer.startSpan('attempt');
    return await inSpan(
      span,
      () => this.attempt(resource, lockId, ttlMs, clientId, attempt),
      (outcome) => {
        span.setAttributes({
          'redlease.resource': resource,
          'redlease.attempt': attempt,
          'redlease.mode': this.mode,
          'redlease.ttl_ms': ttlMs,
        });
        if ('lease' in outcome) {
          const { lease } = outcome;
          span.setAttributes({
            'redlease.result': 'granted',
            'redlease.fencing_token': lease.fencingToken,
            'redlease.validity_ms': lease.validityMs,
            'redlease.quorum': lease.quorum,
            'redlease.nodes': lease.nodes,
          });
        } else {
          const { error } = outcome;
          span.setAttributes({ 'redlease.result': error.reason, 'redlease.reason': error.reason });
          // Held by another client is an answer; no quorum is an incident.
          if (error instanceof NoQuorumError)
            span.setStatus({ code: SpanStatusCode.ERROR, message: error.message });
        }
      },
    );
  }

  /** One Redlock attempt: acquire script on every node in parallel; on a granting quorum, token = max of their
   *  provisional tokens, written back where lower until a quorum holds it; otherwise unlock on every node. */
  private async attempt(
    resource: string,
    lockId: string,
    ttlMs: number,
    clientId: string,
    attempt: number,
  ): Promise<Attempt> {
    const nodes = this.activeNodes();
    const quorum = quorumOf(nodes.length);
    const keys = this.keys(resource);
    const fenceTtl = this.options.fenceTtlMs;
    const started = performance.now();
    const replies = await Promise.all(
      nodes.map((n) =>
        tracedRun<AcquireReply>(
          n,
          'acquire',
          SCRIPTS.acquire,
          keys,
          [lockId, ttlMs, clientId, fenceTtl],
          acquireVote,
        ),
      ),
    );

    const votes: NodeVote[] = [];
    const granted: { node: RedisNode; token: number }[] = [];
    const heldBy = new Map<string, number[]>();
    const unsure: RedisNode[] = [];
    replies.forEach((reply, i) => {
      const node = nodes[i]!;
      if (!reply.ok) {
        votes.push({ node: node.name, vote: 'error', detail: reply.detail });
        unsure.push(node);
        return;
      }
      const [status, value, pttl] = reply.value;
      if (!reply.voting) {
        votes.push({ node: node.name, vote: 'not-voting', detail: reply.detail });
        if (status !== 0) unsure.push(node);
      } else if (status === 0) {
        votes.push({ node: node.name, vote: 'held' });
        heldBy.set(value, [...(heldBy.get(value) ?? []), pttl]);
      } else {
        votes.push({ node: node.name, vote: 'granted' });
        granted.push({ node, token: Number(value) });
      }
    });

    if (granted.length >= quorum) {
      const token = Math.max(...granted.map((g) => g.token));
      const holders = granted.filter((g) => g.token === token).map((g) => g.node);
      const lagging = granted.filter((g) => g.token < token);
      const commitArgs = [lockId, String(token), clientId, fenceTtl];
      if (lagging.length > 0) {
        const span = tracer.startSpan('token write-back');
        const written = (c: NodeReply<number>): boolean => c.ok && c.voting && c.value === 1;
        const commits = await inSpan(
          span,
          () =>
            Promise.all(
              lagging.map((g) =>
                tracedRun<number>(g.node, 'commit', SCRIPTS.commit, keys, commitArgs, commitVote),
              ),
            ),
          (replies) =>
            span.setAttributes({
              'redlease.fencing_token': token,
              'redlease.nodes': lagging.map((g) => g.node.name),
              'redlease.written': replies.filter(written).length,
            }),
        );
        commits.forEach((c, i) => {
          if (written(c)) holders.push(lagging[i]!.node);
        });
      }
      // A node whose answer was lost may still have run the acquire. Its commands execute in order, so a commit
      // sent now lands after it and makes its holder key carry the chosen token. Best effort, not awaited.
      for (const node of unsure) void tracedRun(node, 'commit', SCRIPTS.commit, keys, commitArgs, commitVote);
      // The lock was set after `started`, so it lives until at least started + ttl on the nodes' clocks.
      const deadline = started + ttlMs - driftMs(this.options, ttlMs);
      const validityMs = Math.floor(deadline - performance.now());
      holders.sort((a, b) => nodes.indexOf(a) - nodes.indexOf(b));
      if (holders.length >= quorum && validityMs > 0) {
        return {
          lease: {
            resource,
            lockId,
            fencingToken: token,
            clientId,
            ttlMs,
            validityMs,
            validUntilMs: Date.now() + validityMs,
            deadline,
            startedAt: started,
            nodes: holders.map((n) => n.name),
            quorum,
            attempts: attempt,
            mode: this.mode,
          },
        };
      }
      await this.unlockAfterFailure(
        resource,
        lockId,
        granted.map((g) => g.node),
      );
      const elapsed = Math.round(performance.now() - started);
      if (validityMs <= 0) {
        return {
          retry: true,
          error: new NoQuorumError(
            'VALIDITY_EXHAUSTED',
            `Redis nodes answered too slowly: the attempt took ${elapsed} ms of a ${ttlMs} ms ttl, so no validity was left; nothing was granted (${summarize(votes)})`,
            votes,
          ),
        };
      }
      return {
        retry: true,
        error: new NoQuorumError(
          'QUORUM_UNAVAILABLE',
          `quorum unavailable: the token write-back reached ${holders.length}/${nodes.length} Redis nodes, ${quorum} needed; nothing was granted (${summarize(votes)})`,
          votes,
        ),
      };
    }

    if (granted.length > 0 || unsure.length > 0)
      await this.unlockAfterFailure(
        resource,
        lockId,
        granted.map((g) => g.node),
      );
    const answered = votes.filter((v) => v.vote === 'granted' || v.vote === 'held').length;
    if (answered < quorum) {
      return {
        retry: true,
        error: new NoQuorumError(
          'QUORUM_UNAVAILABLE',
          `quorum unavailable: ${answered}/${nodes.length} Redis nodes voting, ${quorum} needed (${summarize(votes)})`,
          votes,
        ),
      };
    }
    for (const pttls of heldBy.values()) {
      if (pttls.length >= quorum) {
        const remaining = pttls.sort((a, b) => b - a)[quorum - 1]!;
        return {
          retry: false,
          error: new HeldByAnotherError(
            'LOCK_HELD',
            `resource "${resource}" is held by another client on ${pttls.length}/${nodes.length} nodes${remaining >= 0 ? `, for up to ${remaining} ms more unless extended` : ''}`,
            votes,
            remaining >= 0 ? remaining : undefined,
          ),
        };
      }
    }
    return {
      retry: true,
      error: new HeldByAnotherError(
        'LOCK_CONTENDED',
        `resource "${resource}" is contended: no client holds a quorum and this attempt did not win one (${summarize(votes)})`,
        votes,
      ),
    };
  }

  /** Compare-and-delete on every node, the ones that did not answer included (they may have applied it). */
  async release(resource: string, lockId: string): Promise<ReleaseResult> {
    validateResource(resource, this.reserved);
    validateLockId(lockId);
    const replies = await Promise.all(this.releaseEverywhere(resource, lockId));
    const holders: string[] = [];
    const released = this.nodes.filter((_, i) => {
      const r = replies[i]!;
      if (!r.ok || r.value[0] !== 1) return false;
      holders.push(r.value[1]);
      return true;
    });
    if (released.length > 0) {
      const holder = agreedHolder(holders);
      return {
        released: true,
        nodes: released.map((n) => n.name),
        fencingToken: holder.token,
        clientId: holder.clientId,
      };
    }
    const active = new Set(this.activeNodes());
    const votes: NodeVote[] = replies.map((r, i) => ({
      node: this.nodes[i]!.name,
      vote: r.ok ? 'not-held' : 'error',
      ...(r.ok ? {} : { detail: r.detail }),
    }));
    const notHeld = replies.filter((r, i) => r.ok && r.voting && active.has(this.nodes[i]!)).length;
    throw this.notHeldOrNoQuorum(resource, 'release', notHeld, votes);
  }

  /** Undefined ttl: the configured default. */
  async extend(resource: string, lockId: string, ttlMs?: number): Promise<Lease> {
    validateResource(resource, this.reserved);
    validateLockId(lockId);
    const ttl = ttlMs === undefined ? this.options.defaultTtlMs : this.ttl(ttlMs);
    const nodes = this.activeNodes();
    const quorum = quorumOf(nodes.length);
    const keys = this.keys(resource);
    const started = performance.now();
    const replies = await Promise.all(
      nodes.map((n) =>
        tracedRun<[number, string]>(n, 'extend', SCRIPTS.extend, keys, [lockId, ttl], extendVote),
      ),
    );
    const votes: NodeVote[] = [];
    const extended: { node: RedisNode; holder: string }[] = [];
    replies.forEach((r, i) => {
      const node = nodes[i]!;
      if (!r.ok) votes.push({ node: node.name, vote: 'error', detail: r.detail });
      else if (!r.voting) votes.push({ node: node.name, vote: 'not-voting', detail: r.detail });
      else if (r.value[0] === 1) {
        votes.push({ node: node.name, vote: 'extended' });
        extended.push({ node, holder: r.value[1] });
      } else votes.push({ node: node.name, vote: 'not-held' });
    });
    const deadline = started + ttl - driftMs(this.options, ttl);
    const validityMs = Math.floor(deadline - performance.now());
    if (extended.length >= quorum && validityMs > 0) {
      const holder = agreedHolder(extended.map((e) => e.holder));
      return {
        resource,
        lockId,
        fencingToken: holder.token,
        clientId: holder.clientId,
        ttlMs: ttl,
        validityMs,
        validUntilMs: Date.now() + validityMs,
        deadline,
        startedAt: started,
        nodes: extended.map((e) => e.node.name),
        quorum,
        attempts: 1,
        mode: this.mode,
      };
    }
    if (extended.length >= quorum) {
      throw new NoQuorumError(
        'VALIDITY_EXHAUSTED',
        `Redis nodes answered too slowly: extending took ${Math.round(performance.now() - started)} ms of a ${ttl} ms ttl, so no validity was left`,
        votes,
      );
    }
    const notHeld = votes.filter((v) => v.vote === 'not-held').length;
    throw this.notHeldOrNoQuorum(resource, 'extend', notHeld, votes);
  }

  /** One node's view per node, and whether one lock id holds a quorum. Never returns a lock id. */
  async inspect(resource: string): Promise<LockState> {
    validateResource(resource, this.reserved);
    const replies = await Promise.all(
      this.nodes.map((n) => n.run<[string, number, string]>(SCRIPTS.inspect, this.keys(resource), [])),
    );
    const active = new Set(this.activeNodes());
    const quorum = quorumOf(active.size);
    const byId = new Map<string, { pttl: number; holder: string }[]>();
    const nodes = replies.map((r, i) => {
      const node = this.nodes[i]!;
      if (!r.ok) return { node: node.name, reachable: false, held: false, ttlMs: 0 };
      const [id, pttl, holder] = r.value;
      if (id && r.voting && active.has(node)) byId.set(id, [...(byId.get(id) ?? []), { pttl, holder }]);
      return { node: node.name, reachable: true, held: id !== '', ttlMs: id ? pttl : 0 };
    });
    for (const entries of byId.values()) {
      if (entries.length < quorum) continue;
      const holder = agreedHolder(entries.map((e) => e.holder));
      const remaining = entries.map((e) => e.pttl).sort((a, b) => b - a)[quorum - 1]!;
      return {
        resource,
        locked: true,
        holderClientId: holder.clientId,
        fencingToken: holder.token,
        validityMs: Math.max(0, remaining),
        nodes,
      };
    }
    return { resource, locked: false, holderClientId: '', fencingToken: 0, validityMs: 0, nodes };
  }

  /**
   * Whether this lock id holds the resource now: 'held' on a quorum of voting nodes, 'not-held' when the voting
   * nodes that said no leave no room for such a quorum, 'unknown' otherwise. Changes nothing.
   */
  async holds(resource: string, lockId: string): Promise<'held' | 'not-held' | 'unknown'> {
    const nodes = this.activeNodes();
    const quorum = quorumOf(nodes.length);
    const replies = await Promise.all(
      nodes.map((n) => n.run<[string, number, string]>(SCRIPTS.inspect, this.keys(resource), [])),
    );
    const voting = replies.filter((r) => r.ok && r.voting) as { value: [string, number, string] }[];
    const held = voting.filter((r) => r.value[0] === lockId).length;
    if (held >= quorum) return 'held';
    return voting.length - held > nodes.length - quorum ? 'not-held' : 'unknown';
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.healthTimer);
    this.admission.close();
    await Promise.all(this.nodes.map((n) => n.close()));
    this.removeAllListeners();
  }

  /** Not held is certain only when the voting nodes that said so leave no room for a quorum that holds it. */
  private notHeldOrNoQuorum(
    resource: string,
    operation: 'release' | 'extend',
    notHeld: number,
    votes: NodeVote[],
  ): LockError {
    const active = this.activeNodes().length;
    const quorum = quorumOf(active);
    if (notHeld > active - quorum) {
      return new NotHolderError(
        'LOCK_NOT_HELD',
        `${operation}: this lock_id does not hold "${resource}" (it expired, was released, or was never acquired); acquire the lock again`,
        votes,
      );
    }
    return new NoQuorumError(
      'QUORUM_UNAVAILABLE',
      `${operation}: quorum unavailable, could not tell whether this lock_id holds "${resource}" (${summarize(votes)}); the lock expires on its own`,
      votes,
    );
  }

  /** After a failed attempt, compare-and-delete on every node, including those that did not answer (they
   *  may have applied the acquire). Waits only for the nodes that granted, so that none of them still holds the
   *  lock when the caller hears of the failure; a node that timed out runs the delete in order after the
   *  acquire, whenever it gets to it, and waiting for it would only spend the caller's fail-fast budget. */
  private async unlockAfterFailure(
    resource: string,
    lockId: string,
    granted: readonly RedisNode[],
  ): Promise<void> {
    const replies = this.releaseEverywhere(resource, lockId);
    await Promise.all(granted.map((node) => replies[this.nodes.indexOf(node)]));
  }

  private releaseEverywhere(resource: string, lockId: string) {
    const keys = this.keys(resource);
    const args = [lockId, this.releaseChannel, resource];
    return this.nodes.map((n) =>
      tracedRun<[number, string]>(n, 'release', SCRIPTS.release, keys, args, releaseVote),
    );
  }

  private ttl(ttlMs: number): number {
    return validateTtl(ttlMs, this.options.minTtlMs, this.options.maxTtlMs);
  }

  private keys(resource: string): [string, string, string] {
    const o = this.options;
    return [o.keyPrefix + resource, o.holderPrefix + resource, o.fencePrefix + resource];
  }

  private activeNodes(): RedisNode[] {
    return this.mode === 'single' ? [this.nodes[0]!] : this.nodes;
  }

  private healthTick(): void {
    for (const node of this.nodes) void node.check();
    this.admission.shortenQuarantines();
  }
}

/** What a node's acquire reply means for its span: granted with its fence counter, or held by another. */
function acquireVote([status, value, pttl]: AcquireReply) {
  return status === 0
    ? { result: 'held' as const, attributes: { 'redlease.node.holder_ttl_ms': pttl } }
    : { result: 'granted' as const, counter: Number(value) };
}

function commitVote(written: number) {
  return { result: written === 1 ? ('written' as const) : ('not-held' as const) };
}

function releaseVote([deleted]: [number, string]) {
  return { result: deleted === 1 ? ('released' as const) : ('not-held' as const) };
}

function extendVote([extended]: [number, string]) {
  return { result: extended === 1 ? ('extended' as const) : ('not-held' as const) };
}

function summarize(votes: readonly NodeVote[]): string {
  return votes.map((v) => `${v.node}: ${v.vote}${v.detail ? ` (${v.detail})` : ''}`).join('; ');
}

/** The holder record most nodes agree on ("<token>:<client id>"); ties go to the larger token. */
function agreedHolder(holders: readonly string[]): { token: number; clientId: string } {
  const counts = new Map<string, number>();
  for (const h of holders) if (h) counts.set(h, (counts.get(h) ?? 0) + 1);
  let best: { token: number; clientId: string; count: number } = { token: 0, clientId: '', count: 0 };
  for (const [h, count] of counts) {
    const colon = h.indexOf(':');
    const token = Number(h.slice(0, colon));
    if (count > best.count || (count === best.count && token > best.token)) {
      best = { token, clientId: h.slice(colon + 1), count };
    }
  }
  return { token: best.token, clientId: best.clientId };
}
