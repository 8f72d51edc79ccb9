/**
 * The fault-injection harness (docs/chaos.md): three real redis-server nodes, each behind a fault proxy
 * (P1..P3), a store Redis with the fenced/unfenced store service, the real server process (C) talking to the
 * nodes through the proxies, optionally a proxy between the workers and the server, and worker processes (W)
 * that record their history. Every fault goes through this class, which records it (writer `nemesis`) together
 * with its own view of how many nodes can vote, and at the end heals everything, checks that every resource can
 * be acquired again (L4, writer `probe`), reads the sets back, and runs the checker.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { freeFixedPort } from '../scripts/lib/free-port.js';
import { type Exit, NodeProcess } from '../scripts/lib/node-process.js';
import { type Persistence, RedisProcess } from '../scripts/lib/redis-process.js';
import { ServerProcess } from '../scripts/lib/server-process.js';
import { FaultProxy, type ProxyMode } from '../testkit/fault-proxy.js';
import { type CheckOptions, checkHistory, formatReport, type Report } from './checker.js';
import { type HistoryEvent, HistoryWriter, loadHistory } from './history.js';
import { RecordedClient } from './recorded-client.js';
import { StoreService } from './store.js';
import { VotingTimeline } from './voting-timeline.js';

export type Workload = 'lock' | 'fenced-set' | 'unfenced-set';

export interface HarnessOptions {
  /** Where the history (one JSONL per writer), the logs and the report go. Created if missing. */
  dir: string;
  seed: number;
  resources: string[];
  ttlMs?: number;
  maxTtlMs?: number;
  nodeTimeoutMs?: number;
  persistence?: Persistence;
  /** Put a proxy between the workers and the server (F18). */
  clientProxy?: boolean;
  /** Extra server flags. */
  serverFlags?: string[];
  /** How the workers' SDK sends its lock calls (default session, the SDK's own default). */
  transport?: 'unary' | 'session';
}

export interface WorkerSpec {
  name: string;
  workload: Workload;
  seconds: number;
  resources?: string[];
  /** Extra worker flags (`--no-hold-check`, `--pause-before-write-ms`, …). */
  args?: string[];
}

/** Proxy modes in which a node's votes cannot reach the server (delay only slows them). */
const CUTTING: ReadonlySet<ProxyMode['kind']> = new Set([
  'drop-requests',
  'drop-responses',
  'blackhole',
  'reset',
  'refuse',
]);

export class Harness {
  readonly nemesis: HistoryWriter;
  readonly workers = new Map<string, NodeProcess>();
  /** Workers the nemesis killed on purpose: their SIGKILL is no failure. */
  private readonly killedWorkers = new Set<string>();
  private readonly voting: VotingTimeline;
  private readonly pausedWorkers = new Set<string>();
  private quarantineWatch: NodeJS.Timeout | undefined;
  private serverPaused = false;
  private disposed = false;

  private constructor(
    readonly options: Required<Omit<HarnessOptions, 'serverFlags' | 'clientProxy'>> & HarnessOptions,
    readonly redis: RedisProcess[],
    readonly proxies: FaultProxy[],
    readonly storeRedis: RedisProcess,
    readonly store: StoreService,
    public server: ServerProcess,
    readonly grpcPort: number,
    readonly clientProxy: FaultProxy | undefined,
  ) {
    this.nemesis = new HistoryWriter(options.dir, 'nemesis');
    this.voting = new VotingTimeline(redis.length, (voting, at) =>
      this.nemesis.record({ type: 'info', f: 'voting', voting }, at),
    );
  }

