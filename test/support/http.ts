import { request as httpRequest } from 'node:http';

export interface HttpAnswer {
  status: number;
  headers: Headers;
  /** The parsed JSON object body ({} for an empty or non-JSON one: then see `text`). */
  body: Record<string, unknown>;
  text: string;
}

/**
 * A client for the lab JSON API at `base` (e.g. http://127.0.0.1:8000). Bodies that are objects are sent as JSON
 * with Content-Type application/json; strings are sent as they are (with `headers` deciding their type).
 */
export function labClient(base: string, defaults: Record<string, string> = {}) {
  const call = async (
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<HttpAnswer> => {
    const json = body !== undefined && typeof body !== 'string';
    const response = await fetch(base + path, {
      method,
      headers: { ...defaults, ...(json && { 'content-type': 'application/json' }), ...headers },
      body: body === undefined ? undefined : json ? JSON.stringify(body) : (body as string),
      signal: AbortSignal.timeout(15_000),
    });
    const text = await response.text();
    let parsed: Record<string, unknown> = {};
    try {
      parsed = JSON.parse(text) as Record<string, unknown>;
    } catch {
      // not JSON: the caller looks at `text`
    }
    return { status: response.status, headers: response.headers, body: parsed, text };
  };
  return {
    base,
    call,
    get: (path: string, headers?: Record<string, string>) => call('GET', path, undefined, headers),
    post: (path: string, body?: unknown, headers?: Record<string, string>) =>
      call('POST', path, body, headers),
  };
}

/** A raw HTTP/1.1 request through node:http (for what fetch refuses to send: huge headers, odd methods). */
export function rawRequest(
  port: number,
  options: { method?: string; path: string; headers?: Record<string, string>; body?: string },
): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: '127.0.0.1',
        port,
        method: options.method ?? 'GET',
        path: options.path,
        headers: options.headers,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString() }));
        res.on('error', reject);
      },
    );
    req.setTimeout(15_000, () => req.destroy(new Error('timed out')));
    req.on('error', reject);
    req.end(options.body);
  });
}
