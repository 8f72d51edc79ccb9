import type { Logger } from 'pino';
import { driftMs, type ResolvedOptions, reservedPrefixes } from './options.js';
import { quorumOf } from './quorum.js';
import type { AdmissionStatus, NodeAdmissionPort, NodeIdentity, RedisNode } from './redis-node.js';

/**
 * Where a node stands with this engine's first-contact decision. A node the engine sees for the first time (a
 * fresh server, or a second replica) might have lost its data while nobody watched; its marker tells (see
 * NodeAdmission). The decision waits until every node has answered or failed once (or the first-contact
 * deadline has passed), so that the other nodes' markers are known.
 *
 * - `unread`: not identified yet (it may have failed to connect: see `contacted`). Cannot vote.
 * - `undecided`: identified, its marker as found at first contact is known, the decision is not made yet.
 *   Does not vote.
 * - `suspect`: no marker while another node has one: found so at the decision, or `unvouched` when a marked
 *   node turned up. It lost its data while no engine watched, or an engine starting at the same moment marked
 *   the others after this one read it, and marks (or has marked) it too. Does not vote while its marker is read
 *   again; then `admitted`, quarantined unless another engine vouched for it meanwhile.
 * - `unvouched`: no marker, and no node read so far has one, but some node has not been read yet (it failed, or
 *   answers late). Votes: nothing says it forgot anything. Not marked: a marker is this engine's word that the
 *   node kept its data, which it cannot give yet. Becomes `admitted` once every node has been read without a
 *   marker (a fresh cluster indeed), or `suspect` when a marked node turns up.
 * - `admitted`: decided. Votes unless quarantined or refused, and is marked while it votes.
 */
type Standing = 'unread' | 'undecided' | 'suspect' | 'unvouched' | 'admitted';

/** Everything this engine believes about one node's admission. */
interface Admission {
  /** Has answered, or failed to connect, at least once since the engine started. */
  contacted: boolean;
  standing: Standing;
  /** The marker as found at first contact (null: missing, a fresh node or one that lost its data). Meaningful
   *  once the node has been read (standing ≠ unread). */
  firstMarker: string | null;
  /** The marker as this engine last read or wrote it. A marker is written when it differs from the run_id. */
  marker: string | null;
  /** No vote before this (monotonic ms, `performance.now()`); 0 when never quarantined. */
  quarantineUntil: number;
  /** Why it is quarantined; shown while the quarantine runs. */
  quarantineReason: string;
  /** The scan that may shorten the quarantine starts no earlier than this (monotonic ms): acquires in flight at
   *  the restart may still be writing their other votes. */
  scanNotBefore: number;
  /** A scan of the other nodes for this node's quarantine is running. */
  scanning: boolean;
  /** Restarts seen since the engine started: run_id changes, and restarts found out at first contact. */
  restarts: number;
}

/**
 * Node admission: which Redis nodes may vote, and why not. This is where to look for "when does a node vote?".
 *
 * A node votes (its replies count toward quorums) exactly when `whyNotVoting` has nothing to say:
 * 1. Its identity (INFO: run_id, eviction policy) was read on its current connection (RedisNode.identified).
 *    Every connection loss makes a new connection, and a restart necessarily breaks the old one, so a restarted
 *    node cannot vote before the engine has seen its new run_id and quarantined it. A reply counts only if the
 *    node could vote when the command was sent and still can, on the same connection (RedisNode.run).
 * 2. This engine has admitted it at first contact (Standing: not unread, undecided or suspect).
 * 3. Its maxmemory-policy is noeviction: an evicting node could silently drop lock keys under memory pressure.
 *    It is refused until the policy is fixed.
 * 4. It is not quarantined. A node that restarted (its run_id changed while the engine watched, or its marker
 *    says so at first contact, or it lost its marker) may have forgotten locks, so it does not vote until every
 *    lock it may have forgotten has expired: at most the max ttl (+ drift) after its restart, usually far less
 *    (shortenQuarantine).
 *
 * The marker (`<systemPrefix>run-id` on each node, no expiry) holds the run_id under which the node was last
 * admitted as a voter. It is written only while the node votes and is `admitted`, so a node in quarantine stays
 * marked as suspect for every replica, including ones that start during the quarantine. An engine meeting a node
 * for the first time compares it with the node's run_id: equal, the same incarnation, admitted; different, it
 * restarted since it last voted, quarantined from its restart time; missing while another node has one, it lost
 * its data (read again first, see `suspect`); missing everywhere, a fresh cluster, admitted. (Total amnesia while
 * no engine ran looks the same; fencing tokens still grow, see docs/architecture.md.)
 *
 * RedisNode reports what it reads (contacted, identified, checked) and asks mayVote / whyNotVoting / status;
 * Redlock asks settled (ready) and runs shortenQuarantines on each health tick.
 */
