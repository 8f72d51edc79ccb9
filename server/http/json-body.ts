import type { IncomingMessage } from 'node:http';
import { Status } from 'nice-grpc';
import { HttpError, invalid } from './http-error.js';

/**
 * Reads a request's JSON body: a flat object whose keys are all in `fields`. Refused with a JSON error, before
 * anything reaches the domain: a body over `maxBytes` (413, checked from Content-Length and while reading, so a
 * large body is never buffered), a Content-Type other than application/json or any Content-Encoding (415),
 * malformed JSON, anything but an object, a key given twice or not in `fields` (400, naming the key). Values
 * keep their JSON types: the domain validates type and range for both edges. `null` means absent, as in the
 * proto's JSON mapping. An empty body is `{}` when `optional`, else 400.
 */
export async function readJsonBody(
  request: IncomingMessage,
  options: { maxBytes: number; fields: readonly string[]; optional?: boolean },
): Promise<Record<string, unknown>> {
  const { maxBytes, fields } = options;
  const declared = Number(request.headers['content-length'] ?? 0);
  if (declared > maxBytes) throw tooLarge(maxBytes);
  const text = await readText(request, maxBytes);
  if (text.trim() === '') {
    if (options.optional) return {};
    throw invalid(
      'BODY_REQUIRED',
      `send a JSON object body with Content-Type: application/json; fields: ${fields.join(', ')}`,
    );
  }
  const encoding = request.headers['content-encoding'];
  if (encoding !== undefined && encoding !== 'identity') {
    throw new HttpError(
      415,
      Status.INVALID_ARGUMENT,
      'UNSUPPORTED_ENCODING',
      `Content-Encoding "${encoding}" is not supported: send the JSON uncompressed`,
    );
  }
  const type = request.headers['content-type'];
  if (type === undefined || !/^application\/json\s*(;|$)/i.test(type)) {
    throw new HttpError(
      415,
      Status.INVALID_ARGUMENT,
      'UNSUPPORTED_MEDIA_TYPE',
      `the body must be JSON sent with Content-Type: application/json, got ${type === undefined ? 'no Content-Type' : `"${type}"`}`,
    );
  }
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (error) {
    throw invalid('MALFORMED_JSON', `the body is not valid JSON: ${(error as Error).message}`);
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw invalid(
      'BODY_NOT_OBJECT',
      `the body must be a JSON object, got ${body === null ? 'null' : Array.isArray(body) ? 'an array' : typeof body}`,
    );
  }
  const keys = topLevelKeys(text);
  const seen = new Set<string>();
  for (const key of keys) {
    if (seen.has(key)) throw invalid('DUPLICATE_FIELD', `field "${key}" is given twice`, key);
    seen.add(key);
    if (!fields.includes(key)) {
      throw invalid(
        'UNKNOWN_FIELD',
        `unknown field "${printable(key)}"; this endpoint accepts: ${fields.join(', ')}`,
        printable(key),
      );
    }
  }
  const result: Record<string, unknown> = {};
  for (const key of keys) {
    const value = (body as Record<string, unknown>)[key];
    if (value === null) continue;
    if (typeof value === 'object') {
      throw invalid('FIELD_TYPE', `field "${key}" must be a string or a number, not an object or array`, key);
    }
    result[key] = value;
  }
  return result;
}

async function readText(request: IncomingMessage, maxBytes: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > maxBytes) throw tooLarge(maxBytes);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function tooLarge(maxBytes: number): HttpError {
  return new HttpError(
    413,
    Status.RESOURCE_EXHAUSTED,
    'BODY_TOO_LARGE',
    `the body is larger than ${maxBytes} bytes (--max-message-bytes)`,
  );
}

/**
 * The keys of the top-level object of `text`, in order and with repeats (JSON.parse keeps only the last of a
 * repeated key). `text` is known to be valid JSON whose top level is an object.
 */
function topLevelKeys(text: string): string[] {
  const keys: string[] = [];
  let depth = 0;
  let expectKey = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"') {
      let end = i + 1;
      while (text[end] !== '"') end += text[end] === '\\' ? 2 : 1;
      if (depth === 1 && expectKey) keys.push(JSON.parse(text.slice(i, end + 1)) as string);
      expectKey = false;
      i = end;
    } else if (c === '{' || c === '[') {
      depth++;
      expectKey = c === '{' && depth === 1;
    } else if (c === '}' || c === ']') {
      depth--;
    } else if (c === ',' && depth === 1) {
      expectKey = true;
    }
  }
  return keys;
}

/** A key as it may appear in a message: control characters escaped, at most 64 characters. */
function printable(key: string): string {
  const short = key.length > 64 ? `${key.slice(0, 64)}…` : key;
  return JSON.stringify(short).slice(1, -1);
}
