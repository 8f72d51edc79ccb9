import { createServer, type Server } from 'nice-grpc';
import type { Logger } from 'pino';
import { HealthDefinition } from '../gen/grpc/health/v1/health.js';
import { ServerReflectionDefinition as ReflectionV1Definition } from '../gen/grpc/reflection/v1/reflection.js';
import { ServerReflectionDefinition as ReflectionV1alphaDefinition } from '../gen/grpc/reflection/v1alpha/reflection.js';
import { AdminServiceDefinition } from '../gen/redlease/v1/admin.js';
import { LockServiceDefinition } from '../gen/redlease/v1/lock.js';
import { describeTracing } from '../telemetry/tracing.js';
import { hostPort, type ServerConfig } from './config.js';
import { Coordinator } from './coordinator/coordinator.js';
import { AdminNetworks, Authenticator } from './edge/auth.js';
import { adminService } from './grpc/admin-service.js';
import { authentication } from './grpc/authentication.js';
import { callMetrics } from './grpc/call-metrics.js';
import { serverCredentials } from './grpc/credentials.js';
import { ServerHealth } from './grpc/health-service.js';
import { lockService } from './grpc/lock-service.js';
import {
  loadDescriptorSet,
  ReflectionV1,
  ReflectionV1alpha,
  reflectionService,
} from './grpc/reflection-service.js';
import { grpcServerOptions } from './grpc/server-options.js';
import { errorMapping } from './grpc/status.js';
import { serverSpans } from './grpc/tracing.js';
import { type RunningHttpServer, startHttpServer } from './http/http-server.js';
import { Metrics } from './metrics.js';
import { Redlock } from './redlock/index.js';
import { parseAddress } from './redlock/options.js';

/** A running redlease server: what main.ts and tests need to reach and stop it. */
export interface RunningServer {
  readonly grpcPort: number;
  /** The lab JSON API and /metrics. */
  readonly httpPort: number;
  readonly engine: Redlock;
  readonly metrics: Metrics;
  readonly coordinator: Coordinator;
  readonly health: ServerHealth;
  /** Graceful shutdown (idempotent): see `close` in startServer. */
  close(): Promise<void>;
}

/** Every service served, and so listed by reflection. */
const SERVICES = [
  LockServiceDefinition,
  AdminServiceDefinition,
  HealthDefinition,
  ReflectionV1Definition,
  ReflectionV1alphaDefinition,
] as const;
const SERVICE_NAMES = SERVICES.map((d) => d.fullName);
/** Health is reported for the whole server ('') and per service; AdminService answers without a quorum. */
const QUORUM_SERVICES = ['', LockServiceDefinition.fullName];