export class NodeAdmission implements NodeAdmissionPort {
  private readonly admissions = new Map<RedisNode, Admission>();
  private nodes: readonly RedisNode[] = [];
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly createdAt = performance.now();
  /** Every node answers or fails to connect within the connect timeout; decide about the rest then anyway. */
  private readonly firstContactDeadlineMs: number;
  /** Prefixes of the engine's own keys, which the quarantine scan does not count as locks. */
  private readonly reserved: string[];
  private readonly log: Logger | undefined;
  private closed = false;

  /** `changed` is called whenever a node's vote or status may have changed. */
  constructor(
    private readonly options: ResolvedOptions,
    private readonly changed: () => void,
  ) {
    this.firstContactDeadlineMs = options.connectTimeoutMs + 250;
    this.reserved = reservedPrefixes(options);
    this.log = options.logger;
  }

  /** Starts admitting these nodes (all of the engine's); the first-contact deadline runs from the engine's start. */
  watch(nodes: readonly RedisNode[]): void {
    this.nodes = nodes;
    for (const node of nodes) {
      this.admissions.set(node, {
        contacted: false,
        standing: 'unread',
        firstMarker: null,
        marker: null,
        quarantineUntil: 0,
        quarantineReason: '',
        scanNotBefore: 0,
        scanning: false,
        restarts: 0,
      });
    }
    this.after(this.firstContactDeadlineMs, () => this.decideFirstContacts(true));
  }

  // ——— What a node reports (RedisNode) ———

  /** The node answered, or failed to connect: the first time counts toward deciding first contacts. */
  contacted(node: RedisNode): void {
    const a = this.of(node);
    if (a.contacted) return;
    a.contacted = true;
    this.decideFirstContacts();
  }

  /**
   * The node's INFO and marker were just read, and its identity does not count yet: a first contact is noted
   * (`undecided`), a changed run_id quarantines it before it can vote through its new incarnation.
   */
  identified(
    node: RedisNode,
    identity: NodeIdentity,
    previous: NodeIdentity | undefined,
    marker: string | null,
  ): void {
    const a = this.of(node);
    a.marker = marker;
    if (previous === undefined) {
      a.firstMarker = marker;
      a.standing = 'undecided';
    } else if (previous.runId !== identity.runId) {
      this.log?.warn(
        { node: node.name, uptimeSeconds: identity.uptimeSeconds },
        'node restarted (run_id changed)',
      );
      this.quarantine(node, `restarted (run_id ${short(previous.runId)} → ${short(identity.runId)})`);
    }
    const refused = refusal(identity.maxmemoryPolicy);
    if (refused && refused !== refusal(previous?.maxmemoryPolicy))
      this.log?.error({ node: node.name }, refused);
  }

  /** The node's identity now counts: a first contact may be decided, and a voter gets its marker. */
  checked(node: RedisNode, firstContact: boolean): void {
    this.contacted(node);
    if (firstContact) this.decideFirstContacts();
    this.mark(node);
  }

