/**
 * What the demo prints once everything is up: what runs where, commands to try (curl against the HTTP lab API,
 * grpcurl, the node-control command), and how to stop it.
 */
import { isAbsolute, relative } from 'node:path';
import type { Ansi } from './ansi.js';
import type { DemoOptions } from './demo-options.js';
import { DEFAULT_STATE_DIR } from './demo-state.js';

/** The resource the workers compete for (their default, workers/options.ts). */
const WORKER_RESOURCE = 'shared-resource';

export function demoBanner(options: DemoOptions, workerNames: readonly string[], color: Ansi): string[] {
  const bold = (text: string): string => color.paint('1', text);
  const dim = (text: string): string => color.paint('2', text);
  const http = `127.0.0.1:${options.httpPort}`;
  const grpc = `127.0.0.1:${options.grpcPort}`;
  const json = "-H 'content-type: application/json'";
  const stateDir =
    options.stateDir === DEFAULT_STATE_DIR ? '' : ` --state-dir ${shortPath(options.stateDir)}`;
  const nodes = options.redisPorts.map((port, i) => `redis-${i + 1} 127.0.0.1:${port}`).join(' · ');
  return [
    bold('redlease demo is up'),
    `  lock nodes  ${nodes}  ${dim('(Redlock: a quorum of 2 of 3)')}`,
    `  store       127.0.0.1:${options.storePort}  ${dim("(the workers' FencedStore)")}`,
    `  server      gRPC ${grpc} · HTTP http://${http}  ${dim(`(default ttl ${options.ttlMs} ms, max ${options.maxTtlMs} ms)`)}`,
    workerNames.length === 0
      ? '  workers     none (--workers 0)'
      : `  workers     ${workerNames.join(', ')} take turns on ${WORKER_RESOURCE} and add one to counter:${WORKER_RESOURCE} with their fencing token`,
    bold('Try'),
    `  curl -s -XPOST ${http}/lock/acquire ${json} -d '{"resource":"demo"}'`,
    `  curl -s -XPOST ${http}/lock/release ${json} -d '{"resource":"demo","lock_id":"<lock_id from acquire>"}'`,
    `  grpcurl -plaintext -d '{"resource":"demo"}' ${grpc} redlease.v1.LockService/Acquire`,
    `  npm run nodes -- stop redis-2${stateDir}     ${dim('# one node down: locks still granted (2 of 3)')}`,
    `  npm run nodes -- stop redis-3${stateDir}     ${dim('# no quorum: UNAVAILABLE / HTTP 503')}`,
    `  npm run nodes -- start redis-2${stateDir}    ${dim('# back, empty: quarantined until its locks could have expired')}`,
    `  npm run nodes -- status${stateDir}           ${dim('# also: restart, pause (SIGSTOP), resume; redis-1..3, store')}`,
    bold('Ctrl-C stops everything.'),
  ];
}

/** `dir` relative to the working directory when inside it, else absolute. */
function shortPath(dir: string): string {
  const inside = relative(process.cwd(), dir);
  return inside === '' ? '.' : inside.startsWith('..') || isAbsolute(inside) ? dir : inside;
}
