// ghz's command line (kingpin flags, as `ghz --help` lists them) read into the same config keys as a config
// file: `--flag value`, `--flag=value`, `-f value`, `-fvalue`, `--no-flag` for booleans, one positional host.
// Only the flags the user gave are returned, because ghz lets exactly those override a --config file.
import { ConfigError, type ConfigKey, type GhzConfig, setConfigValue } from './config.js';
import { parseDuration } from './duration.js';

type FlagKind = 'string' | 'bool' | 'uint' | 'int' | 'duration' | 'json' | 'csv';

interface Flag {
  kind: FlagKind;
  /** The config key the flag sets; undefined for --config, --help, --version and --binary. */
  key?: ConfigKey;
  short?: string;
  /** Allowed values (kingpin's Enum). */
  values?: readonly string[];
}

const FORMATS = [
  'summary',
  'csv',
  'json',
  'pretty',
  'html',
  'influx-summary',
  'influx-details',
  'prometheus',
];

/** ghz's flags by long name. */
const FLAGS: Record<string, Flag> = {
  help: { kind: 'bool', short: 'h' },
  version: { kind: 'bool', short: 'v' },
  config: { kind: 'string' },
  proto: { kind: 'string', key: 'proto' },
  protoset: { kind: 'string', key: 'protoset' },
  call: { kind: 'string', key: 'call' },
  'import-paths': { kind: 'csv', key: 'import-paths', short: 'i' },
  cacert: { kind: 'string', key: 'cacert' },
  cert: { kind: 'string', key: 'cert' },
  key: { kind: 'string', key: 'key' },
  cname: { kind: 'string', key: 'cname' },
  skipTLS: { kind: 'bool', key: 'skipTLS' },
  insecure: { kind: 'bool', key: 'insecure' },
  authority: { kind: 'string', key: 'authority' },
  async: { kind: 'bool', key: 'async' },
  rps: { kind: 'uint', key: 'rps', short: 'r' },
  'load-schedule': { kind: 'string', key: 'load-schedule' },
  'load-start': { kind: 'uint', key: 'load-start' },
  'load-step': { kind: 'int', key: 'load-step' },
  'load-end': { kind: 'uint', key: 'load-end' },
  'load-step-duration': { kind: 'duration', key: 'load-step-duration' },
  'load-max-duration': { kind: 'duration', key: 'load-max-duration' },
  concurrency: { kind: 'uint', key: 'concurrency', short: 'c' },
  'concurrency-schedule': { kind: 'string', key: 'concurrency-schedule' },
  'concurrency-start': { kind: 'uint', key: 'concurrency-start' },
  'concurrency-end': { kind: 'uint', key: 'concurrency-end' },
  'concurrency-step': { kind: 'int', key: 'concurrency-step' },
  'concurrency-step-duration': { kind: 'duration', key: 'concurrency-step-duration' },
  'concurrency-max-duration': { kind: 'duration', key: 'concurrency-max-duration' },
  total: { kind: 'uint', key: 'total', short: 'n' },
  timeout: { kind: 'duration', key: 'timeout', short: 't' },
  duration: { kind: 'duration', key: 'duration', short: 'z' },
  'max-duration': { kind: 'duration', key: 'max-duration', short: 'x' },
  'duration-stop': { kind: 'string', key: 'duration-stop' },
  data: { kind: 'json', key: 'data', short: 'd' },
  'data-file': { kind: 'string', key: 'data-file', short: 'D' },
  binary: { kind: 'bool', short: 'b' },
  'binary-file': { kind: 'string', key: 'binary-file', short: 'B' },
  metadata: { kind: 'json', key: 'metadata', short: 'm' },
  'metadata-file': { kind: 'string', key: 'metadata-file', short: 'M' },
  'stream-interval': { kind: 'duration', key: 'stream-interval' },
  'stream-call-duration': { kind: 'duration', key: 'stream-call-duration' },
  'stream-call-count': { kind: 'uint', key: 'stream-call-count' },
  'stream-dynamic-messages': { kind: 'bool', key: 'stream-dynamic-messages' },
  'reflect-metadata': { kind: 'json', key: 'reflect-metadata' },
  output: { kind: 'string', key: 'output', short: 'o' },
  format: { kind: 'string', key: 'format', short: 'O', values: FORMATS },
  skipFirst: { kind: 'uint', key: 'skipFirst' },
  'count-errors': { kind: 'bool', key: 'count-errors' },
  connections: { kind: 'uint', key: 'connections' },
  'connect-timeout': { kind: 'duration', key: 'connect-timeout' },
  keepalive: { kind: 'duration', key: 'keepalive' },
  name: { kind: 'string', key: 'name' },
  tags: { kind: 'json', key: 'tags' },
  cpus: { kind: 'uint', key: 'cpus' },
  debug: { kind: 'string', key: 'debug' },
  'enable-compression': { kind: 'bool', key: 'enable-compression', short: 'e' },
  'lb-strategy': { kind: 'string', key: 'lb-strategy' },
};

