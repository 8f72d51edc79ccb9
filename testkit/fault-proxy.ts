/**
 * FaultProxy: a protocol-agnostic TCP proxy on 127.0.0.1 whose behaviour can be switched at run time — the
 * P1…P3 and PC of the fault suite (docs/chaos.md). It sits in front of redis-server (RESP) and between gRPC
 * clients and the coordinator (HTTP/2), so it only ever moves opaque byte chunks and never parses them.
 *
 * Model: every accepted client socket gets its own upstream socket to the target, opened at accept time (also in
 * blackhole/drop modes, so the target sees a connection as it would behind a lossy network). Each connection has
 * two one-way *lanes* (client→target and target→client). A lane either discards what it reads (the mode drops
 * that direction) or forwards it — at once, or after a delay. Per lane, delivery times never decrease, so a later
 * chunk never overtakes an earlier one, including across a switch from `delay` back to `pass`.
 *
 * End of stream travels through the lanes like data: a FIN or RST read from one side is passed on to the other
 * side only when that lane forwards. While a lane discards, the FIN/RST is held back and passed on once the lane
 * forwards again — as TCP would retransmit it after a partition heals — so a blackholed peer does not learn of a
 * close it could not have seen. Bytes read while a lane discards are gone for good.
 */
import { connect, createServer, type Server, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { freeFixedPort } from '../scripts/lib/free-port.js';
import { mulberry32 } from './random.js';

export type ProxyMode =
  | { kind: 'pass' }
  | { kind: 'delay'; ms: number; jitterMs?: number }
  | { kind: 'drop-requests' }
  | { kind: 'drop-responses' }
  | { kind: 'blackhole' }
  | { kind: 'reset' }
  | { kind: 'refuse' };

export interface FaultProxyOptions {
  /** 'host:port' or { host, port }. */
  target: string | { host: string; port: number };
  /** Default 0: a free port, then kept for the proxy's life (refuse → pass listens on it again). */
  listenPort?: number;
  /** Seed of the jitter PRNG (mulberry32). Default 1. */
  seed?: number;
  /** e.g. 'P1'; used in error messages. */
  name?: string;
}

export interface FaultProxyStats {
  /** Client connections accepted since start (including those reset at once in `reset` mode). */
  accepted: number;
  /** Client connections whose client or upstream socket is not closed yet. */
  open: number;
  /** Bytes written to the target. */
  bytesToTarget: number;
  /** Bytes written to clients. */
  bytesToClient: number;
  /** Bytes read and discarded (dropped by the mode, or queued for a socket that died before delivery). */
  dropped: number;
  /** Connections the proxy tore down with RST (reset/refuse modes, and resets passed on from the other side). */
  resets: number;
}

type SimpleModeName = Exclude<ProxyMode['kind'], 'delay'>;

const HOST = '127.0.0.1';
/** Re-listening after `refuse` retries EADDRINUSE this long (a socket of ours may still be closing). */
const RELISTEN_TIMEOUT_MS = 2_000;
const RELISTEN_INTERVAL_MS = 25;
/** A picked free port can be taken by someone else before we bind it: pick again this many times. */
const MAX_PORT_PICKS = 5;

export { mulberry32 };

/** ms ± jitterMs, uniform, never negative. Draws exactly one number from `random` when jitterMs > 0. */
export function jitteredDelayMs(ms: number, jitterMs: number, random: () => number): number {
  if (jitterMs <= 0) return ms;
  return Math.max(0, ms + (random() * 2 - 1) * jitterMs);
}

export type Direction = 'toTarget' | 'toClient';
/** How a lane's stream ends: FIN (end), RST (reset), or a plain close after some other socket error (destroy). */
type Terminal = 'end' | 'reset' | 'destroy';

function discards(mode: ProxyMode, direction: Direction): boolean {
  switch (mode.kind) {
    case 'blackhole':
      return true;
    case 'drop-requests':
      return direction === 'toTarget';
    case 'drop-responses':
      return direction === 'toClient';
    default:
      // pass and delay forward; in reset/refuse no connection lives long enough to read anything.
      return false;
  }
}

/** Errors that mean the peer reset the connection (or refused it), which we pass on as an RST. */
function isResetError(err: NodeJS.ErrnoException | undefined): boolean {
  return err?.code === 'ECONNRESET' || err?.code === 'ECONNREFUSED' || err?.code === 'EPIPE';
}

/**
 * Abort a connection with RST (SO_LINGER 0). A socket still connecting has nothing to reset: just close it.
 *
 * Nor can a socket whose FIN is still on its way (end() called, 'finish' not yet emitted): libuv refuses to reset
 * a stream with a pending shutdown (uv_tcp_close_reset → EINVAL), and Node then emits an 'error' (syscall 'reset')
 * and drops the handle *without closing it* — no 'close' ever follows and the fd leaks, so whatever awaits the
 * socket (Connection.closed, hence FaultProxy.close()) hangs. That socket is closed instead: its peer gets the FIN
 * it was about to get anyway.
 */
function resetSocket(socket: Socket): void {
  if (socket.destroyed) return;
  // resetAndDestroy() on a connecting socket would wait for 'connect'; on a handle-less one it emits an error.
  if (socket.connecting || (socket.writableEnded && !socket.writableFinished)) socket.destroy();
  else socket.resetAndDestroy();
}

function whenClosed(socket: Socket): Promise<void> {
  return socket.closed ? Promise.resolve() : new Promise((resolve) => socket.once('close', () => resolve()));
}

/** Mutable state shared by the proxy and its connections. */
class ProxyState {
  mode: ProxyMode = { kind: 'pass' };
  readonly counters = { accepted: 0, bytesToTarget: 0, bytesToClient: 0, dropped: 0, resets: 0 };
  readonly #random: () => number;

  constructor(seed: number) {
    this.#random = mulberry32(seed);
  }

  /** Delay for the next chunk under the current mode (0 unless delaying); one PRNG draw per jittered chunk. */
  nextDelayMs(): number {
    const mode = this.mode;
    return mode.kind === 'delay' ? jitteredDelayMs(mode.ms, mode.jitterMs ?? 0, this.#random) : 0;
  }
}

interface Item {
  /** performance.now() at or after which the item may be delivered. */
  at: number;
  chunk?: Buffer;
  terminal?: Terminal;
}

/** One direction of one connection: reads from `src`, writes to `dst`, in order. */
class Lane {
  readonly #queue: Item[] = [];
  #timer: NodeJS.Timeout | undefined;
  /** Delivery time of the last item scheduled: new items are never due earlier (keeps order). */
  #lastAt = 0;
  /** Set once the source ended (FIN) or died; no data follows a terminal. */
  #terminal: Terminal | undefined;
  /** A terminal read while the lane discarded, passed on when it forwards again. */
  #deferred: Terminal | undefined;
  /** The destination is gone (or the connection is being torn down): nothing more is delivered. */
  #abandoned = false;
  #waitingDrain = false;

  constructor(
    private readonly state: ProxyState,
    private readonly direction: Direction,
    private readonly src: Socket,
    private readonly dst: Socket,
    private readonly onTerminal: (terminal: Terminal) => void,
  ) {}

  data(chunk: Buffer): void {
    if (this.#abandoned || this.#terminal !== undefined || discards(this.state.mode, this.direction)) {
      this.state.counters.dropped += chunk.length;
      return;
    }
    this.#schedule({ at: 0, chunk });
  }

  /** Bytes of the test's own, delivered in order after what is already queued, whatever the mode. */
  inject(chunk: Buffer): void {
    if (this.#abandoned || this.#terminal !== undefined) return;
    this.#schedule({ at: 0, chunk });
  }

  /** The source ended or died. An abrupt end may follow a FIN (e.g. RST after half-close) and still goes through. */
  terminate(terminal: Terminal): void {
    if (this.#abandoned) return;
    if (terminal === 'end' && this.#terminal !== undefined) return;
    this.#terminal = terminal;
    if (discards(this.state.mode, this.direction)) {
      this.#deferred = terminal;
      return;
    }
    this.#deferred = undefined;
    this.#schedule({ at: 0, terminal });
  }

  /** Called after every mode switch: a held-back FIN/RST goes out once this direction forwards again. */
  modeChanged(): void {
    const terminal = this.#deferred;
    if (terminal === undefined || this.#abandoned || discards(this.state.mode, this.direction)) return;
    this.#deferred = undefined;
    this.#schedule({ at: 0, terminal });
  }

  /** Stop for good: cancel the timer and count still-queued bytes as dropped (no timer outlives the lane). */
  abandon(): void {
    if (this.#abandoned) return;
    this.#abandoned = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    for (const item of this.#queue) this.state.counters.dropped += item.chunk?.length ?? 0;
    this.#queue.length = 0;
    this.#deferred = undefined;
  }

  #schedule(item: Item): void {
    const now = performance.now();
    // In pass mode the delay is 0, but max() with #lastAt still queues the item behind delayed ones.
    item.at = Math.max(now + this.state.nextDelayMs(), this.#lastAt);
    this.#lastAt = item.at;
    if (this.#queue.length === 0 && item.at <= now) {
      this.#deliver(item);
      return;
    }
    this.#queue.push(item);
    if (this.#timer === undefined) this.#arm();
  }

  #arm(): void {
    const head = this.#queue[0];
    if (head === undefined) return;
    this.#timer = setTimeout(() => this.#flush(), Math.max(0, Math.ceil(head.at - performance.now())));
  }

  #flush(): void {
    this.#timer = undefined;
    // Timers run on the loop's cached clock and may fire a little before head.at by performance.now(); we then
    // re-arm rather than deliver early, so `delay` is a true lower bound.
    const now = performance.now();
    for (let head = this.#queue[0]; head !== undefined && head.at <= now; head = this.#queue[0]) {
      this.#queue.shift();
      this.#deliver(head);
      if (this.#abandoned) return;
    }
    this.#arm();
  }

  #deliver(item: Item): void {
    if (item.terminal !== undefined) {
      this.onTerminal(item.terminal);
      return;
    }
    const chunk = item.chunk;
    if (chunk === undefined) return;
    if (this.#abandoned || this.dst.destroyed || this.dst.writableEnded) {
      this.state.counters.dropped += chunk.length;
      return;
    }
    if (this.direction === 'toTarget') this.state.counters.bytesToTarget += chunk.length;
    else this.state.counters.bytesToClient += chunk.length;
    // Backpressure: stop reading the source until the destination drains, so a slow reader cannot make us
    // buffer without bound (delay queues are left unbounded on purpose: they only hold `ms` worth of traffic).
    if (!this.dst.write(chunk) && !this.#waitingDrain) {
      this.#waitingDrain = true;
      this.src.pause();
      this.dst.once('drain', () => {
        this.#waitingDrain = false;
        if (!this.src.destroyed) this.src.resume();
      });
    }
  }
}

/** A client socket and its upstream socket, joined by two lanes. */
class Connection {
  readonly closed: Promise<void>;
  readonly #toTarget: Lane;
  readonly #toClient: Lane;
  readonly #errors = new Map<Socket, NodeJS.ErrnoException>();
  #dead = false;

  constructor(
    private readonly client: Socket,
    private readonly upstream: Socket,
    private readonly state: ProxyState,
  ) {
    this.#toTarget = new Lane(state, 'toTarget', client, upstream, (t) => this.#deliverTerminal(upstream, t));
    this.#toClient = new Lane(state, 'toClient', upstream, client, (t) => this.#deliverTerminal(client, t));
    this.closed = Promise.all([whenClosed(client), whenClosed(upstream)]).then(() => undefined);
    this.#wire(client, this.#toTarget, this.#toClient);
    this.#wire(upstream, this.#toClient, this.#toTarget);
  }

  modeChanged(): void {
    if (this.#dead) return;
    this.#toTarget.modeChanged();
    this.#toClient.modeChanged();
  }

  inject(direction: Direction, chunk: Buffer): void {
    if (this.#dead) return;
    (direction === 'toTarget' ? this.#toTarget : this.#toClient).inject(chunk);
  }

  /** Tear down both sides at once, dropping whatever is still queued. */
  kill(how: 'reset' | 'destroy'): void {
    if (this.#dead) return;
    this.#dead = true;
    this.#toTarget.abandon();
    this.#toClient.abandon();
    if (how === 'reset') {
      this.state.counters.resets++;
      resetSocket(this.client);
      resetSocket(this.upstream);
    } else {
      this.client.destroy();
      this.upstream.destroy();
    }
  }

  /** `out` carries what `socket` reads; `inbound` carries what is written to `socket`. */
  #wire(socket: Socket, out: Lane, inbound: Lane): void {
    // Errors are recorded, never thrown: the 'close' that always follows decides what to pass on.
    socket.on('error', (err: NodeJS.ErrnoException) => this.#errors.set(socket, err));
    socket.on('data', (chunk: Buffer) => out.data(chunk));
    socket.on('end', () => out.terminate('end'));
    socket.on('close', () => {
      if (this.#dead) return;
      // Nothing can be written to this socket any more.
      inbound.abandon();
      const err = this.#errors.get(socket);
      // Both directions finished with FINs: the other side gets (or got) its FIN through `out`.
      if (err === undefined && socket.readableEnded && socket.writableFinished) return;
      out.terminate(isResetError(err) ? 'reset' : 'destroy');
    });
  }

  #deliverTerminal(dst: Socket, terminal: Terminal): void {
    if (terminal === 'end') {
      // allowHalfOpen on both sockets lets a half-close pass through as a half-close.
      if (!dst.destroyed && !dst.writableEnded) dst.end();
      return;
    }
    this.kill(terminal);
  }
}

function parseTarget(target: FaultProxyOptions['target'], name: string): { host: string; port: number } {
  let host: string;
  let port: number;
  if (typeof target === 'string') {
    const colon = target.lastIndexOf(':');
    host = target.slice(0, colon).replace(/^\[(.*)\]$/, '$1');
    port = Number(target.slice(colon + 1));
    if (colon <= 0) throw new Error(`${name}: invalid target '${target}' (expected 'host:port')`);
  } else {
    ({ host, port } = target);
  }
  if (!Number.isInteger(port) || port <= 0 || port > 65_535) {
    throw new Error(`${name}: invalid target port in ${JSON.stringify(target)}`);
  }
  return { host, port };
}

function normalizeMode(mode: ProxyMode | SimpleModeName, name: string): ProxyMode {
  const kind: string = typeof mode === 'string' ? mode : mode.kind;
  switch (kind) {
    case 'pass':
      return { kind: 'pass' };
    case 'drop-requests':
      return { kind: 'drop-requests' };
    case 'drop-responses':
      return { kind: 'drop-responses' };
    case 'blackhole':
      return { kind: 'blackhole' };
    case 'reset':
      return { kind: 'reset' };
    case 'refuse':
      return { kind: 'refuse' };
    case 'delay': {
      const { ms, jitterMs = 0 } =
        typeof mode === 'object' && mode.kind === 'delay' ? mode : { ms: Number.NaN };
      if (!Number.isFinite(ms) || ms < 0 || !Number.isFinite(jitterMs) || jitterMs < 0) {
        throw new Error(`${name}: delay needs ms >= 0 and jitterMs >= 0 (got ${JSON.stringify(mode)})`);
      }
      return { kind: 'delay', ms, jitterMs };
    }
    default:
      throw new Error(`${name}: unknown proxy mode ${JSON.stringify(mode)}`);
  }
}

function errnoCode(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}

export class FaultProxy {
  readonly #name: string;
  readonly #target: { host: string; port: number };
  readonly #state: ProxyState;
  readonly #connections = new Set<Connection>();
  /** Sockets accepted in reset mode and reset at once: tracked only until they are closed. */
  readonly #strays = new Set<Socket>();
  #port = 0;
  #server: Server | undefined;
  /** set() calls run one after another, so listener close/reopen never interleave. */
  #ops: Promise<void> = Promise.resolve();
  #closing = false;
  #closePromise: Promise<void> | undefined;

  private constructor(options: FaultProxyOptions) {
    this.#name = options.name ?? 'FaultProxy';
    this.#target = parseTarget(options.target, this.#name);
    this.#state = new ProxyState(options.seed ?? 1);
  }

  /** Listen on 127.0.0.1 (`listenPort`, or a free port) in `pass` mode. */
  static async start(options: FaultProxyOptions): Promise<FaultProxy> {
    const proxy = new FaultProxy(options);
    const fixed = options.listenPort !== undefined && options.listenPort !== 0;
    for (let attempt = 1; ; attempt++) {
      // A port below the ephemeral range, not port 0: while the listener is closed (refuse), a port from the
      // ephemeral range can be taken as the local port of any outgoing connection on the machine, and then
      // set('pass') could never listen on it again.
      const port = fixed ? (options.listenPort as number) : await freeFixedPort(HOST);
      try {
        proxy.#server = await proxy.#listenOnce(port);
        proxy.#port = port;
        return proxy;
      } catch (err) {
        if (fixed || errnoCode(err) !== 'EADDRINUSE' || attempt >= MAX_PORT_PICKS) {
          throw new Error(`${proxy.#name}: cannot listen on ${HOST}:${port}: ${(err as Error).message}`, {
            cause: err,
          });
        }
        // Lost a race for the picked port: pick another.
      }
    }
  }

  get port(): number {
    return this.#port;
  }

  /** '127.0.0.1:<port>' */
  get address(): string {
    return `${HOST}:${this.#port}`;
  }

  get mode(): ProxyMode {
    return this.#state.mode;
  }

  /** Switch mode; applies to open connections and new ones. Resolves once in force (listener closed/reopened). */
  set(mode: ProxyMode | SimpleModeName): Promise<void> {
    if (this.#closing) return Promise.reject(new Error(`${this.#name}: closed`));
    let next: ProxyMode;
    try {
      next = normalizeMode(mode, this.#name);
    } catch (err) {
      return Promise.reject(err);
    }
    const run = this.#ops.then(() => this.#apply(next));
    this.#ops = run.catch(() => undefined);
    return run;
  }

  stats(): FaultProxyStats {
    return { ...this.#state.counters, open: this.#connections.size };
  }

  /**
   * Writes `bytes` into every open connection, towards the target or the client, in order behind what the lane
   * already queued and whatever the mode (a middlebox garbling the stream). Returns the connections written to.
   */
  inject(direction: Direction, bytes: Buffer): number {
    for (const connection of this.#connections) connection.inject(direction, Buffer.from(bytes));
    return this.#connections.size;
  }

  /** Close the listener and every connection; resolves once all sockets are closed. Idempotent. */
  close(): Promise<void> {
    this.#closePromise ??= this.#close();
    return this.#closePromise;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  toString(): string {
    return `${this.#name}@${this.address}→${this.#target.host}:${this.#target.port}`;
  }

  async #apply(next: ProxyMode): Promise<void> {
    if (this.#closing) throw new Error(`${this.#name}: closed`);
    this.#state.mode = next;
    if (next.kind === 'reset' || next.kind === 'refuse') {
      for (const connection of this.#connections) connection.kill('reset');
    } else {
      for (const connection of this.#connections) connection.modeChanged();
    }
    if (next.kind === 'refuse') {
      await this.#closeListener();
    } else if (this.#server === undefined) {
      try {
        this.#server = await this.#relisten();
      } catch (err) {
        // Not listening is what `refuse` means: say so rather than claim a mode that is not in force.
        this.#state.mode = { kind: 'refuse' };
        throw err;
      }
    }
  }

  #accept(client: Socket): void {
    this.#state.counters.accepted++;
    client.on('error', () => undefined); // the Connection records errors; until then they mean nothing to us
    client.setNoDelay(true);
    const kind = this.#state.mode.kind;
    if (this.#closing || kind === 'reset' || kind === 'refuse') {
      // 'refuse' only here if a connection was already queued when the listener closed.
      this.#strays.add(client);
      client.once('close', () => this.#strays.delete(client));
      if (this.#closing) {
        client.destroy();
      } else {
        this.#state.counters.resets++;
        resetSocket(client);
      }
      return;
    }
    const upstream = connect({ host: this.#target.host, port: this.#target.port, allowHalfOpen: true });
    upstream.setNoDelay(true);
    const connection = new Connection(client, upstream, this.#state);
    this.#connections.add(connection);
    void connection.closed.then(() => this.#connections.delete(connection));
  }

  #listenOnce(port: number): Promise<Server> {
    return new Promise((resolve, reject) => {
      // allowHalfOpen: a client's FIN must not end our write side before the target's replies are through.
      const server = createServer({ allowHalfOpen: true }, (socket) => this.#accept(socket));
      const onError = (err: Error): void => {
        server.removeListener('listening', onListening);
        reject(err);
      };
      const onListening = (): void => {
        server.removeListener('error', onError);
        // Accept errors (e.g. EMFILE) must not crash the host; the listener keeps accepting.
        server.on('error', () => undefined);
        resolve(server);
      };
      server.once('error', onError);
      server.once('listening', onListening);
      server.listen({ host: HOST, port, exclusive: true });
    });
  }

  /** Listen again on the same port after `refuse`; EADDRINUSE is retried briefly. */
  async #relisten(): Promise<Server> {
    const deadline = performance.now() + RELISTEN_TIMEOUT_MS;
    for (;;) {
      if (this.#closing) throw new Error(`${this.#name}: closed`);
      try {
        return await this.#listenOnce(this.#port);
      } catch (err) {
        if (errnoCode(err) !== 'EADDRINUSE' || performance.now() >= deadline) {
          throw new Error(
            `${this.#name}: cannot listen again on ${this.address}: ${(err as Error).message}` +
              (errnoCode(err) === 'EADDRINUSE' ? ` (still in use after ${RELISTEN_TIMEOUT_MS} ms)` : ''),
            { cause: err },
          );
        }
        await sleep(RELISTEN_INTERVAL_MS);
      }
    }
  }

  /** Stop listening (connect → ECONNREFUSED at once); resolves when the server and its sockets are closed. */
  async #closeListener(): Promise<void> {
    const server = this.#server;
    if (server === undefined) return;
    this.#server = undefined;
    // server.close() stops accepting synchronously; its callback waits for accepted sockets, which callers have
    // already torn down (and strays are RST at accept).
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  async #close(): Promise<void> {
    this.#closing = true;
    // Let a running set() finish (its re-listen loop gives up once #closing is set) so no listener appears later.
    await this.#ops;
    const connections = [...this.#connections];
    const strays = [...this.#strays];
    for (const connection of connections) connection.kill('destroy');
    for (const socket of strays) socket.destroy();
    await Promise.all([
      this.#closeListener(),
      ...connections.map((connection) => connection.closed),
      ...strays.map(whenClosed),
    ]);
    this.#connections.clear();
    this.#strays.clear();
  }
}
