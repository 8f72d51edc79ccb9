/**
 * What the bench starts and stops: 3 Redis nodes (free ports), the redlease server as a separate process, the
 * grpc-js echo server, and etcd with --peers — and the lock systems that use them. Everything started is
 * stopped by dispose(), also when starting fails half way; children also die with this process (SIGKILL by
 * the kernel, see parent-death-signal.ts) if it is killed outright.
 */
import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { propagation, type TracerProvider } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { AlwaysOnSampler, BatchSpanProcessor, NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import { ChannelCredentials, createChannel, createClient } from 'nice-grpc';
import { HealthCheckResponse_ServingStatus, HealthDefinition } from '../gen/grpc/health/v1/health.js';
import { buildServer } from '../scripts/lib/build-server.js';
import { freeFixedPort } from '../scripts/lib/free-port.js';
import { NodeProcess } from '../scripts/lib/node-process.js';
import { OtlpReceiver } from '../scripts/lib/otlp-receiver.js';
import { RedisCluster } from '../scripts/lib/redis-process.js';
import { ServerProcess } from '../scripts/lib/server-process.js';
import { waitFor } from '../scripts/lib/wait.js';
import type { LockSystem } from './lock-system.js';
import type { BenchOptions } from './options.js';
import { EchoStreamSystem, EchoSystem } from './peers/echo/echo-system.js';
import { EtcdProcess, ensureEtcd } from './peers/etcd/etcd-process.js';
import { EtcdSystem } from './peers/etcd/etcd-system.js';
import { NodeRedlockSystem } from './peers/node-redlock.js';
import { RedleaseSystem } from './peers/redlease.js';
import { RedleaseSdkSystem } from './peers/redlease-sdk.js';
import { CpuMeter } from './proc-usage.js';
import type { Progress } from './progress.js';

const READY_TIMEOUT_MS = 30_000;
/** etcd leases outlive the client that granted them by this much (they are revoked when it closes). */
const ETCD_LEASE_MARGIN_S = 60;

export class BenchEnvironment {
  cluster: RedisCluster | undefined;
  server: ServerProcess | undefined;
  serverAddress = '';
  echo: NodeProcess | undefined;
  echoAddress = '';
  etcd: EtcdProcess | undefined;
  etcdPath = '';
  /** redlease-traced: a second server with tracing on, the receiver both ends export to, the clients' provider. */
  tracedServer: ServerProcess | undefined;
  tracedAddress = '';
  receiver: OtlpReceiver | undefined;
  private tracerProvider: NodeTracerProvider | undefined;

  /** The server's entry point: compiled JavaScript (--server-build compiled) or TypeScript run under tsx. */
  private serverEntry = 'server/main.ts';

  private constructor(private readonly options: BenchOptions) {}

  static async start(options: BenchOptions, progress: Progress): Promise<BenchEnvironment> {
    const env = new BenchEnvironment(options);
    try {
      if (options.serverBuild === 'compiled') {
        progress.step('compiling the server (npm run build, into dist/)');
        env.serverEntry = await buildServer();
      }
      progress.step('starting 3 Redis nodes');
      env.cluster = await RedisCluster.start(3, { parentDeathSignal: 'SIGKILL' });
      progress.step(
        `starting the redlease server ${env.serverEntry} (--log-level ${options.serverLogLevel})`,
      );
      ({ server: env.server, address: env.serverAddress } = await env.startServer({}));
      if (options.systems.includes('redlease-traced')) {
        progress.step('starting the traced redlease server and its OTLP receiver');
        await env.startTraced();
      }
      if (options.systems.some((s) => s === 'grpc-echo' || s === 'grpc-echo-stream')) {
        progress.step('starting the grpc-js echo server');
        await env.startEcho();
      }
      if (options.systems.includes('etcd')) {
        progress.step('starting etcd');
        env.etcdPath = await ensureEtcd((line) => progress.log(`  ${line}`));
        env.etcd = await EtcdProcess.start(env.etcdPath, options.etcdDataDir);
      }
    } catch (error) {
      await env.dispose();
      throw error;
    }
    return env;
  }

  /** The lock systems to measure, in the order of --systems. */
  systems(): LockSystem[] {
    const o = this.options;
    const nodes = this.cluster?.nodes.map((n) => ({ host: n.host, port: n.port })) ?? [];
    // An etcd lease must outlive the longest client: a whole run, its warmup, and its last wait.
    const etcdLeaseTtlS =
      Math.ceil(o.warmupSeconds + o.seconds + o.waitMs / 1_000 + o.ttlMs / 1_000) + ETCD_LEASE_MARGIN_S;
    const all: Record<string, () => LockSystem | undefined> = {
      redlease: () => new RedleaseSystem(this.serverAddress, o.ttlMs),
      'redlease-sdk': () => new RedleaseSdkSystem(this.serverAddress, o.ttlMs),
      'redlease-session': () => new RedleaseSdkSystem(this.serverAddress, o.ttlMs, 'session'),
      'redlease-traced': () =>
        this.tracerProvider
          ? new RedleaseSdkSystem(
              this.tracedAddress,
              o.ttlMs,
              'session',
              this.tracerProvider as TracerProvider,
            )
          : undefined,
      'node-redlock': () =>
        new NodeRedlockSystem({
          nodes,
          ttlMs: o.ttlMs,
          retryDelayMs: o.redlockRetryDelayMs,
          retryJitterMs: o.redlockRetryJitterMs,
        }),
      etcd: () => (this.etcd ? new EtcdSystem(this.etcd.address, etcdLeaseTtlS) : undefined),
      'grpc-echo': () => (this.echoAddress ? new EchoSystem(this.echoAddress) : undefined),
      'grpc-echo-stream': () => (this.echoAddress ? new EchoStreamSystem(this.echoAddress) : undefined),
    };
    return o.systems.map((name) => all[name]?.()).filter((s): s is LockSystem => s !== undefined);
  }

  /** A CPU meter of every process involved, by group: server, redis, etcd, echo, bench (this process). */
  cpuMeter(): CpuMeter {
    return new CpuMeter({
      server: [this.server?.child.pid],
      'traced-server': [this.tracedServer?.child.pid],
      redis: this.cluster?.nodes.map((n) => n.pid) ?? [],
      etcd: [this.etcd?.pid],
      echo: [this.echo?.child.pid],
      bench: [process.pid],
    });
  }

  /** Stops everything (the server gracefully, so a --server-cpu-prof profile is written). Idempotent. */
  async dispose(): Promise<void> {
    const server = this.server;
    const traced = this.tracedServer;
    const echo = this.echo;
    const etcd = this.etcd;
    const cluster = this.cluster;
    this.server = this.tracedServer = this.echo = this.etcd = this.cluster = undefined;
    await Promise.allSettled([
      server?.stop('SIGTERM', 15_000),
      traced?.stop('SIGTERM', 15_000),
      echo?.stop('SIGTERM', 5_000),
      etcd?.stop(),
      this.tracerProvider?.shutdown(),
    ]);
    await this.receiver?.close();
    await cluster?.dispose();
  }

  /**
   * redlease-traced: an OTLP receiver in this process (it takes http/protobuf bodies and drops them: the cost
   * measured is making and sending spans), a second server exporting to it with sampler always_on, and a tracer
   * provider for the clients that exports to it the same way (not registered globally, so the other systems'
   * clients stay untraced; the W3C propagator is, as an application would set it, and it only injects for them).
   */
  private async startTraced(): Promise<void> {
    this.receiver = await OtlpReceiver.start();
    const url = `${this.receiver.endpoint}/v1/traces`;
    this.tracerProvider = new NodeTracerProvider({
      sampler: new AlwaysOnSampler(),
      spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter({ url }))],
    });
    propagation.setGlobalPropagator(new W3CTraceContextPropagator());
    ({ server: this.tracedServer, address: this.tracedAddress } = await this.startServer({
      OTEL_EXPORTER_OTLP_ENDPOINT: this.receiver.endpoint,
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf',
      OTEL_TRACES_SAMPLER: 'always_on',
    }));
  }

  /** A redlease server on the cluster with `env` added to this process's, ready (SERVING) when this resolves. */
  private async startServer(
    extraEnv: NodeJS.ProcessEnv,
  ): Promise<{ server: ServerProcess; address: string }> {
    const o = this.options;
    // Below --log-level info the server writes no 'listening' line to read a port 0 from, so its ports are chosen
    // here: below the ephemeral range, where no outgoing connection (the bench's own, by the thousand) can take
    // them between this choice and the server's bind.
    const grpcPort = await freeFixedPort();
    const httpPort = await freeFixedPort();
    const env: NodeJS.ProcessEnv = { ...extraEnv };
    if (o.serverCpuProf !== undefined && extraEnv.OTEL_EXPORTER_OTLP_ENDPOINT === undefined) {
      const dir = resolve(o.serverCpuProf);
      mkdirSync(dir, { recursive: true });
      // Node 20 refuses --cpu-prof in NODE_OPTIONS: a preloaded module runs the profiler instead.
      const preload = fileURLToPath(new URL('./server-cpu-profile.mjs', import.meta.url));
      env.NODE_OPTIONS = `${process.env.NODE_OPTIONS ?? ''} --import ${preload}`.trim();
      env.REDLEASE_BENCH_CPU_PROF_DIR = dir;
    }
    const args = [
      '--nodes',
      this.cluster?.addresses.join(',') ?? '',
      '--grpc-listen',
      `127.0.0.1:${grpcPort}`,
      '--http-listen',
      `127.0.0.1:${httpPort}`,
      '--log-level',
      o.serverLogLevel,
    ];
    const server = ServerProcess.spawn(args, env, {
      parentDeathSignal: 'SIGKILL',
      keepLines: 200,
      entry: this.serverEntry,
    });
    const address = `127.0.0.1:${grpcPort}`;
    // Ready = the standard health check says SERVING (quorum reachable). Its 'listening' log line is not
    // there to wait for below --log-level info.
    const channel = createChannel(address, ChannelCredentials.createInsecure());
    const health = createClient(HealthDefinition, channel);
    try {
      await waitFor(
        'the redlease server to serve',
        async () => {
          if (!server.running) throw new Error(`the redlease server exited:\n${server.dump()}`);
          const answer = await health
            .check({ service: '' }, { signal: AbortSignal.timeout(1_000) })
            .catch(() => undefined);
          return answer?.status === HealthCheckResponse_ServingStatus.SERVING;
        },
        READY_TIMEOUT_MS,
        50,
      );
    } catch (error) {
      await server.stop('SIGKILL', 5_000).catch(() => undefined);
      throw error;
    } finally {
      channel.close();
    }
    if (['info', 'debug', 'trace'].includes(o.serverLogLevel)) {
      // One JSON line per lock event: read and dropped here, not parsed (parsing would cost this process CPU
      // that the clients need). The server still formats and writes every line, which is what is measured.
      server.child.stdout?.removeAllListeners('data');
      server.child.stdout?.on('data', () => undefined);
    }
    return { server, address };
  }

  private async startEcho(): Promise<void> {
    const echo = NodeProcess.launch('bench/peers/echo/echo-server.ts', [], process.env, {
      parentDeathSignal: 'SIGKILL',
    });
    this.echo = echo;
    const listening = await waitFor(
      'the echo server to listen',
      () => {
        if (!echo.running) throw new Error(`the echo server exited:\n${echo.dump()}`);
        return echo.logs.find((line) => line.event === 'listening');
      },
      READY_TIMEOUT_MS,
      20,
    );
    this.echoAddress = `127.0.0.1:${String(listening.port)}`;
  }
}
