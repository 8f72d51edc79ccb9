/** The history itself: complete enough to judge (no truncated writer file, every completion paired with its invoke). */
import type { Model } from './model.js';
import type { Findings } from './support.js';
import type { CheckResult } from './types.js';

/** The findings are those of reading the history and pairing its operations (chaos/checks/model.ts). */
export function checkCompleteness(m: Model, historyFindings: Findings, truncated: number): CheckResult {
  const events = m.events;
  const result = historyFindings.result(
    truncated > 0 || historyFindings.count > 0 ? 'unknown' : true,
    truncated > 0
      ? `incomplete: ${truncated} truncated line(s) in the writer files`
      : `${events.length} events, ${m.ops.length} operations, ${m.ops.filter((o) => o.synthesized).length} completions made up for ended processes`,
    { truncated, synthesizedCompletions: m.ops.filter((o) => o.synthesized).length },
  );
  if (truncated > 0 && historyFindings.count > 0) {
    result.summary = `incomplete: ${truncated} truncated line(s); ${result.summary}`;
  }
  return result;
}
