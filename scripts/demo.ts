/**
 * The engine demo: `bash scripts/demo.sh` (or `npm run demo`), which installs what is missing and runs this file.
 *
 * Three real redis-server processes on 127.0.0.1:6381–6383 (no persistence, data dirs under .redlease/demo/, wiped
 * at every start), one Redlock engine, two workers taking turns on one resource while nodes are killed and come
 * back empty. Every fencing token issued is recorded; the run fails (exit 1) unless they strictly increase.
 *
 * Exit codes: 0 done, 1 failed, 130 SIGINT (Ctrl-C), 143 SIGTERM. Every wait is bounded; the nodes are stopped on
 * every path (and the harness SIGKILLs its children when the process exits).
 */
import { rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  HeldByAnotherError,
  type Lease,
  type NodeStatus,
  type NodeVote,
  NoQuorumError,
  Redlock,
} from '../server/redlock/index.js';
import { PortInUseError, RedisProcess } from './lib/redis-process.js';
import { rejection, waitFor } from './lib/wait.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const DATA_DIR = join(ROOT, '.redlease', 'demo');
const HOST = '127.0.0.1';
const PORTS = [6381, 6382, 6383] as const;
const RESOURCE = 'shared-resource';
const TTL_MS = 5_000;
/** Polling interval of every wait below. */
const POLL_MS = 100;
/** Bound of every wait for a quarantine to end (the max ttl below makes it about 5 s). */
const QUARANTINE_WAIT_MS = 10_000;
/** Bound of every wait for the engine to notice a node going down or coming back. */
const DETECT_WAIT_MS = 4_000;
/** After a signal, give up on a graceful cleanup after this long (the harness still SIGKILLs on exit). */
const CLEANUP_GRACE_MS = 3_000;

// ----- output ------------------------------------------------------------------------------------------------------

const COLOR = process.stdout.isTTY === true && !process.env.NO_COLOR;
const paint =
  (code: string) =>
  (text: string | number): string =>
    COLOR ? `\x1b[${code}m${text}\x1b[0m` : String(text);
const bold = paint('1');
const dim = paint('2');
const red = paint('31');
const green = paint('32');
const yellow = paint('33');
const cyan = paint('36');

let stepCount = 0;
function step(title: string): void {
  stepCount++;
  console.log(`${bold(`${String(stepCount).padStart(2)}.`)} ${bold(title)}`);
}
function info(text: string): void {
  console.log(`    ${text}`);
}

const ms = (n: number): string => `${Math.round(n)} ms`;
const token = (n: number): string => cyan(String(n));
const nodeList = (names: readonly string[]): string => [...names].sort().join(', ');
const plus = (n: number): string => `${n >= 0 ? '+' : ''}${n.toLocaleString('en-US')}`;

function voteText(v: NodeVote): string {
  const color = v.vote === 'granted' || v.vote === 'released' ? green : v.vote === 'held' ? yellow : red;
  // The first clause is enough here ("quarantined for 4 980 ms more"); the error messages carry the rest.
  const brief = v.detail?.split(': ')[0];
  const detail = brief ? dim(` (${brief})`) : '';
  return `${v.node} ${color(v.vote)}${detail}`;
}
const votesText = (votes: readonly NodeVote[]): string => votes.map(voteText).join(', ');

// ----- the fencing-token ledger ----------------------------------------------------------------------------------

interface Issued {
  step: number;
  worker: string;
  token: number;
  nodes: string[];
}
const issued: Issued[] = [];

/** Records a grant and says how it compares with every token issued before. */
function record(worker: string, lease: Lease): string {
  const earlier = issued.map((i) => i.token);
  issued.push({ step: stepCount, worker, token: lease.fencingToken, nodes: lease.nodes });
  if (earlier.length === 0) return '';
  const max = Math.max(...earlier);
  return lease.fencingToken > max
    ? green(
        `above ${earlier.length === 1 ? 'the earlier token' : `all ${earlier.length} earlier tokens`} ` +
          `(${plus(lease.fencingToken - max)})`,
      )
    : red(`NOT above every earlier token (max ${max})`);
}

