// ghz's report printer (printer/printer.go and printer/template.go): the default "summary" layout, byte for
// byte as ghz's template and tabwriter lay it out, "csv" (one line per call), and "json" / "pretty" (the
// report as ghz's encoding/json writes it: no trailing newline, <, > and & escaped).
import type { Bucket, Report } from './report.js';

const BAR = '∎';

/** The report in `format` (summary, csv, json or pretty). */
export function formatReport(report: Report, format: 'summary' | 'csv' | 'json' | 'pretty'): string {
  switch (format) {
    case 'summary':
      return summary(report);
    case 'csv':
      return csv(report);
    case 'json':
      return goJson(JSON.stringify(report));
    case 'pretty':
      return goJson(JSON.stringify(report, null, 2));
  }
}

function summary(r: Report): string {
  const statuses = Object.entries(r.statusCodeDistribution);
  const errors = Object.entries(r.errorDistribution);
  return [
    '\nSummary:\n',
    r.name ? `  Name:\t\t${r.name}\n` : '',
    `  Count:\t${r.count}\n`,
    `  Total:\t${formatNanoUnit(r.total)}\n`,
    `  Slowest:\t${formatNanoUnit(r.slowest)}\n`,
    `  Fastest:\t${formatNanoUnit(r.fastest)}\n`,
    `  Average:\t${formatNanoUnit(r.average)}\n`,
    `  Requests/sec:\t${r.rps.toFixed(2)}\n`,
    '\nResponse time histogram:\n',
    histogram(r.histogram ?? []),
    '\nLatency distribution:',
    ...(r.latencyDistribution ?? []).map((l) => `\n  ${l.percentage} % in ${formatNanoUnit(l.latency)} `),
    '\n\n',
    statuses.length > 0
      ? `Status code distribution:\n${tabular(statuses.map(([status, n]) => [`  [${status}]`, `${n} responses`]))}`
      : '',
    '\n',
    errors.length > 0
      ? `Error distribution:\n${tabular(errors.map(([error, n]) => [`  [${n}]`, error]))}`
      : '',
    '\n',
  ].join('');
}

function csv(r: Report): string {
  const lines = (r.details ?? []).map((d) => `\n${(d.latency / 1e6).toFixed(2)},${d.status},${d.error}`);
  return `\nduration (ms),status,error${lines.join('')}\n`;
}

/** ghz's formatNanoUnit: "123 ns" below 10 µs, else milliseconds, else seconds, two decimals. */
function formatNanoUnit(ns: number): string {
  if (ns < 10_000) return `${ns} ns`;
  const ms = ns / 1e6;
  return ms < 1000 ? `${ms.toFixed(2)} ms` : `${(ms / 1000).toFixed(2)} s`;
}

/** ghz's histogram: "  <mark ms> [<count>] |∎∎∎", marks and counts padded to line up, bars up to 40. */
function histogram(buckets: Bucket[]): string {
  const maxMark = Math.max(0, ...buckets.map((b) => b.mark));
  const maxCount = Math.max(0, ...buckets.map((b) => b.count));
  const markText = (mark: number) => (mark * 1000).toFixed(3);
  const markWidth = markText(maxMark).length;
  const countWidth = String(maxCount).length;
  return buckets
    .map((b) => {
      const bar = maxCount > 0 ? Math.trunc((b.count * 40 + Math.trunc(maxCount / 2)) / maxCount) : 0;
      const mark = markText(b.mark);
      const count = String(b.count);
      return `  ${mark}${' '.repeat(Math.max(markWidth - mark.length, 0))} [${count}]${' '.repeat(countWidth - count.length)} |${BAR.repeat(bar)}\n`;
    })
    .join('');
}

/** Go's text/tabwriter with padding 3 and padchar ' ' over lines "cell\tcell\t\n": each column as wide as its
 *  widest cell plus 3. */
function tabular(rows: [string, string][]): string {
  const width = (column: 0 | 1) => Math.max(...rows.map((row) => [...row[column]].length)) + 3;
  const pad = (text: string, to: number) => text + ' '.repeat(to - [...text].length);
  const [first, second] = [width(0), width(1)];
  return rows.map(([a, b]) => `${pad(a, first)}${pad(b, second)}\n`).join('');
}

/** Go's json.Marshal escapes <, > and & (and U+2028/U+2029) inside strings. */
function goJson(text: string): string {
  return text.replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
