// ghz's configuration: the keys of its JSON config files (runner.Config in bojand/ghz, also what its command-line
// flags fill in), read and type-checked the way ghz reads them. Keys are ghz's own spelling ("total",
// "concurrency", "data", "max-duration"…); like ghz, a config file may hold keys it does not know and they are
// ignored, but here with a warning, since a misspelt key (or the old short names "n", "c", "d" of ghz < 0.40)
// silently running ghz's defaults is the usual surprise.
import { readFile } from 'node:fs/promises';
import { extname } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { parseDuration } from './duration.js';

/** How a key's value is read: its JSON type in the file and its type here (durations become nanoseconds). */
interface KindTypes {
  string: string;
  bool: boolean;
  uint: number;
  int: number;
  duration: number;
  strings: string[];
  stringMap: Record<string, string>;
  data: unknown;
}

/** Every key of ghz's runner.Config, with its kind. */
export const CONFIG_KEYS = {
  proto: 'string',
  protoset: 'string',
  call: 'string',
  'import-paths': 'strings',
  cacert: 'string',
  cert: 'string',
  key: 'string',
  cname: 'string',
  skipTLS: 'bool',
  insecure: 'bool',
  authority: 'string',
  async: 'bool',
  rps: 'uint',
  'load-schedule': 'string',
  'load-start': 'uint',
  'load-end': 'uint',
  'load-step': 'int',
  'load-step-duration': 'duration',
  'load-max-duration': 'duration',
  concurrency: 'uint',
  'concurrency-schedule': 'string',
  'concurrency-start': 'uint',
  'concurrency-end': 'uint',
  'concurrency-step': 'int',
  'concurrency-step-duration': 'duration',
  'concurrency-max-duration': 'duration',
  total: 'uint',
  timeout: 'duration',
  duration: 'duration',
  'max-duration': 'duration',
  'duration-stop': 'string',
  data: 'data',
  'data-file': 'string',
  'binary-file': 'string',
  metadata: 'stringMap',
  'metadata-file': 'string',
  'stream-interval': 'duration',
  'stream-call-duration': 'duration',
  'stream-call-count': 'uint',
  'stream-dynamic-messages': 'bool',
  'reflect-metadata': 'stringMap',
  output: 'string',
  format: 'string',
  skipFirst: 'uint',
  'count-errors': 'bool',
  connections: 'uint',
  'connect-timeout': 'duration',
  keepalive: 'duration',
  'enable-compression': 'bool',
  'lb-strategy': 'string',
  name: 'string',
  tags: 'stringMap',
  cpus: 'uint',
  debug: 'string',
  host: 'string',
} as const satisfies Record<string, keyof KindTypes>;

export type ConfigKey = keyof typeof CONFIG_KEYS;
export type GhzConfig = { -readonly [K in ConfigKey]: KindTypes[(typeof CONFIG_KEYS)[K]] };

/** ghz's defaults (the `default:` tags of runner.Config and of its command-line flags). */
export const DEFAULTS: Partial<GhzConfig> = {
  total: 200,
  concurrency: 50,
  connections: 1,
  timeout: 20e9,
  'connect-timeout': 10e9,
  'duration-stop': 'close',
  format: 'summary',
  'load-schedule': 'const',
  'concurrency-schedule': 'const',
};

/** The long names of ghz < 0.40's config files, which current ghz ignores. */
const OLD_NAMES: Record<string, ConfigKey> = {
  n: 'total',
  c: 'concurrency',
  d: 'data',
  D: 'data-file',
  m: 'metadata',
  M: 'metadata-file',
  i: 'import-paths',
  z: 'duration',
  x: 'max-duration',
  t: 'timeout',
  q: 'rps',
  o: 'output',
  O: 'format',
};

/** A problem with the configuration: ghz prints it and exits 1 before any request is made. */
export class ConfigError extends Error {}

