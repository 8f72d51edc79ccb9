import { readFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { ClientError, type Metadata, Status } from 'nice-grpc';
import { describe, expect, it } from 'vitest';
import { HTTP_STATUS_OF } from '../server/edge/http-status.js';
import { type HttpAnswer, labClient, rawRequest } from './support/http.js';
import { rejection, startTestServer, uniqueResource, waitFor } from './support/server.js';

async function lab(flags: readonly string[] = [], env?: Record<string, string>) {
  const t = await startTestServer(flags, env ? { env } : {});
  return { ...t, api: labClient(`http://127.0.0.1:${t.server.httpPort}`) };
}

/** Every error of the API: JSON, the status from the one gRPC→HTTP table, a reason, a message, no internals. */
function expectError(answer: HttpAnswer, status: number, reason: string, field?: string) {
  expect(answer.status, answer.text).toBe(status);
  expect(answer.headers.get('content-type')).toMatch(/^application\/json/);
  const error = answer.body.error as { code: string; reason: string; message: string; field?: string };
  expect(error.reason).toBe(reason);
  expect(error.message.length).toBeGreaterThan(10);
  expect(error.message).not.toMatch(/\n\s+at /); // no stack trace
  if (field !== undefined) expect(error.field).toBe(field);
  // 413/415/405/404/414 are the edge's own; every other status comes from the table for the code named.
  if (![413, 415, 405, 404, 414].includes(status)) {
    expect(HTTP_STATUS_OF[Status[error.code as keyof typeof Status]]).toBe(status);
  }
  return error;
}

describe('lab JSON API: the lock endpoints', () => {
  it('acquire, status, extend, release, status: fields named as in the proto, plus the lab’s', async () => {
    // The exact values (three nodes granted, one attempt) assume no node reply is late: on a starved box (one
    // core, the whole suite on it) a 100 ms node timeout cost a vote and an attempt. This test is about fields.
    const { api } = await lab(['--node-timeout-ms', '2000']);
    const resource = uniqueResource('lab');
    const before = Date.now();
    const acquired = await api.post('/lock/acquire', { resource, ttl_ms: 4_000, client_id: 'lab-1' });
    expect(acquired.status).toBe(200);
    expect(acquired.body).toMatchObject({
      acquired: true,
      resource,
      ttl_ms: 4_000,
      nodes_acquired: 3,
      nodes: ['redis-1', 'redis-2', 'redis-3'],
      quorum: 2,
      attempts: 1,
      mode: 'redlock',
      client_id: 'lab-1',
    });
    const { lock_id: lockId, fencing_token: token } = acquired.body as {
      lock_id: string;
      fencing_token: number;
    };
    expect(lockId).toMatch(/^[0-9a-f]{32}$/);
    expect(token).toBeGreaterThan(0);
    expect(acquired.body.validity_ms).toBeGreaterThan(3_000);
    expect(acquired.body.validity_ms).toBeLessThanOrEqual(4_000);
    expect(acquired.body.valid_until_ms).toBeGreaterThanOrEqual(before + 3_000);

    const status = await api.get(`/lock/status/${encodeURIComponent(resource)}`);
    expect(status.status).toBe(200);
    expect(status.body).toMatchObject({
      resource,
      locked: true,
      holder_client_id: 'lab-1',
      fencing_token: token,
      waiters: 0,
    });
    expect(status.body.nodes).toEqual([
      { node: 'redis-1', reachable: true, held: true, ttl_ms: expect.any(Number) },
      { node: 'redis-2', reachable: true, held: true, ttl_ms: expect.any(Number) },
      { node: 'redis-3', reachable: true, held: true, ttl_ms: expect.any(Number) },
    ]);
    expect(status.text).not.toContain(lockId); // the lock id is the capability to release: never shown

    const extended = await api.post('/lock/extend', { resource, lock_id: lockId, ttl_ms: 8_000 });
    expect(extended.status).toBe(200);
    expect(extended.body).toMatchObject({
      extended: true,
      fencing_token: token,
      ttl_ms: 8_000,
      lock_id: lockId,
    });
    expect(extended.body.validity_ms).toBeGreaterThan(4_000);

    const released = await api.post('/lock/release', { resource, lock_id: lockId });
    expect(released.status).toBe(200);
    expect(released.body).toEqual({ released: true, resource, nodes: ['redis-1', 'redis-2', 'redis-3'] });
    expect((await api.get(`/lock/status/${resource}`)).body).toMatchObject({ locked: false, waiters: 0 });

    expectError(await api.post('/lock/release', { resource, lock_id: lockId }), 409, 'LOCK_NOT_HELD');
    expectError(await api.post('/lock/extend', { resource, lock_id: lockId }), 409, 'LOCK_NOT_HELD');
  });

  it('a held resource answers 409 with acquired:false; a waiting acquire gets it as soon as the holder releases', async () => {
    const { api } = await lab();
    const resource = uniqueResource();
    const first = await api.post('/lock/acquire', { resource, ttl_ms: 10_000 });
    const held = await api.post('/lock/acquire', { resource });
    const error = expectError(held, 409, 'LOCK_HELD');
    expect(error.code).toBe('ABORTED');
    expect(held.body.acquired).toBe(false);
    expect(held.text).not.toContain(first.body.lock_id as string);

    const waiting = api.post('/lock/acquire', { resource, wait_timeout_ms: 20_000, client_id: 'patient' });
    await waitFor(
      'the waiter to queue',
      async () => (await api.get(`/lock/status/${resource}`)).body.waiters === 1,
    );
    await api.post('/lock/release', { resource, lock_id: first.body.lock_id });
    const granted = await waiting;
    expect(granted.status).toBe(200);
    expect(granted.body).toMatchObject({ acquired: true, client_id: 'patient' });
    expect(granted.body.fencing_token).toBeGreaterThan(first.body.fencing_token as number);
  });

  it('a waiting acquire whose HTTP client goes away leaves the queue and takes nothing', async () => {
    const { api, lock } = await lab();
    const resource = uniqueResource();
    const { lease } = await lock.acquire({ resource, ttlMs: 10_000 });
    const gone = new AbortController();
    const waiting = fetch(`${api.base}/lock/acquire`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ resource, wait_timeout_ms: 20_000 }),
      signal: gone.signal,
    }).catch((e: unknown) => e);
    await waitFor(
      'the waiter to queue',
      async () => (await api.get(`/lock/status/${resource}`)).body.waiters === 1,
    );
    gone.abort();
    await waiting;
    await waitFor(
      'the waiter to leave',
      async () => (await api.get(`/lock/status/${resource}`)).body.waiters === 0,
    );
    await lock.release({ resource, lockId: lease!.lockId });
    // Nothing was taken on the departed waiter's behalf: the resource is free for the next one.
    expect((await api.post('/lock/acquire', { resource })).status).toBe(200);
  });

  it('without a quorum: 503 with Retry-After, fast, naming the quorum; /health says NOT_SERVING', async () => {
    const { api, nodes } = await lab();
    expect((await api.get('/health')).status).toBe(200);
    await nodes[1].stop();
    await nodes[2].stop();
    await waitFor('health to drop', async () => (await api.get('/health')).status === 503);
    const started = performance.now();
    const answer = await api.post('/lock/acquire', { resource: uniqueResource() });
    // L3: no quorum fails within the retry budget (3 attempts × 100 ms node timeout + jitter), not after a hang.
    expect(performance.now() - started).toBeLessThan(2_000);
    const error = expectError(answer, 503, 'QUORUM_UNAVAILABLE');
    expect(error.code).toBe('UNAVAILABLE');
    expect(error.message).toMatch(/quorum unavailable: 1\/3 Redis nodes voting, 2 needed/);
    expect(answer.headers.get('retry-after')).toBe('1');
    expect(answer.body.acquired).toBe(false);
    const health = await api.get('/health');
    expect(health.body).toMatchObject({
      status: 'NOT_SERVING',
      quorum: 2,
      quorum_available: false,
      voting_nodes: 1,
    });
  });

  it('/health: per-node state and the quorum, and nothing an open endpoint should not show', async () => {
    const { api, cluster } = await lab();
    const health = await api.get('/health');
    expect(health.status).toBe(200);
    expect(health.body).toMatchObject({
      status: 'SERVING',
      mode: 'redlock',
      quorum: 2,
      quorum_available: true,
      voting_nodes: 3,
    });
    expect((health.body.nodes as unknown[]).map((n) => n)).toEqual(
      ['redis-1', 'redis-2', 'redis-3'].map((name) => ({
        name,
        up: true,
        voting: true,
        quarantined: false,
        latency_ms: expect.any(Number),
      })),
    );
    for (const address of cluster.addresses) expect(health.text).not.toContain(address);
  });
});

