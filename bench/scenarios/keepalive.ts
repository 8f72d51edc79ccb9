/**
 * keepalive: `leases` leases held through the SDK by `streams` LockClients (so `streams` KeepAlive streams, one
 * connection each), renewed every ttl/3 for `seconds`, while nobody else touches those resources — so every loss
 * is spurious. The holders run in a child process of their own (keepalive-holders.ts): renewing 10 000 leases
 * must not compete with this process, and their CPU shows apart from the server's. Every second this samples
 * the server's RSS (VmRSS) and CPU (utime + stime), and the holders' and Redis nodes' CPU.
 */
import { NodeProcess } from '../../scripts/lib/node-process.js';
import { cpuSeconds, machineBusySeconds, rssBytes } from '../proc-usage.js';
import { spread } from '../stats.js';
import type { HolderConfig, HolderEvent, HolderSummary } from './keepalive-holders.js';
import { errorText, type RunContext } from './run-context.js';

export interface KeepaliveOptions {
  streams: number;
  leases: number;
  ttlMs: number;
  seconds: number;
}

export interface KeepaliveTarget {
  address: string;
  serverPid: number | undefined;
  redisPids: readonly (number | undefined)[];
}

export interface KeepaliveResult extends HolderSummary {
  streams: number;
  leases: number;
  ttlMs: number;
  seconds: number;
  renewalsPerSecond: number;
  /** Server RSS before the holders connected, its largest sample while they held leases, growth per lease. */
  serverRssBeforeMiB: number;
  serverRssMaxMiB: number;
  serverRssPerLeaseKiB: number;
  /**
   * Largest RSS while the holders closed: every LockClient releases its leases at once, so the server takes
   * `leases` Release calls together. Not part of keeping leases alive; shown apart.
   */
  serverRssTeardownMaxMiB: number;
  /** Server CPU in cores over the measured seconds: mean, and the busiest 1 s sample. */
  serverCpuMeanCores: number;
  serverCpuMaxCores: number;
  holdersCpuMeanCores: number;
  holdersCpuMaxCores: number;
  redisCpuMeanCores: number;
  /** Every process on the machine (others' included): near the core count means the box was saturated. */
  machineCpuMeanCores: number;
  machineCpuMaxCores: number;
}

const MIB = 1024 * 1024;
const SAMPLE_MS = 1_000;

export async function runKeepalive(
  target: KeepaliveTarget,
  options: KeepaliveOptions,
  context: RunContext,
): Promise<KeepaliveResult> {
  const config: HolderConfig = {
    address: target.address,
    streams: options.streams,
    leases: options.leases,
    ttlMs: options.ttlMs,
    // One ttl = three renewal intervals: lease j's renewals then fall at phase (j × ttl / leases) mod interval,
    // evenly spread, and the acquisitions come at a third of the steady renewal rate, so the ramp itself does
    // not overload the server.
    rampMs: options.ttlMs,
    seconds: options.seconds,
    resourcePrefix: context.resourcePrefix,
  };
  const rssBefore = rssBytes(target.serverPid);
  let summary: HolderSummary | undefined;
  let ready = false;
  let renewalsAtReady = 0;
  let line = '';
  const holders = NodeProcess.launch(
    'bench/scenarios/keepalive-holders.ts',
    [JSON.stringify(config)],
    process.env,
    {
      parentDeathSignal: 'SIGKILL',
      keepLines: 100,
      onLine: (text, stream) => {
        if (stream !== 'stdout') return;
        const event = JSON.parse(text) as HolderEvent;
        if (event.event === 'acquiring') line = `acquiring ${event.acquired}/${event.total}`;
        if (event.event === 'ready') {
          ready = true;
          renewalsAtReady = event.renewals;
          line = `${event.acquired} leases held`;
        }
        if (event.event === 'tick')
          line = `${event.held} held · ${event.renewals} renewals · ${event.losses} lost`;
        if (event.event === 'summary') {
          const { event: _, ...rest } = event;
          summary = rest;
        }
      },
    },
  );
  const stopOnAbort = (): void => void holders.stop('SIGKILL');
  context.signal.addEventListener('abort', stopOnAbort, { once: true });

  const rss: number[] = [];
  /** After the summary: the holders' close() releases every lease at once. */
  const teardownRss: number[] = [];
  const serverCpu: number[] = [];
  const holdersCpu: number[] = [];
  const redisCpu: number[] = [];
  const machineCpu: number[] = [];
  const redisSeconds = (): number => target.redisPids.reduce((sum: number, pid) => sum + cpuSeconds(pid), 0);
  let last = {
    at: performance.now(),
    server: cpuSeconds(target.serverPid),
    holders: cpuSeconds(holders.child.pid),
    redis: redisSeconds(),
    machine: machineBusySeconds(),
  };
  const sampler = setInterval(() => {
    const now = {
      at: performance.now(),
      server: cpuSeconds(target.serverPid),
      holders: cpuSeconds(holders.child.pid),
      redis: redisSeconds(),
      machine: machineBusySeconds(),
    };
    const seconds = (now.at - last.at) / 1_000;
    (summary === undefined ? rss : teardownRss).push(rssBytes(target.serverPid));
    // CPU counts only once every lease is held (the ramp's acquisitions are not what is measured).
    if (ready && summary === undefined) {
      serverCpu.push((now.server - last.server) / seconds);
      holdersCpu.push((now.holders - last.holders) / seconds);
      redisCpu.push((now.redis - last.redis) / seconds);
      machineCpu.push((now.machine - last.machine) / seconds);
    }
    last = now;
    const latest = (summary === undefined ? rss : teardownRss).at(-1) ?? Number.NaN;
    context.progress.update(`${context.label}: ${line} · server ${Math.round(latest / MIB)} MiB`);
  }, SAMPLE_MS);

  try {
    const exit = await holders.finish(config.rampMs + options.seconds * 1_000 + 180_000);
    if (summary === undefined) {
      throw new Error(
        `the keepalive holders exited (${JSON.stringify(exit)}) without a summary:\n${holders.output.join('')}`,
      );
    }
  } catch (error) {
    throw new Error(`keepalive: ${errorText(error)}`);
  } finally {
    clearInterval(sampler);
    context.signal.removeEventListener('abort', stopOnAbort);
  }
  const result: HolderSummary = summary;
  const mean = (values: number[]): number => values.reduce((a, b) => a + b, 0) / values.length;
  const rssMax = Math.max(...rss);
  return {
    ...result,
    streams: options.streams,
    leases: options.leases,
    ttlMs: options.ttlMs,
    seconds: options.seconds,
    renewalsPerSecond: (result.renewals - renewalsAtReady) / options.seconds,
    serverRssBeforeMiB: rssBefore / MIB,
    serverRssMaxMiB: rssMax / MIB,
    serverRssPerLeaseKiB: (rssMax - rssBefore) / 1024 / Math.max(1, result.acquired),
    serverRssTeardownMaxMiB: teardownRss.length > 0 ? Math.max(...teardownRss) / MIB : Number.NaN,
    serverCpuMeanCores: mean(serverCpu),
    serverCpuMaxCores: spread(serverCpu).max,
    holdersCpuMeanCores: mean(holdersCpu),
    holdersCpuMaxCores: spread(holdersCpu).max,
    redisCpuMeanCores: mean(redisCpu),
    machineCpuMeanCores: mean(machineCpu),
    machineCpuMaxCores: spread(machineCpu).max,
  };
}