  // ——— What the engine asks ———

  /** Counted toward quorums now. */
  mayVote(node: RedisNode): boolean {
    return this.whyNotVoting(node) === '';
  }

  /** Why the node does not vote now (conditions 1–4 above, in that order); '' when it votes. */
  whyNotVoting(node: RedisNode): string {
    if (!node.identified) return 'identity not yet checked on this connection';
    const a = this.of(node);
    if (a.standing === 'undecided' || a.standing === 'suspect')
      return 'first contact: checking whether it lost data while no engine watched';
    const refused = refusal(node.maxmemoryPolicy);
    if (refused) return refused;
    const left = remainingMs(a);
    if (left > 0) return `quarantined for ${left} ms more: ${a.quarantineReason}`;
    return '';
  }

  /** The admission part of a node's status. The reason names a refusal first, else a running quarantine. */
  status(node: RedisNode): AdmissionStatus {
    const a = this.of(node);
    const remaining = remainingMs(a);
    return {
      voting: this.mayVote(node),
      quarantined: remaining > 0,
      quarantineRemainingMs: remaining,
      quarantineReason: refusal(node.maxmemoryPolicy) || (remaining > 0 ? a.quarantineReason : ''),
      restarts: a.restarts,
    };
  }

  /** Every node has answered or failed once, and none awaits its first-contact decision. */
  settled(): boolean {
    return this.nodes.every((n) => {
      const a = this.of(n);
      return a.contacted && a.standing !== 'undecided' && a.standing !== 'suspect';
    });
  }

  /** Starts a scan for each quarantined node whose settle time has passed (on each health tick). */
  shortenQuarantines(): void {
    const now = performance.now();
    for (const node of this.nodes) {
      const a = this.of(node);
      if (remainingMs(a) === 0 || a.scanning || now < a.scanNotBefore) continue;
      void this.shortenQuarantine(node, a);
    }
  }

  close(): void {
    this.closed = true;
    for (const t of this.timers) clearTimeout(t);
  }

  // ——— First contact ———

  /**
   * Decides about the `undecided` nodes once every node has answered or failed once (or at the deadline, or
   * later), so that the other nodes' markers are known. See Standing for what each outcome means.
   * - marker = run_id: same incarnation, admit.
   * - marker differs: restarted (with its data) since it last voted: quarantine from its restart time, admit.
   * - no marker, but another node has one: `suspect`.
   * - no marker anywhere: a fresh cluster, admit; `unvouched` while some node has not been read yet.
   * Then: with every node read and none marked, the unvouched ones are admitted (and marked); once some node is
   * marked, they are `suspect`.
   */
  private decideFirstContacts(force = false): void {
    if (this.closed) return;
    const late = performance.now() - this.createdAt > this.firstContactDeadlineMs;
    if (!force && !late && !this.nodes.every((n) => this.of(n).contacted)) return;
    const marked = this.nodes.filter((n) => typeof this.of(n).firstMarker === 'string');
    const allRead = this.nodes.every((n) => this.of(n).standing !== 'unread');
    for (const node of this.nodes) {
      const a = this.of(node);
      if (a.standing !== 'undecided') continue;
      const marker = a.firstMarker;
      if (marker === node.runId) {
        this.admit(node, 'admitted'); // same incarnation as when it last voted
      } else if (marker) {
        this.quarantine(
          node,
          `restarted since it last voted (run_id ${short(marker)} → ${short(node.runId)})`,
          performance.now() - node.uptimeMs,
        );
        this.admit(node, 'admitted');
      } else if (marked.some((m) => m !== node)) {
        this.confirmMarkerLoss(
          node,
          'lost its data while no engine watched (its marker is gone, other nodes have theirs)',
        );
      } else {
        this.admit(node, allRead ? 'admitted' : 'unvouched');
      }
    }
    for (const node of this.nodes) {
      if (this.of(node).standing !== 'unvouched') continue;
      if (marked.length === 0) {
        // A fresh cluster indeed, and with every node read no marked one can turn up any more: mark them.
        if (allRead) this.vouch(node);
      } else if (!marked.includes(node)) {
        this.confirmMarkerLoss(node, 'had no marker while another node has one: it lost its data');
      }
    }
  }