describe('lab JSON API: admin endpoints', () => {
  it('GET and POST /admin/mode from loopback; SINGLE grants on node 1 alone; bad modes are 400', async () => {
    const { api } = await lab();
    expect((await api.get('/admin/mode')).body).toEqual({ mode: 'redlock' });
    expect((await api.post('/admin/mode?mode=single')).body).toEqual({
      mode: 'single',
      previous_mode: 'redlock',
      leases_ended: 0,
    });
    const single = await api.post('/lock/acquire', { resource: uniqueResource() });
    expect(single.body).toMatchObject({ mode: 'single', nodes_acquired: 1, nodes: ['redis-1'], quorum: 1 });
    // The SINGLE lease is live: the switch back is refused, and with force it ends the lease.
    expectError(await api.post('/admin/mode', { mode: 'redlock' }), 409, 'LEASES_LIVE');
    expect((await api.post('/admin/mode', { mode: 'redlock', force: true })).body).toEqual({
      mode: 'redlock',
      previous_mode: 'single',
      leases_ended: 1,
    });
    expectError(await api.post('/admin/mode?mode=single&force=yes'), 400, 'FORCE_INVALID', 'force');
    expectError(await api.post('/admin/mode?mode=bogus'), 400, 'MODE_INVALID', 'mode');
    expectError(await api.post('/admin/mode'), 400, 'MODE_INVALID', 'mode');
    expectError(await api.post('/admin/mode?mode=single', { mode: 'redlock' }), 400, 'MODE_INVALID', 'mode');
    // A GET never changes anything.
    expectError(await api.get('/admin/mode?mode=single'), 400, 'MODE_CHANGE_NEEDS_POST', 'mode');
    expect((await api.get('/admin/mode')).body).toEqual({ mode: 'redlock' });
  });

  it('/admin/redis/status lists every node with ListNodes’ fields', async () => {
    const { api, cluster } = await lab();
    const status = await api.get('/admin/redis/status');
    expect(status.status).toBe(200);
    expect(status.body).toMatchObject({ quorum: 2, quorum_available: true, mode: 'redlock' });
    const nodes = status.body.nodes as Record<string, unknown>[];
    expect(nodes.map((n) => [n.name, n.address, n.up, n.voting, n.quarantined])).toEqual(
      cluster.addresses.map((address, i) => [`redis-${i + 1}`, address, true, true, false]),
    );
    for (const node of nodes) {
      expect(node.run_id).toMatch(/^[0-9a-f]{40}$/);
      expect(node).toMatchObject({ quarantine_remaining_ms: 0, quarantine_reason: '', error: '' });
    }
  });

  it('the same tokens as gRPC: 401 without, 403 for a client token on admin, 200 with the right one', async () => {
    const { api } = await lab([], {
      REDLEASE_ADMIN_TOKEN: 'admin-token-0123456789',
      REDLEASE_CLIENT_TOKENS: 'client-token-0123456789',
    });
    const client = { authorization: 'Bearer client-token-0123456789' };
    const admin = { authorization: 'Bearer admin-token-0123456789' };
    const resource = uniqueResource();
    const error = expectError(await api.post('/lock/acquire', { resource }), 401, 'TOKEN_REQUIRED');
    expect(error.code).toBe('UNAUTHENTICATED');
    expectError(
      await api.post('/lock/acquire', { resource }, { authorization: 'Bearer nope' }),
      401,
      'TOKEN_REQUIRED',
    );
    expectError(await api.get(`/lock/status/${resource}`), 401, 'TOKEN_REQUIRED');
    expect((await api.post('/lock/acquire', { resource }, client)).status).toBe(200);

    expectError(await api.get('/admin/mode'), 401, 'ADMIN_TOKEN_REQUIRED');
    expectError(await api.get('/admin/redis/status', client), 403, 'CLIENT_TOKEN_ON_ADMIN');
    expectError(await api.post('/admin/mode?mode=single', undefined, client), 403, 'CLIENT_TOKEN_ON_ADMIN');
    expect((await api.get('/admin/mode', admin)).body).toEqual({ mode: 'redlock' });
    // Probes stay open.
    expect((await api.get('/health')).status).toBe(200);
    expect((await api.get('/metrics')).status).toBe(200);
  });
});

