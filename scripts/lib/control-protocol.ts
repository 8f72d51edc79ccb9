/**
 * The node-control protocol between `npm run nodes` (scripts/nodes.ts) and the running demo launcher, over the
 * unix socket named in the demo's state file: one JSON request line, one JSON response line, then the launcher
 * closes the connection.
 */

/** What can be done to a node; `status` takes no node. */
export const NODE_ACTIONS = ['stop', 'start', 'restart', 'pause', 'resume'] as const;
export type NodeAction = (typeof NODE_ACTIONS)[number];
export type ControlAction = NodeAction | 'status';

/** The nodes the command controls: the three lock nodes and the workers' store. */
export const NODE_NAMES = ['redis-1', 'redis-2', 'redis-3', 'store'] as const;
export type NodeName = (typeof NODE_NAMES)[number];

export type ControlRequest = { action: 'status' } | { action: NodeAction; node: NodeName };

/** One process of the demo as `status` shows it. */
export interface ProcessStatus {
  name: string;
  role: 'lock node' | 'store' | 'server' | 'worker';
  state: 'running' | 'paused' | 'stopped';
  pid: number | null;
  /** Where it listens (the server: gRPC and HTTP); empty for workers. */
  addresses: string[];
}

export type ControlResponse =
  | { ok: true; message: string; processes: ProcessStatus[] }
  | { ok: false; error: string };

/**
 * Accepts `redis-2`, just `2`, or the compose lab's name `lab37-redis-2` for a lock node, and `store` or
 * `lab37-redis-store` for the store; undefined for anything else.
 */
export function parseNodeName(text: string): NodeName | undefined {
  const compose = text === 'lab37-redis-store' ? 'store' : text.replace(/^lab37-(redis-[123])$/, '$1');
  const name = /^[123]$/.test(compose) ? `redis-${compose}` : compose;
  return NODE_NAMES.find((n) => n === name);
}

/** A request as received (untrusted JSON), checked; a string says what is wrong with it. */
export function parseRequest(value: unknown): ControlRequest | string {
  if (typeof value !== 'object' || value === null) return 'the request is not a JSON object';
  const { action, node } = value as { action?: unknown; node?: unknown };
  if (action === 'status') return { action };
  const nodeAction = NODE_ACTIONS.find((a) => a === action);
  if (nodeAction === undefined) {
    return `unknown action ${JSON.stringify(action)}: one of ${[...NODE_ACTIONS, 'status'].join(', ')}`;
  }
  const name = typeof node === 'string' ? parseNodeName(node) : undefined;
  if (name === undefined) return `unknown node ${JSON.stringify(node)}: ${NODE_LIST}`;
  return { action: nodeAction, node: name };
}

/** For messages: which node names are accepted. */
export const NODE_LIST = 'one of redis-1, redis-2, redis-3 (or 1, 2, 3, or lab37-redis-1…3), store';