  static async start(input: HarnessOptions): Promise<Harness> {
    const options = {
      ttlMs: 1_000,
      maxTtlMs: 2_000,
      // The server's default. A shorter one (50 ms) would detect faults sooner, but a timed-out command
      // resets its node's connection (a reply that never comes would shift later ones), and on a loaded
      // 2-core box 50 ms is exceeded by mere CPU starvation: F1 once lost a lease that way with no fault
      // injected.
      nodeTimeoutMs: 100,
      persistence: 'none' as Persistence,
      ...input,
      transport: input.transport ?? 'session',
    };
    mkdirSync(options.dir, { recursive: true });
    const started: { dispose(): Promise<void> }[] = [];
    try {
      const redis = await Promise.all(
        [1, 2, 3].map((i) => RedisProcess.start({ name: `R${i}`, persistence: options.persistence })),
      );
      started.push(...redis);
      const proxies = await Promise.all(
        redis.map((r, i) =>
          FaultProxy.start({ target: r.address, seed: options.seed + i, name: `P${i + 1}` }),
        ),
      );
      started.push(...proxies.map((p) => ({ dispose: () => p.close() })));
      const storeRedis = await RedisProcess.start({ name: 'store' });
      started.push(storeRedis);
      const store = await StoreService.start({ dir: options.dir, redis: `redis://${storeRedis.address}` });
      started.push({ dispose: () => store.close() });
      // restartServer() brings the server back on this port: a fixed one, which no outgoing connection of the
      // tests running beside this one can take while it is down (a freePort() port could be).
      const grpcPort = await freeFixedPort();
      const server = await Harness.startServer(options, proxies, grpcPort);
      const clientProxy = options.clientProxy
        ? await FaultProxy.start({ target: `127.0.0.1:${grpcPort}`, seed: options.seed + 10, name: 'PC' })
        : undefined;
      return new Harness(options, redis, proxies, storeRedis, store, server, grpcPort, clientProxy);
    } catch (error) {
      await Promise.allSettled(started.map((s) => s.dispose()));
      throw error;
    }
  }

  private static async startServer(
    options: HarnessOptions & { ttlMs: number; maxTtlMs: number; nodeTimeoutMs: number },
    proxies: FaultProxy[],
    grpcPort: number,
  ): Promise<ServerProcess> {
    return await ServerProcess.start(
      [
        '--nodes',
        proxies.map((p) => p.address).join(','),
        '--grpc-listen',
        `127.0.0.1:${grpcPort}`,
        '--http-listen',
        '127.0.0.1:0',
        '--node-timeout-ms',
        String(options.nodeTimeoutMs),
        '--connect-timeout-ms',
        '500',
        '--health-interval-ms',
        '50',
        '--default-ttl-ms',
        String(options.ttlMs),
        '--max-ttl-ms',
        String(options.maxTtlMs),
        '--shutdown-grace-ms',
        '1000',
        ...(options.serverFlags ?? []),
      ],
      {},
      { keepLines: 2_000 },
    );
  }

  /** Where workers connect: the server, or the client proxy in front of it. */
  get address(): string {
    return this.clientProxy?.address ?? `127.0.0.1:${this.grpcPort}`;
  }

  // ---- workers -------------------------------------------------------------------------------------------

  startWorker(spec: WorkerSpec, index: number): NodeProcess {
    const args = [
      '--name',
      spec.name,
      '--address',
      this.address,
      '--store',
      this.store.url,
      '--history',
      this.options.dir,
      '--workload',
      spec.workload,
      '--resources',
      (spec.resources ?? this.options.resources).join(','),
      '--ttl-ms',
      String(this.options.ttlMs),
      '--seconds',
      String(spec.seconds),
      '--seed',
      String(this.options.seed * 100 + index),
      '--transport',
      this.options.transport,
      ...(spec.args ?? []),
    ];
    const worker = NodeProcess.launch('chaos/worker.ts', args, process.env, { keepLines: 500 });
    this.workers.set(spec.name, worker);
    return worker;
  }

  startWorkers(specs: WorkerSpec[]): NodeProcess[] {
    return specs.map((s, i) => this.startWorker(s, i));
  }

  /** Waits for every worker to finish its run (SIGKILL after `timeoutMs`). */
  async joinWorkers(timeoutMs = 30_000): Promise<void> {
    for (const name of this.pausedWorkers) this.resumeWorker(name);
    await Promise.all([...this.workers.values()].map((w) => w.finish(timeoutMs)));
  }

  /**
   * Workers that did not end as they should: each exits 0 (its run over, or stopped with SIGTERM) unless the
   * nemesis killed it. One that exited otherwise (an error, a crash, killed for not finishing in time) did less
   * than the run needs, whatever its history shows, so the run fails. Call once the workers have been joined.
   * Writes each failed worker's output to `<name>.log` in the history folder.
   */
  async workerFailures(): Promise<string[]> {
    const failures: string[] = [];
    for (const [name, worker] of this.workers) {
      if (worker.running) {
        failures.push(`${name} is still running`);
        continue;
      }
      const exit = await worker.exited;
      if (exit.code === 0 || (this.killedWorkers.has(name) && exit.signal === 'SIGKILL')) continue;
      const how = exit.code === null ? `signal ${exit.signal}` : `code ${exit.code}`;
      // The error's own line, not the stack frames below it.
      const lines = worker.output
        .join('')
        .split('\n')
        .map((line) => line.trim());
      const said = lines
        .filter((line) => line !== '' && !line.startsWith('at '))
        .at(-1)
        ?.slice(0, 300);
      writeFileSync(join(this.options.dir, `${name}.log`), `${worker.dump()}\n`);
      failures.push(`${name} exited with ${how}${said ? `: ${said}` : ''} (output in ${name}.log)`);
    }
    return failures;
  }

