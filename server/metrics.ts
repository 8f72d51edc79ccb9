/**
 * Prometheus metrics, served at /metrics on the HTTP port. Every name starts with `redlease_`; the standard
 * process and Node.js metrics (`process_*`, `nodejs_*`) come from prom-client's default collectors.
 *
 * Counters and histograms move as the coordinator reports events (it calls the LockEvents methods) and as the
 * edges finish calls (`rpc`); gauges are read from the coordinator and the engine when Prometheus scrapes, so
 * nothing is counted twice and no timer runs for them.
 */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { Coordinator, HoldEnd, LockEvents, LossKind, NodeStatus, Outcome } from './coordinator/index.js';

/** Seconds; from a fast loopback round trip (0.5 ms) to a long queued wait. */
const LATENCY_BUCKETS = [
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
];

/** Seconds; how long locks are held, from a quick critical section (10 ms) to a lease renewed for an hour. */
const HOLD_BUCKETS = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600];

export type Transport = 'grpc' | 'http';

export class Metrics implements LockEvents {
  readonly registry = new Registry();
  private coordinator: Coordinator | undefined;
  private readonly rpcChildren = new Map<string, { observe(seconds: number): void }>();

  private readonly acquisitions = new Counter({
    name: 'redlease_acquisitions_total',
    help: 'Acquire calls by result: acquired (a grant with a new fencing token), reclaimed (an idempotent re-send got its own lease back), held, unavailable, invalid, limited, cancelled, shutdown, error',
    labelNames: ['result'],
    registers: [this.registry],
  });
  private readonly releases = new Counter({
    name: 'redlease_releases_total',
    help: 'Release calls (and KeepAlive releases) by result: released, not_held, unavailable, invalid, error',
    labelNames: ['result'],
    registers: [this.registry],
  });
  private readonly extensions = new Counter({
    name: 'redlease_extensions_total',
    help: 'Extend calls and KeepAlive renewals by result: extended, not_held, unavailable, invalid, error',
    labelNames: ['result'],
    registers: [this.registry],
  });
  private readonly leasesLost = new Counter({
    name: 'redlease_leases_lost_total',
    help: 'Kept-alive leases the server told their holder were lost, by reason: expired (no renewal in time), renewal_failed (ran out while renewals failed), not_held (a renewal found it gone), taken_over (another lease was granted), hold_cap (it reached its hold cap), mode_switch (a forced mode switch ended it). a release by the lease’s own lock id is not a loss',
    labelNames: ['reason'],
    registers: [this.registry],
  });
  private readonly rpcDuration = new Histogram({
    name: 'redlease_rpc_duration_seconds',
    help: 'Duration of each call, by transport (grpc, http), method (Acquire, Release, Extend, Describe, KeepAlive, Session, GetMode, SetMode, ListNodes, Health…) and status code (gRPC code name)',
    labelNames: ['transport', 'method', 'code'],
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });
  private readonly handoffSeconds = new Histogram({
    name: 'redlease_handoff_seconds',
    help: 'From a release of a resource (through this server or announced by a node) to the grant to its next waiter',
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });
  private readonly waitSeconds = new Histogram({
    name: 'redlease_wait_seconds',
    help: 'Time Acquire calls spent in a wait queue, by outcome (acquired, held = the wait ran out, cancelled, unavailable, shutdown, error)',
    labelNames: ['outcome'],
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });

  private readonly holdSeconds = new Histogram({
    name: 'redlease_hold_seconds',
    help: 'How long leases granted through this server were held, from the grant to their end (released by the holder, lost, or expired without a word), by end',
    labelNames: ['end'],
    buckets: HOLD_BUCKETS,
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry });
    const self = this;
    const restartsSeen = new Map<string, number>();
    new Counter({
      name: 'redlease_node_restarts_total',
      help: 'Restarts of each Redis node (run_id changes) seen since the server started',
      labelNames: ['node'],
      registers: [this.registry],
      collect() {
        for (const node of self.nodes()) {
          const seen = restartsSeen.get(node.name) ?? 0;
          if (node.restarts > seen) this.inc({ node: node.name }, node.restarts - seen);
          restartsSeen.set(node.name, node.restarts);
        }
      },
    });
    const gauge = (name: string, help: string, read: (c: Coordinator) => number): void => {
      new Gauge({
        name,
        help,
        registers: [this.registry],
        collect() {
          if (self.coordinator) this.set(read(self.coordinator));
        },
      });
    };
    gauge(
      'redlease_held_locks',
      'Leases granted through this server that are still within their validity as far as it knows (released, lost and expired ones are not counted)',
      (c) => c.heldCount,
    );
    gauge('redlease_waiters', 'Acquire calls waiting in queues on this server', (c) => c.waiterCount);
    gauge(
      'redlease_keepalive_streams',
      'KeepAlive streams open on this server',
      (c) => c.keepAliveStreamCount,
    );
    gauge(
      'redlease_kept_alive_leases',
      'Leases attached to KeepAlive streams on this server',
      (c) => c.attachedCount,
    );
    gauge('redlease_quorum', 'Voting nodes a grant needs', (c) => c.status().quorum);
    gauge('redlease_quorum_available', '1 while enough nodes are up and voting for a quorum, else 0', (c) =>
      Number(c.status().quorumAvailable),
    );

