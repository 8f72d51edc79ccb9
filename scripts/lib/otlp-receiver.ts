/**
 * A small OTLP/HTTP trace receiver for the demo (`npm run demo -- --traces`), the bench and the tests: a node:http
 * server on loopback that accepts POST /v1/traces, decodes the `http/json` encoding into flat spans, and answers
 * as a collector does. A `http/protobuf` body is accepted and counted, not decoded (the bench only needs a sink).
 * Bodies can also be passed on, as they came, to another collector (`forward`).
 */
import { createServer, request as httpRequest, type IncomingMessage, type Server } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { AddressInfo } from 'node:net';

/** One span as received, ids in hex, times in nanoseconds since the epoch (as bigint-safe numbers: ms precision
 *  is kept in `startMs`/`endMs`). */
export interface ReceivedSpan {
  service: string;
  scope: string;
  traceId: string;
  spanId: string;
  /** '' for a root span. */
  parentSpanId: string;
  name: string;
  /** OTLP's SpanKind: 1 internal, 2 server, 3 client, 4 producer, 5 consumer. */
  kind: number;
  startMs: number;
  endMs: number;
  attributes: Record<string, unknown>;
  /** OTLP's status code: 0 unset, 1 ok, 2 error. */
  status: { code: number; message: string };
  events: { name: string; timeMs: number; attributes: Record<string, unknown> }[];
  links: { traceId: string; spanId: string; attributes: Record<string, unknown> }[];
}

export const SPAN_KIND = { internal: 1, server: 2, client: 3 } as const;

export interface OtlpReceiverOptions {
  /** Default 0: a free port. */
  port?: number;
  /** Default 127.0.0.1; '::' listens on every loopback and other address, IPv4 and IPv6. */
  host?: string;
  /** Called with each decoded batch (http/json bodies only). */
  onSpans?: (spans: ReceivedSpan[]) => void;
  /** Base URL of a collector each request body is also sent to (POST <forward>/v1/traces), unchanged. */
  forward?: string;
  /** Told once when forwarding fails (the collector is down, refuses the encoding…). */
  onForwardError?: (error: Error) => void;
}

const MAX_BODY_BYTES = 32 * 1024 * 1024;

export class OtlpReceiver {
  /** Every span decoded so far, in arrival order. */
  readonly spans: ReceivedSpan[] = [];
  /** Export requests received, whatever their encoding. */
  requests = 0;
  /** Spans in http/protobuf requests are not decoded: only their bytes are counted. */
  protobufBytes = 0;

  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {}

