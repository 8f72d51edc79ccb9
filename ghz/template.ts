// ghz's call templates: call data and metadata are Go text/template text, executed for every request with the
// call's data (ghz's runner.CallData). This is the subset worth having for a load test: `{{.Field}}` for every
// CallData field, the functions ghz adds (newUUID, randomString, randomInt), comments and trim markers. Anything
// else (if/range, pipelines, variables, sprig functions) is refused when the run is set up, with a message that
// says so, instead of being sent to the server as literal text.
import { randomInt as cryptoRandomInt, randomUUID } from 'node:crypto';

/** ghz's CallData: what a template can print, fresh for each request. */
export interface CallData {
  /** "g<worker>c<connection>", prefixed with "<name>:" when the run has a name. */
  WorkerID: string;
  /** 0 for the first request of the run, then 1, 2… */
  RequestNumber: number;
  /** e.g. redlease.v1.LockService.Acquire */
  FullyQualifiedName: string;
  /** e.g. Acquire */
  MethodName: string;
  /** e.g. LockService */
  ServiceName: string;
  /** e.g. AcquireRequest */
  InputName: string;
  /** e.g. AcquireResponse */
  OutputName: string;
  IsClientStreaming: boolean;
  IsServerStreaming: boolean;
  /** The call's time, RFC 3339 (seconds, local offset). */
  Timestamp: string;
  TimestampUnix: number;
  TimestampUnixMilli: number;
  TimestampUnixNano: bigint;
  /** A random UUID v4 per call. */
  UUID: string;
}

const FIELDS = new Set<string>([
  'WorkerID',
  'RequestNumber',
  'FullyQualifiedName',
  'MethodName',
  'ServiceName',
  'InputName',
  'OutputName',
  'IsClientStreaming',
  'IsServerStreaming',
  'Timestamp',
  'TimestampUnix',
  'TimestampUnixMilli',
  'TimestampUnixNano',
  'UUID',
]);

const KEYWORDS = new Set([
  'if',
  'else',
  'end',
  'range',
  'with',
  'define',
  'template',
  'block',
  'break',
  'continue',
]);

type Arg = { field: keyof CallData } | { literal: number };
type Part =
  | { text: string }
  | { field: keyof CallData }
  | { call: 'newUUID' | 'randomString' | 'randomInt'; args: Arg[] };

/** A compiled call template. */
export interface CallTemplate {
  /** False when the text holds no action (only text and comments): it then gives the same output every call. */
  hasActions: boolean;
  execute(data: CallData): string;
}

/** A template ghz would refuse to parse, or one using what the built-in runner does not implement. */
export class TemplateError extends Error {}

/** Compiles `text` (call data or metadata JSON with `{{…}}` actions); throws TemplateError. */
export function compileTemplate(text: string): CallTemplate {
  const parts: Part[] = [];
  let rest = text;
  let trimNext = false;
  while (rest !== '') {
    const open = rest.indexOf('{{');
    let chunk = open < 0 ? rest : rest.slice(0, open);
    if (trimNext) chunk = chunk.trimStart();
    rest = open < 0 ? '' : rest.slice(open + 2);
    if (open < 0) {
      if (chunk) parts.push({ text: chunk });
      break;
    }
    // `{{- ` trims the whitespace before the action, ` -}}` the whitespace after it.
    if (/^-[ \t\r\n]/.test(rest)) {
      chunk = chunk.trimEnd();
      rest = rest.slice(1);
    }
    if (chunk) parts.push({ text: chunk });
    const close = findClose(rest);
    if (close < 0) throw new TemplateError(`template: unclosed action in ${JSON.stringify(text)}`);
    let body = rest.slice(0, close);
    rest = rest.slice(close + 2);
    trimNext = /[ \t\r\n]-$/.test(body);
    if (trimNext) body = body.slice(0, -1);
    const part = parseAction(body.trim(), text);
    if (part) parts.push(part);
  }
  const hasActions = parts.some((p) => !('text' in p));
  return {
    hasActions,
    execute(data) {
      return parts.map((p) => evaluate(p, data)).join('');
    },
  };
}