    const perNode = (name: string, help: string, read: (n: NodeRow) => number): void => {
      new Gauge({
        name,
        help,
        labelNames: ['node', 'address'],
        registers: [this.registry],
        collect() {
          this.reset();
          for (const node of self.nodes()) this.set({ node: node.name, address: node.address }, read(node));
        },
      });
    };
    perNode('redlease_node_up', '1 while the node is connected and answers health checks', (n) =>
      Number(n.up),
    );
    perNode(
      'redlease_node_voting',
      '1 while the node counts toward quorums (up, not quarantined, not refused)',
      (n) => Number(n.voting),
    );
    perNode(
      'redlease_node_quarantined',
      '1 while the node is quarantined after a restart (it may have forgotten locks)',
      (n) => Number(n.quarantined),
    );
    perNode(
      'redlease_node_quarantine_remaining_seconds',
      'Time until a quarantined node votes again',
      (n) => n.quarantineRemainingMs / 1000,
    );
    perNode(
      'redlease_node_latency_seconds',
      "The node's last health-check round trip",
      (n) => n.latencyMs / 1000,
    );
    new Gauge({
      name: 'redlease_mode',
      help: '1 for the current mode (redlock: a majority of nodes; single: node 1 alone)',
      labelNames: ['mode'],
      registers: [this.registry],
      collect() {
        const mode = self.coordinator?.getMode();
        if (mode === undefined) return;
        this.set({ mode: 'redlock' }, Number(mode === 'redlock'));
        this.set({ mode: 'single' }, Number(mode === 'single'));
      },
    });
  }

  /** Gauges read this coordinator at scrape time. */
  bind(coordinator: Coordinator): void {
    this.coordinator = coordinator;
  }

  /** The exposition text and its content type, for GET /metrics. */
  async expose(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }

  /** Every metric family this server exports (histograms without their _bucket/_sum/_count series suffixes). */
  names(): string[] {
    return this.registry.getMetricsAsArray().map((m) => m.name);
  }

  /** One finished call at an edge. */
  rpc(transport: Transport, method: string, code: string, seconds: number): void {
    // One child per label set, found by a string key: prom-client would otherwise hash the label object on every
    // call. The sets are bounded: transports × method names × status codes.
    const key = `${transport}|${method}|${code}`;
    let child = this.rpcChildren.get(key);
    if (!child) {
      child = this.rpcDuration.labels(transport, method, code);
      this.rpcChildren.set(key, child);
    }
    child.observe(seconds);
  }

  acquire(outcome: Outcome): void {
    this.acquisitions.inc({ result: outcome });
  }

  release(outcome: Outcome): void {
    this.releases.inc({ result: outcome });
  }

  extend(outcome: Outcome): void {
    this.extensions.inc({ result: outcome });
  }

  waited(outcome: Outcome, waitedMs: number): void {
    this.waitSeconds.observe({ outcome }, waitedMs / 1000);
  }

  handoff(ms: number): void {
    this.handoffSeconds.observe(ms / 1000);
  }

  lost(kind: LossKind): void {
    this.leasesLost.inc({ reason: kind });
  }

  held(ms: number, end: HoldEnd): void {
    this.holdSeconds.observe({ end }, Math.max(0, ms) / 1000);
  }

  private nodes(): NodeRow[] {
    return this.coordinator?.status().nodes ?? [];
  }
}

type NodeRow = NodeStatus;