  /** Whether the worker has recorded anything yet (its first call): the process is up and working. */
  started(name: string): boolean {
    try {
      return readFileSync(join(this.options.dir, `${name}.jsonl`), 'utf8').length > 0;
    } catch {
      return false;
    }
  }

  /** Whether the worker has recorded a granted acquire yet. */
  granted(name: string): boolean {
    return this.completed(name, 'acquire');
  }

  /** Whether the worker has recorded a successful `f` (acquire, store_write, …) yet. */
  completed(name: string, f: HistoryEvent['f']): boolean {
    try {
      return readFileSync(join(this.options.dir, `${name}.jsonl`), 'utf8')
        .split('\n')
        .some((line) => line.includes(`"${f}"`) && (JSON.parse(line) as HistoryEvent).type === 'ok');
    } catch {
      return false;
    }
  }

  pauseWorker(name: string): void {
    const worker = this.worker(name);
    process.kill(worker.child.pid!, 'SIGSTOP');
    this.pausedWorkers.add(name);
    this.fault('pause', [name], 'start');
  }

  resumeWorker(name: string): void {
    if (!this.pausedWorkers.delete(name)) return;
    process.kill(this.worker(name).child.pid!, 'SIGCONT');
    this.fault('pause', [name], 'stop');
  }

  /** SIGKILL: the worker's windows end now (the checker ends them at this event). */
  async killWorker(name: string): Promise<void> {
    const worker = this.worker(name);
    this.fault('kill', [name], 'start');
    this.killedWorkers.add(name);
    this.pausedWorkers.delete(name);
    worker.child.kill('SIGKILL');
    await worker.finish();
  }

  /** SIGTERM: the worker finishes its step, releases and exits; resolves with how it exited. */
  async stopWorker(name: string): Promise<Exit> {
    return await this.worker(name).stop('SIGTERM');
  }

  private worker(name: string): NodeProcess {
    const worker = this.workers.get(name);
    if (!worker) throw new Error(`no worker ${name}`);
    return worker;
  }

  // ---- Redis nodes ---------------------------------------------------------------------------------------

  async killNode(i: number): Promise<void> {
    this.fault('kill', [`R${i + 1}`], 'start');
    await this.redis[i]!.kill();
    this.voting.set(i, { down: true, paused: false });
  }

  /** Starts a killed node again, with its data (AOF) or empty (`wipe`, amnesia: quarantined by the server). */
  async startNode(i: number, opts: { wipe: boolean }): Promise<void> {
    if (opts.wipe) await this.redis[i]!.wipeData();
    await this.redis[i]!.startAgain();
    this.fault('kill', [`R${i + 1}`], 'stop', { empty: opts.wipe });
    this.voting.restartedEmpty(i);
    this.watchQuarantine();
  }

  /** Kill and start at once, empty: the amnesia of F4 / F21. */
  async restartNodeEmpty(i: number): Promise<void> {
    await this.killNode(i);
    await this.startNode(i, { wipe: true });
  }

  pauseNode(i: number): void {
    this.fault('pause', [`R${i + 1}`], 'start');
    this.redis[i]!.pause();
    this.voting.set(i, { paused: true });
  }

  resumeNode(i: number): void {
    if (!this.voting.state(i).paused) return;
    this.redis[i]!.resume();
    this.fault('pause', [`R${i + 1}`], 'stop');
    this.voting.set(i, { paused: false });
  }

  /** Switches proxy P(i+1); `pass` ends the fault. */
  async partition(i: number, mode: ProxyMode): Promise<void> {
    await this.switchProxy(this.proxies[i]!, `P${i + 1}`, mode);
    this.voting.set(i, { cut: CUTTING.has(mode.kind) });
  }