/** Connects to the Redis nodes, starts the gRPC server, and wires health to the quorum. */
export async function startServer(config: ServerConfig, log: Logger): Promise<RunningServer> {
  const engine = new Redlock({
    nodes: config.nodes.map((address, i) => ({
      ...parseAddress(address, i),
      username: config.redisUsername,
      password: config.redisPassword,
    })),
    mode: config.mode,
    defaultTtlMs: config.defaultTtlMs,
    minTtlMs: config.minTtlMs,
    maxTtlMs: config.maxTtlMs,
    nodeTimeoutMs: config.nodeTimeoutMs,
    connectTimeoutMs: config.connectTimeoutMs,
    healthIntervalMs: config.healthIntervalMs,
    retryCount: config.retryCount,
    retryDelayMs: config.retryDelayMs,
    retryJitterMs: config.retryJitterMs,
    keyPrefix: config.keyPrefix,
    logger: log.child({ component: 'engine' }),
  });
  const metrics = new Metrics();
  const coordinator = new Coordinator(
    engine,
    {
      maxWaitMs: config.maxWaitMs,
      maxHoldMs: config.maxHoldMs,
      maxWaitersPerResource: config.maxWaitersPerResource,
      maxWaiters: config.maxWaiters,
      maxStreams: config.maxStreams,
      maxLeasesPerStream: config.maxLeasesPerStream,
      waitFallbackMs: config.waitFallbackMs,
      streamIdleMs: config.streamIdleMs,
    },
    log.child({ component: 'locks' }),
    metrics,
  );
  metrics.bind(coordinator);
  // One set of access rules for both edges.
  const authenticator = new Authenticator({
    adminToken: config.adminToken,
    adminNetworks: new AdminNetworks(config.adminNetworks),
    clientTokens: config.clientTokens,
  });

  const health = new ServerHealth();
  for (const name of SERVICE_NAMES) health.set(name, 'healthy');
  const updateHealth = (): void => {
    if (coordinator.shuttingDown) return;
    const quorum = engine.status().quorumAvailable;
    for (const name of QUORUM_SERVICES) health.set(name, quorum ? 'healthy' : 'unhealthy');
  };
  updateHealth();
  engine.on('change', updateHealth);

  // use() returns a new server with the middleware: add services to, listen on and shut down that one.
  // Tracing on: a span per call, outside the error mapping (it records the status the caller gets).
  const traced = config.tracing !== undefined;
  const measured = createServer(grpcServerOptions(config)).use(callMetrics(metrics));
  const server: Server = (traced ? measured.use(serverSpans()) : measured)
    .use(errorMapping(log.child({ component: 'grpc' })))
    .use(authentication(authenticator));
  server.add(LockServiceDefinition, lockService(coordinator, log.child({ component: 'grpc' }), traced));
  server.add(AdminServiceDefinition, adminService(coordinator));
  server.add(HealthDefinition, health.service());
  const reflection = reflectionService(loadDescriptorSet(), SERVICE_NAMES);
  server.add(ReflectionV1, reflection);
  server.add(ReflectionV1alpha, reflection);

  let grpcPort: number;
  let http: RunningHttpServer;
  try {
    grpcPort = await server.listen(hostPort(config.grpcHost, config.grpcPort), serverCredentials(config.tls));
    http = await startHttpServer({
      host: config.httpHost,
      port: config.httpPort,
      ...(config.tls && { tls: config.tls }),
      coordinator,
      metrics,
      authenticator,
      maxBodyBytes: config.maxMessageBytes,
      log: log.child({ component: 'http' }),
      traced,
    });
  } catch (error) {
    server.forceShutdown();
    coordinator.shutdown();
    await engine.close();
    throw error;
  }
  const [status] = await Promise.all([engine.ready(), coordinator.ready(config.connectTimeoutMs + 1_000)]);
  log.info(
    {
      grpc: hostPort(config.grpcHost, grpcPort),
      http: hostPort(config.httpHost, http.port),
      mode: status.mode,
      nodes: status.nodes.map((n) => ({ name: n.name, address: n.address, up: n.up, voting: n.voting })),
      quorum_available: status.quorumAvailable,
      tls: config.tls !== undefined,
      tracing: describeTracing(config.tracing),
    },
    'redlease listening',
  );
  if (!status.quorumAvailable) {
    log.warn(
      { nodes: status.nodes.map((n) => ({ name: n.name, address: n.address, error: n.error })) },
      `no quorum yet: ${status.nodes.filter((n) => n.voting && n.up).length}/${status.nodes.length} Redis nodes voting, ${status.quorum} needed; Acquire answers UNAVAILABLE until enough nodes are reachable`,
    );
  }

  let closing: Promise<void> | undefined;
  /**
   * Stop accepting calls, say NOT_SERVING, fail waiters and KeepAlive streams with UNAVAILABLE (no lease is
   * released: they run out their validity), let calls under way finish for up to shutdownGraceMs, then cancel
   * the rest and close the Redis connections.
   */
  const close = (): Promise<void> => {
    closing ??= (async () => {
      engine.off('change', updateHealth);
      coordinator.shutdown();
      health.shutdown();
      let timer: NodeJS.Timeout | undefined;
      const grace = new Promise<'timeout'>((resolve) => {
        timer = setTimeout(() => resolve('timeout'), config.shutdownGraceMs);
      });
      const outcome = await Promise.race([
        Promise.all([server.shutdown(), http.close(config.shutdownGraceMs)]).then(() => 'done' as const),
        grace,
      ]);
      clearTimeout(timer);
      if (outcome === 'timeout') {
        log.warn(
          { grace_ms: config.shutdownGraceMs },
          'calls still running after the grace period: cancelling them',
        );
        server.forceShutdown();
      }
      await engine.close();
      log.info('redlease stopped');
    })();
    return closing;
  };

  return { grpcPort, httpPort: http.port, engine, metrics, coordinator, health, close };
}