  /** Lets an undecided or suspect node vote (after it has been quarantined if need be). */
  private admit(node: RedisNode, standing: 'unvouched' | 'admitted'): void {
    this.of(node).standing = standing;
    this.mark(node);
    this.changed();
  }

  /** This engine now vouches for an unvouched node: it is marked once it votes. */
  private vouch(node: RedisNode): void {
    this.of(node).standing = 'admitted';
    this.mark(node);
  }

  /**
   * A node without a marker while others have one lost its data while no engine watched, or another engine that
   * is starting at the same moment has just marked the other nodes and is about to mark this one (engines start
   * together on a fresh cluster: a replica pair, a restarted deployment; or one of them reached some nodes late).
   * The node stays out of quorums while its marker is read again (rereadMarker). Still missing (or unreadable):
   * quarantine, saying `why`. An `unvouched` node loses the vote it had: with the marked node that just turned up
   * it could form a quorum that forgot a lock. A false alarm costs operations in flight a retry, no more.
   */
  private confirmMarkerLoss(node: RedisNode, why: string): void {
    const a = this.of(node);
    const wasVoting = a.standing === 'unvouched';
    a.standing = 'suspect';
    if (wasVoting) this.changed();
    this.rereadMarker(node, (vouchedFor) => {
      if (!vouchedFor) this.quarantine(node, why, performance.now() - node.uptimeMs);
      this.admit(node, 'admitted');
    });
  }

  /**
   * Reads a node's marker again after a settle time (twice the node timeout: as long as a marker write may be in
   * flight) and tells `decide` whether it now holds the node's current run_id. An engine writes a marker only for
   * a node it admitted as a voter, so that means another engine that watched the node trusts it.
   */
  private rereadMarker(node: RedisNode, decide: (vouchedFor: boolean) => void): void {
    this.after(2 * this.options.nodeTimeoutMs, async () => {
      const marker = await node.readMarker();
      if (!this.closed) decide(marker === node.runId);
    });
  }

  /** Writes the node's marker if it votes, is `admitted`, and its marker is not known to hold its run_id. */
  private mark(node: RedisNode): void {
    const a = this.of(node);
    const runId = node.runId;
    if (!runId || a.marker === runId || !this.mayVote(node) || a.standing !== 'admitted') return;
    a.marker = runId;
    void node.writeMarker(runId).then((written) => {
      if (!written) a.marker = null;
    });
  }

  // ——— Quarantine ———

  /**
   * A restarted node may have forgotten locks, so it may not vote until they have expired: at most the max ttl
   * (+ drift) after its restart. `since` is when it restarted (detection time when seen live, now − uptime at
   * first contact). The scan that may shorten it starts after a settle time.
   */
  private quarantine(node: RedisNode, why: string, since = performance.now()): void {
    const a = this.of(node);
    a.restarts++;
    const maxTtl = this.options.maxTtlMs;
    const until = since + maxTtl + driftMs(this.options, maxTtl);
    if (until <= performance.now()) return;
    this.setQuarantine(
      a,
      until,
      `${why}: it may have forgotten locks, so it is out of quorums until they have expired`,
    );
    // Acquire attempts in flight when it restarted may still be writing their other votes; their replies count
    // only within the node timeout, so a scan started twice that later sees their keys.
    const settle = 2 * this.options.nodeTimeoutMs;
    a.scanNotBefore = performance.now() + settle;
    this.after(settle, () => this.shortenQuarantines());
  }

