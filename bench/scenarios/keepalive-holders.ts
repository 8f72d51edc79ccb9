/**
 * The lease holders of the keepalive scenario, run by bench/scenarios/keepalive.ts as a process of its own so
 * that holding and renewing 10 000 leases never competes with the harness's sampling (and so its CPU use shows
 * apart from the server's). Configuration: one JSON argument (HolderConfig). Output: one JSON object per line
 * on stdout (HolderEvent). Exits by itself when done, and within a bounded time in any case.
 */
import { LockClient } from '../../client/src/index.js';
import type { Lease } from '../../client/src/lease.js';
import { OWN_CONNECTION } from '../peers/redlease.js';
import { Samples } from '../samples.js';

export interface HolderConfig {
  address: string;
  /** LockClients, each with its own connection and so its own KeepAlive stream. */
  streams: number;
  leases: number;
  ttlMs: number;
  /** Acquisitions are spread evenly over this long, so renewals (every ttl/3) come evenly, not in bursts. */
  rampMs: number;
  /** How long every lease is then kept alive. */
  seconds: number;
  resourcePrefix: string;
}

export interface HolderSummary {
  acquired: number;
  acquireFailures: number;
  firstAcquireError?: string;
  acquireSeconds: number;
  renewals: number;
  renewalFailures: number;
  streamErrors: number;
  /** Leases lost (server said LOST, or the deadline passed without a renewal): all spurious here. */
  losses: number;
  lossReasons: Record<string, number>;
  /** Renewal round trip: send → answer (validity answered − time left on the deadline when it arrived). */
  renewalRttP50Ms: number;
  renewalRttP99Ms: number;
  renewalRttMaxMs: number;
  /** How late each renewal answer came vs one renewal interval after the previous one (timer delay + rtt jitter). */
  renewalLagP50Ms: number;
  renewalLagP99Ms: number;
  renewalLagMaxMs: number;
  heldAtEnd: number;
}

export type HolderEvent =
  | { event: 'acquiring'; acquired: number; total: number }
  | { event: 'ready'; acquired: number; failed: number; renewals: number }
  | { event: 'tick'; held: number; renewals: number; losses: number }
  | ({ event: 'summary' } & HolderSummary);

/** Acquire calls in flight at once during the ramp. */
const MAX_IN_FLIGHT = 256;
/** A safety net: never outlive the planned duration by more than this. */
const OVERRUN_MS = 120_000;

function emit(event: HolderEvent): void {
  process.stdout.write(`${JSON.stringify(event)}\n`);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function main(config: HolderConfig): Promise<void> {
  setTimeout(
    () => {
      process.stderr.write('keepalive holders: overran the planned duration; exiting\n');
      process.exit(3);
    },
    config.rampMs + config.seconds * 1_000 + OVERRUN_MS,
  ).unref();

  const clients = Array.from(
    { length: config.streams },
    (_, i) =>
      new LockClient({
        address: config.address,
        ttlMs: config.ttlMs,
        clientId: `bench-keepalive-${i}`,
        transport: 'session', // the SDK's default, named: the report labels this system redlease-session
        channelOptions: OWN_CONNECTION,
      }),
  );
  const rtt = new Samples();
  const lag = new Samples();
  const lastRenewal = new Map<Lease, number>();
  const lossReasons: Record<string, number> = {};
  let renewals = 0;
  let renewalFailures = 0;
  let streamErrors = 0;
  let losses = 0;
  for (const client of clients) {
    client.on('renewed', (lease, validityMs) => {
      const now = performance.now();
      renewals++;
      rtt.push(validityMs - lease.remainingMs);
      const last = lastRenewal.get(lease);
      if (last !== undefined) lag.push(now - last - lease.renewIntervalMs);
      lastRenewal.set(lease, now);
    });
    client.on('renewalFailed', () => renewalFailures++);
    client.on('streamError', () => streamErrors++);
    client.on('lost', (_lease, error) => {
      losses++;
      // Without the resource and token, so equal reasons add up.
      const reason = `${error.kind}: ${error.message.replace(/"[^"]*"/g, '"…"').replace(/token \d+/g, 'token …')}`;
      lossReasons[reason] = (lossReasons[reason] ?? 0) + 1;
    });
  }

  // The ramp: lease j is acquired at j × rampMs / leases, on client j mod streams.
  const leases: Lease[] = [];
  let acquireFailures = 0;
  let firstAcquireError: string | undefined;
  const inFlight = new Set<Promise<void>>();
  const started = performance.now();
  for (let j = 0; j < config.leases; j++) {
    const due = started + (j * config.rampMs) / config.leases;
    const ahead = due - performance.now();
    if (ahead > 2) await sleep(ahead);
    while (inFlight.size >= MAX_IN_FLIGHT) await Promise.race(inFlight);
    const client = clients[j % config.streams]!;
    const acquiring = client
      .acquire(`${config.resourcePrefix}-${j}`)
      .then(
        (lease) => {
          leases.push(lease);
          lastRenewal.set(lease, performance.now());
        },
        (error: unknown) => {
          acquireFailures++;
          firstAcquireError ??= String(error);
        },
      )
      .finally(() => inFlight.delete(acquiring));
    inFlight.add(acquiring);
    if (j % 1_000 === 999) emit({ event: 'acquiring', acquired: leases.length, total: config.leases });
  }
  await Promise.all(inFlight);
  const acquireSeconds = (performance.now() - started) / 1_000;
  emit({ event: 'ready', acquired: leases.length, failed: acquireFailures, renewals });

  // Renewals during the ramp count too (they are real renewals of leases already held); losses at any time.
  const end = performance.now() + config.seconds * 1_000;
  while (performance.now() < end) {
    await sleep(Math.min(1_000, end - performance.now()));
    const held = clients.reduce((n, c) => n + c.heldLeases, 0);
    emit({ event: 'tick', held, renewals, losses });
  }
  const heldAtEnd = leases.filter((lease) => lease.isHeld()).length;
  const summary: HolderSummary = {
    acquired: leases.length,
    acquireFailures,
    ...(firstAcquireError !== undefined && { firstAcquireError }),
    acquireSeconds,
    renewals,
    renewalFailures,
    streamErrors,
    losses,
    lossReasons,
    renewalRttP50Ms: rtt.percentile(50),
    renewalRttP99Ms: rtt.percentile(99),
    renewalRttMaxMs: rtt.max,
    renewalLagP50Ms: lag.percentile(50),
    renewalLagP99Ms: lag.percentile(99),
    renewalLagMaxMs: lag.max,
    heldAtEnd,
  };
  emit({ event: 'summary', ...summary });
  await Promise.all(clients.map((client) => client.close()));
}

const config = JSON.parse(process.argv[2] ?? '{}') as HolderConfig;
main(config).then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`keepalive holders failed: ${String(error)}\n`);
    process.exit(1);
  },
);
