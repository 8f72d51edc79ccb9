import { once } from 'node:events';
import { connect } from 'node:net';
import { onTestFinished } from 'vitest';
import type { RedisProcess } from '../../scripts/lib/redis-process.js';
import { SCRIPTS } from '../../server/redlock/scripts.js';

type ScriptName = keyof typeof SCRIPTS;
const BY_SHA = new Map(Object.entries(SCRIPTS).map(([name, script]) => [script.sha, name as ScriptName]));

/** One script run a node was asked for: which engine script, on which resource key. */
export interface ScriptCall {
  script: ScriptName | 'unknown';
  /** The script's first key: the lock key `lk:<resource>`. */
  key: string;
}

/**
 * The engine's script runs a real Redis node is asked for, in the order it runs them, seen through MONITOR: what
 * servers asked a node for a given resource. One engine call is one EVALSHA; the EVAL that follows a NOSCRIPT
 * answer is the same call again and is not counted, nor are the commands a script runs. Closed when the test ends.
 *
 * A plain socket rather than ioredis: ioredis can take a MONITOR line that arrives with the +OK for a reply to a
 * command it never sent ("Command queue state error").
 */
export class ScriptMonitor {
  readonly calls: ScriptCall[] = [];

  private constructor(readonly node: RedisProcess) {}

  /** Watches `node` from now on (MONITOR is in force when this resolves). */
  static async start(node: RedisProcess): Promise<ScriptMonitor> {
    const monitor = new ScriptMonitor(node);
    const [host, port] = node.address.split(':');
    const socket = connect({ host, port: Number(port) });
    socket.on('error', () => undefined); // a node the test stops ends its monitor; nothing to report
    onTestFinished(() => {
      socket.destroy();
    });
    await once(socket, 'connect');
    let pending = '';
    let started: (() => void) | undefined;
    const ok = new Promise<void>((resolve) => (started = resolve));
    socket.setEncoding('latin1').on('data', (chunk: string) => {
      const lines = (pending + chunk).split('\r\n');
      pending = lines.pop()!;
      for (const line of lines) {
        if (line === '+OK') started?.();
        else monitor.record(line);
      }
    });
    socket.write('MONITOR\r\n');
    await ok;
    return monitor;
  }

  /** `+<time> [<db> <client address, or lua>] "evalsha" "<sha>" "<numkeys>" "<key1>" …` */
  private record(line: string): void {
    const source = /^\+[\d.]+ \[\d+ ([^\]]+)\] /.exec(line)?.[1];
    if (source === undefined || source === 'lua') return;
    const args = [...line.matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((m) => m[1]!);
    if (args[0]?.toLowerCase() !== 'evalsha' || !(Number(args[2]) >= 1)) return;
    this.calls.push({ script: BY_SHA.get(args[1] ?? '') ?? 'unknown', key: args[3] ?? '' });
  }

  /** Script runs on `resource` since start (of `script` only, if given). */
  count(resource: string, script?: ScriptName): number {
    return this.calls.filter(
      (c) => c.key === `lk:${resource}` && (script === undefined || c.script === script),
    ).length;
  }

  /** The scripts run on `resource` since start, in order. */
  scripts(resource: string): string[] {
    return this.calls.filter((c) => c.key === `lk:${resource}`).map((c) => c.script);
  }
}

/** A ScriptMonitor on each of `nodes`. */
export function monitorScripts(nodes: readonly RedisProcess[]): Promise<ScriptMonitor[]> {
  return Promise.all(nodes.map((node) => ScriptMonitor.start(node)));
}
