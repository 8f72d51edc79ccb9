/**
 * Tracing settings from OpenTelemetry's standard environment variables, shared by the server (server/config.ts)
 * and the demo workers (workers/options.ts), which each read their environment in one place and pass the values
 * here. Nothing here reads process.env, logs or exits: a value that cannot work is an OtelSettingError naming the
 * variable.
 *
 * Tracing is on only when an OTLP endpoint is given (OTEL_EXPORTER_OTLP_ENDPOINT or
 * OTEL_EXPORTER_OTLP_TRACES_ENDPOINT). Without one nothing is set up: the OpenTelemetry API stays a no-op.
 */

export const PROTOCOLS = ['http/protobuf', 'http/json', 'grpc'] as const;
export type OtlpProtocol = (typeof PROTOCOLS)[number];

/** The samplers of the specification that the OpenTelemetry JS SDK builds in. */
export const SAMPLERS = [
  'parentbased_always_on',
  'parentbased_always_off',
  'parentbased_traceidratio',
  'always_on',
  'always_off',
  'traceidratio',
] as const;
export type SamplerName = (typeof SAMPLERS)[number];

/** Tracing as configured: where spans go, how, under which service name, and which are kept. */
export interface TracingSettings {
  /** Where spans are sent: for HTTP the full URL of the traces path (…/v1/traces), for gRPC the collector's URL. */
  url: string;
  protocol: OtlpProtocol;
  /** service.name of every span of this process. */
  serviceName: string;
  sampler: SamplerName;
  /** The ratio of the *traceidratio samplers, in [0, 1]. */
  ratio: number;
}

export interface OtelVariable {
  name: `OTEL_${string}`;
  /** As --help and the docs show it; undefined: none. */
  default?: string;
  choices?: readonly string[];
  /** One line, for --help and the docs. */
  description: string;
}

/** A variable whose value cannot work. `problem` reads after the variable's name. */
export class OtelSettingError extends Error {
  override readonly name = 'OtelSettingError';

  constructor(
    readonly variable: string,
    readonly problem: string,
  ) {
    super(`${variable}: ${problem}`);
  }
}

const DEFAULT_PROTOCOL: OtlpProtocol = 'http/protobuf';
const DEFAULT_SAMPLER: SamplerName = 'parentbased_always_on';

/** The variables read, in the order --help lists them. `serviceName` is the program's own default. */
export function otelVariables(serviceName: string): OtelVariable[] {
  return [
    {
      name: 'OTEL_EXPORTER_OTLP_ENDPOINT',
      description:
        'OTLP collector base URL (http://host:4318 for HTTP, http://host:4317 for gRPC); unset: tracing is off',
    },
    {
      name: 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT',
      description: 'full URL spans are sent to, used as it is (beats OTEL_EXPORTER_OTLP_ENDPOINT)',
    },
    {
      name: 'OTEL_EXPORTER_OTLP_PROTOCOL',
      default: DEFAULT_PROTOCOL,
      choices: PROTOCOLS,
      description: 'how spans are sent to the collector',
    },
    {
      name: 'OTEL_SERVICE_NAME',
      default: serviceName,
      description: 'service.name of the spans, as Jaeger lists it',
    },
    {
      name: 'OTEL_TRACES_SAMPLER',
      default: DEFAULT_SAMPLER,
      choices: SAMPLERS,
      description: 'which traces are kept; parentbased_* follow the caller’s decision (traceparent)',
    },
    {
      name: 'OTEL_TRACES_SAMPLER_ARG',
      default: '1.0',
      description: 'the fraction of traces kept by the *traceidratio samplers, 0 to 1',
    },
  ];
}

/**
 * The tracing settings from the variables' values (`get` returns undefined for an unset or empty variable), or
 * undefined when no endpoint is set: tracing off. Throws OtelSettingError for a malformed endpoint, an unknown
 * protocol or sampler, or a ratio outside [0, 1].
 */
export function parseTracingSettings(
  get: (name: `OTEL_${string}`) => string | undefined,
  defaultServiceName: string,
): TracingSettings | undefined {
  // Checked whether or not an endpoint is set: a typo should not wait for the day tracing is turned on.
  const protocol = parseChoice('OTEL_EXPORTER_OTLP_PROTOCOL', get('OTEL_EXPORTER_OTLP_PROTOCOL'), PROTOCOLS);
  const sampler = parseChoice('OTEL_TRACES_SAMPLER', get('OTEL_TRACES_SAMPLER'), SAMPLERS);
  const ratio = parseRatio(get('OTEL_TRACES_SAMPLER_ARG'), sampler);
  const base = get('OTEL_EXPORTER_OTLP_ENDPOINT');
  const traces = get('OTEL_EXPORTER_OTLP_TRACES_ENDPOINT');
  if (base !== undefined) parseUrl('OTEL_EXPORTER_OTLP_ENDPOINT', base);
  if (traces !== undefined) parseUrl('OTEL_EXPORTER_OTLP_TRACES_ENDPOINT', traces);
  const serviceName = get('OTEL_SERVICE_NAME') ?? defaultServiceName;
  if (/[\r\n]/.test(serviceName)) throw new OtelSettingError('OTEL_SERVICE_NAME', 'must be one line');
  if (base === undefined && traces === undefined) return undefined;
  let url: string;
  if (traces !== undefined) url = traces;
  else if (protocol === 'grpc') url = base!;
  else url = `${base!.replace(/\/+$/, '')}/v1/traces`;
  return {
    url,
    protocol: protocol ?? DEFAULT_PROTOCOL,
    serviceName,
    sampler: sampler ?? DEFAULT_SAMPLER,
    ratio,
  };
}

function parseChoice<T extends string>(
  variable: string,
  raw: string | undefined,
  choices: readonly T[],
): T | undefined {
  if (raw === undefined) return undefined;
  const found = choices.find((c) => c === raw.trim());
  if (found === undefined) {
    throw new OtelSettingError(variable, `must be one of ${choices.join(', ')}, got ${quote(raw)}`);
  }
  return found;
}

function parseRatio(raw: string | undefined, sampler: SamplerName | undefined): number {
  if (raw === undefined) return 1;
  const value = /^\s*(\d+(\.\d*)?|\.\d+)\s*$/.test(raw) ? Number(raw) : Number.NaN;
  if (value >= 0 && value <= 1) return value;
  // Only the ratio samplers read it; for the others a stray value is harmless, but a typo is still worth a stop.
  const users = sampler?.endsWith('traceidratio') ? '' : ' (it is read by the *traceidratio samplers)';
  throw new OtelSettingError(
    'OTEL_TRACES_SAMPLER_ARG',
    `must be a number from 0 to 1, got ${quote(raw)}${users}`,
  );
}

function parseUrl(variable: string, raw: string): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new OtelSettingError(variable, `${quote(raw)} is not a URL; give one like http://127.0.0.1:4318`);
  }
  if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.hostname === '') {
    throw new OtelSettingError(
      variable,
      `${quote(raw)} is not an http:// or https:// URL; give one like http://127.0.0.1:4318`,
    );
  }
  return url;
}

/** A value for a message: quoted, escaped (the message stays one line) and shortened. */
function quote(text: string): string {
  return JSON.stringify(text.length > 80 ? `${text.slice(0, 77)}...` : text);
}