const BY_SHORT = new Map(
  Object.entries(FLAGS).flatMap(([name, flag]) => (flag.short ? [[flag.short, name] as const] : [])),
);

/** What the command line asked for. */
export interface CommandLine {
  /** The flags given, as config values (host included when given). */
  config: Partial<GhzConfig>;
  configPath?: string;
  help: boolean;
  version: boolean;
  /** -b/--binary: binary call data from stdin (not supported by the built-in runner). */
  binary: boolean;
}

/** A command line kingpin would refuse; ghz prints `ghz: error: <message>, try --help` and exits 1. */
export class UsageError extends ConfigError {}

/** Parses ghz's command-line arguments (without the program name). */
export function parseCommandLine(argv: readonly string[]): CommandLine {
  const result: CommandLine = { config: {}, help: false, version: false, binary: false };
  const positionals: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    let name: string;
    let inline: string | undefined;
    let negated = false;
    if (arg.startsWith('--')) {
      const eq = arg.indexOf('=');
      name = eq < 0 ? arg.slice(2) : arg.slice(2, eq);
      inline = eq < 0 ? undefined : arg.slice(eq + 1);
      if (!(name in FLAGS) && name.startsWith('no-') && FLAGS[name.slice(3)]?.kind === 'bool') {
        name = name.slice(3);
        negated = true;
      }
      if (!(name in FLAGS)) throw new UsageError(`unknown long flag '--${name}'`);
    } else if (arg.startsWith('-') && arg.length > 1) {
      const long = BY_SHORT.get(arg[1]!);
      if (long === undefined) throw new UsageError(`unknown short flag '-${arg[1]}'`);
      name = long;
      inline = arg.length > 2 ? arg.slice(2) : undefined;
    } else {
      positionals.push(arg);
      continue;
    }
    const flag = FLAGS[name]!;
    let value: string | undefined;
    if (flag.kind === 'bool') {
      if (inline !== undefined && inline !== 'true' && inline !== 'false') {
        throw new UsageError(`unexpected ${inline} for boolean flag '--${name}'`);
      }
      value = String(!negated && inline !== 'false');
    } else {
      value = inline ?? argv[++i];
      if (value === undefined) throw new UsageError(`expected argument for flag '--${name}'`);
    }
    apply(result, name, flag, value);
  }
  if (positionals.length > 1) throw new UsageError(`unexpected ${positionals[1]}`);
  if (positionals[0]) result.config.host = positionals[0];
  return result;
}

