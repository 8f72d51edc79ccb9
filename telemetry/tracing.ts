/**
 * Turns tracing on for this process from TracingSettings (settings.ts): an OpenTelemetry NodeTracerProvider with the
 * configured sampler and an OTLP exporter behind a BatchSpanProcessor, registered as the global provider with the
 * AsyncLocalStorage context manager and the W3C Trace Context propagator. Code that makes spans uses only
 * `@opentelemetry/api`; until this runs (and when it never does: no endpoint), the API is a no-op.
 *
 * The SDK's own standard variables still apply (OTEL_BSP_SCHEDULE_DELAY and the other batch settings,
 * OTEL_EXPORTER_OTLP_HEADERS, OTEL_EXPORTER_OTLP_TIMEOUT, span limits): the exporter and the processor read them.
 */
import type { SpanExporter } from '@opentelemetry/sdk-trace-base';
import type { TracingSettings } from './settings.js';

export interface Tracing {
  /** Sends the spans still queued, within `timeoutMs`; never rejects. */
  flush(timeoutMs?: number): Promise<void>;
  /** Flushes, then stops the exporter (bounded by `timeoutMs`); never rejects. Idempotent. */
  shutdown(timeoutMs?: number): Promise<void>;
}

/** What the server and the workers say about tracing in their start-up line. */
export function describeTracing(settings: TracingSettings | undefined): Record<string, unknown> | 'off' {
  if (!settings) return 'off';
  const { url, protocol, serviceName, sampler, ratio } = settings;
  return {
    url,
    protocol,
    service: serviceName,
    sampler: sampler.endsWith('traceidratio') ? `${sampler} ${ratio}` : sampler,
  };
}

/**
 * Registers the global tracer provider (once per process). The SDK and the exporter are imported here, on
 * demand: a process with tracing off never loads them.
 */
export async function startTracing(
  settings: TracingSettings,
  resourceAttributes: Record<string, string> = {},
): Promise<Tracing> {
  const [{ NodeTracerProvider, BatchSpanProcessor }, { resourceFromAttributes }] = await Promise.all([
    import('@opentelemetry/sdk-trace-node'),
    import('@opentelemetry/resources'),
  ]);
  const provider = new NodeTracerProvider({
    resource: resourceFromAttributes({ ...resourceAttributes, 'service.name': settings.serviceName }),
    sampler: await sampler(settings),
    spanProcessors: [new BatchSpanProcessor(await exporter(settings))],
  });
  provider.register();
  let stopping: Promise<void> | undefined;
  return {
    flush: (timeoutMs = 5_000) => bounded(provider.forceFlush(), timeoutMs),
    shutdown(timeoutMs = 5_000) {
      stopping ??= bounded(provider.shutdown(), timeoutMs);
      return stopping;
    },
  };
}

async function exporter(settings: TracingSettings): Promise<SpanExporter> {
  const url = settings.url;
  switch (settings.protocol) {
    case 'http/json':
      return new (await import('@opentelemetry/exporter-trace-otlp-http')).OTLPTraceExporter({ url });
    case 'http/protobuf':
      return new (await import('@opentelemetry/exporter-trace-otlp-proto')).OTLPTraceExporter({ url });
    case 'grpc':
      return new (await import('@opentelemetry/exporter-trace-otlp-grpc')).OTLPTraceExporter({ url });
  }
}

async function sampler(settings: TracingSettings) {
  const { AlwaysOnSampler, AlwaysOffSampler, TraceIdRatioBasedSampler, ParentBasedSampler } = await import(
    '@opentelemetry/sdk-trace-node'
  );
  const root = {
    always_on: () => new AlwaysOnSampler(),
    always_off: () => new AlwaysOffSampler(),
    traceidratio: () => new TraceIdRatioBasedSampler(settings.ratio),
  };
  const name = settings.sampler;
  if (name.startsWith('parentbased_')) {
    return new ParentBasedSampler({ root: root[name.slice('parentbased_'.length) as keyof typeof root]() });
  }
  return root[name as keyof typeof root]();
}

/** Waits for `work` (its failure ignored: spans that could not be sent are lost, the process goes on), at most
 *  `ms`. */
async function bounded(work: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    work.catch(() => undefined),
    new Promise<void>((resolve) => {
      timer = setTimeout(resolve, ms);
      timer.unref();
    }),
  ]);
  clearTimeout(timer);
}
