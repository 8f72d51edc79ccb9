/**
 * The demo launcher: owns every process of the demo (three Redis lock nodes, the store Redis, the server, the
 * workers), streams their logs to one output, answers node-control requests on a unix socket, and stops it all
 * in order: workers first (SIGTERM: each releases its lease), then the server, then Redis.
 *
 * Nothing is left behind: every child runs in its own process group (a terminal's Ctrl-C reaches only the
 * launcher, which then stops them in that order) and gets SIGKILL from the kernel if the launcher dies, even by
 * SIGKILL (parent-death-signal.ts); the state file (demo-state.ts) records them all, so the next start kills whatever
 * might still remain. Every wait is bounded.
 */
import { createServer } from 'node:net';
import { join } from 'node:path';
import {
  type ControlRequest,
  type ControlResponse,
  NODE_NAMES,
  type NodeAction,
  type ProcessStatus,
} from './control-protocol.js';
import { ControlServer } from './control-server.js';
import { DemoNode } from './demo-node.js';
import type { DemoOptions } from './demo-options.js';
import type { DemoOutput } from './demo-output.js';
import { DemoState, type ProcessRecord } from './demo-state.js';
import { type Exit, NodeProcess, type NodeProcessOptions } from './node-process.js';
import { OtlpReceiver } from './otlp-receiver.js';
import { processStartTime } from './process-start-time.js';
import { ServerProcess } from './server-process.js';
import { TraceLines } from './trace-lines.js';
import { waitFor } from './wait.js';

/** The server checks its nodes every 250 ms (default 1 s), so a stopped or paused node shows in the log at once. */
const HEALTH_INTERVAL_MS = 250;
/** Time calls in flight get when the server stops (default 10 s): the demo stops in seconds. */
const SHUTDOWN_GRACE_MS = 2_000;
/** A worker stops after its current step and releases (one call); past this it is killed. */
const WORKER_STOP_MS = 5_000;
/** The server's grace, plus time to close its Redis connections and exit. */
const SERVER_STOP_MS = SHUTDOWN_GRACE_MS + 3_000;
/** Bound of the wait for the server's listening line (tsx compiles on first start; 2 cores may be busy). */
const SERVER_START_MS = 30_000;
/** A node action in progress when the demo stops may take this long (redis stop and start are bounded). */
const ACTION_DRAIN_MS = 15_000;
/** The workers' own default lease ttl (workers/options.ts), used unless --max-ttl-ms is smaller. */
const WORKER_TTL_MS = 3_000;
/** Log lines a child's harness keeps in memory: they are shown as they come, these only serve error messages. */
const KEEP_LINES = 200;

type Phase = 'new' | 'starting' | 'running' | 'stopping' | 'stopped';

/** Start-up was interrupted by stop(): not an error to report. */
export class StartInterrupted extends Error {
  override readonly name = 'StartInterrupted';
}

export class DemoLauncher {
  readonly state: DemoState;
  readonly nodes: readonly DemoNode[];
  /** Resolves with the exit code once the demo has stopped: 0 when asked to, 1 when the server died. */
  readonly done: Promise<number>;
  #resolveDone: (code: number) => void = () => undefined;
  #phase: Phase = 'new';
  #starting: Promise<void> | undefined;
  #stopping: Promise<void> | undefined;
  #server: ServerProcess | undefined;
  readonly #workers: { name: string; process: NodeProcess }[] = [];
  #control: ControlServer | undefined;
  /** --traces: the OTLP receiver the server and the workers export to. */
  #traces: OtlpReceiver | undefined;
  /** This launcher owns the state dir (another demo did not): it has things to stop and report. */
  #claimed = false;
  /** Node actions run one at a time, in arrival order. */
  #actions: Promise<unknown> = Promise.resolve();