/** Stores one flag's value, converted as kingpin and ghz's createConfigFromArgs convert it. */
function apply(result: CommandLine, name: string, flag: Flag, value: string): void {
  if (name === 'help') result.help = value === 'true';
  else if (name === 'version') result.version = value === 'true';
  else if (name === 'binary') result.binary = value === 'true';
  else if (name === 'config') result.configPath = value.trim();
  if (flag.key === undefined) return;
  if (flag.values && !flag.values.includes(value)) {
    throw new UsageError(`enum value must be one of ${flag.values.join(',')}, got '${value}'`);
  }
  // ghz: an empty JSON value means "not given".
  if (flag.kind === 'json' && value.trim() === '') return;
  setConfigValue(result.config, flag.key, convert(name, flag.kind, value), `--${name}`);
}

/** A flag's text as the value a config file would hold for its key. */
function convert(name: string, kind: FlagKind, value: string): unknown {
  switch (kind) {
    case 'string':
      return value;
    case 'bool':
      return value === 'true';
    case 'uint':
    case 'int': {
      const pattern = kind === 'uint' ? /^\+?\d+$/ : /^[+-]?\d+$/;
      const parser = kind === 'uint' ? 'strconv.ParseUint' : 'strconv.ParseInt';
      if (!pattern.test(value)) throw new UsageError(`${parser}: parsing "${value}": invalid syntax`);
      return Number(value);
    }
    case 'duration':
      try {
        parseDuration(value);
      } catch (error) {
        throw new UsageError((error as Error).message);
      }
      return value;
    case 'csv':
      return value.trim() === '' ? [] : value.trim().split(',');
    case 'json':
      if (name === 'data' && value === '@') return '@'; // read the data from stdin
      try {
        return JSON.parse(value);
      } catch (error) {
        const what = name === 'reflect-metadata' ? 'reflection metadata' : name;
        throw new ConfigError(`Error unmarshaling ${what} '${value}': ${(error as Error).message}`);
      }
  }
}

/** The short usage text (ghz's `--help`, abridged to what the built-in runner reads). */
export const USAGE = `usage: ghz [<flags>] [<host>]

Flags (as ghz's; see ghz/README.md for what the built-in runner supports):
  -h, --help                  Show this help.
      --config=               Path to the JSON (or YAML) config file with the test run settings.
      --proto=                The Protocol Buffer .proto file (else: server reflection).
      --protoset=             A compiled protoset file (FileDescriptorSet).
      --call=                 A fully-qualified method name: 'package.Service/Method' or 'package.Service.Method'.
  -i, --import-paths=         Comma separated list of proto import paths.
      --cacert= --cert= --key= --cname= --skipTLS   TLS settings.
      --insecure              Use plaintext and insecure connection.
      --authority=            Value to be used as the :authority pseudo-header.
  -r, --rps=0                 Requests per second (RPS) rate limit. Default is no rate limit.
  -c, --concurrency=50        Number of request workers to run concurrently.
  -n, --total=200             Number of requests to run.
  -t, --timeout=20s           Timeout for each request; 0 for infinite.
  -z, --duration=0            Duration of application to send requests; if set, n is ignored.
  -x, --max-duration=0        Maximum duration of application to send requests with n setting respected.
      --duration-stop=close   How duration stop is reported: close, wait or ignore.
  -d, --data=                 The call data as stringified JSON ('@': read from stdin).
  -D, --data-file=            File path for call data JSON file.
  -m, --metadata=             Request metadata as stringified JSON.
  -M, --metadata-file=        File path for call metadata JSON file.
      --reflect-metadata=     Reflect metadata as stringified JSON used only for reflection request.
  -o, --output=               Output path. If none provided stdout is used.
  -O, --format=summary        Output format: summary, csv, json or pretty.
      --skipFirst=0           Skip the first X requests when doing the results tally.
      --count-errors          Count erroneous (non-OK) responses in the latency statistics too.
      --connections=1         Number of connections to use.
      --connect-timeout=10s   Connection timeout for the initial connection dial (and reflection).
      --keepalive=0           Keepalive time duration.
      --name= --tags=         A name and JSON string tags for the report.
  -e, --enable-compression    Enable Gzip compression on requests.
  -v, --version               Show application version.

Args:
  [<host>]  Host and port to test.
`;