  /** Sets a proxy's mode, recording the end of the fault it had and the start of the new one. */
  private async switchProxy(proxy: FaultProxy, name: string, mode: ProxyMode): Promise<void> {
    const previous = proxy.mode;
    if (previous.kind !== 'pass') this.fault(previous.kind, [name], 'stop');
    await proxy.set(mode);
    if (mode.kind !== 'pass') this.fault(mode.kind, [name], 'start', { ...mode });
  }

  /** An admin write straight to a node, past its proxy (F14: `PEXPIRE lk:<r> 1` models its clock jumping). */
  async nodeCommand(i: number, ...args: (string | number)[]): Promise<unknown> {
    this.fault('node-command', [`R${i + 1}`], 'start', { args });
    return await this.redis[i]!.command(...args);
  }

  // ---- the coordinator and the client link ---------------------------------------------------------------

  async killServer(): Promise<void> {
    this.fault('kill', ['C'], 'start');
    await this.server.stop('SIGKILL');
  }

  async restartServer(): Promise<void> {
    this.server = await Harness.startServer(this.options, this.proxies, this.grpcPort);
    this.fault('kill', ['C'], 'stop');
  }

  pauseServer(): void {
    this.fault('pause', ['C'], 'start');
    process.kill(this.server.child.pid!, 'SIGSTOP');
    this.serverPaused = true;
  }

  resumeServer(): void {
    if (!this.serverPaused) return;
    process.kill(this.server.child.pid!, 'SIGCONT');
    this.serverPaused = false;
    this.fault('pause', ['C'], 'stop');
  }

  async cutClients(mode: ProxyMode): Promise<void> {
    if (!this.clientProxy) throw new Error('start the harness with clientProxy: true');
    await this.switchProxy(this.clientProxy, 'PC', mode);
  }

  // ---- the end -------------------------------------------------------------------------------------------

  /** Ends every fault: resumes, starts and reconnects what was paused, down or cut. */
  async healAll(): Promise<void> {
    this.resumeServer();
    for (const name of [...this.pausedWorkers]) this.resumeWorker(name);
    for (let i = 0; i < this.redis.length; i++) {
      this.resumeNode(i);
      if (!this.redis[i]!.running) await this.startNode(i, { wipe: false });
      if (this.proxies[i]!.mode.kind !== 'pass') await this.partition(i, { kind: 'pass' });
    }
    if (this.clientProxy && this.clientProxy.mode.kind !== 'pass') await this.cutClients({ kind: 'pass' });
    if (!this.server.running) await this.restartServer();
    this.nemesis.record({
      type: 'info',
      f: 'nemesis',
      nemesis: { fault: 'heal', target: ['*'], phase: 'stop' },
    });
  }

  /**
   * L4: after the heal, every resource must be acquirable within the recovery bound. Recorded as writer
   * `probe` (acquire invoke/ok, then release), so the checker sees it like any worker's.
   */
  async probe(boundMs: number): Promise<void> {
    const probe = new RecordedClient(this.options.dir, 'probe', `127.0.0.1:${this.grpcPort}`, {
      ttlMs: this.options.ttlMs,
      callTimeoutMs: 1_000,
    });
    try {
      for (const resource of this.options.resources) {
        const deadline = performance.now() + boundMs;
        for (;;) {
          const lease = await probe.acquire(resource, { waitMs: 500, autoRenew: false });
          if (lease) {
            await probe.release(lease);
            break;
          }
          if (performance.now() > deadline) break;
          await sleep(100);
        }
      }
    } finally {
      await probe.close();
    }
  }

  /** Final reads of both stores, recorded by the store service as `final-` reads. */
  async finalReads(): Promise<void> {
    for (const resource of this.options.resources) {
      for (const store of ['fenced', 'unfenced'] as const) await this.store.finalRead(store, resource);
    }
  }

