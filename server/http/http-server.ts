import {
  createServer as createHttpServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import {
  context,
  propagation,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  SpanStatusCode,
  type TextMapGetter,
  trace,
} from '@opentelemetry/api';
import { isAbortError } from 'abort-controller-x';
import { Status } from 'nice-grpc';
import type { Logger } from 'pino';
import type { TlsConfig } from '../config.js';
import { type Coordinator, InvalidArgumentError } from '../coordinator/index.js';
import type { Authenticator } from '../edge/auth.js';
import { HTTP_STATUS_OF } from '../edge/http-status.js';
import { errorStatus } from '../edge/status.js';
import type { Metrics } from '../metrics.js';
import { HttpError } from './http-error.js';
import { type LabRequest, type LabRoute, labRoutes } from './lab-api.js';

export interface HttpServerOptions {
  host: string;
  /** 0 = any free port. */
  port: number;
  /** HTTPS with the gRPC server's certificate (and client certificates when mTLS is required). */
  tls?: TlsConfig;
  coordinator: Coordinator;
  metrics: Metrics;
  authenticator: Authenticator;
  /** Largest request body (the gRPC message limit, --max-message-bytes). */
  maxBodyBytes: number;
  log: Logger;
  /** Tracing is on: a SERVER span per request, a child of the caller's span when it sends a `traceparent`. */
  traced?: boolean;
}

export interface RunningHttpServer {
  readonly port: number;
  /** Stops accepting connections, closes idle ones, and waits up to `graceMs` for requests under way. */
  close(graceMs: number): Promise<void>;
}

/** Longer URLs get 414: no route needs more than a 256-byte resource name, percent-encoded. */
const MAX_URL_BYTES = 8_192;
const tracer = trace.getTracer('redlease.http');
/** Header and body deadlines against slow clients (slowloris); a waiting Acquire's response may take longer. */
const HEADERS_TIMEOUT_MS = 10_000;
const REQUEST_TIMEOUT_MS = 30_000;
/** Idle keep-alive connections close after this: long enough for curl loops and Prometheus scrapes. */
const KEEP_ALIVE_TIMEOUT_MS = 5_000;
const MAX_HEADERS = 100;
/** Seconds a client should wait before retrying a 503 (no quorum: node checks run about every second). */
const RETRY_AFTER_S = '1';

/**
 * The HTTP edge: the lab JSON API (lab-api.ts) and GET /metrics on one port. Routing, auth, JSON errors and
 * timing live here; every error leaves as `{error: {code, reason, message, field?}}` with the HTTP status from the
 * one gRPC→HTTP table (http-status.ts), so a client sees the same code and reason on both edges.
 */
export async function startHttpServer(options: HttpServerOptions): Promise<RunningHttpServer> {
  const { coordinator, metrics, authenticator, log } = options;
  const routes = labRoutes(coordinator, options.maxBodyBytes);
  const metricsRoute: LabRoute = {
    method: 'GET',
    path: '/metrics',
    name: 'Metrics',
    auth: 'open',
    async handle() {
      return { status: 200, body: await metrics.expose() };
    },
  };
  routes.push(metricsRoute);

  const handler = (request: IncomingMessage, response: ServerResponse): void => {
    if (!options.traced) {
      void serve(request, response, undefined);
      return;
    }
    const parent = propagation.extract(ROOT_CONTEXT, request.headers, headerGetter);
    const method = request.method ?? 'GET';
    const span = tracer.startSpan(method, { kind: SpanKind.SERVER }, parent);
    if (span.isRecording()) {
      span.setAttributes({
        'http.request.method': method,
        'url.path': (request.url ?? '/').split('?')[0]!.slice(0, MAX_URL_BYTES),
        'url.scheme': options.tls ? 'https' : 'http',
        'network.protocol.version': request.httpVersion,
        'client.address': request.socket.remoteAddress ?? '',
      });
    }
    void context.with(trace.setSpan(parent, span), () => serve(request, response, span));
  };

  const serve = async (
    request: IncomingMessage,
    response: ServerResponse,
    span: Span | undefined,
  ): Promise<void> => {
    const started = performance.now();
    let name = 'Unknown';
    let code = Status.OK;
    let httpStatus = 200;
    let reason = '';
    const abort = new AbortController();
    response.on('close', () => {
      if (!response.writableFinished) abort.abort();
    });
    try {
      if ((request.url?.length ?? 0) > MAX_URL_BYTES) {
        throw new HttpError(
          414,
          Status.INVALID_ARGUMENT,
          'URI_TOO_LONG',
          `the URL is longer than ${MAX_URL_BYTES} bytes`,
        );
      }
      const url = new URL(request.url ?? '/', 'http://lab');
      const { route, param } = match(routes, request.method ?? 'GET', url.pathname);
      name = route.name;
      if (span?.isRecording()) {
        span.updateName(`${request.method} ${route.path}`);
        span.setAttribute('http.route', route.path);
        if (param !== '') span.setAttribute('redlease.resource', param);
      }
      authenticator.check(
        route.auth,
        () => request.headers.authorization,
        () => request.socket.remoteAddress ?? '', // '' (a closed socket) matches no network
      );
      const call: LabRequest = { request, url, param, signal: abort.signal };
      const result = await route.handle(call);
      if (route === metricsRoute) {
        const { contentType, body } = result.body as { contentType: string; body: string };
        response.writeHead(200, { 'content-type': contentType }).end(body);
        return;
      }
      if (result.status === 503) code = Status.UNAVAILABLE;
      httpStatus = result.status;
      send(response, result.status, result.body);
    } catch (error) {
      const failure = describeError(error, abort.signal);
      code = failure.code;
      httpStatus = failure.httpStatus;
      reason = failure.error.reason;
      if (failure.internal) log.error({ err: error, route: name, url: request.url }, 'internal error');
      const headers: Record<string, string> = { ...failure.headers };
      if (failure.httpStatus === 503) headers['retry-after'] = RETRY_AFTER_S;
      const body: Record<string, unknown> = { error: failure.error };
      if (name === 'Acquire') body.acquired = false;
      if (!response.headersSent && !response.destroyed) send(response, failure.httpStatus, body, headers);
    } finally {
      metrics.rpc('http', name, Status[code], (performance.now() - started) / 1000);
      if (span) endRequest(span, httpStatus, reason);
    }
  };

  const server: Server = options.tls
    ? createHttpsServer(
        {
          cert: options.tls.cert,
          key: options.tls.key,
          ...(options.tls.ca && { ca: options.tls.ca }),
          requestCert: options.tls.requireClientCert,
          rejectUnauthorized: options.tls.requireClientCert,
        },
        handler,
      )
    : createHttpServer(handler);
  server.headersTimeout = HEADERS_TIMEOUT_MS;
  server.requestTimeout = REQUEST_TIMEOUT_MS;
  server.keepAliveTimeout = KEEP_ALIVE_TIMEOUT_MS;
  server.maxHeadersCount = MAX_HEADERS;

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  server.on('clientError', (error, socket) => {
    // Malformed HTTP, oversized headers (431), timeouts: Node answers when it can; never crash.
    if (socket.writable && !socket.destroyed) {
      const status = (error as NodeJS.ErrnoException).code === 'HPE_HEADER_OVERFLOW' ? 431 : 400;
      socket.end(
        `HTTP/1.1 ${status} ${status === 431 ? 'Request Header Fields Too Large' : 'Bad Request'}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`,
      );
    } else {
      socket.destroy();
    }
  });

  const port = (server.address() as AddressInfo).port;
  let closing: Promise<void> | undefined;
  return {
    port,
    close(graceMs) {
      closing ??= new Promise<void>((resolve) => {
        const timer = setTimeout(() => server.closeAllConnections(), graceMs);
        server.close(() => {
          clearTimeout(timer);
          resolve();
        });
        server.closeIdleConnections();
      });
      return closing;
    },
  };
}

/** W3C Trace Context from request headers (Node lowercases their names, as the propagator asks for them). */
const headerGetter: TextMapGetter<IncomingMessage['headers']> = {
  get: (carrier, key) => carrier[key],
  keys: (carrier) => Object.keys(carrier),
};

/** Ends a request's span: its status code and reason; 5xx is an error of the server (OpenTelemetry's HTTP
 *  conventions), 4xx an answer to the caller. */
function endRequest(span: Span, httpStatus: number, reason: string): void {
  if (span.isRecording()) {
    span.setAttribute('http.response.status_code', httpStatus);
    if (reason !== '') span.setAttribute('redlease.reason', reason);
    if (httpStatus >= 500)
      span.setStatus({ code: SpanStatusCode.ERROR, message: reason || String(httpStatus) });
  }
  span.end();
}

/** The route for a method and path: 404 when no path matches, 405 (with Allow) when only the method is wrong. */
function match(
  routes: readonly LabRoute[],
  method: string,
  pathname: string,
): { route: LabRoute; param: string } {
  const allowed: string[] = [];
  for (const route of routes) {
    let param = '';
    if (route.path.endsWith('/:resource')) {
      const prefix = route.path.slice(0, -':resource'.length);
      if (!pathname.startsWith(prefix) || pathname.length === prefix.length) continue;
      const raw = pathname.slice(prefix.length);
      try {
        param = decodeURIComponent(raw);
      } catch {
        throw new InvalidArgumentError(
          'resource',
          'RESOURCE_NAME_INVALID',
          'the resource in the path is not valid percent-encoding',
        );
      }
    } else if (route.path !== pathname) {
      continue;
    }
    if (route.method === method || (method === 'HEAD' && route.method === 'GET')) return { route, param };
    allowed.push(route.method);
  }
  if (allowed.length > 0) {
    throw new HttpError(
      405,
      Status.UNIMPLEMENTED,
      'METHOD_NOT_ALLOWED',
      `${method} is not allowed on ${pathname}; use ${allowed.join(' or ')}`,
      undefined,
      { allow: allowed.join(', ') },
    );
  }
  throw new HttpError(
    404,
    Status.NOT_FOUND,
    'NOT_FOUND',
    `no endpoint ${pathname}; the API has POST /lock/acquire, /lock/release, /lock/extend, GET /lock/status/:resource, /health, /metrics, GET|POST /admin/mode, GET /admin/redis/status`,
  );
}

interface Failure {
  httpStatus: number;
  code: Status;
  error: { code: string; reason: string; message: string; field?: string };
  headers?: Readonly<Record<string, string>>;
  internal?: boolean;
}

/** Any error → its HTTP status and JSON error; unknown ones are INTERNAL without internals (logged by the caller). */
function describeError(error: unknown, signal: AbortSignal): Failure {
  if (error instanceof HttpError) {
    return {
      httpStatus: error.httpStatus,
      code: error.code,
      error: {
        code: Status[error.code],
        reason: error.reason,
        message: error.message,
        ...(error.field !== undefined && { field: error.field }),
      },
      headers: error.headers,
    };
  }
  const mapped = errorStatus(error);
  if (mapped) {
    const { status, ...fields } = mapped;
    return { httpStatus: HTTP_STATUS_OF[status], code: status, error: { code: Status[status], ...fields } };
  }
  if (signal.aborted && isAbortError(error)) {
    return {
      httpStatus: HTTP_STATUS_OF[Status.CANCELLED],
      code: Status.CANCELLED,
      error: { code: 'CANCELLED', reason: 'CANCELLED', message: 'the client closed the connection' },
    };
  }
  return {
    httpStatus: 500,
    code: Status.INTERNAL,
    error: { code: 'INTERNAL', reason: 'INTERNAL', message: 'internal error; the server logged the details' },
    internal: true,
  };
}

function send(
  response: ServerResponse,
  status: number,
  body: unknown,
  headers: Readonly<Record<string, string>> = {},
): void {
  const text = `${JSON.stringify(body)}\n`;
  response
    .writeHead(status, {
      'content-type': 'application/json; charset=utf-8',
      'content-length': Buffer.byteLength(text),
      'cache-control': 'no-store',
      ...headers,
    })
    .end(text);
}
