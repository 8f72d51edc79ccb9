/**
 * What `redlease` writes. Results go to stdout, messages and `lock`'s events to stderr (a CMD run by `lock` owns
 * stdout). Human output is aligned tables, coloured only when the stream is a terminal and NO_COLOR is not set
 * (https://no-color.org); `--json` writes one JSON document per result instead, never coloured.
 */

/** ANSI styles, or none. */
export interface Style {
  bold(text: string): string;
  dim(text: string): string;
  red(text: string): string;
  green(text: string): string;
  yellow(text: string): string;
}

const PLAIN: Style = {
  bold: (text) => text,
  dim: (text) => text,
  red: (text) => text,
  green: (text) => text,
  yellow: (text) => text,
};

const sgr = (open: number, close: number) => (text: string) => `\x1b[${open}m${text}\x1b[${close}m`;
const ANSI: Style = {
  bold: sgr(1, 22),
  dim: sgr(2, 22),
  red: sgr(31, 39),
  green: sgr(32, 39),
  yellow: sgr(33, 39),
};

/** Colour for a stream: only on a terminal, and never when NO_COLOR is set to anything but the empty string. */
export function styleFor(stream: { isTTY?: boolean }, env: NodeJS.ProcessEnv): Style {
  return stream.isTTY === true && !env.NO_COLOR ? ANSI : PLAIN;
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: matching ANSI escapes is the point
const ESCAPES = /\x1b\[[0-9;]*m/g;

/** Columns padded to their widest cell (escapes not counted), two spaces apart; no trailing spaces. */
export function table(rows: readonly (readonly string[])[]): string {
  const widths: number[] = [];
  for (const row of rows) {
    row.forEach((cell, i) => {
      widths[i] = Math.max(widths[i] ?? 0, cell.replace(ESCAPES, '').length);
    });
  }
  return rows
    .map((row) =>
      row
        .map((cell, i) =>
          i === row.length - 1 ? cell : cell + ' '.repeat(widths[i]! - cell.replace(ESCAPES, '').length),
        )
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

/** A duration for people: 350ms, 8.2s, 2m05s, 1h02m. */
export function formatDuration(ms: number): string {
  if (ms < 1_000) return `${Math.round(ms)}ms`;
  if (ms < 60_000) return `${(Math.floor(ms / 100) / 10).toFixed(1)}s`;
  const seconds = Math.floor(ms / 1_000);
  if (seconds < 3_600) return `${Math.floor(seconds / 60)}m${String(seconds % 60).padStart(2, '0')}s`;
  return `${Math.floor(seconds / 3_600)}h${String(Math.floor(seconds / 60) % 60).padStart(2, '0')}m`;
}

/** Where a command writes, and how. */
export interface Output {
  /** --json: documents instead of tables and prose. */
  json: boolean;
  stdout: NodeJS.WritableStream & { isTTY?: boolean };
  stderr: NodeJS.WritableStream & { isTTY?: boolean };
  /** Styles for stdout and stderr. */
  out: Style;
  err: Style;
}

export function output(json: boolean, env: NodeJS.ProcessEnv): Output {
  return {
    json,
    stdout: process.stdout,
    stderr: process.stderr,
    out: json ? PLAIN : styleFor(process.stdout, env),
    err: json ? PLAIN : styleFor(process.stderr, env),
  };
}

/** A result: the document with --json, else the text; on stdout. */
export function result(out: Output, document: unknown, text: () => string): void {
  out.stdout.write(out.json ? `${JSON.stringify(document)}\n` : `${text()}\n`);
}

/**
 * A message on stderr: with --json the event as one JSON line, else `redlease: …` for people (nothing when
 * `text` returns undefined: an event only scripts care about).
 */
export function note(out: Output, event: Record<string, unknown>, text: () => string | undefined): void {
  if (out.json) {
    out.stderr.write(`${JSON.stringify(event)}\n`);
    return;
  }
  const line = text();
  if (line !== undefined) out.stderr.write(`redlease: ${line}\n`);
}