// ----- nodes, engine, cleanup -------------------------------------------------------------------------------------

/** Everything to clean up: disposing it (normal end, failure, or a signal) closes the engine and stops the nodes. */
class Demo implements AsyncDisposable {
  readonly nodes: RedisProcess[] = [];
  engine: Redlock | undefined;
  #closing: Promise<void> | undefined;

  /** Idempotent; `graceful` sends SHUTDOWN NOSAVE first, otherwise the nodes are SIGKILLed. */
  close(graceful: boolean): Promise<void> {
    this.#closing ??= (async () => {
      await this.engine?.close().catch(() => undefined);
      await Promise.allSettled(
        this.nodes.map(async (node) => {
          if (graceful) await node.stop().catch(() => undefined);
          await node.dispose();
        }),
      );
    })();
    return this.#closing;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close(true);
  }
}

const demo = new Demo();
let stopping = false;

/** Stops early: closes the engine, SIGKILLs the nodes (bounded), exits with `code`. Acts on the first call only
 *  (a terminal's Ctrl-C, or `timeout`, signals the whole process group, so more may follow). */
function stopEarly(code: number, message: string | undefined): void {
  if (stopping) return;
  stopping = true;
  if (message !== undefined)
    console.log(yellow(`\n${message}: stopping: closing the engine and killing the Redis nodes`));
  setTimeout(() => process.exit(code), CLEANUP_GRACE_MS);
  void demo.close(false).finally(() => process.exit(code));
}
// Installed before any node starts, so the harness leaves these signals to us (its 'exit' hook still kills nodes).
process.on('SIGINT', () => stopEarly(130, 'SIGINT'));
process.on('SIGTERM', () => stopEarly(143, 'SIGTERM'));
// Output piped into `head` or similar that exits: stop quietly, as a SIGPIPE would, but clean up first.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code !== 'EPIPE') throw error;
  stopEarly(141, undefined);
});

function portInUseMessage(port: number): string {
  return `port ${port} is in use (another redlease demo or a Redis?): stop it, or run \`fuser -k ${port}/tcp\``;
}

/** Whether something already listens on (or otherwise holds) the port: try to bind it the way redis-server will. */
function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen({ host: HOST, port, exclusive: true }, () => server.close(() => resolve(true)));
  });
}

/** Polls `check` every POLL_MS until it returns a value, at most `timeoutMs`; also says how long it took. */
async function waitUntil<T>(
  what: string,
  timeoutMs: number,
  check: () => T | undefined | false | Promise<T | undefined | false>,
): Promise<{ value: T; ms: number }> {
  const started = performance.now();
  const value = (await waitFor(what, check, timeoutMs, POLL_MS)) as T;
  return { value, ms: Math.round(performance.now() - started) };
}

