/**
 * The commands that read or administer: status, nodes, health, mode, release. Each prints its result (a table, or
 * with --json the response as a JSON document) and resolves with its exit code; failures are thrown as the SDK's
 * typed errors and turned into an exit code by failure.ts.
 */
import {
  HealthCheckResponse_ServingStatus as Serving,
  healthCheckResponse_ServingStatusToJSON as servingName,
} from '../../../gen/grpc/health/v1/health.js';
import { type ListNodesResponse, Mode } from '../../../gen/redlease/v1/admin.js';
import type { DescribeResponse } from '../../../gen/redlease/v1/lock.js';
import { LockClient } from '../lock-client.js';
import { EXIT } from './exit-codes.js';
import type { Connection } from './options.js';
import { formatDuration, type Output, result, type Style, table } from './output.js';
import { Services } from './services.js';

/** The CLI's names for the modes, in --json too: what `redlease mode NAME` takes. */
export type ModeName = 'redlock' | 'single';
const MODE_NAMES: Partial<Record<Mode, ModeName>> = {
  [Mode.MODE_REDLOCK]: 'redlock',
  [Mode.MODE_SINGLE]: 'single',
};
const MODES: Record<ModeName, Mode> = { redlock: Mode.MODE_REDLOCK, single: Mode.MODE_SINGLE };

function modeName(mode: Mode): string {
  return MODE_NAMES[mode] ?? `unknown (${mode})`;
}

const yesNo = (style: Style, value: boolean, good = true) =>
  value === good ? style.green(value ? 'yes' : 'no') : style.red(value ? 'yes' : 'no');

/** `redlease status RESOURCE`: Describe. */
export async function status(connection: Connection, out: Output, resource: string): Promise<number> {
  const client = new LockClient({ ...connection, transport: 'unary' });
  try {
    const description = await client.describe(resource);
    result(out, description, () => describeText(description, out.out));
    return EXIT.OK;
  } finally {
    await client.close();
  }
}

export function describeText(d: DescribeResponse, s: Style): string {
  const dash = s.dim('-');
  const summary = table([
    ['resource', d.resource],
    ['state', d.locked ? s.yellow('locked') : s.green('free')],
    ['holder', d.locked ? d.holderClientId || s.dim('(no client id)') : dash],
    ['token', d.locked ? String(d.fencingToken) : dash],
    ['validity', d.locked ? formatDuration(d.validityMs) : dash],
    ['waiters', String(d.waiters)],
  ]);
  const nodes = table([
    ['node', 'reachable', 'held', 'ttl'].map(s.bold),
    ...d.nodes.map((n) => [
      n.node,
      yesNo(s, n.reachable),
      n.reachable ? (n.held ? 'yes' : 'no') : dash,
      n.held ? formatDuration(n.ttlMs) : dash,
    ]),
  ]);
  return `${summary}\n\n${nodes}`;
}

/** `redlease nodes`: ListNodes, with each quarantined node's time left. */
export async function nodes(connection: Connection, out: Output): Promise<number> {
  const services = new Services(connection);
  try {
    const list = await services.call('', (options) => services.admin.listNodes({}, options));
    result(out, { ...list, mode: modeName(list.mode) }, () => nodesText(list, out.out));
    return EXIT.OK;
  } finally {
    services.close();
  }
}

export function nodesText(list: ListNodesResponse, s: Style): string {
  const voting = list.nodes.filter((n) => n.voting).length;
  const quorum = list.quorumAvailable
    ? s.green('quorum available')
    : s.red(`no quorum: ${voting} voting, ${list.quorum} needed`);
  const header = `mode ${s.bold(modeName(list.mode))}, quorum ${list.quorum} of ${list.nodes.length}: ${quorum}`;
  const dash = s.dim('-');
  return `${header}\n\n${table([
    ['node', 'address', 'up', 'voting', 'latency', 'quarantine', 'note'].map(s.bold),
    ...list.nodes.map((n) => [
      n.name,
      n.address,
      n.up ? s.green('up') : s.red('down'),
      yesNo(s, n.voting),
      n.up ? `${n.latencyMs.toFixed(1)}ms` : dash,
      n.quarantined ? s.yellow(`${formatDuration(n.quarantineRemainingMs)} left`) : dash,
      // The last error, or why the node is quarantined.
      n.error ? s.red(n.error) : n.quarantined ? n.quarantineReason : dash,
    ]),
  ])}`;
}

/**
 * `redlease health [SERVICE]`: grpc.health.v1. Without a service, every service the server reports (List) and
 * the server as a whole (""); exit 0 when the server (or the service asked for) is SERVING, else 69.
 */
export async function health(
  connection: Connection,
  out: Output,
  service: string | undefined,
): Promise<number> {
  const services = new Services(connection);
  try {
    if (service !== undefined) {
      const { status } = await services.call('', (options) => services.health.check({ service }, options));
      const name = servingName(status);
      result(out, { service, status: name }, () => `${service}  ${paint(out.out, status, name)}`);
      return status === Serving.SERVING ? EXIT.OK : EXIT.UNAVAILABLE;
    }
    const { statuses } = await services.call('', (options) => services.health.list({}, options));
    const entries = Object.entries(statuses)
      .map(([name, value]) => [name, value.status] as const)
      .sort(([a], [b]) => a.localeCompare(b));
    const overall = statuses['']?.status ?? Serving.UNKNOWN;
    const document = {
      status: servingName(overall),
      services: Object.fromEntries(entries.map(([name, status]) => [name, servingName(status)])),
    };
    result(out, document, () =>
      table([
        ['service', 'status'].map(out.out.bold),
        ...entries.map(([name, status]) => [name || '(server)', paint(out.out, status, servingName(status))]),
      ]),
    );
    return overall === Serving.SERVING ? EXIT.OK : EXIT.UNAVAILABLE;
  } finally {
    services.close();
  }
}

function paint(s: Style, status: Serving, name: string): string {
  return status === Serving.SERVING ? s.green(name) : s.red(name);
}

/**
 * `redlease mode [--force] [single|redlock]`: GetMode, or SetMode and the mode now in force. The server refuses a
 * switch while leases are live unless `force` (it then ends them: `leases_ended` in --json).
 */
export async function mode(
  connection: Connection,
  out: Output,
  next: ModeName | undefined,
  force = false,
): Promise<number> {
  const services = new Services(connection);
  try {
    const answer =
      next === undefined
        ? await services.call('', (options) => services.admin.getMode({}, options))
        : await services.call('', (options) => services.admin.setMode({ mode: MODES[next], force }, options));
    const name = modeName(answer.mode);
    const ended = answer.leasesEnded;
    result(out, ended ? { mode: name, leases_ended: ended } : { mode: name }, () =>
      ended ? `${name} (${ended} live lease${ended === 1 ? '' : 's'} ended)` : name,
    );
    return EXIT.OK;
  } finally {
    services.close();
  }
}

/** `redlease release RESOURCE LOCK_ID`: Release by lock id (compare-and-delete: never someone else's lease). */
export async function release(
  connection: Connection,
  out: Output,
  resource: string,
  lockId: string,
): Promise<number> {
  const services = new Services(connection);
  try {
    const answer = await services.call(resource, (options) =>
      services.lock.release({ resource, lockId }, options),
    );
    result(out, answer, () => `released "${resource}" on ${answer.nodes.join(', ')}`);
    return EXIT.OK;
  } finally {
    services.close();
  }
}
