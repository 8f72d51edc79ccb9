import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, posix } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Script } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { parseConfig, type ServerConfig } from '../server/config.js';
import { AdminNetworks } from '../server/edge/auth.js';
import { Metrics } from '../server/metrics.js';
import { parseOptions, type WorkerOptions } from '../workers/options.js';

/**
 * The compose deployment (docker-compose.yml, Dockerfile, .dockerignore, scripts/compose/), checked statically:
 * CI has no Docker engine, so nothing here starts a container. What can be checked without one is checked against
 * the code itself: the server's and the workers' commands go through their real option parsers (a renamed flag or
 * variable fails here), and every metric the dashboard queries must be one that the server's Metrics exports.
 */

const ROOT = fileURLToPath(new URL('..', import.meta.url));
// The lab document's names (docs/lab.md): its readers type `docker compose stop lab37-redis-1` as written.
const LOCK_NODES = ['lab37-redis-1', 'lab37-redis-2', 'lab37-redis-3'];
const STORE = 'lab37-redis-store';
const SERVER = 'lab37-lock-service';
const WORKERS = ['lab37-worker-1', 'lab37-worker-2', 'lab37-worker-3'];
const PROMETHEUS = 'lab37-prometheus';
const GRAFANA = 'lab37-grafana';
const COLLECTOR = 'lab37-otel-collector';
const JAEGER = 'lab37-jaeger';
const K6 = 'lab37-k6';
const SERVICES = [...LOCK_NODES, STORE, SERVER, ...WORKERS, PROMETHEUS, GRAFANA, COLLECTOR, JAEGER, K6];
/** The lab's ports on the host (its architecture and its table of UIs). */
const HOST_PORTS: Record<string, string[]> = {
  'lab37-redis-1': ['6381:6379'],
  'lab37-redis-2': ['6382:6379'],
  'lab37-redis-3': ['6383:6379'],
  [SERVER]: ['50051:50051', '8000:8000'],
  [PROMETHEUS]: ['9090:9090'],
  [GRAFANA]: ['3001:3000'],
  [JAEGER]: ['16686:16686'],
};
/** The lab's k6 scripts, which it runs as /scripts/<name> in the k6 service. */
const K6_SCRIPTS = ['lock-contention.js', 'redis-failure.js'];
/** The max ttl compose and the demo run with: a node restarted empty votes again within 30 s. */
const LAB_MAX_TTL_MS = 30_000;
/** Metric families the dashboard must show (the panels the issue asks for). */
const REQUIRED_FAMILIES = [
  'redlease_acquisitions_total',
  'redlease_wait_seconds',
  'redlease_hold_seconds',
  'redlease_handoff_seconds',
  'redlease_rpc_duration_seconds',
  'redlease_held_locks',
  'redlease_waiters',
  'redlease_keepalive_streams',
  'redlease_node_up',
  'redlease_node_voting',
  'redlease_node_quarantined',
  'redlease_leases_lost_total',
  'redlease_quorum_available',
  'redlease_mode',
  'process_cpu_seconds_total',
  'process_resident_memory_bytes',
];
/** The lab's dashboard, by the name it is opened by, and what it must show: panel title and query, per item. */
const LAB_DASHBOARD = 'Distributed Locks Dashboard';
const Q = (quantile: string, family: string): RegExp =>
  new RegExp(
    `histogram_quantile\\(${quantile.replace('.', '\\.')}, sum by \\(le\\) \\(rate\\(${family}_bucket\\[`,
  );