// ----- the story ----------------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const started = performance.now();
  for (const port of PORTS) {
    if (!(await portFree(port))) throw new Error(portInUseMessage(port));
  }
  await rm(DATA_DIR, { recursive: true, force: true });
  console.log(
    bold('redlease engine demo: ') +
      `Redlock over 3 local Redis nodes on ${HOST}:${PORTS[0]}–${PORTS[2]} ` +
      dim(`(data and logs in ${relative(process.cwd(), DATA_DIR) || DATA_DIR}/)`),
  );

  await using cleanup = demo;
  const started3 = await Promise.allSettled(
    PORTS.map((port, i) =>
      RedisProcess.start({
        name: `redis-${i + 1}`,
        port,
        dir: join(DATA_DIR, `redis-${i + 1}`),
        persistence: 'none',
      }),
    ),
  );
  for (const result of started3) if (result.status === 'fulfilled') cleanup.nodes.push(result.value);
  for (const result of started3) {
    if (result.status === 'rejected') {
      const error = result.reason;
      throw error instanceof PortInUseError ? new Error(portInUseMessage(error.port)) : error;
    }
  }
  const [r1, r2, r3] = cleanup.nodes as [RedisProcess, RedisProcess, RedisProcess];

  const engine = new Redlock({
    nodes: cleanup.nodes.map((n) => ({ name: n.name, host: n.host, port: n.port })),
    healthIntervalMs: 200,
    // The demo shortens the max ttl (default 1 h) to 5 s: a node that restarted empty is quarantined for up to
    // the max ttl, so here that is seconds, not an hour.
    maxTtlMs: 5_000,
    defaultTtlMs: 5_000,
  });
  cleanup.engine = engine;
  const node = (name: string): NodeStatus => engine.status().nodes.find((n) => n.name === name)!;

  // 1. nodes up
  const ready = await engine.ready();
  const notUp = ready.nodes.filter((n) => !n.up);
  if (notUp.length > 0) {
    throw new Error(`the engine could not reach ${notUp.map((n) => `${n.name} (${n.error})`).join(', ')}`);
  }
  step(`3 Redis nodes up, engine connected (quorum ${ready.quorum} of ${ready.nodes.length})`);
  for (const n of ready.nodes) info(`${bold(n.name)}  ${n.address}  run_id ${n.runId.slice(0, 8)}…`);

  // 2. worker-A acquires
  step(`worker-A acquires "${RESOURCE}" (ttl ${TTL_MS} ms)`);
  let leaseA = await engine.acquire(RESOURCE, { ttlMs: TTL_MS, clientId: 'worker-A' });
  record('worker-A', leaseA);
  info(
    `${green('granted')}: fencing token ${token(leaseA.fencingToken)}, valid for ${ms(leaseA.validityMs)}, ` +
      `by ${nodeList(leaseA.nodes)}`,
  );

  // 3. worker-B is refused
  step(`worker-B tries "${RESOURCE}": refused`);
  const held = await rejection(
    engine.acquire(RESOURCE, { ttlMs: TTL_MS, clientId: 'worker-B' }),
    HeldByAnotherError,
  );
  info(
    `${red(held.name)}, reason ${bold(held.reason)}` +
      (held.holderTtlMs === undefined ? '' : `: held for up to ${ms(held.holderTtlMs)} more`),
  );
  info(`votes: ${votesText(held.votes)}`);

  // 4. A releases, B acquires
  step('worker-A releases; worker-B acquires');
  const releasedA = await engine.release(RESOURCE, leaseA.lockId);
  info(`worker-A released it on ${nodeList(releasedA.nodes)}`);
  let leaseB = await engine.acquire(RESOURCE, { ttlMs: TTL_MS, clientId: 'worker-B' });
  record('worker-B', leaseB);
  const larger = leaseB.fencingToken > leaseA.fencingToken;
  info(
    `worker-B ${green('granted')}: token ${token(leaseB.fencingToken)} ${larger ? '>' : red('<=')} ` +
      `worker-A's ${token(leaseA.fencingToken)}, difference ${leaseB.fencingToken - leaseA.fencingToken}`,
  );

  // 5. kill redis-3; 2 of 3 is still a quorum
  step('kill -9 redis-3; worker-B releases, worker-A acquires with 2 of 3 nodes');
  await r3.kill();
  const down3 = await waitUntil('the engine to see redis-3 down', DETECT_WAIT_MS, () => !node('redis-3').up);
  info(
    `engine sees redis-3 down ${down3.ms < POLL_MS ? 'at once' : `after ${ms(down3.ms)}`} (${node('redis-3').error})`,
  );
  const releasedB = await engine.release(RESOURCE, leaseB.lockId);
  info(`worker-B released it on ${nodeList(releasedB.nodes)}`);
  leaseA = await engine.acquire(RESOURCE, { ttlMs: TTL_MS, clientId: 'worker-A' });
  const cmp5 = record('worker-A', leaseA);
  info(
    `${green('granted')} by ${bold(nodeList(leaseA.nodes))} (quorum ${leaseA.quorum}): token ` +
      `${token(leaseA.fencingToken)}, ${cmp5}`,
  );

  // 6. kill redis-2 too: no quorum, and the engine says so at once
  step('kill -9 redis-2 too: only redis-1 is left');
  await r2.kill();
  await waitUntil('the engine to see redis-2 down', DETECT_WAIT_MS, () => !node('redis-2').up);
  const t6 = performance.now();
  const noQuorum = await rejection(
    engine.acquire(RESOURCE, { ttlMs: TTL_MS, clientId: 'worker-B' }),
    NoQuorumError,
  );
  const failMs = performance.now() - t6;
  info(
    `worker-B's acquire fails fast: ${bold(ms(failMs))} for all ${engine.options.retryCount + 1} attempts ` +
      `(retryCount ${engine.options.retryCount}), ${red(noQuorum.name)}, reason ${bold(noQuorum.reason)}`,
  );
  info(dim(noQuorum.message));

  // 7. redis-2 comes back empty: quarantined while a lock it forgot may still be valid
  step("start redis-2 again, EMPTY: it has forgotten worker-A's lock");
  await r2.wipeData();
  await r2.startAgain();
  const restarted2 = performance.now();
  const q2 = await waitUntil('the engine to quarantine redis-2', DETECT_WAIT_MS, () => {
    const s = node('redis-2');
    return s.restarts >= 1 && s.up && s.quarantined && s;
  });
  info(
    `engine sees its new run_id after ${ms(q2.ms)}: ${yellow('quarantined')}, ` +
      `${ms(q2.value.quarantineRemainingMs)} left`,
  );
  info(dim(`reason: ${q2.value.quarantineReason}`));
  const onR1 = (await engine.inspect(RESOURCE)).nodes.find((n) => n.node === 'redis-1');
  const lockLeftMs = onR1?.held ? onR1.ttlMs : 0;
  const lockEndsAt = performance.now() + lockLeftMs;
  info(
    `worker-A's lock is still valid on redis-1 for ${ms(lockLeftMs)}: redis-2 may not vote before it ` +
      'expires (redis-2 + redis-3 would be a majority that never saw it)',
  );
  // To shorten a quarantine the engine reads the live locks on the other voting nodes; they must be enough that
  // every majority includes one of them (2 of 3). Only redis-1 votes now.
  const witnesses = engine.status().nodes.filter((n) => n.name !== 'redis-2' && n.voting).length;
  if (witnesses < 2) {
    info(
      dim(
        `only ${witnesses} other node can vouch for which locks are live, too few to cover every majority, so ` +
          `redis-2 waits the whole max ttl (${engine.options.maxTtlMs} ms + drift)`,
      ),
    );
  }
  const meanwhile = await rejection(
    engine.acquire(RESOURCE, { ttlMs: TTL_MS, clientId: 'worker-B', retryCount: 0 }),
    NoQuorumError,
  );
  info(`worker-B tries meanwhile: refused, ${votesText(meanwhile.votes)}`);
  await waitUntil('redis-2 to vote again', QUARANTINE_WAIT_MS, () => node('redis-2').voting);
  const rejoin2 = performance.now();
  info(
    `redis-2 votes again ${bold(ms(rejoin2 - restarted2))} after it restarted ` +
      `(worker-A's lock had expired ${ms(rejoin2 - lockEndsAt)} before)`,
  );

  // 8. redis-3 comes back empty; the fencing token still goes up
  step('start redis-3 again, empty; worker-B acquires');
  await r3.wipeData();
  await r3.startAgain();
  const restarted3 = performance.now();
  await waitUntil('the engine to see redis-3 restarted', DETECT_WAIT_MS, () => node('redis-3').restarts >= 1);
  await waitUntil('redis-3 to vote', QUARANTINE_WAIT_MS, () => node('redis-3').voting);
  const rejoin3Ms = performance.now() - restarted3;
  info(
    `redis-3 votes again ${ms(rejoin3Ms)} after it restarted` +
      (rejoin3Ms < engine.options.maxTtlMs
        ? ': quarantine cut short, as redis-1 and redis-2 (a majority without it) hold no live lock'
        : ''),
  );
  leaseB = await engine.acquire(RESOURCE, { ttlMs: TTL_MS, clientId: 'worker-B' });
  const cmp8 = record('worker-B', leaseB);
  info(
    `worker-B ${green('granted')} by ${nodeList(leaseB.nodes)}: token ${token(leaseB.fencingToken)}, ${cmp8}`,
  );
  info(dim("redis-3's counter was gone: re-seeded from its clock in µs, hence the jump"));

  // 9. total amnesia
  step('restart all three nodes EMPTY (total amnesia)');
  const restartsBefore = engine.status().nodes.map((n) => n.restarts);
  const leftB = leaseB.deadline - performance.now();
  await Promise.all([r1, r2, r3].map((n) => n.restart({ keepData: false })));
  const restartedAll = performance.now();
  info(`worker-B's lease (valid ${ms(leftB)} more) is now forgotten by every node`);
  const q9 = await waitUntil('the engine to quarantine all three nodes', DETECT_WAIT_MS, () => {
    const s = engine.status();
    return s.nodes.every((n, i) => n.restarts > restartsBefore[i]! && n.up && n.quarantined) && s;
  });
  info(
    `no node may vote for the max ttl: all three ${yellow('quarantined')} ` +
      `(${q9.value.nodes.map((n) => `${n.name} ${ms(n.quarantineRemainingMs)}`).join(', ')}); ` +
      'no node is left to witness which locks are live',
  );
  await waitUntil(
    'a quorum to be available again',
    QUARANTINE_WAIT_MS,
    () => engine.status().quorumAvailable,
  );
  const quorumBack = performance.now();
  info(
    `quorum available again ${bold(ms(quorumBack - restartedAll))} after the restart ` +
      `(worker-B's lease had ended ${ms(quorumBack - leaseB.deadline)} before)`,
  );
  leaseA = await engine.acquire(RESOURCE, { ttlMs: TTL_MS, clientId: 'worker-A' });
  const cmp9 = record('worker-A', leaseA);
  info(
    `worker-A ${green('granted')} by ${nodeList(leaseA.nodes)}: token ${token(leaseA.fencingToken)}, ${cmp9}`,
  );
  info(
    dim(
      "why: a missing fence counter is re-seeded from the node's clock in µs, above every token issued before",
    ),
  );

  // 10. summary
  step('every fencing token issued, in order');
  console.log(
    dim(
      `    ${'#'.padEnd(3)}${'step'.padEnd(6)}${'worker'.padEnd(10)}${'token'.padEnd(18)}${'Δ'.padEnd(13)}nodes`,
    ),
  );
  let increasing = true;
  issued.forEach((entry, i) => {
    const previous = issued[i - 1];
    const ok = previous === undefined || entry.token > previous.token;
    increasing &&= ok;
    const delta = previous === undefined ? '' : plus(entry.token - previous.token);
    console.log(
      `    ${String(i + 1).padEnd(3)}${String(entry.step).padEnd(6)}${entry.worker.padEnd(10)}` +
        `${(ok ? cyan : red)(String(entry.token).padEnd(18))}${delta.padEnd(13)}${nodeList(entry.nodes)}`,
    );
  });
  if (!increasing) {
    console.error(red(bold('ERROR: the fencing tokens did NOT strictly increase: this is a safety bug')));
    process.exitCode = 1;
    return;
  }
  info(green(`${issued.length} tokens, strictly increasing`));

  process.stdout.write(dim('closing the engine and stopping the nodes… '));
  await cleanup.close(true);
  console.log(dim(`done in ${((performance.now() - started) / 1000).toFixed(1)} s`));
}

try {
  await main();
} catch (error) {
  // After a signal, the signal handler is cleaning up and decides the exit code; errors from the nodes it kills
  // are expected.
  if (!stopping) {
    console.error(red(`demo failed: ${error instanceof Error ? error.message : String(error)}`));
    process.exitCode = 1;
  }
}