  constructor(
    readonly options: DemoOptions,
    private readonly out: DemoOutput,
  ) {
    this.state = new DemoState(options.stateDir);
    const onExit = (node: DemoNode): void => {
      if (this.#phase !== 'running') return;
      this.out.demo(
        `${node.name} exited on its own (not through npm run nodes); start it again with: npm run nodes -- start ${node.name}`,
        'warn',
      );
      void this.#record();
    };
    const ports = [...options.redisPorts, options.storePort];
    this.nodes = NODE_NAMES.map(
      (name, i) => new DemoNode(name, ports[i]!, join(this.state.dir, name), out, onExit),
    );
    this.done = new Promise((resolve) => {
      this.#resolveDone = resolve;
    });
  }

  get workerNames(): string[] {
    return Array.from({ length: this.options.workers }, (_, i) => `w${i + 1}`);
  }

  /**
   * Claims the state dir, checks every port, starts everything and opens the control socket. Throws
   * AlreadyRunningError (another demo owns the state dir), an Error saying what failed, or StartInterrupted;
   * after any failure call stop(), which stops whatever had started.
   */
  async start(): Promise<void> {
    if (this.#phase !== 'new') throw new Error('start() runs once');
    this.#phase = 'starting';
    this.#starting = this.#start();
    await this.#starting;
  }

  /** Stops everything (idempotent, bounded); `done` then resolves with `code`. */
  stop(code = 0): Promise<void> {
    this.#stopping ??= this.#stop(code);
    return this.#stopping;
  }

  /** For a second Ctrl-C: SIGKILL every child now and drop the state file (synchronous; the caller exits). */
  killNow(): void {
    const pids = [
      ...this.#workers.map((w) => w.process.child.pid),
      this.#server?.child.pid,
      ...this.nodes.map((n) => n.pid ?? undefined),
    ];
    for (const pid of pids) {
      if (pid === undefined) continue;
      for (const signal of ['SIGCONT', 'SIGKILL'] as const) {
        try {
          process.kill(pid, signal);
        } catch {
          // already gone
        }
      }
    }
    this.state.releaseSync();
  }

  async #start(): Promise<void> {
    for (const note of await this.state.claim()) this.out.demo(note, 'warn');
    this.#claimed = true;
    this.#checkpoint();
    await this.#checkPorts();

    this.out.demo(`starting Redis: ${this.nodes.map((n) => `${n.name} ${n.address}`).join(', ')}`);
    const started = await Promise.allSettled(this.nodes.map((node) => node.start()));
    await this.#record();
    const failed = started.find((r) => r.status === 'rejected');
    if (failed !== undefined) throw failed.reason;
    this.#checkpoint();

    if (this.options.traces) await this.#startTraces();
    await this.#startServer();
    await this.#record();
    this.#checkpoint();

    if (this.options.workers > 0) this.out.demo(`starting workers ${this.workerNames.join(', ')}`);
    for (const name of this.workerNames) this.#startWorker(name);
    this.#control = await ControlServer.listen(this.state.controlPath, (request) => this.#handle(request));
    await this.#record();
    this.#checkpoint();
    this.#phase = 'running';
  }

  #checkpoint(): void {
    if (this.#stopping !== undefined) throw new StartInterrupted('stopped during start-up');
  }

  /** Every port must be free before anything starts, so a clash is reported by port and by name. */
  async #checkPorts(): Promise<void> {
    const o = this.options;
    const ports: [string, number][] = [
      ...this.nodes.map((n): [string, number] => [n.name, n.port]),
      ['server gRPC', o.grpcPort],
      ['server HTTP', o.httpPort],
    ];
    const problems: string[] = [];
    for (const [what, port] of ports) {
      const error = await tryListen(port);
      if (error === 'EADDRINUSE')
        problems.push(`port ${port} (${what}) is already in use by another process`);
      else if (error === 'EACCES') problems.push(`port ${port} (${what}) needs privileges to listen on`);
      else if (error !== undefined) problems.push(`port ${port} (${what}) cannot be used: ${error}`);
    }
    if (problems.length > 0) {
      throw new Error(
        `${problems.join('; ')}. Stop what listens there, or pick other ports (--port-offset, --redis-ports, ` +
          '--store-port, --grpc-port, --http-port; see --help)',
      );
    }
  }