/** Index of the `}}` that ends the action starting at `body[0]`, skipping quoted strings. */
function findClose(body: string): number {
  for (let i = 0; i < body.length; i++) {
    const c = body[i];
    if (c === '"' || c === '`' || c === "'") {
      const end = c === '"' ? /"(?:[^"\\\n]|\\.)*"/y : c === '`' ? /`[^`]*`/y : /'(?:[^'\\\n]|\\.)*'/y;
      end.lastIndex = i;
      if (!end.test(body)) return -1;
      i = end.lastIndex - 1;
    } else if (c === '}' && body[i + 1] === '}') {
      return i;
    }
  }
  return -1;
}

function parseAction(body: string, text: string): Part | undefined {
  const refuse = (what: string) =>
    new TemplateError(
      `template: {{${body}}} in ${JSON.stringify(text)}: ${what}; the built-in runner supports {{.Field}} ` +
        `(${[...FIELDS].join(', ')}), {{newUUID}}, {{randomString N}} and {{randomInt MIN MAX}}`,
    );
  if (body.startsWith('/*')) {
    if (!body.endsWith('*/'))
      throw new TemplateError(`template: unclosed comment in ${JSON.stringify(text)}`);
    return undefined;
  }
  if (body === '') throw new TemplateError(`template: missing value for command in ${JSON.stringify(text)}`);
  if (/[|$]|:=/.test(body.replace(/"(?:[^"\\]|\\.)*"/g, '""')))
    throw refuse('pipelines and variables are not supported');
  const words = body.split(/\s+/);
  const [head, ...args] = words as [string, ...string[]];
  if (head.startsWith('.')) {
    if (args.length > 0) throw refuse(`${head} is not a function`);
    const name = head.slice(1);
    if (name === '') throw refuse('{{.}} (the whole call data) is not supported');
    if (!FIELDS.has(name)) throw refuse(`ghz's call data has no field "${name}"`);
    return { field: name as keyof CallData };
  }
  if (KEYWORDS.has(head)) throw refuse(`"${head}" actions are not supported`);
  const arity = { newUUID: 0, randomString: 1, randomInt: 2 }[head];
  if (arity === undefined) {
    throw refuse(
      `function "${head}" is not defined, or not supported here (ghz also has the sprig functions)`,
    );
  }
  if (args.length !== arity) throw refuse(`${head} takes ${arity} argument${arity === 1 ? '' : 's'}`);
  return {
    call: head as 'newUUID' | 'randomString' | 'randomInt',
    args: args.map((arg) => {
      if (/^[+-]?\d+$/.test(arg)) return { literal: Number(arg) };
      const field = arg.slice(1);
      if (arg.startsWith('.') && FIELDS.has(field)) return { field: field as keyof CallData };
      throw refuse(`argument ${arg} must be an integer or a call data field`);
    }),
  };
}

const CHARSET = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';

function evaluate(part: Part, data: CallData): string {
  if ('text' in part) return part.text;
  if ('field' in part) return String(data[part.field]);
  const args = part.args.map((arg) => ('literal' in arg ? arg.literal : Number(data[arg.field])));
  switch (part.call) {
    case 'newUUID':
      return randomUUID();
    case 'randomString': {
      // ghz: a length ≤ 0 picks a random length from 2 to 16.
      const length = args[0]! > 0 ? args[0]! : cryptoRandomInt(2, 17);
      return Array.from({ length }, () => CHARSET[cryptoRandomInt(CHARSET.length)]).join('');
    }
    case 'randomInt': {
      // ghz: min < 0 counts as 0, max ≤ 0 as 1; the result is in [min, max).
      const min = Math.max(args[0]!, 0);
      const max = args[1]! <= 0 ? 1 : args[1]!;
      if (max <= min) throw new TemplateError(`template: randomInt ${min} ${max}: max must be above min`);
      return String(cryptoRandomInt(min, max));
    }
  }
}