  /**
   * Heal, let workers finish, probe, read back, close the writers, check. Writes `report.json` and
   * `report.txt` into the history folder and returns the report with the workers that failed.
   */
  async finish(check: CheckOptions = {}): Promise<{ report: Report; workerFailures: string[] }> {
    await this.healAll();
    const bound = check.recoveryBoundMs ?? 3 * this.options.maxTtlMs + 2_000;
    // L4 counts from the heal: the probe starts then, alongside the workers still running (it waits its turn in
    // the server's queue like any of them).
    await Promise.all([this.probe(bound), this.joinWorkers()]);
    const workerFailures = await this.workerFailures();
    await this.finalReads();
    this.stopWatchingQuarantine();
    this.nemesis.close();
    await this.store.flush();
    const loaded = loadHistory(this.options.dir);
    const report = checkHistory(
      loaded.events,
      { recoveryBoundMs: bound, ...check },
      {
        truncated: loaded.truncated.length,
        seed: this.options.seed,
      },
    );
    writeFileSync(join(this.options.dir, 'report.json'), `${JSON.stringify(report, null, 2)}\n`);
    writeFileSync(
      join(this.options.dir, 'report.txt'),
      `${formatReport(report)}\n${formatWorkers(this.workers.size, workerFailures)}\n`,
    );
    return { report, workerFailures };
  }

  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    this.stopWatchingQuarantine();
    for (const worker of this.workers.values()) {
      if (worker.running) {
        try {
          process.kill(worker.child.pid!, 'SIGCONT');
        } catch {}
        worker.child.kill('SIGKILL');
      }
    }
    await Promise.allSettled([...this.workers.values()].map((w) => w.finish(5_000)));
    if (this.serverPaused) this.resumeServer();
    await bounded('server', this.server.stop('SIGKILL'));
    await Promise.allSettled([
      ...this.proxies.map((p, i) => bounded(`proxy P${i + 1}`, p.close())),
      ...(this.clientProxy ? [bounded('proxy PC', this.clientProxy.close())] : []),
      bounded('store service', this.store.close()),
    ]);
    await Promise.allSettled(
      [...this.redis, this.storeRedis].map((r) => bounded(`redis ${r.toString()}`, r.dispose())),
    );
    try {
      this.nemesis.close();
    } catch {}
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.dispose();
  }

  // ---- the harness's view of who can vote (for S6) ---------------------------------------------------------

  private fault(
    fault: string,
    target: string[],
    phase: 'start' | 'stop',
    detail?: Record<string, unknown>,
  ): void {
    this.nemesis.record({
      type: 'info',
      f: 'nemesis',
      nemesis: { fault, target, phase, ...(detail && { detail }) },
    });
  }

  /**
   * A node restarted empty cannot vote until the server's restart quarantine lets it (L5). How long that
   * is the server decides (shorter when it finds no live locks), so the harness asks it: polled over the lab
   * API's node status every 50 ms while any node is amnesiac.
   */
  private watchQuarantine(): void {
    if (this.quarantineWatch) return;
    // The timeline dates a quarantine's end back to the last send the server answered "not voting" (see
    // VotingTimeline), so it never shows a node out that the server already counted (S6 would flag its grants).
    const poll = async (): Promise<void> => {
      const sent = process.hrtime.bigint();
      try {
        const response = await fetch(`http://127.0.0.1:${this.server.httpPort}/admin/redis/status`, {
          signal: AbortSignal.timeout(1_000),
        });
        const body = (await response.json()) as { nodes?: { name: string; voting: boolean }[] };
        body.nodes?.forEach((n, i) => {
          this.voting.polled(i, n.voting, sent);
        });
      } catch {
        // server down or paused: ask again
      }
      if (this.voting.anyAmnesiac && !this.disposed) {
        this.quarantineWatch = setTimeout(() => void poll(), 50);
      } else {
        this.quarantineWatch = undefined;
      }
    };
    this.quarantineWatch = setTimeout(() => void poll(), 50);
  }

  private stopWatchingQuarantine(): void {
    if (this.quarantineWatch) clearTimeout(this.quarantineWatch);
    this.quarantineWatch = undefined;
  }
}

/** One line on how the worker processes ended, for the run's report. */
export function formatWorkers(count: number, failures: string[]): string {
  if (failures.length > 0) return `workers: ${failures.length} of ${count} FAILED: ${failures.join('; ')}`;
  return count === 0 ? 'workers: none' : `workers: all ${count} ended as expected`;
}

/** Teardown must not hang a run: a step that takes over `ms` is reported and left behind. */
async function bounded(what: string, step: Promise<unknown>, ms = 5_000): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<void>((resolve) => {
    timer = setTimeout(() => {
      process.stderr.write(`chaos harness: ${what} did not close within ${ms} ms\n`);
      resolve();
    }, ms);
  });
  try {
    await Promise.race([step.catch(() => undefined), late]);
  } finally {
    clearTimeout(timer);
  }
}