  /** The base URL to give as OTEL_EXPORTER_OTLP_ENDPOINT. */
  get endpoint(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  static async start(options: OtlpReceiverOptions = {}): Promise<OtlpReceiver> {
    let receiver: OtlpReceiver | undefined;
    let forwardFailed = false;
    const server = createServer((req, res) => {
      void readBody(req).then(
        (body) => {
          if (req.method !== 'POST' || req.url?.split('?')[0] !== '/v1/traces') {
            res.writeHead(404).end();
            return;
          }
          receiver!.requests++;
          const type = String(req.headers['content-type'] ?? '');
          if (type.includes('json')) {
            const spans = decodeTraces(JSON.parse(body.toString('utf8')));
            receiver!.spans.push(...spans);
            options.onSpans?.(spans);
            res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
          } else {
            receiver!.protobufBytes += body.length;
            // An empty ExportTraceServiceResponse: zero bytes of protobuf.
            res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
          }
          if (options.forward) {
            forwardBody(options.forward, type, body).catch((error: Error) => {
              if (!forwardFailed) options.onForwardError?.(error);
              forwardFailed = true;
            });
          }
        },
        () => res.writeHead(413).end(),
      );
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    receiver = new OtlpReceiver(server, (server.address() as AddressInfo).port);
    return receiver;
  }

  /** Spans of one trace. */
  trace(traceId: string): ReceivedSpan[] {
    return this.spans.filter((s) => s.traceId === traceId);
  }

  /** The children of `parent`, in start order. */
  children(parent: ReceivedSpan): ReceivedSpan[] {
    return this.spans
      .filter((s) => s.traceId === parent.traceId && s.parentSpanId === parent.spanId)
      .sort((a, b) => a.startMs - b.startMs);
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        reject(new Error('body too large'));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function forwardBody(base: string, type: string, body: Buffer): Promise<void> {
  const url = new URL(`${base.replace(/\/+$/, '')}/v1/traces`);
  const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = send(
      url,
      { method: 'POST', headers: { 'content-type': type, 'content-length': body.length }, timeout: 5_000 },
      (res) => {
        res.resume();
        res.on('end', () =>
          (res.statusCode ?? 0) < 300 ? resolve() : reject(new Error(`${url} answered ${res.statusCode}`)),
        );
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${url} did not answer within 5 s`)));
    req.on('error', reject);
    req.end(body);
  });
}

// OTLP/JSON (ExportTraceServiceRequest): ids are hex strings, 64-bit integers may be strings.
interface JsonAnyValue {
  stringValue?: string;
  boolValue?: boolean;
  intValue?: string | number;
  doubleValue?: number;
  arrayValue?: { values?: JsonAnyValue[] };
}
interface JsonKeyValue {
  key: string;
  value?: JsonAnyValue;
}
interface JsonSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind?: number;
  startTimeUnixNano: string | number;
  endTimeUnixNano: string | number;
  attributes?: JsonKeyValue[];
  status?: { code?: number; message?: string };
  events?: { name: string; timeUnixNano: string | number; attributes?: JsonKeyValue[] }[];
  links?: { traceId: string; spanId: string; attributes?: JsonKeyValue[] }[];
}
interface JsonRequest {
  resourceSpans?: {
    resource?: { attributes?: JsonKeyValue[] };
    scopeSpans?: { scope?: { name?: string }; spans?: JsonSpan[] }[];
  }[];
}

/** The spans of an OTLP/JSON export request, flattened. */
export function decodeTraces(request: JsonRequest): ReceivedSpan[] {
  const spans: ReceivedSpan[] = [];
  for (const resourceSpans of request.resourceSpans ?? []) {
    const service = String(attributes(resourceSpans.resource?.attributes)['service.name'] ?? '');
    for (const scopeSpans of resourceSpans.scopeSpans ?? []) {
      for (const span of scopeSpans.spans ?? []) {
        spans.push({
          service,
          scope: scopeSpans.scope?.name ?? '',
          traceId: hexId(span.traceId),
          spanId: hexId(span.spanId),
          parentSpanId: span.parentSpanId ? hexId(span.parentSpanId) : '',
          name: span.name,
          kind: span.kind ?? 0,
          startMs: nanosToMs(span.startTimeUnixNano),
          endMs: nanosToMs(span.endTimeUnixNano),
          attributes: attributes(span.attributes),
          status: { code: span.status?.code ?? 0, message: span.status?.message ?? '' },
          events: (span.events ?? []).map((e) => ({
            name: e.name,
            timeMs: nanosToMs(e.timeUnixNano),
            attributes: attributes(e.attributes),
          })),
          links: (span.links ?? []).map((l) => ({
            traceId: hexId(l.traceId),
            spanId: hexId(l.spanId),
            attributes: attributes(l.attributes),
          })),
        });
      }
    }
  }
  return spans;
}

function attributes(list: JsonKeyValue[] | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const { key, value } of list ?? []) out[key] = anyValue(value);
  return out;
}

function anyValue(value: JsonAnyValue | undefined): unknown {
  if (value === undefined) return undefined;
  if (value.stringValue !== undefined) return value.stringValue;
  if (value.boolValue !== undefined) return value.boolValue;
  if (value.intValue !== undefined) return Number(value.intValue);
  if (value.doubleValue !== undefined) return value.doubleValue;
  if (value.arrayValue !== undefined) return (value.arrayValue.values ?? []).map(anyValue);
  return undefined;
}

/** Ids arrive as hex (the OTLP/JSON rule); base64 from other encoders is turned into hex too. */
function hexId(id: string): string {
  return /^[0-9a-f]+$/i.test(id) ? id.toLowerCase() : Buffer.from(id, 'base64').toString('hex');
}

function nanosToMs(nanos: string | number): number {
  const text = String(nanos);
  // Milliseconds with microsecond precision, without losing digits to a float of 19 digits.
  return Number(text.slice(0, -3)) / 1_000;
}
