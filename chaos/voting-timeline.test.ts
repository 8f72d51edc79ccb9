import { describe, expect, it } from 'vitest';
import { VotingTimeline } from './voting-timeline.js';

/** A timeline on a fake clock (ms as bigint), and the count in force at each time as the checker reads it. */
function timeline() {
  let clock = 0n;
  const records: { voting: number; at: bigint }[] = [];
  const t = new VotingTimeline(
    3,
    (voting, at) => records.push({ voting, at }),
    () => clock,
  );
  /** The checker's view: events by (time, order recorded); the last one at or before `at` is in force. */
  const votingAt = (at: number): number => {
    const sorted = records
      .map((r, seq) => ({ ...r, seq }))
      .sort((a, b) => (a.at === b.at ? a.seq - b.seq : a.at < b.at ? -1 : 1));
    return sorted.filter((r) => r.at <= BigInt(at)).at(-1)!.voting;
  };
  return {
    t,
    votingAt,
    at(ms: number) {
      clock = BigInt(ms);
    },
  };
}

describe('VotingTimeline (the harness view of voters, for S6)', () => {
  it('counts faults as they come', () => {
    const { t, votingAt, at } = timeline();
    at(10);
    t.set(0, { down: true });
    at(20);
    t.set(1, { paused: true });
    at(30);
    t.set(1, { paused: false });
    expect([votingAt(0), votingAt(15), votingAt(25), votingAt(35)]).toEqual([3, 2, 1, 2]);
  });

  it('a quarantine end learnt late is dated back, and a fault recorded meanwhile does not undo it', () => {
    // The soak's false S6 alarm: R1 restarted empty; a poll sent at 15 found it out, the next one (sent at 25)
    // finds it voting only after R2 was cut at 30. R1 may have voted from 15 on; the count recorded at 30 (1: R1
    // still believed out) must not hide that.
    const { t, votingAt, at } = timeline();
    at(5);
    t.set(0, { down: true });
    at(10);
    t.restartedEmpty(0);
    at(20);
    t.polled(0, false, 15n);
    at(30);
    t.set(1, { cut: true });
    at(35);
    t.polled(0, true, 25n);
    expect([votingAt(12), votingAt(14), votingAt(16), votingAt(31), votingAt(40)]).toEqual([2, 2, 3, 2, 2]);
    expect(t.voting).toBe(2);
  });

  it('a fault on a node in quarantine counts it as voting from the last poll that said no', () => {
    // The soak's other false alarm: R3 restarted empty, left quarantine between two polls and was killed before
    // the next poll could see it voting; the server had granted with it meanwhile.
    const { t, votingAt, at } = timeline();
    at(5);
    t.set(2, { down: true });
    at(10);
    t.restartedEmpty(2);
    at(12);
    t.set(1, { down: true });
    at(30);
    t.polled(2, false, 20n);
    at(50);
    t.set(2, { down: true });
    expect([votingAt(15), votingAt(19), votingAt(21), votingAt(49), votingAt(51)]).toEqual([1, 1, 2, 2, 1]);
  });

  it('a node still in quarantine is not counted while polls say so; it counts from the last poll that said no', () => {
    const { t, votingAt, at } = timeline();
    at(10);
    t.restartedEmpty(0);
    for (const sent of [20, 40, 60]) {
      at(sent + 5);
      t.polled(0, false, BigInt(sent));
    }
    at(85);
    t.polled(0, true, 80n);
    expect([votingAt(11), votingAt(59), votingAt(61), votingAt(90)]).toEqual([2, 2, 3, 3]);
    // The end of a fault is not a reason to settle a quarantine.
    at(100);
    t.restartedEmpty(0);
    at(110);
    t.set(0, { paused: false });
    expect(t.state(0).amnesiac).toBe(true);
    expect(votingAt(115)).toBe(2);
  });
});