const LAB_PANELS: Record<string, RegExp[]> = {
  'the acquisition rate by result': [/sum by \(result\) \(rate\(redlease_acquisitions_total\[/],
  'contention: held refusals and queued acquires per second, waiters, queue-wait p50 and p99': [
    /sum\(rate\(redlease_acquisitions_total\{result="held"\}\[/,
    /sum\(rate\(redlease_wait_seconds_count\[/,
    /^Waiters.*: sum\(redlease_waiters\)$/,
    Q('0.5', 'redlease_wait_seconds'),
    Q('0.99', 'redlease_wait_seconds'),
  ],
  'the hold duration': [Q('0.5', 'redlease_hold_seconds'), Q('0.99', 'redlease_hold_seconds')],
  'the hand-off latency': [Q('0.5', 'redlease_handoff_seconds'), Q('0.99', 'redlease_handoff_seconds')],
  'leases lost by reason': [/sum by \(reason\) \(increase\(redlease_leases_lost_total\[/],
  'nodes up, voting and quarantined': [
    /^Node up: redlease_node_up$/,
    /^Node voting: redlease_node_voting$/,
    /^Node quarantined: redlease_node_quarantined$/,
  ],
  'quorum and mode': [
    /^Quorum and mode: min\(redlease_quorum_available\)$/,
    /^Quorum and mode: max by \(mode\) \(redlease_mode\) == 1$/,
  ],
};
/** Every metric family the server exports (histograms without their series suffixes): the source of truth. */
const EXPORTED = new Set(new Metrics().names());
const HISTOGRAM_SERIES = /_(bucket|sum|count)$/;

// ---- files ----

function read(path: string): string {
  const file = join(ROOT, path);
  if (!existsSync(file)) throw new Error(`${path} is missing`);
  return readFileSync(file, 'utf8');
}

function yamlFile(path: string): unknown {
  const text = read(path);
  try {
    return parse(text);
  } catch (error) {
    throw new Error(`${path} is not valid YAML: ${(error as Error).message}`);
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

// ---- docker-compose.yml ----

type Scalar = string | number | boolean | null;
interface Service {
  image?: string;
  build?: string | { context?: string; dockerfile?: string };
  command?: string | string[];
  environment?: Record<string, Scalar> | string[];
  ports?: (string | number | { target: number; published?: string | number })[];
  depends_on?: string[] | Record<string, { condition?: string }>;
  healthcheck?: { test?: string | string[] };
  volumes?: (string | { type?: string; source?: string; target?: string })[];
  profiles?: string[];
}

const compose = yamlFile('docker-compose.yml');
if (!isObject(compose) || !isObject(compose.services)) {
  throw new Error('docker-compose.yml has no services: mapping');
}
const services = compose.services as Record<string, Service>;

function service(name: string): Service {
  const found = services[name];
  if (!isObject(found)) throw new Error(`docker-compose.yml has no service ${name}`);
  return found;
}

function environment(svc: Service): Record<string, string> {
  const env: Record<string, string> = {};
  if (Array.isArray(svc.environment)) {
    for (const entry of svc.environment) {
      const eq = entry.indexOf('=');
      if (eq > 0) env[entry.slice(0, eq)] = entry.slice(eq + 1);
    }
  } else {
    for (const [key, value] of Object.entries(svc.environment ?? {})) {
      if (value !== null) env[key] = String(value);
    }
  }
  return env;
}

/** `published:target` for each published port (`host_ip:` and `/protocol` dropped). */
function ports(svc: Service): string[] {
  return (svc.ports ?? []).map((port) => {
    if (typeof port === 'object') return `${port.published ?? ''}:${port.target}`;
    return String(port)
      .replace(/\/(tcp|udp)$/, '')
      .split(':')
      .slice(-2)
      .join(':');
  });
}

/** The host address each published port is bound to (`127.0.0.1:8000:8000` → 127.0.0.1; none: all, ''). */
function hostIps(svc: Service): string[] {
  return (svc.ports ?? []).map((port) => {
    if (typeof port === 'object') return '';
    const parts = String(port).split(':');
    return parts.length === 3 ? parts[0]! : '';
  });
}

/** depends_on as service → condition. */
function dependsOn(svc: Service): Record<string, string> {
  if (Array.isArray(svc.depends_on)) {
    return Object.fromEntries(svc.depends_on.map((name) => [name, 'service_started']));
  }
  return Object.fromEntries(
    Object.entries(svc.depends_on ?? {}).map(([name, dep]) => [name, dep.condition ?? 'service_started']),
  );
}

/** Bind mounts: repo-relative source and container target. */
function binds(svc: Service): { source: string; target: string }[] {
  const mounts: { source: string; target: string }[] = [];
  for (const volume of svc.volumes ?? []) {
    if (typeof volume === 'string') {
      const [source = '', target = ''] = volume.split(':');
      if (source.startsWith('.') || source.startsWith('/')) mounts.push({ source, target });
    } else if (volume.type === 'bind' && volume.source && volume.target) {
      mounts.push({ source: volume.source, target: volume.target });
    }
  }
  return mounts.map((m) => ({ source: posix.normalize(m.source), target: posix.normalize(m.target) }));
}

/** The repo path behind a container path of `svc`, through its bind mounts; undefined when none covers it. */
function hostPath(svc: Service, containerPath: string): string | undefined {
  for (const { source, target } of binds(svc)) {
    if (containerPath === target) return source;
    if (containerPath.startsWith(`${target}/`)) {
      return posix.join(source, containerPath.slice(target.length + 1));
    }
  }
  return undefined;
}

function commandOf(name: string): string[] {
  const { command } = service(name);
  if (!Array.isArray(command)) {
    throw new Error(`service ${name}: write command as a YAML list, so that its arguments are exact`);
  }
  return command.map(String);
}

/** A `node [node flags] <script> [args]` command split into the script and its arguments. */
function nodeCommand(where: string, command: string[]): { entry: string; args: string[] } {
  if (command[0] !== 'node') throw new Error(`${where}: the command must start with node, got ${command[0]}`);
  let i = 1;
  while (command[i]?.startsWith('-')) i += ['--import', '--require', '-r'].includes(command[i]!) ? 2 : 1;
  const entry = command[i];
  if (entry === undefined) throw new Error(`${where}: the command names no script to run`);
  return { entry, args: command.slice(i + 1) };
}

/** The TypeScript source of a script run in the image: `dist/x/y.js` is compiled from `x/y.ts`. */
function sourceOf(entry: string): string {
  const compiled = /^(?:\.\/)?dist\/(.+)\.js$/.exec(entry);
  return compiled ? `${compiled[1]}.ts` : entry;
}

function serverConfig(): { config: ServerConfig; warnings: string[]; entry: string } {
  const { entry, args } = nodeCommand(`service ${SERVER}`, commandOf(SERVER));
  const parsed = parseConfig(args, environment(service(SERVER))); // throws a ConfigError naming the flag
  if ('help' in parsed) throw new Error(`service ${SERVER}: the command asks for --help`);
  return { ...parsed, entry };
}

function workerOptions(name: string): { options: WorkerOptions; entry: string } {
  const { entry, args } = nodeCommand(`service ${name}`, commandOf(name));
  const parsed = parseOptions(args, environment(service(name))); // throws an OptionsError naming the flag
  if ('help' in parsed) throw new Error(`service ${name}: the command asks for --help`);
  return { options: parsed.options, entry };
}

// ---- Dockerfile and .dockerignore ----

interface Instruction {
  keyword: string;
  args: string;
}

/** The Dockerfile's instructions (continuation lines joined, comments dropped), one array per build stage. */
function dockerfileStages(): Instruction[][] {
  const stages: Instruction[][] = [];
  const lines = read('Dockerfile')
    .split('\n')
    .filter((line) => !/^\s*#/.test(line))
    .join('\n')
    .replace(/\\\n/g, ' ')
    .split('\n');
  for (const line of lines) {
    const match = /^\s*([A-Za-z]+)\s+(.*)$/.exec(line);
    if (!match) continue;
    const instruction = { keyword: match[1]!.toUpperCase(), args: match[2]!.trim() };
    if (instruction.keyword === 'FROM') stages.push([]);
    stages.at(-1)?.push(instruction);
  }
  return stages;
}

function finalStage(): Instruction[] {
  return dockerfileStages().at(-1) ?? [];
}

/** CMD/ENTRYPOINT arguments, in exec (JSON) or shell form. */
function execForm(args: string): string[] {
  return args.startsWith('[') ? (JSON.parse(args) as string[]) : args.split(/\s+/);
}

/** Top-level source folders the image compiles: tsconfig.build.json's, and any `include` the Dockerfile adds. */
function compiledFolders(): Set<string> {
  const build = JSON.parse(read('tsconfig.build.json')) as { include?: string[] };
  const folders = new Set(build.include ?? []);
  for (const match of read('Dockerfile').matchAll(/"include"\s*:\s*\[([^\]]*)\]/g)) {
    for (const folder of match[1]!.matchAll(/"([^"]+)"/g)) folders.add(folder[1]!);
  }
  return folders;
}

/** Whether .dockerignore keeps `path` (or a folder above it) out of the build context. Docker's matching: `*`
 *  and `?` stay within a path segment, `**` spans folders, a later `!rule` takes a path back in. */
function dockerignored(path: string): boolean {
  const rules = read('.dockerignore')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line && !line.startsWith('#'));
  const segment = (part: string): string =>
    part
      .replace(/[.+^${}()|[\]\\]/g, '\\$&')
      .replace(/\*/g, '[^/]*')
      .replace(/\?/g, '[^/]');
  let ignored = false;
  for (const rule of rules) {
    const negated = rule.startsWith('!');
    const glob = (negated ? rule.slice(1) : rule).replace(/^\/|\/$/g, '');
    const pattern = glob
      .split('**/')
      .map((part) => part.split('**').map(segment).join('.*'))
      .join('(?:.*/)?');
    if (new RegExp(`^${pattern}(/.*)?$`).test(path)) ignored = !negated;
  }
  return ignored;
}

// ---- Grafana ----

const PROVISIONING = '/etc/grafana/provisioning';

/** The provisioning files of one kind, read through grafana's bind mounts. */
function provisioning<T>(kind: 'datasources' | 'dashboards'): T[] {
  const dir = hostPath(service(GRAFANA), `${PROVISIONING}/${kind}`);
  if (!dir || !existsSync(join(ROOT, dir))) {
    throw new Error(`grafana: no repo folder is mounted at ${PROVISIONING}/${kind}`);
  }
  return readdirSync(join(ROOT, dir))
    .filter((file) => /\.ya?ml$/.test(file))
    .map((file) => yamlFile(posix.join(dir, file)) as T);
}

function datasources(): { uid?: string; type?: string; url?: string }[] {
  type File = { datasources?: { uid?: string; type?: string; url?: string }[] };
  return provisioning<File>('datasources').flatMap((file) => file.datasources ?? []);
}

/** The dashboard JSON files, found through the dashboard providers' paths and grafana's bind mounts. */
function dashboardFiles(): string[] {
  type File = { providers?: { options?: { path?: string } }[] };
  const files: string[] = [];
  for (const provider of provisioning<File>('dashboards').flatMap((file) => file.providers ?? [])) {
    const path = provider.options?.path;
    const dir = path === undefined ? undefined : hostPath(service(GRAFANA), path);
    if (!dir || !existsSync(join(ROOT, dir)) || !statSync(join(ROOT, dir)).isDirectory()) {
      throw new Error(
        `grafana: the dashboard provider's path ${path} is not a repo folder mounted into grafana`,
      );
    }
    for (const file of readdirSync(join(ROOT, dir))) {
      if (file.endsWith('.json')) files.push(posix.join(dir, file));
    }
  }
  return files;
}

interface Panel {
  id?: number;
  type?: string;
  title?: string;
  datasource?: { uid?: string } | null;
  targets?: { expr?: string; datasource?: { uid?: string } }[];
  panels?: Panel[];
}
interface Dashboard {
  uid?: string;
  title?: string;
  schemaVersion?: number;
  panels?: Panel[];
}

function dashboards(): { file: string; dashboard: Dashboard }[] {
  return dashboardFiles().map((file) => {
    const text = read(file);
    try {
      return { file, dashboard: JSON.parse(text) as Dashboard };
    } catch (error) {
      throw new Error(`${file} is not valid JSON: ${(error as Error).message}`);
    }
  });
}

/** Every panel, those inside collapsed rows included. */
function allPanels(dashboard: Dashboard): Panel[] {
  return (dashboard.panels ?? []).flatMap((panel) => [panel, ...(panel.panels ?? [])]);
}

/** The metric names a PromQL expression mentions. */
function metricNames(expr: string): string[] {
  return [...expr.matchAll(/\b(redlease|process|nodejs)_[a-z0-9_]+\b/g)].map((m) => m[0]);
}

/** The family of a series name: a histogram's `_bucket`, `_sum` and `_count` series belong to the histogram. */
function family(name: string): string {
  return EXPORTED.has(name) ? name : name.replace(HISTOGRAM_SERIES, '');
}

// ---- docker compose commands in the docs ----

/** The docs whose `docker compose …` commands a reader types against this compose file. */
const DOCS = ['docs/lab.md', 'docs/compose.md', 'README.md', 'k6/README.md'];

/** The compose commands of the lab document (lab 37), in its order: readers type these. */
const LAB_COMMANDS = [
  'docker compose up --build -d',
  'docker compose ps',
  'docker compose logs -f lab37-worker-1 lab37-worker-2 lab37-worker-3',
  'docker compose stop lab37-redis-1',
  'docker compose stop lab37-redis-2',
  'docker compose start lab37-redis-1 lab37-redis-2',
  'docker compose start lab37-redis-1',
  'docker compose run --rm lab37-k6 run /scripts/lock-contention.js',
  'docker compose run --rm lab37-k6 run /scripts/redis-failure.js',
  'docker compose start lab37-redis-2',
  'docker compose down -v',
  'docker compose logs -f',
  'docker compose exec lab37-redis-1 redis-cli ping',
  'docker compose logs lab37-otel-collector',
];

/** Subcommands that take service names, and for `run`/`exec` the one service before the command to run. */
const ONE_SERVICE = new Set(['run', 'exec']);
const MANY_SERVICES = new Set([
  'up',
  'start',
  'stop',
  'restart',
  'logs',
  'pause',
  'unpause',
  'ps',
  'kill',
  'rm',
  'build',
  'pull',
  'create',
  'top',
]);
/** Flags that take a value, so that the value is not read as a service name: before the subcommand, and after it
 *  (where `-f` is `logs --follow`, and `-p` is `run --publish`). */
const GLOBAL_VALUE_FLAGS = new Set(['-f', '--file', '-p', '--project-name', '--profile', '--env-file']);
const VALUE_FLAGS = new Set([
  '-e',
  '--env',
  '--name',
  '-w',
  '--workdir',
  '-u',
  '--user',
  '--entrypoint',
  '-v',
  '--volume',
  '-p',
  '--publish',
  '-t',
  '--timeout',
  '--tail',
  '-n',
  '--since',
  '--until',
  '--scale',
  '--index',
  '-l',
  '--label',
  '--signal',
  '-s',
]);

/** Every `docker compose …` command in `text` (in code, inline or fenced), up to a shell operator or comment. */
function composeCommands(text: string): string[] {
  const commands: string[] = [];
  const joined = text.replace(/\s*\\\n\s*/g, ' ');
  for (const match of joined.matchAll(/docker compose [^\n`|;&>#)]*/g)) commands.push(match[0].trim());
  return commands;
}

/** The services a command names, or undefined when its subcommand names none (down, config, version…). */
function servicesOf(command: string): string[] | undefined {
  const words = command.split(/\s+/).slice(2);
  let i = 0;
  while (words[i]?.startsWith('-')) i += GLOBAL_VALUE_FLAGS.has(words[i]!) ? 2 : 1;
  const sub = words[i++];
  if (sub === undefined || !(ONE_SERVICE.has(sub) || MANY_SERVICES.has(sub))) return undefined;
  const names: string[] = [];
  for (; i < words.length; i++) {
    const word = words[i]!;
    if (word.startsWith('-')) {
      if (VALUE_FLAGS.has(word)) i++;
      continue;
    }
    if (!word.startsWith('<')) names.push(word); // `<service>`: a placeholder, not a name
    if (ONE_SERVICE.has(sub)) break;
  }
  return names;
}

// ---- the tests ----

describe('docker-compose.yml', () => {
  it("defines the lab services under the lab document's names", () => {
    const missing = SERVICES.filter((name) => !isObject(services[name]));
    expect(missing, 'services missing from docker-compose.yml').toEqual([]);
  });

  it('runs Redis 7 for the lock nodes and the store, each with a redis-cli ping healthcheck', () => {
    const problems: string[] = [];
    for (const name of [...LOCK_NODES, STORE]) {
      const svc = service(name);
      if (!svc.image?.startsWith('redis:7')) {
        problems.push(`${name}: the image should be redis:7, got ${svc.image}`);
      }
      const test = [svc.healthcheck?.test ?? []].flat().join(' ');
      if (!/redis-cli.*\bping\b/.test(test))
        problems.push(`${name}: the healthcheck should run redis-cli ping`);
    }
    expect(problems).toEqual([]);
  });

  it('builds the lock service and the workers from the top-level Dockerfile', () => {
    const problems: string[] = [];
    for (const name of [SERVER, ...WORKERS]) {
      const { build } = service(name);
      const context = typeof build === 'string' ? build : build?.context;
      const file = typeof build === 'object' ? (build.dockerfile ?? 'Dockerfile') : 'Dockerfile';
      if (context === undefined) {
        problems.push(`${name}: no build: (it must run the image built from this repo)`);
      } else if (posix.join(context, file) !== 'Dockerfile') {
        problems.push(`${name}: builds ${posix.join(context, file)}, not the top-level Dockerfile`);
      }
    }
    expect(problems).toEqual([]);
  });

  it("publishes the lab's ports: Redis 6381-6383, HTTP 8000, gRPC 50051, Prometheus 9090, Grafana 3001, Jaeger 16686", () => {
    for (const [name, wanted] of Object.entries(HOST_PORTS)) {
      expect(ports(service(name)), `${name} ports`).toEqual(expect.arrayContaining(wanted));
    }
    expect(service(PROMETHEUS).image, 'prometheus image').toMatch(/^prom\/prometheus(:|$)/);
    expect(service(GRAFANA).image, 'grafana image').toMatch(/^grafana\/grafana(-oss)?(:|$)/);
  });

  it("binds the lock service's and the lock nodes' ports to the host's loopback only", () => {
    for (const name of [SERVER, ...LOCK_NODES]) {
      expect(hostIps(service(name)), `${name}: "127.0.0.1:<host>:<container>"`).toEqual(
        (service(name).ports ?? []).map(() => '127.0.0.1'),
      );
    }
  });

  it('starts the lock service once the lock nodes are healthy, the workers once it and the store are', () => {
    const problems: string[] = [];
    const want = (name: string, on: string): void => {
      const condition = dependsOn(service(name))[on];
      if (condition !== 'service_healthy') {
        problems.push(`${name}: depends_on ${on} should have condition service_healthy, got ${condition}`);
      }
    };
    for (const node of LOCK_NODES) want(SERVER, node);
    for (const worker of WORKERS) {
      want(worker, SERVER);
      want(worker, STORE);
    }
    want(K6, SERVER);
    expect(problems).toEqual([]);
  });

  it("checks the lock service's health with node's fetch of /health on its HTTP port", () => {
    const { config } = serverConfig();
    const test = service(SERVER).healthcheck?.test;
    expect(
      Array.isArray(test) ? test.slice(0, 3) : test,
      'healthcheck: ["CMD", "node", "-e", script] (the slim image has no curl)',
    ).toEqual(['CMD', 'node', '-e']);
    const script = String((test as string[])[3]);
    expect(script, 'healthcheck script').toMatch(/\bfetch\(/);
    const port = /https?:\/\/(?:127\.0\.0\.1|localhost):(\d+)\/health\b/.exec(script)?.[1];
    expect(port, 'the healthcheck must fetch http://127.0.0.1:<--http-listen port>/health').toBe(
      String(config.httpPort),
    );
    expect(() => new Script(script), 'the healthcheck script must be valid JavaScript').not.toThrow();
  });

  it('bind-mounts only files and folders that exist in the repo', () => {
    const missing: string[] = [];
    for (const [name, svc] of Object.entries(services)) {
      for (const { source } of binds(svc)) {
        if (!existsSync(join(ROOT, source))) missing.push(`${name}: ${source}`);
      }
    }
    expect(missing, 'bind mounts whose source is not in the repo').toEqual([]);
  });

  it('starts every service with `up` except lab37-k6, which is in a profile', () => {
    const profiled = Object.entries(services)
      .filter(([, svc]) => (svc.profiles ?? []).length > 0)
      .map(([name]) => name);
    expect(profiled).toEqual([K6]);
  });
});

describe('docker compose commands in the docs', () => {
  it.each(DOCS)('%s names only services that exist', (doc) => {
    const commands = composeCommands(read(doc));
    const unknown = commands.flatMap((command) =>
      (servicesOf(command) ?? [])
        .filter((name) => !isObject(services[name]))
        .map((name) => `${name} in: ${command}`),
    );
    expect(unknown, `${doc}: services docker-compose.yml does not define`).toEqual([]);
  });

  it('docs/lab.md shows every compose command the lab document types, as it types them', () => {
    const shown = new Set(composeCommands(read('docs/lab.md')));
    expect(LAB_COMMANDS.filter((command) => !shown.has(command))).toEqual([]);
  });

  it('reads the services of a command, past its flags', () => {
    expect(servicesOf('docker compose stop lab37-redis-1')).toEqual(['lab37-redis-1']);
    expect(servicesOf('docker compose logs -f --tail 20 a b c')).toEqual(['a', 'b', 'c']);
    expect(servicesOf('docker compose run --rm lab37-k6 run /scripts/x.js')).toEqual(['lab37-k6']);
    expect(servicesOf('docker compose exec -T lab37-redis-1 redis-cli ping')).toEqual(['lab37-redis-1']);
    expect(servicesOf('docker compose -f other.yml start a b')).toEqual(['a', 'b']);
    expect(servicesOf('docker compose down -v')).toBeUndefined();
    expect(servicesOf('docker compose logs -f <service')).toEqual([]);
    expect(
      composeCommands('`docker compose stop x` and\n```sh\ndocker compose run --rm k6 \\\n  run y # z\n```'),
    ).toEqual(['docker compose stop x', 'docker compose run --rm k6 run y']);
  });
});

describe('lab37-k6', () => {
  it('runs the grafana/k6 image with the k6 scripts of this repo mounted at /scripts', () => {
    const k6 = service(K6);
    expect(k6.image, 'image').toMatch(/^grafana\/k6(:|$)/);
    for (const script of K6_SCRIPTS) {
      const source = hostPath(k6, `/scripts/${script}`);
      expect(source, `/scripts/${script} is not mounted from the repo`).toBeDefined();
      expect(existsSync(join(ROOT, source!)), `${source} (the lab runs /scripts/${script})`).toBe(true);
      // The profile the script open()s sits next to it, so it is mounted with it.
      const profile = join(ROOT, source!.replace(/\.js$/, '.json'));
      expect(existsSync(profile), profile).toBe(true);
    }
  });

  it("points the scripts at the lock service's HTTP port (BASE_URL)", () => {
    const { config } = serverConfig();
    expect(environment(service(K6)).BASE_URL).toBe(`http://${SERVER}:${config.httpPort}`);
  });
});

describe('traces: lab37-otel-collector and lab37-jaeger', () => {
  type CollectorConfig = {
    receivers?: { otlp?: { protocols?: Record<string, { endpoint?: string }> } };
    exporters?: Record<string, { endpoint?: string; tls?: { insecure?: boolean } }>;
    service?: { pipelines?: Record<string, { receivers?: string[]; exporters?: string[] }> };
  };

  /** The collector's config file, found through its --config flag and its bind mounts. */
  function collectorConfig(): CollectorConfig {
    const collector = service(COLLECTOR);
    const flag = [collector.command ?? []].flat().find((a) => String(a).startsWith('--config='));
    expect(flag, `${COLLECTOR}: command --config=<file>`).toBeDefined();
    const file = hostPath(collector, String(flag).slice('--config='.length));
    expect(file, `${COLLECTOR}: its --config file is not mounted from the repo`).toBeDefined();
    return yamlFile(file!) as CollectorConfig;
  }

  it('runs the collector (otel/opentelemetry-collector-contrib) with an OTLP receiver on 4317 and 4318', () => {
    expect(service(COLLECTOR).image).toMatch(/^otel\/opentelemetry-collector-contrib(:|$)/);
    const protocols = collectorConfig().receivers?.otlp?.protocols ?? {};
    expect(protocols.grpc?.endpoint, 'OTLP gRPC').toMatch(/:4317$/);
    expect(protocols.http?.endpoint, 'OTLP HTTP').toMatch(/:4318$/);
  });

  it('exports the traces pipeline to Jaeger over OTLP; Jaeger (all-in-one) takes OTLP and shows its UI on 16686', () => {
    const config = collectorConfig();
    const traces = config.service?.pipelines?.traces;
    expect(traces?.receivers, 'traces pipeline receivers').toContain('otlp');
    const exporters = (traces?.exporters ?? []).map((name) => ({ name, ...config.exporters?.[name] }));
    const toJaeger = exporters.find(
      (e) => e.name.split('/')[0] === 'otlp' && e.endpoint === `${JAEGER}:4317`,
    );
    expect(toJaeger, `an otlp exporter to ${JAEGER}:4317 in the traces pipeline`).toBeDefined();
    expect(toJaeger?.tls?.insecure, 'plaintext inside the compose network').toBe(true);
    const jaeger = service(JAEGER);
    expect(jaeger.image).toMatch(/^jaegertracing\/all-in-one(:|$)/);
    expect(environment(jaeger).COLLECTOR_OTLP_ENABLED).toBe('true');
  });

  it.each([SERVER, ...WORKERS])(
    '%s sends traces to the collector over OTLP/HTTP under its own service name',
    (name) => {
      const env = environment(service(name));
      expect(env.OTEL_EXPORTER_OTLP_ENDPOINT).toBe(`http://${COLLECTOR}:4318`);
      expect(env.OTEL_EXPORTER_OTLP_PROTOCOL).toBe('http/protobuf');
      expect(env.OTEL_SERVICE_NAME).toBe(name);
    },
  );
});

describe('the lock service command', () => {
  it('parses with the real server configuration parser, and sets no unknown REDLEASE_* variable', () => {
    const { warnings } = serverConfig();
    // Listening on 0.0.0.0 without TLS or client tokens is the lab's choice; any other warning is a mistake.
    const unexpected = warnings.filter((w) => !w.includes('is reachable from other machines'));
    expect(unexpected, 'server configuration warnings').toEqual([]);
  });

  it('uses the three lock-node services, and listens on all interfaces on the ports it publishes', () => {
    const { config } = serverConfig();
    expect(config.nodes, '--nodes').toEqual(LOCK_NODES.map((name) => `${name}:6379`));
    expect([config.grpcHost, config.httpHost], '--grpc-listen and --http-listen hosts').toEqual([
      '0.0.0.0',
      '0.0.0.0',
    ]);
    expect(ports(service(SERVER)), 'published ports').toEqual(
      expect.arrayContaining([
        `${config.grpcPort}:${config.grpcPort}`,
        `${config.httpPort}:${config.httpPort}`,
      ]),
    );
  });

  it('admits admin calls from its pinned compose subnet without a token (the host comes from there)', () => {
    const { config } = serverConfig();
    const networks = compose.networks as { default?: { ipam?: { config?: { subnet?: string }[] } } };
    const subnets = (networks?.default?.ipam?.config ?? []).flatMap((c) => (c.subnet ? [c.subnet] : []));
    expect(subnets, 'networks.default.ipam.config[].subnet').toHaveLength(1);
    const [address, prefix] = subnets[0]!.split('/');
    const allowed = new AdminNetworks(config.adminNetworks);
    // The gateway (.1, where published ports deliver the host's requests from), a container, the last address.
    const base = address!.split('.').map(Number);
    const last = [...base];
    last[3] = (base[3]! | (2 ** (32 - Number(prefix)) - 1)) - 1;
    for (const peer of [[...base.slice(0, 3), base[3]! + 1], [...base.slice(0, 3), base[3]! + 7], last]) {
      expect(allowed.allows(peer.join('.')), `${peer.join('.')} in ${config.adminNetworks.join(',')}`).toBe(
        true,
      );
    }
    expect(allowed.allows('127.0.0.1'), 'the container itself').toBe(true);
    expect(allowed.allows('10.99.0.1'), 'a peer outside the compose network').toBe(false);
  });

  it('keeps an admin token for callers from elsewhere', () => {
    expect(serverConfig().config.adminToken, `REDLEASE_ADMIN_TOKEN of ${SERVER}`).toBeTruthy();
  });

  it('runs with a max ttl of 30 s, so a node restarted empty votes again within 30 s', () => {
    expect(serverConfig().config.maxTtlMs).toBe(LAB_MAX_TTL_MS);
  });
});

describe('the worker commands', () => {
  it.each(WORKERS)('%s parses with the real worker option parser and uses the compose services', (name) => {
    const { config } = serverConfig();
    const { options } = workerOptions(name);
    const colon = options.address.lastIndexOf(':');
    expect(
      { host: options.address.slice(0, colon), port: Number(options.address.slice(colon + 1)) },
      `${name}: --address`,
    ).toEqual({ host: SERVER, port: config.grpcPort });
    const store = new URL(options.store).hostname;
    expect(store, `${name}: --store must be the ${STORE} service`).toBe(STORE);
    expect(LOCK_NODES, `${name}: the store must not be a lock node`).not.toContain(store);
  });

  it('gives each worker its own name', () => {
    const names = WORKERS.map((name) => workerOptions(name).options.name);
    expect(new Set(names).size, `worker names ${names.join(', ')}`).toBe(WORKERS.length);
  });
});

describe('Dockerfile', () => {
  it('builds on node:20 with npm ci, runs as a non-root user and exposes 50051 and 8000', () => {
    const stages = dockerfileStages();
    const froms = stages.map((stage) => stage[0]!.args.split(/\s+/)[0]!);
    expect(froms.length, 'FROM instructions').toBeGreaterThan(0);
    expect(
      froms.filter((from) => !/^node:20([.-]|$)/.test(from)),
      'FROM images other than node:20*',
    ).toEqual([]);
    const runs = stages.flat().filter((i) => i.keyword === 'RUN');
    expect(
      runs.some((i) => /\bnpm ci\b/.test(i.args)),
      'a RUN with npm ci',
    ).toBe(true);
    expect(
      runs.filter((i) => /\bnpm (install|i)\b/.test(i.args)).map((i) => i.args),
      'RUN npm install (use npm ci, which installs package-lock.json exactly)',
    ).toEqual([]);
    const user = finalStage()
      .filter((i) => i.keyword === 'USER')
      .at(-1)?.args;
    expect(user, 'USER in the final stage').toBeDefined();
    expect(user, 'USER in the final stage').not.toMatch(/^(root|0)(:|$)/);
    const exposed = finalStage()
      .filter((i) => i.keyword === 'EXPOSE')
      .flatMap((i) => i.args.split(/\s+/));
    expect(exposed, 'EXPOSE').toEqual(expect.arrayContaining(['50051', '8000']));
  });

  it('runs scripts compiled from sources in the repo, by default and in every compose command', () => {
    const cmd = finalStage().filter((i) => i.keyword === 'CMD' || i.keyword === 'ENTRYPOINT');
    expect(cmd.length, 'CMD or ENTRYPOINT in the final stage').toBeGreaterThan(0);
    const entries = [
      { where: 'Dockerfile CMD', entry: nodeCommand('Dockerfile CMD', execForm(cmd.at(-1)!.args)).entry },
      { where: `service ${SERVER}`, entry: serverConfig().entry },
      ...WORKERS.map((name) => ({ where: `service ${name}`, entry: workerOptions(name).entry })),
    ];
    const folders = compiledFolders();
    const builds = /\bnpm run build\b/.test(read('Dockerfile'));
    const problems: string[] = [];
    for (const { where, entry } of entries) {
      const source = sourceOf(entry);
      if (!existsSync(join(ROOT, source))) {
        problems.push(`${where}: runs ${entry}, but ${source} is not in the repo`);
      }
      if (source === entry) continue;
      if (!builds) problems.push(`${where}: runs ${entry}, but the Dockerfile never runs npm run build`);
      const folder = source.split('/')[0]!;
      if (!folders.has(folder))
        problems.push(`${where}: runs ${entry}, but the image does not compile ${folder}/`);
    }
    expect(problems).toEqual([]);
    expect(sourceOf(entries[0]!.entry), 'the default command runs the server').toBe('server/main.ts');
  });

  it('.dockerignore leaves out local builds and dependencies, and nothing the build needs', () => {
    const local = ['node_modules', 'client/node_modules', 'dist', 'client/dist', '.git', '.redlease'];
    expect(
      local.filter((path) => !dockerignored(path)),
      '.dockerignore should leave these out',
    ).toEqual([]);
    const needed = [
      'package.json',
      'package-lock.json',
      'tsconfig.json',
      'tsconfig.build.json',
      'scripts/copy-assets.mjs',
      'server/main.ts',
      'server/redlock/scripts/acquire-3.lua',
      'gen/descriptors.binpb',
      'client/src/index.ts',
      'client/src/lua/fenced-write-1.lua',
      'workers/worker.ts',
      ...compiledFolders(),
    ];
    expect(
      needed.filter((path) => dockerignored(path)),
      '.dockerignore leaves out what the image build needs',
    ).toEqual([]);
  });
});

describe('Prometheus', () => {
  it("scrapes the server's /metrics on its HTTP port", () => {
    const { config } = serverConfig();
    const configFile = hostPath(service(PROMETHEUS), '/etc/prometheus/prometheus.yml');
    expect(configFile, 'prometheus mounts a repo file at /etc/prometheus/prometheus.yml').toBeDefined();
    const prometheus = yamlFile(configFile!) as {
      scrape_configs?: { metrics_path?: string; static_configs?: { targets?: string[] }[] }[];
    };
    const target = `${SERVER}:${config.httpPort}`;
    const jobs = (prometheus.scrape_configs ?? []).filter((job) =>
      (job.static_configs ?? []).some((s) => (s.targets ?? []).includes(target)),
    );
    expect(jobs.length, `scrape jobs with target ${target} in ${configFile}`).toBeGreaterThan(0);
    expect(jobs[0]!.metrics_path ?? '/metrics', 'metrics_path').toBe('/metrics');
  });
});

describe('Grafana', () => {
  it('lets anonymous viewers in, admin/admin edit, with a Prometheus datasource at http://lab37-prometheus:9090', () => {
    const env = environment(service(GRAFANA));
    expect([env.GF_SECURITY_ADMIN_USER, env.GF_SECURITY_ADMIN_PASSWORD], 'the admin login').toEqual([
      'admin',
      'admin',
    ]);
    expect(env.GF_AUTH_ANONYMOUS_ENABLED, 'GF_AUTH_ANONYMOUS_ENABLED').toBe('true');
    expect(env.GF_AUTH_ANONYMOUS_ORG_ROLE, 'GF_AUTH_ANONYMOUS_ORG_ROLE').toBe('Viewer');
    const prometheus = datasources().find((d) => d.type === 'prometheus');
    expect(prometheus, 'a provisioned datasource of type prometheus').toBeDefined();
    expect(prometheus!.uid, 'the datasource needs a fixed uid for the dashboards').toBeTruthy();
    expect(prometheus!.url, 'the datasource url (the prometheus service)').toBe(`http://${PROMETHEUS}:9090`);
  });

  it('provisions dashboards from repo files, the home dashboard among them', () => {
    const files = dashboardFiles();
    expect(files, "dashboard JSON files in the providers' folders").not.toEqual([]);
    const home = environment(service(GRAFANA)).GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH;
    if (home !== undefined) {
      expect(files, 'GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH').toContain(hostPath(service(GRAFANA), home));
    }
  });

  it('has the "Distributed Locks Dashboard" (schemaVersion ≥ 36), every panel on the datasource', () => {
    const uids = datasources().map((d) => d.uid);
    const all = dashboards();
    expect(
      all.map((d) => d.dashboard.title),
      'dashboard titles',
    ).toContain(LAB_DASHBOARD);
    const problems: string[] = [];
    for (const { file, dashboard } of all) {
      if ((dashboard.schemaVersion ?? 0) < 36) {
        problems.push(`${file}: schemaVersion ${dashboard.schemaVersion} is below 36`);
      }
      const ids = new Set<number | undefined>();
      for (const panel of allPanels(dashboard)) {
        if (ids.has(panel.id)) problems.push(`${file}: panel id ${panel.id} is used twice`);
        ids.add(panel.id);
        if (panel.type === 'row') continue;
        for (const uid of [panel.datasource?.uid, ...(panel.targets ?? []).map((t) => t.datasource?.uid)]) {
          if (!uids.includes(uid))
            problems.push(`${file}: panel "${panel.title}" uses datasource uid ${uid}`);
        }
        if (!panel.targets?.some((t) => t.expr))
          problems.push(`${file}: panel "${panel.title}" has no query`);
      }
    }
    expect(problems).toEqual([]);
  });

  it.each(Object.keys(LAB_PANELS))('shows %s', (what) => {
    const dashboard = dashboards().find((d) => d.dashboard.title === LAB_DASHBOARD)?.dashboard;
    expect(dashboard, LAB_DASHBOARD).toBeDefined();
    const queries = allPanels(dashboard!).flatMap((panel) =>
      (panel.targets ?? []).map((t) => `${panel.title}: ${t.expr ?? ''}`),
    );
    const missing = LAB_PANELS[what]!.filter((wanted) => !queries.some((q) => wanted.test(q)));
    expect(missing, `no panel query matches (panel title: query)\n${queries.join('\n')}`).toEqual([]);
  });

  it('queries only metrics the server exports', () => {
    const unknown: string[] = [];
    for (const { file, dashboard } of dashboards()) {
      for (const panel of allPanels(dashboard)) {
        for (const target of panel.targets ?? []) {
          for (const name of metricNames(target.expr ?? '')) {
            if (!EXPORTED.has(family(name))) unknown.push(`${file}: panel "${panel.title}" queries ${name}`);
          }
        }
      }
    }
    expect(unknown, 'metrics the server does not export (new Metrics().names(), server/metrics.ts)').toEqual(
      [],
    );
  });

  it('covers every required metric family', () => {
    expect(
      REQUIRED_FAMILIES.filter((name) => !EXPORTED.has(name)),
      'required families the server no longer exports (update the dashboard and this list)',
    ).toEqual([]);
    const queried = new Set(
      dashboards()
        .flatMap(({ dashboard }) => allPanels(dashboard))
        .flatMap((panel) => panel.targets ?? [])
        .flatMap((target) => metricNames(target.expr ?? ''))
        .map(family),
    );
    expect(
      REQUIRED_FAMILIES.filter((name) => !queried.has(name)),
      'required metric families that no dashboard panel queries',
    ).toEqual([]);
  });
});
