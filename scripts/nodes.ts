/**
 * Node control for a running demo: `npm run nodes -- <action> [node]` — the lab's `docker compose stop
 * lab37-redis-1`. It asks the demo launcher (over the control socket named in the demo's state file) to act,
 * prints what was done, and exits:
 *   stop      the node shuts down (SHUTDOWN NOSAVE; its data is gone: no persistence)
 *   start     it starts again on the same port with the same config, empty (a lock node is quarantined)
 *   restart   stop, then start
 *   pause     SIGSTOP: it keeps its port but answers nothing        resume   SIGCONT
 *   status    every process of the demo: state, pid, address
 * Exit codes: 0 done, 1 refused (no demo running, node already stopped, …), 2 bad usage.
 */
import { parseArgs } from 'node:util';
import { ControlUnreachableError, sendControl } from './lib/control-client.js';
import {
  type ControlRequest,
  type ControlResponse,
  NODE_ACTIONS,
  NODE_LIST,
  type ProcessStatus,
  parseNodeName,
} from './lib/control-protocol.js';
import { DEFAULT_STATE_DIR, DemoState } from './lib/demo-state.js';

const USAGE = `Usage: npm run nodes -- <action> [node] [--state-dir <dir>] [--json]
       (or: node --import tsx scripts/nodes.ts <action> [node] ...)

Controls the Redis nodes of a running demo (npm run demo).

Actions:
  stop <node>       shut the node down (SHUTDOWN NOSAVE: no persistence, its data is gone)
  start <node>      start it again on the same port with the same config, with an empty dataset: the server
                    quarantines a restarted lock node until the locks it may have held have expired
  restart <node>    stop, then start
  pause <node>      SIGSTOP: it keeps its port, but answers nothing (calls to it time out)
  resume <node>     SIGCONT
  status            state, pid and address of every process of the demo

Nodes: redis-1, redis-2, redis-3 (or 1, 2, 3), store (the workers' FencedStore); the compose lab's names
(lab37-redis-1 … lab37-redis-3, lab37-redis-store) are accepted too

Options:
  --state-dir <dir>  the demo's state dir, if it was started with one (default: $REDLEASE_DEMO_STATE_DIR,
                     else .redlease/demo)
  --json             print the demo's answer as JSON
  -h, --help         show this help

Exit codes: 0 done, 1 refused or no demo running, 2 bad usage.
`;

class UsageError extends Error {}

type Command = { help: true } | { request: ControlRequest; dir: string; json: boolean };

const ACTIONS = [...NODE_ACTIONS, 'status'].join(', ');

function parseCommand(argv: readonly string[]): Command {
  let values: { 'state-dir'?: string; json?: boolean; help?: boolean };
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args: [...argv],
      allowPositionals: true,
      strict: true,
      options: {
        'state-dir': { type: 'string' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (error) {
    throw new UsageError(error instanceof Error ? error.message.replace(/\s+/g, ' ') : String(error));
  }
  if (values.help) return { help: true };
  const [action, node, ...extra] = positionals;
  const dir = values['state-dir'] ?? (process.env.REDLEASE_DEMO_STATE_DIR || DEFAULT_STATE_DIR);
  const json = values.json ?? false;
  if (extra.length > 0) throw new UsageError(`unexpected argument "${extra[0]}"`);
  if (action === undefined) throw new UsageError(`no action: one of ${ACTIONS}`);
  if (action === 'status') {
    if (node !== undefined) throw new UsageError('status takes no node');
    return { request: { action }, dir, json };
  }
  const nodeAction = NODE_ACTIONS.find((a) => a === action);
  if (nodeAction === undefined) throw new UsageError(`unknown action "${action}": one of ${ACTIONS}`);
  if (node === undefined) throw new UsageError(`${action} needs a node: ${NODE_LIST}`);
  const name = parseNodeName(node);
  if (name === undefined) throw new UsageError(`unknown node "${node}": ${NODE_LIST}`);
  return { request: { action: nodeAction, node: name }, dir, json };
}

function table(processes: readonly ProcessStatus[]): string {
  const rows = [
    ['NAME', 'ROLE', 'STATE', 'PID', 'ADDRESS'],
    ...processes.map((p) => [
      p.name,
      p.role,
      p.state,
      p.pid === null ? '-' : String(p.pid),
      p.addresses.join(', '),
    ]),
  ];
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
  return rows
    .map((row) =>
      row
        .map((cell, i) => cell.padEnd(widths[i]!))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

async function main(): Promise<number> {
  let command: Command;
  try {
    command = parseCommand(process.argv.slice(2));
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    process.stderr.write(`nodes: ${error.message} (see --help)\n`);
    return 2;
  }
  if ('help' in command) {
    process.stdout.write(USAGE);
    return 0;
  }
  const record = DemoState.read(command.dir);
  if (record === undefined) {
    process.stderr.write(
      `nodes: no demo is running (no state file in ${command.dir}); start one with: npm run demo\n`,
    );
    return 1;
  }
  if (!DemoState.isRunning(record)) {
    process.stderr.write(
      `nodes: no demo is running: the one recorded in ${command.dir} (pid ${record.pid}) is gone without ` +
        'cleaning up; the next npm run demo cleans up after it\n',
    );
    return 1;
  }
  let response: ControlResponse;
  try {
    response = await sendControl(record.control, command.request);
  } catch (error) {
    if (!(error instanceof ControlUnreachableError)) throw error;
    process.stderr.write(
      `nodes: could not reach the demo (pid ${record.pid}) at ${record.control}: ${error.message}\n`,
    );
    return 1;
  }
  if (command.json) process.stdout.write(`${JSON.stringify(response, null, 2)}\n`);
  if (!response.ok) {
    if (!command.json) process.stderr.write(`nodes: ${response.error}\n`);
    return 1;
  }
  if (!command.json) {
    if (response.message) process.stdout.write(`${response.message}\n`);
    if (command.request.action === 'status') process.stdout.write(`${table(response.processes)}\n`);
  }
  return 0;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(
      `nodes: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
    process.exit(1);
  },
);
