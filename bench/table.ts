/** Plain-text tables and the number formats the bench prints. */

/** Columns padded to their widest cell; the first column left-aligned, the others right-aligned. */
export function renderTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(width(h), ...rows.map((row) => width(row[i] ?? ''))));
  const line = (cells: readonly string[]): string =>
    cells
      .map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!)))
      .join('  ')
      .trimEnd();
  const rule = widths.map((w) => '-'.repeat(w)).join('  ');
  return [line(header), rule, ...rows.map(line)].join('\n');
}

/** As a Markdown table (docs/performance.md), same cells. */
export function renderMarkdown(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const line = (cells: readonly string[]): string => `| ${cells.join(' | ')} |`;
  return [line(header), line(header.map((_, i) => (i === 0 ? '---' : '---:'))), ...rows.map(line)].join('\n');
}

/** Width as shown (code points: "–" and "×" are one column each). */
function width(text: string): number {
  return [...text].length;
}

/**
 * A number as the issue writes them: thousands grouped with a space (5 200), and for small values about three
 * significant digits (0.78, 12.3). "n/a" for NaN.
 */
export function num(value: number): string {
  if (!Number.isFinite(value)) return 'n/a';
  const abs = Math.abs(value);
  if (abs >= 1_000) return Math.round(value).toLocaleString('en-US').replaceAll(',', ' ');
  if (abs >= 100) return value.toFixed(0);
  if (abs >= 10) return value.toFixed(1);
  return value.toFixed(2);
}

/** "median [min–max]", or just the median when all runs agree or there was one run. */
export function medianRange(spread: { median: number; min: number; max: number }, format = num): string {
  const median = format(spread.median);
  const min = format(spread.min);
  const max = format(spread.max);
  return min === max ? median : `${median} [${min}–${max}]`;
}

/** A ratio as "1.62×". */
export function times(value: number): string {
  return Number.isFinite(value) ? `${value.toFixed(2)}×` : 'n/a';
}