  /** --traces: a receiver on a free loopback port; each finished acquire becomes one `trace` line. */
  async #startTraces(): Promise<void> {
    const lines = new TraceLines();
    const forward = process.env.OTEL_EXPORTER_OTLP_ENDPOINT || undefined;
    this.#traces = await OtlpReceiver.start({
      onSpans: (spans) => {
        for (const line of lines.add(spans)) this.out.write('trace', line);
      },
      forward,
      onForwardError: (error) =>
        this.out.demo(
          `traces: could not pass spans on to ${forward} (${error.message}); it must take OTLP over HTTP (port 4318)`,
          'warn',
        ),
    });
    this.out.demo(
      `traces: the server and workers export to ${this.#traces.endpoint}; each finished acquire is a "trace" line${forward ? `, and every span goes on to ${forward}` : ''}`,
    );
  }

  /** The environment of the server and the workers: this one without REDLEASE_* (flags only), and with
   *  --traces, exporting to the launcher's receiver promptly. */
  #childEnvironment(): NodeJS.ProcessEnv {
    const env = childEnvironment();
    if (this.#traces === undefined) return env;
    delete env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT;
    return {
      ...env,
      OTEL_EXPORTER_OTLP_ENDPOINT: this.#traces.endpoint,
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
      OTEL_TRACES_SAMPLER: 'parentbased_always_on',
      // Lines within a fraction of a second of the acquire, not after the SDK's default 5 s batch delay.
      OTEL_BSP_SCHEDULE_DELAY: '200',
    };
  }

  async #startServer(): Promise<void> {
    const o = this.options;
    const args = [
      '--nodes',
      this.nodes
        .filter((n) => n.role === 'lock node')
        .map((n) => n.address)
        .join(','),
      '--grpc-listen',
      `127.0.0.1:${o.grpcPort}`,
      '--http-listen',
      `127.0.0.1:${o.httpPort}`,
      '--default-ttl-ms',
      String(o.ttlMs),
      '--max-ttl-ms',
      String(o.maxTtlMs),
      '--health-interval-ms',
      String(HEALTH_INTERVAL_MS),
      '--shutdown-grace-ms',
      String(SHUTDOWN_GRACE_MS),
    ];
    this.out.demo(`starting the server: gRPC 127.0.0.1:${o.grpcPort}, HTTP 127.0.0.1:${o.httpPort}`);
    const server = ServerProcess.spawn(args, this.#childEnvironment(), {
      ...this.#childOptions('server'),
      replaceEnv: true,
    });
    this.#server = server;
    await waitFor(
      'the server to listen',
      () => {
        this.#checkpoint();
        if (!server.running) throw new Error('the server exited before it listened: see its lines above');
        return server.listening !== undefined;
      },
      SERVER_START_MS,
      20,
    );
    if (typeof server.listening?.http !== 'string') {
      this.out.demo(
        'the server did not report an HTTP listener: the curl examples need a server with the HTTP lab API',
        'warn',
      );
    }
    void server.exited.then((exit) => {
      if (this.#phase !== 'running' && this.#phase !== 'starting') return;
      this.out.demo(`the server exited unexpectedly (${describeExit(exit)}): stopping the demo`, 'error');
      void this.stop(1);
    });
  }

  #startWorker(name: string): void {
    const o = this.options;
    const args = [
      '--name',
      name,
      '--address',
      `127.0.0.1:${o.grpcPort}`,
      '--store',
      `redis://127.0.0.1:${o.storePort}`,
      '--ttl-ms',
      String(Math.min(WORKER_TTL_MS, o.maxTtlMs)),
      '--pause-ms',
      String(o.pauseMs),
    ];
    const worker = NodeProcess.launch(
      'workers/worker.ts',
      args,
      this.#childEnvironment(),
      this.#childOptions(name),
    );
    this.#workers.push({ name, process: worker });
    void worker.exited.then((exit) => {
      if (this.#phase !== 'running' && this.#phase !== 'starting') return;
      this.out.demo(`${name} exited (${describeExit(exit)}); the others carry on`, 'warn');
      void this.#record();
    });
  }

  #childOptions(name: string): NodeProcessOptions {
    return {
      detached: true,
      parentDeathSignal: 'SIGKILL',
      onLine: (line) => this.out.log(name, line),
      keepLines: KEEP_LINES,
    };
  }

  /** Writes the processes running now to the state file. */
  async #record(): Promise<void> {
    const records: ProcessRecord[] = [];
    for (const node of this.nodes) {
      if (node.pid !== null) records.push({ name: node.name, pid: node.pid, startTime: node.startTime });
    }
    const children = [
      ...(this.#server ? [{ name: 'server', process: this.#server as NodeProcess }] : []),
      ...this.#workers,
    ];
    for (const { name, process: child } of children) {
      const pid = child.child.pid;
      if (pid !== undefined && child.running) {
        records.push({ name, pid, startTime: processStartTime(pid) ?? null });
      }
    }
    await this.state.setProcesses(records);
  }

  #handle(request: ControlRequest): Promise<ControlResponse> {
    const result = this.#actions.then(() => this.#act(request));
    this.#actions = result.catch(() => undefined);
    return result;
  }

  async #act(request: ControlRequest): Promise<ControlResponse> {
    if (this.#phase !== 'running') return { ok: false, error: 'the demo is stopping' };
    if (request.action === 'status') return { ok: true, message: '', processes: this.#statuses() };
    const node = this.nodes.find((n) => n.name === request.node);
    if (node === undefined) return { ok: false, error: `no node ${request.node}` };
    const label = `npm run nodes -- ${request.action} ${node.name}`;
    try {
      const message = await this.#nodeAction(node, request.action);
      this.out.demo(`${label}: ${message}`);
      return { ok: true, message, processes: this.#statuses() };
    } catch (error) {
      const text = error instanceof Error ? error.message : String(error);
      this.out.demo(`${label}: ${text}`, 'warn');
      return { ok: false, error: text };
    } finally {
      await this.#record();
    }
  }

  async #nodeAction(node: DemoNode, action: NodeAction): Promise<string> {
    const pid = node.pid;
    switch (action) {
      case 'stop':
        await node.stop();
        return `${node.name} stopped (SHUTDOWN NOSAVE; it was pid ${pid} on ${node.address}).${this.#quorumNote(node)}`;
      case 'start':
        await node.start();
        return `${node.name} started on ${node.address} (pid ${node.pid}) with an empty dataset (no persistence).${this.#emptyNote(node)}${this.#quorumNote(node)}`;
      case 'restart':
        if (node.state !== 'stopped') await node.stop();
        await node.start();
        return `${node.name} restarted on ${node.address} (pid ${node.pid}): its data is lost (no persistence).${this.#emptyNote(node)}${this.#quorumNote(node)}`;
      case 'pause':
        node.pause();
        return `${node.name} paused (SIGSTOP, pid ${pid}): it keeps its port but answers nothing, so calls to it time out.${this.#quorumNote(node)}`;
      case 'resume':
        node.resume();
        return `${node.name} resumed (SIGCONT, pid ${pid}).${this.#quorumNote(node)}`;
    }
  }

  /** What an empty node means: a quarantine for a lock node, a fresh counter for the store. */
  #emptyNote(node: DemoNode): string {
    if (node.role === 'store') return " The workers' counter and fencing records start again from nothing.";
    return (
      ' The server quarantines it: it votes again only once the locks it may have forgotten have expired ' +
      `(at most --max-ttl-ms ${this.options.maxTtlMs} ms; sooner when the two other nodes vote and show no live locks).`
    );
  }

  /** How many lock nodes answer now, and what that means for acquires. */
  #quorumNote(node: DemoNode): string {
    if (node.role !== 'lock node') return '';
    const lockNodes = this.nodes.filter((n) => n.role === 'lock node');
    const up = lockNodes.filter((n) => n.state === 'running').length;
    const quorum = Math.floor(lockNodes.length / 2) + 1;
    const text = ` Lock nodes answering: ${up} of ${lockNodes.length} (quorum ${quorum})`;
    return up >= quorum
      ? `${text}.`
      : `${text}: no quorum, so acquires fail with UNAVAILABLE (HTTP 503) until a node is back.`;
  }

  #statuses(): ProcessStatus[] {
    const o = this.options;
    const child = (
      name: string,
      role: ProcessStatus['role'],
      p: NodeProcess | undefined,
      addresses: string[],
    ): ProcessStatus => ({
      name,
      role,
      state: p?.running ? 'running' : 'stopped',
      pid: p?.running ? (p.child.pid ?? null) : null,
      addresses,
    });
    return [
      ...this.nodes.map((n) => n.status()),
      child('server', 'server', this.#server, [
        `127.0.0.1:${o.grpcPort} (gRPC)`,
        `127.0.0.1:${o.httpPort} (HTTP)`,
      ]),
      ...this.#workers.map((w) => child(w.name, 'worker', w.process, [])),
    ];
  }

  async #stop(code: number): Promise<void> {
    const wasStarting = this.#phase === 'starting';
    this.#phase = 'stopping';
    // A start in progress stops at its next step (each step is bounded), so nothing starts after this.
    if (wasStarting) await this.#starting?.catch(() => undefined);
    await this.#control?.close();
    await within(this.#actions, ACTION_DRAIN_MS);
    const running = this.#workers.filter((w) => w.process.running);
    if (running.length > 0) {
      this.out.demo(`stopping ${running.map((w) => w.name).join(', ')} (SIGTERM: each releases its lease)`);
      await Promise.all(running.map((w) => w.process.stop('SIGTERM', WORKER_STOP_MS)));
    }
    if (this.#server?.running) {
      this.out.demo('stopping the server (SIGTERM)');
      await this.#server.stop('SIGTERM', SERVER_STOP_MS);
    }
    const nodes = this.nodes.filter((n) => n.pid !== null);
    if (nodes.length > 0) this.out.demo(`stopping ${nodes.map((n) => n.name).join(', ')} (SHUTDOWN NOSAVE)`);
    const results = await Promise.allSettled(this.nodes.map((n) => n.dispose()));
    for (const result of results) {
      if (result.status === 'rejected') this.out.demo(String(result.reason), 'error');
    }
    await this.#traces?.close();
    await this.state.release();
    this.#phase = 'stopped';
    if (this.#claimed) this.out.demo('everything stopped');
    this.#resolveDone(code);
  }
}

/** Waits for `promise` (its outcome ignored), but not longer than `ms`. */
async function within(promise: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, ms);
  });
  try {
    await Promise.race([promise.catch(() => undefined), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Free on 127.0.0.1 (undefined), or the error code of listening there. */
function tryListen(port: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
    server.listen({ host: '127.0.0.1', port, exclusive: true }, () => server.close(() => resolve(undefined)));
  });
}

/** This environment without REDLEASE_* variables: the demo's processes take their settings from flags only. */
function childEnvironment(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('REDLEASE_')));
}

function describeExit(exit: Exit): string {
  return exit.signal ? `killed by ${exit.signal}` : `exit code ${exit.code}`;
}
