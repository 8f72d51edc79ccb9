/**
 * The harness's view of which Redis nodes can vote, recorded as `voting` counts for the checker's S6 (no grant
 * without a voting majority) and L3. A node cannot vote while it is down, paused, cut off, or restarted empty and
 * still in the server's quarantine (amnesiac). The end of a quarantine is decided by the server and learnt by
 * polling it, so it is known only to lie between two polls: it is dated back to the earliest moment it could
 * have happened. Over-counting voters there is the safe side: S6 then checks a little less, instead of flagging
 * grants the server correctly made with that node.
 */
export type NodeState = { down: boolean; paused: boolean; cut: boolean; amnesiac: boolean };

/** How far back states are kept for back-dated changes: longer than any quarantine poll. */
const STATE_LOG_NS = 30_000_000_000n;

export function votingCount(states: readonly NodeState[]): number {
  return states.filter((s) => !s.down && !s.paused && !s.cut && !s.amnesiac).length;
}

export class VotingTimeline {
  private readonly states: NodeState[];
  private last: number;
  /** The states after each change, in time order (the last STATE_LOG_NS). */
  private readonly log: { at: bigint; states: NodeState[] }[] = [];
  /** Per node: the earliest moment its quarantine may have ended. */
  private readonly votingPossibleSince: bigint[];

  constructor(
    nodes: number,
    /** Records one count at `at`; counts at the same `at` must keep their order (the later one wins). */
    private readonly record: (voting: number, at: bigint) => void,
    private readonly now: () => bigint = () => process.hrtime.bigint(),
  ) {
    this.states = Array.from({ length: nodes }, () => ({
      down: false,
      paused: false,
      cut: false,
      amnesiac: false,
    }));
    this.votingPossibleSince = this.states.map(() => 0n);
    this.last = nodes;
    const at = this.now();
    this.record(nodes, at);
    this.keep(at, this.states);
  }

  get voting(): number {
    return votingCount(this.states);
  }

  state(i: number): Readonly<NodeState> {
    return this.states[i]!;
  }

  get anyAmnesiac(): boolean {
    return this.states.some((s) => s.amnesiac);
  }

  /**
   * A fault (or its end) changes node i now. A fault that starts on a node in quarantine settles the quarantine
   * first: whether it ended since the last poll is unknown, so the node counts as voting from the earliest moment
   * it could have, and stays counted once the fault ends (unless it is restarted empty again).
   */
  set(i: number, change: Partial<Omit<NodeState, 'amnesiac'>>): void {
    const starts = Object.values(change).some((v) => v === true);
    if (starts && this.states[i]!.amnesiac) this.change(i, { amnesiac: false }, this.votingPossibleSince[i]!);
    this.change(i, change);
  }

  /** Node i came back empty: quarantined by the server until a poll says it votes. */
  restartedEmpty(i: number): void {
    this.change(i, { down: false, amnesiac: true });
    this.votingPossibleSince[i] = this.now();
  }

  /** The server, asked at `sent`, answered whether node i votes. */
  polled(i: number, voting: boolean, sent: bigint): void {
    if (!this.states[i]!.amnesiac) return;
    if (voting) this.change(i, { amnesiac: false }, this.votingPossibleSince[i]!);
    // Not voting when asked, so not before this send either: a quarantine ends once.
    else if (sent > this.votingPossibleSince[i]!) this.votingPossibleSince[i] = sent;
  }

  /**
   * Applies a change now, or from `at` when it may have happened earlier. Then the counts recorded since `at`
   * were computed without it, so each is recorded again, corrected, at its own time — otherwise a count recorded
   * between `at` and now (say, another node cut) would undo the change in the timeline.
   */
  private change(i: number, change: Partial<NodeState>, at?: bigint): void {
    const now = this.now();
    Object.assign(this.states[i]!, change);
    if (at === undefined || at >= now) {
      this.keep(now, this.states);
      const voting = votingCount(this.states);
      if (voting === this.last) return;
      this.last = voting;
      this.record(voting, now);
      return;
    }
    const before = this.log.findLast((entry) => entry.at <= at)?.states ?? this.states;
    const atState = before.map((n) => ({ ...n }));
    Object.assign(atState[i]!, change);
    this.keep(at, atState);
    for (const entry of this.log) {
      if (entry.at < at) continue;
      if (entry.at > at) Object.assign(entry.states[i]!, change);
      this.record(votingCount(entry.states), entry.at);
    }
    this.last = votingCount(this.states);
  }

  private keep(at: bigint, states: readonly NodeState[]): void {
    const index = this.log.findLastIndex((entry) => entry.at <= at);
    this.log.splice(index + 1, 0, { at, states: states.map((n) => ({ ...n })) });
    while (this.log.length > 1 && this.log[0]!.at < at - STATE_LOG_NS) this.log.shift();
  }
}