/**
 * Reads a ghz config file: JSON, or YAML for .yaml/.yml (ghz also reads TOML, which is not supported here).
 * Unknown keys are reported through `warn` and ignored.
 */
export async function loadConfigFile(
  path: string,
  warn: (message: string) => void,
): Promise<Partial<GhzConfig>> {
  const extension = extname(path).toLowerCase();
  if (extension === '.toml') throw new ConfigError(`${path}: TOML config files are not supported; use JSON`);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new ConfigError(
      `open ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
    );
  }
  let raw: unknown;
  try {
    raw = extension === '.yaml' || extension === '.yml' ? parseYaml(text) : JSON.parse(text);
  } catch (error) {
    throw new ConfigError(`${path}: ${(error as Error).message}`);
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new ConfigError(`${path}: a config file holds one JSON object`);
  }
  const config: Partial<GhzConfig> = {};
  for (const [key, value] of Object.entries(raw)) {
    if (!(key in CONFIG_KEYS)) {
      const hint = OLD_NAMES[key] ? ` (current ghz spells it "${OLD_NAMES[key]}")` : '';
      warn(`${path}: ignoring unknown config key "${key}"${hint}, as ghz does`);
      continue;
    }
    if (value === null) continue; // JSON null leaves a Go field at its zero value
    setConfigValue(config, key as ConfigKey, value, `${path}: "${key}"`);
  }
  return config;
}

/** Type-checks `value` for `key` (as Go's encoding/json would) and stores it in `config`. */
export function setConfigValue(
  config: Partial<GhzConfig>,
  key: ConfigKey,
  value: unknown,
  where: string,
): void {
  const kind: keyof KindTypes = CONFIG_KEYS[key];
  const wrong = (expected: string) =>
    new ConfigError(`${where}: expected ${expected}, got ${JSON.stringify(value) ?? String(value)}`);
  const target = config as Record<ConfigKey, unknown>;
  switch (kind) {
    case 'string':
      if (typeof value !== 'string') throw wrong('a string');
      target[key] = value;
      return;
    case 'bool':
      if (typeof value !== 'boolean') throw wrong('true or false');
      target[key] = value;
      return;
    case 'uint':
    case 'int':
      if (typeof value !== 'number' || !Number.isSafeInteger(value) || (kind === 'uint' && value < 0)) {
        throw wrong(kind === 'uint' ? 'a non-negative integer' : 'an integer');
      }
      target[key] = value;
      return;
    case 'duration':
      // ghz's Duration takes a Go duration string; a bare number is parsed as one too (so only 0 passes).
      if (typeof value !== 'string' && typeof value !== 'number') throw wrong('a duration such as "10s"');
      try {
        target[key] = parseDuration(String(value));
      } catch (error) {
        throw new ConfigError(`${where}: ${(error as Error).message}`);
      }
      return;
    case 'strings':
      if (!Array.isArray(value) || !value.every((v) => typeof v === 'string'))
        throw wrong('an array of strings');
      target[key] = value;
      return;
    case 'stringMap':
      if (
        typeof value !== 'object' ||
        value === null ||
        Array.isArray(value) ||
        !Object.values(value).every((v) => typeof v === 'string')
      ) {
        throw wrong('an object of strings');
      }
      target[key] = value;
      return;
    case 'data':
      checkData(value, where);
      target[key] = value;
      return;
  }
}

/** ghz's checkData: call data is one JSON object, or a non-empty array of objects (sent round-robin). */
function checkData(data: unknown, where: string): void {
  const isObject = (v: unknown) => typeof v === 'object' && v !== null && !Array.isArray(v);
  if (isObject(data) || data === '@') return; // "@": read the data from stdin
  if (!Array.isArray(data)) throw new ConfigError(`${where}: Unsupported type for Data`);
  if (data.length === 0) throw new ConfigError(`${where}: Data array must not be empty`);
  if (!data.every(isObject)) throw new ConfigError(`${where}: Data array contains unsupported type`);
}
