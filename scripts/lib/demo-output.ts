/**
 * The demo's one output stream: every process's lines, interleaved as they come, each behind a fixed-width
 * coloured prefix naming its source (`redis-1 │`, `server  │`, `w1      │`, `demo    │` for the launcher itself),
 * log lines made readable by formatLogLine. Colour only on a terminal and without NO_COLOR (see ansi.ts).
 */
import { type Ansi, type AnsiCode, ansi } from './ansi.js';
import { formatLogLine } from './log-format.js';

/** Wide enough for every source name: redis-1…3, store, server, w1…w9, trace, demo. */
const PREFIX_WIDTH = 7;

const SOURCE_COLORS: Readonly<Record<string, AnsiCode>> = {
  'redis-1': '36',
  'redis-2': '34',
  'redis-3': '35',
  store: '96',
  server: '32',
  trace: '2',
  demo: '1',
};
/** Workers take these in turn: yellow first, then other bright colours not used above. */
const WORKER_COLORS: readonly AnsiCode[] = ['33', '93', '91', '95', '92', '94'];

export type DemoLevel = 'info' | 'warn' | 'error';

export class DemoOutput {
  readonly color: Ansi;

  constructor(
    private readonly stream: NodeJS.WritableStream = process.stdout,
    color: Ansi = ansi(),
  ) {
    this.color = color;
  }

  /** One log line written by process `source`, formatted. */
  log(source: string, line: string): void {
    if (line.trim() === '') return;
    this.write(source, formatLogLine(line, this.color));
  }

  /** A message of the launcher itself, formatted like the pino lines of the others. */
  demo(message: string, level: DemoLevel = 'info'): void {
    const levels = { info: 30, warn: 40, error: 50 } as const;
    this.log('demo', JSON.stringify({ level: levels[level], time: Date.now(), msg: message }));
  }

  /** `text` behind `source`'s prefix, as it is (the banner). */
  write(source: string, text: string): void {
    const prefix = this.color.paint(colorOf(source), source.padEnd(PREFIX_WIDTH));
    this.stream.write(`${prefix} ${this.color.paint('2', '│')} ${text}\n`);
  }
}

function colorOf(source: string): AnsiCode {
  const fixed = SOURCE_COLORS[source];
  if (fixed !== undefined) return fixed;
  const worker = /^w(\d+)$/.exec(source);
  return worker ? WORKER_COLORS[(Number(worker[1]) - 1) % WORKER_COLORS.length]! : '90';
}
