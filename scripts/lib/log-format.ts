/**
 * One readable line from one log line of a demo process: `HH:MM:SS.mmm LEVEL message key=value …`.
 *
 * - pino JSON (server, workers): time, level and msg first, then the other fields as key=value, without the ones
 *   every line carries (pid, hostname, service) or that the prefix already shows (worker); `event` only when it
 *   says more than msg. Objects are shown compactly, errors by their message, long values shortened.
 * - redis-server's log (`pid:role dd Mon yyyy HH:MM:SS.mmm <level char> message`): time, level, message.
 * - anything else: unchanged.
 */
import type { Ansi } from './ansi.js';

/** Fields not shown: on every line (pid, hostname, service, v), or already in the prefix (worker). */
const HIDDEN = new Set(['time', 'level', 'msg', 'pid', 'hostname', 'service', 'v', 'worker']);
/** Longest value shown; the `nodes` array of the server's listening line is about 300 characters. */
const MAX_VALUE_CHARS = 200;

const PINO_LEVELS: Readonly<Record<number, string>> = {
  10: 'TRACE',
  20: 'DEBUG',
  30: 'INFO',
  40: 'WARN',
  50: 'ERROR',
  60: 'FATAL',
};

/** redis-server's level characters: . debug, - verbose, * notice, # warning (also used for start-up notices). */
const REDIS_LINE = /^\d+:[A-Z] \d{1,2} [A-Za-z]{3} \d{4} (\d{2}:\d{2}:\d{2}\.\d{3}) ([.\-*#]) (.*)$/;

export function formatLogLine(line: string, color: Ansi): string {
  const trimmed = line.trimEnd();
  if (trimmed.startsWith('{')) {
    try {
      const parsed: unknown = JSON.parse(trimmed);
      if (isRecord(parsed)) return formatPino(parsed, color);
    } catch {
      // not JSON after all: shown as it is
    }
  }
  const redis = REDIS_LINE.exec(trimmed);
  if (redis) {
    const [, time, char, message] = redis as unknown as [string, string, string, string];
    // Redis logs its start-up notices ("Redis is starting", "Server initialized") at warning level too: only its
    // real warnings say so in the text.
    const level =
      char === '#' ? (/^WARNING/i.test(message) ? 'WARN' : 'INFO') : char === '*' ? 'INFO' : 'DEBUG';
    return `${color.paint('2', time)} ${paintLevel(level, color)} ${message}`;
  }
  return trimmed;
}

function formatPino(record: Record<string, unknown>, color: Ansi): string {
  const time = typeof record.time === 'number' ? clock(new Date(record.time)) : clock(new Date());
  const level = PINO_LEVELS[Number(record.level)] ?? String(record.level ?? 'INFO').toUpperCase();
  const msg = typeof record.msg === 'string' ? record.msg : '';
  const fields: string[] = [];
  for (const [key, value] of Object.entries(record)) {
    if (HIDDEN.has(key) || value === undefined) continue;
    if (key === 'event' && value === msg) continue;
    fields.push(`${color.paint('2', `${key}=`)}${shorten(render(key, value))}`);
  }
  const text = [msg, ...fields].filter((part) => part !== '').join(' ');
  return `${color.paint('2', time)} ${paintLevel(level, color)} ${text}`;
}

/** A value as key=value shows it: bare when it has no spaces, quoted when it has, objects compact. */
function render(key: string, value: unknown): string {
  if (key === 'err' && isRecord(value) && typeof value.message === 'string')
    return quoteIfNeeded(value.message);
  if (typeof value === 'string') return quoteIfNeeded(value);
  if (typeof value !== 'object' || value === null) return String(value);
  return compact(value);
}

/** JSON without the quotes around keys and plain strings: {name:redis-1,up:true}. */
function compact(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(compact).join(',')}]`;
  if (isRecord(value)) {
    return `{${Object.entries(value)
      .map(([k, v]) => `${k}:${compact(v)}`)
      .join(',')}}`;
  }
  if (typeof value === 'string')
    return /^[\w.:/@+-]*$/.test(value) && value !== '' ? value : JSON.stringify(value);
  return String(value);
}

function quoteIfNeeded(text: string): string {
  return /^[^\s"=]+$/.test(text) ? text : JSON.stringify(text);
}

function shorten(text: string): string {
  return text.length > MAX_VALUE_CHARS ? `${text.slice(0, MAX_VALUE_CHARS - 1)}…` : text;
}

function paintLevel(level: string, color: Ansi): string {
  const padded = level.padEnd(5);
  if (level === 'WARN') return color.paint('33', padded);
  if (level === 'ERROR' || level === 'FATAL') return color.paint('31', padded);
  if (level === 'INFO') return color.paint('32', padded);
  return color.paint('2', padded);
}

/** Local wall-clock time HH:MM:SS.mmm, like redis-server's own log. */
function clock(date: Date): string {
  const two = (n: number): string => String(n).padStart(2, '0');
  return `${two(date.getHours())}:${two(date.getMinutes())}:${two(date.getSeconds())}.${String(date.getMilliseconds()).padStart(3, '0')}`;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