describe('bad requests get a 4xx JSON error naming the problem; the server and holders carry on', () => {
  const json = { 'content-type': 'application/json' };
  const resource = 'bad-input';
  const cases: [
    string,
    string,
    string,
    string | undefined,
    Record<string, string>,
    number,
    string,
    string?,
  ][] = [
    ['no body', 'POST', '/lock/acquire', undefined, json, 400, 'BODY_REQUIRED'],
    ['null', 'POST', '/lock/acquire', 'null', json, 400, 'BODY_NOT_OBJECT'],
    ['an array', 'POST', '/lock/acquire', '[]', json, 400, 'BODY_NOT_OBJECT'],
    ['a string', 'POST', '/lock/acquire', '"x"', json, 400, 'BODY_NOT_OBJECT'],
    ['truncated JSON', 'POST', '/lock/acquire', '{"resource":', json, 400, 'MALFORMED_JSON'],
    [
      'a key twice',
      'POST',
      '/lock/acquire',
      '{"resource":"a","resource":"b"}',
      json,
      400,
      'DUPLICATE_FIELD',
      'resource',
    ],
    [
      'an unknown field',
      'POST',
      '/lock/acquire',
      '{"resource":"a","ttl":5}',
      json,
      400,
      'UNKNOWN_FIELD',
      'ttl',
    ],
    ['an object value', 'POST', '/lock/acquire', '{"resource":{"a":1}}', json, 400, 'FIELD_TYPE', 'resource'],
    [
      'a number as name',
      'POST',
      '/lock/acquire',
      '{"resource":5}',
      json,
      400,
      'RESOURCE_NAME_INVALID',
      'resource',
    ],
    [
      'ttl as a string',
      'POST',
      '/lock/acquire',
      `{"resource":"${resource}","ttl_ms":"100"}`,
      json,
      400,
      'TTL_NOT_INTEGER',
      'ttl_ms',
    ],
    [
      'ttl 1.5',
      'POST',
      '/lock/acquire',
      `{"resource":"${resource}","ttl_ms":1.5}`,
      json,
      400,
      'TTL_NOT_INTEGER',
      'ttl_ms',
    ],
    [
      'ttl 99',
      'POST',
      '/lock/acquire',
      `{"resource":"${resource}","ttl_ms":99}`,
      json,
      400,
      'TTL_OUT_OF_RANGE',
      'ttl_ms',
    ],
    [
      'ttl 2^53+1',
      'POST',
      '/lock/acquire',
      `{"resource":"${resource}","ttl_ms":9007199254740993}`,
      json,
      400,
      'TTL_OUT_OF_RANGE',
      'ttl_ms',
    ],
    [
      'negative wait',
      'POST',
      '/lock/acquire',
      `{"resource":"${resource}","wait_timeout_ms":-1}`,
      json,
      400,
      'WAIT_OUT_OF_RANGE',
      'wait_timeout_ms',
    ],
    [
      'a space in the name',
      'POST',
      '/lock/acquire',
      '{"resource":"a b"}',
      json,
      400,
      'RESOURCE_NAME_INVALID',
      'resource',
    ],
    [
      'a NUL in the name',
      'POST',
      '/lock/acquire',
      '{"resource":"a\\u0000b"}',
      json,
      400,
      'RESOURCE_NAME_INVALID',
      'resource',
    ],
    [
      'a 257-byte name',
      'POST',
      '/lock/acquire',
      `{"resource":"${'a'.repeat(257)}"}`,
      json,
      400,
      'RESOURCE_NAME_TOO_LONG',
      'resource',
    ],
    [
      'a long client id',
      'POST',
      '/lock/acquire',
      `{"resource":"${resource}","client_id":"${'c'.repeat(129)}"}`,
      json,
      400,
      'CLIENT_ID_TOO_LONG',
      'client_id',
    ],
    [
      'a malformed lock id',
      'POST',
      '/lock/release',
      `{"resource":"${resource}","lock_id":"xyz"}`,
      json,
      400,
      'LOCK_ID_INVALID',
      'lock_id',
    ],
    [
      'no lock id',
      'POST',
      '/lock/extend',
      `{"resource":"${resource}"}`,
      json,
      400,
      'LOCK_ID_INVALID',
      'lock_id',
    ],
    [
      'text/plain',
      'POST',
      '/lock/acquire',
      '{"resource":"a"}',
      { 'content-type': 'text/plain' },
      415,
      'UNSUPPORTED_MEDIA_TYPE',
    ],
    ['no content type', 'POST', '/lock/acquire', '{"resource":"a"}', {}, 415, 'UNSUPPORTED_MEDIA_TYPE'],
    [
      'gzip',
      'POST',
      '/lock/acquire',
      '{"resource":"a"}',
      { ...json, 'content-encoding': 'gzip' },
      415,
      'UNSUPPORTED_ENCODING',
    ],
    [
      'a 17 KiB body',
      'POST',
      '/lock/acquire',
      `{"resource":"${'a'.repeat(17_000)}"}`,
      json,
      413,
      'BODY_TOO_LARGE',
    ],
    [
      '5 000 nested arrays',
      'POST',
      '/lock/acquire',
      `{"resource":${'['.repeat(5_000)}${']'.repeat(5_000)}}`,
      json,
      400,
      'FIELD_TYPE',
      'resource',
    ],
    ['10 000 open brackets', 'POST', '/lock/acquire', '['.repeat(10_000), json, 400, 'MALFORMED_JSON'],
    ['GET on a POST endpoint', 'GET', '/lock/acquire', undefined, {}, 405, 'METHOD_NOT_ALLOWED'],
    ['DELETE on status', 'DELETE', '/lock/status/x', undefined, {}, 405, 'METHOD_NOT_ALLOWED'],
    ['an unknown path', 'GET', '/locks/..%2f..', undefined, {}, 404, 'NOT_FOUND'],
    ['status without a name', 'GET', '/lock/status/', undefined, {}, 404, 'NOT_FOUND'],
    [
      'bad percent-encoding',
      'GET',
      '/lock/status/%ZZ',
      undefined,
      {},
      400,
      'RESOURCE_NAME_INVALID',
      'resource',
    ],
    ['a 9 KiB URL', 'GET', `/lock/status/${'a'.repeat(9_000)}`, undefined, {}, 414, 'URI_TOO_LONG'],
  ];

  it('each is refused with its status and reason; afterwards the holder extends and the server is healthy', async () => {
    const { api, lock } = await lab();
    const { lease } = await lock.acquire({ resource, ttlMs: 10_000 });
    for (const [label, method, path, body, headers, status, reason, field] of cases) {
      const answer = await api.call(method, path, body, headers);
      expect(answer.status, `${label}: ${answer.text}`).toBe(status);
      expectError(answer, status, reason, field);
      if (status === 405) expect(answer.headers.get('allow')).toMatch(/^(GET|POST)$/);
    }
    // Nothing lost: the holder's lease is intact and extends; the server still serves.
    const extended = await lock.extend({ resource, lockId: lease!.lockId, ttlMs: 10_000 });
    expect(extended.lease?.fencingToken).toBe(lease!.fencingToken);
    expect((await api.get('/health')).status).toBe(200);
  });

  it('__proto__ and constructor keys are unknown fields and pollute nothing', async () => {
    const { api } = await lab();
    for (const body of [
      '{"resource":"a","__proto__":{"polluted":1}}',
      '{"constructor":{"prototype":{"polluted":1}}}',
    ]) {
      expectError(await api.post('/lock/acquire', body, json), 400, 'UNKNOWN_FIELD');
    }
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('oversized headers get 431 and the connection closes; the server keeps serving', async () => {
    const { api, server } = await lab();
    const answer = await rawRequest(server.httpPort, {
      path: '/health',
      headers: { 'x-big': 'h'.repeat(20_000) },
    });
    expect(answer.status).toBe(431);
    expect((await api.get('/health')).status).toBe(200);
  });

  it('the HTTP edge gives the same code, reason and message as gRPC for the same mistake', async () => {
    const { api, lock } = await lab();
    const taken = uniqueResource();
    await lock.acquire({ resource: taken, ttlMs: 10_000 });
    const mistakes: [Record<string, unknown>, Record<string, unknown>][] = [
      [{ resource: 'a b' }, { resource: 'a b' }],
      [
        { resource: taken, ttlMs: 99 },
        { resource: taken, ttl_ms: 99 },
      ],
      [
        { resource: taken, waitTimeoutMs: 400_000 },
        { resource: taken, wait_timeout_ms: 400_000 },
      ],
      [{ resource: taken }, { resource: taken }],
    ];
    for (const [grpcRequest, httpBody] of mistakes) {
      let reason: string | undefined;
      const grpc = await rejection(
        lock.acquire(grpcRequest, { onTrailer: (t: Metadata) => (reason = t.get('redlease-reason')) }),
        ClientError,
      );
      const http = (await api.post('/lock/acquire', httpBody)).body.error as Record<string, string>;
      // Messages differ only in remaining times ("for up to 9857 ms more").
      const timeless = (message: string) => message.replace(/\d+ ms/g, 'N ms');
      expect({ code: http.code, reason: http.reason, message: timeless(http.message!) }).toEqual({
        code: Status[grpc.code],
        reason,
        message: timeless(grpc.details),
      });
    }
  });
});

describe('lab JSON API over HTTPS', () => {
  it('serves HTTPS with the gRPC TLS certificate when TLS is configured', async () => {
    const fixture = (name: string) => new URL(`./fixtures/tls/${name}`, import.meta.url).pathname;
    const { server } = await lab([
      '--tls-cert-file',
      fixture('server.pem'),
      '--tls-key-file',
      fixture('server-key.pem'),
    ]);
    const answer = await new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = httpsRequest(
        {
          host: '127.0.0.1',
          port: server.httpPort,
          path: '/health',
          ca: readFileSync(fixture('ca.pem')),
          servername: 'localhost',
        },
        (res) => {
          let text = '';
          res.on('data', (c: Buffer) => (text += c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
        },
      );
      req.on('error', reject);
      req.end();
    });
    expect(answer.status).toBe(200);
    expect(JSON.parse(answer.text)).toMatchObject({ status: 'SERVING' });
    // Plain HTTP to the TLS port gets no JSON answer.
    const plain = await rawRequest(server.httpPort, { path: '/health' }).catch((e: Error) => e);
    expect(plain instanceof Error || plain.status === 400).toBe(true);
  });
});
