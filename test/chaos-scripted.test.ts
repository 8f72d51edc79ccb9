/**
 * The scripted scenarios (ids in docs/chaos.md): each runs real redis-server, server and client processes
 * through the chaos harness (chaos/harness.ts), and the history checker (chaos/checker.ts) judges the
 * recorded history.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { HistoryEvent } from '../chaos/history.js';
import { chaos } from './support/chaos.js';

const storeLog = (dir: string): HistoryEvent[] =>
  readFileSync(join(dir, 'store.jsonl'), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as HistoryEvent);

describe('chaos: scripted faults', { timeout: 60_000 }, () => {
  it('F4: a node restarted empty while a lock is held on it does not vote until that lock has expired (L5)', async () => {
    const { report, facts } = await chaos('F4');
    expect(report.valid).toBe(true);
    const f = facts as {
      aToken: number;
      bToken: number;
      firstOkAt: number;
      aDeadline: number;
      refusedBefore: number;
    };
    // B was refused while A's lease was valid, and granted only after it, with a larger token.
    expect(f.refusedBefore).toBeGreaterThan(0);
    expect(f.firstOkAt).toBeGreaterThanOrEqual(f.aDeadline);
    expect(f.bToken).toBeGreaterThan(f.aToken);
  });

  it('F8: a worker paused past its ttl writes with its stale token, and the fenced store refuses it', async () => {
    const { report, facts, dir } = await chaos('F8');
    expect(report.valid).toBe(true);
    expect(report.checks.S4.valid).toBe(true);
    expect(report.checks.S5set.valid).toBe(true);
    const stale = String(facts.pausedToken);
    const refused = storeLog(dir).filter(
      (e) => e.f === 'store_write' && e.type === 'fail' && e.token === stale,
    );
    expect(refused).toHaveLength(1);
    expect(refused[0]!.error?.code).toBe('STALE_TOKEN');
  });

  it('F8, unfenced: the same pause loses an acknowledged update, and the checker reports it (it can fail)', async () => {
    const { report } = await chaos('F8u');
    expect(report.checks.S5set.valid).toBe(false);
    expect(report.checks.S5set.notCounted).toBe('expected');
    expect(report.checks.S5set.summary).toContain('unfenced');
    expect(report.checks.expected.valid).toBe(true);
    expect(report.checks.S3.valid).toBe(true);
    expect(report.checks.S4.valid).toBe(true);
    expect(report.valid).toBe(true);
  });

  it("F14: a node's clock jump breaks mutual exclusion; the checker catches the overlap and fencing refuses A's write", async () => {
    const { report, facts } = await chaos('F14');
    const f = facts as {
      aToken: number;
      bToken: number;
      aStillHeld: boolean;
      aWrite: boolean;
      bWrite: boolean;
    };
    expect(f.aStillHeld).toBe(true);
    expect(f.bToken).toBeGreaterThan(f.aToken);
    expect(f.bWrite).toBe(true);
    expect(f.aWrite).toBe(false);
    expect(report.checks.S1.valid).toBe(false);
    expect(report.checks.S1.notCounted).toBe('expected');
    expect(report.checks.S1.anomalies[0]!.message).toContain('overlaps');
    expect(report.checks.S3.valid).toBe(true);
    expect(report.checks.S4.valid).toBe(true);
    expect(report.checks.expected.valid).toBe(true);
    expect(report.valid).toBe(true);
  });

  it('F25: release and extend after expiry or by a non-owner are refused and leave the new holder untouched', async () => {
    const { report, facts } = await chaos('F25');
    expect(report.valid).toBe(true);
    expect(facts).toMatchObject({
      lateRelease: false,
      staleExtend: false,
      staleRelease: false,
      holderExtend: true,
      holderWrite: true,
    });
    const pttls = facts.pttls as number[];
    expect(pttls.filter((p) => p > 0).length).toBeGreaterThanOrEqual(2);
  });
});