  /** Keeps the node out of quorums until `until` (monotonic ms); only ever lengthens unless `shorten`. */
  private setQuarantine(a: Admission, until: number, reason: string, shorten = false): void {
    if (!shorten && until <= a.quarantineUntil) return;
    a.quarantineUntil = until;
    a.quarantineReason = reason;
    this.changed();
  }

  /**
   * With enough other nodes voting that every quorum includes one of them, those nodes hold every still-valid
   * lock the quarantined node held, so the wait is their largest remaining PTTL (+ drift): zero on an idle
   * cluster. With fewer, the max-ttl quarantine stands.
   */
  private async shortenQuarantine(node: RedisNode, a: Admission): Promise<void> {
    const witnesses = this.nodes.filter((n) => n !== node && this.mayVote(n));
    if (witnesses.length < this.nodes.length - quorumOf(this.nodes.length) + 1) return;
    a.scanning = true;
    try {
      const longest = Math.max(0, ...(await Promise.all(witnesses.map((w) => this.longestLockPttl(w)))));
      if (this.closed || !witnesses.every((w) => this.mayVote(w))) return;
      const waitMs = longest > 0 ? longest + driftMs(this.options, longest) : 0;
      const until = performance.now() + waitMs;
      if (until < performance.now() + remainingMs(a)) {
        this.setQuarantine(
          a,
          until,
          `restarted; waiting ${waitMs} ms for the locks it may have forgotten to expire`,
          true,
        );
        this.log?.info(
          { node: node.name, waitMs },
          waitMs === 0
            ? 'restarted node rejoins: no live locks'
            : 'restarted node quarantined until live locks expire',
        );
      }
    } catch (error) {
      this.log?.warn(
        { node: node.name, err: String(error) },
        'quarantine scan failed; keeping the max-ttl quarantine',
      );
    } finally {
      a.scanning = false;
    }
  }

  /** The largest PTTL among lock keys on a node (a key without expiry counts as the max ttl). */
  private async longestLockPttl(node: RedisNode): Promise<number> {
    const pattern = `${escapeGlob(this.options.keyPrefix)}*`;
    const deadline = performance.now() + 5_000;
    let cursor = '0';
    let longest = 0;
    do {
      const [next, keys] = await node.bounded(node.redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1_000));
      const lockKeys = keys.filter((k) => !this.reserved.some((p) => k.startsWith(p)));
      const pttls = await Promise.all(lockKeys.map((k) => node.bounded(node.redis.pttl(k))));
      for (const p of pttls) longest = Math.max(longest, p === -1 ? this.options.maxTtlMs : p);
      cursor = next;
      if (performance.now() > deadline) throw new Error(`scanning ${node.name} took over 5 s`);
    } while (cursor !== '0');
    return longest;
  }

  // ——— Helpers ———

  private of(node: RedisNode): Admission {
    const a = this.admissions.get(node);
    if (!a) throw new Error(`node ${node.name} is not watched by this engine's admission`);
    return a;
  }

  /** Runs `fn` once after `ms`, unless close() comes first. */
  private after(ms: number, fn: () => void | Promise<void>): void {
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      void fn();
    }, ms);
    timer.unref();
    this.timers.add(timer);
  }
}

/** Why a node with this maxmemory-policy may not vote ('' when it may): Redis could evict lock keys. */
function refusal(policy: string | undefined): string {
  if (policy === undefined || policy === 'noeviction') return '';
  return `maxmemory-policy is ${policy}: Redis may evict lock keys; set maxmemory-policy noeviction on this node`;
}

function remainingMs(a: Admission, now = performance.now()): number {
  return Math.max(0, Math.ceil(a.quarantineUntil - now));
}

function short(runId: string): string {
  return runId ? `${runId.slice(0, 8)}…` : 'none';
}

function escapeGlob(text: string): string {
  return text.replace(/[*?[\]\\]/g, '\\$&');
}
