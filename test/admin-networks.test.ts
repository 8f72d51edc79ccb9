/**
 * --admin-networks against a real server, called from a real peer on another network (a network namespace of our
 * own, test/support/netns.ts): on both edges, over IPv4 and over a dual-stack listener that sees the peer as
 * IPv4 mapped into IPv6; a peer outside the list refused with PERMISSION_DENIED / 403 naming the option; the
 * admin token still admitting from anywhere.
 */
import { Status } from 'nice-grpc';
import { describe, expect, it } from 'vitest';
import { startTestHost, type TestHost } from './support/netns.js';
import { startTestServer } from './support/server.js';

/** An admin call over HTTP from inside the test host: the status and the JSON body. */
async function httpFrom(
  host: TestHost,
  url: string,
  options: { method?: string; token?: string } = {},
): Promise<{
  status: number;
  body: { mode?: string; error?: { code: string; reason: string; message: string } };
}> {
  const args = ['-s', '-X', options.method ?? 'GET', '-w', '\n%{http_code}', url];
  if (options.token) args.push('-H', `authorization: Bearer ${options.token}`);
  const out = await host.run('curl', args);
  const cut = out.lastIndexOf('\n');
  return { status: Number(out.slice(cut + 1)), body: JSON.parse(out.slice(0, cut)) };
}

/** AdminService.GetMode over gRPC from inside the test host (test/fixtures/admin-call.ts). */
async function grpcFrom(
  host: TestHost,
  address: string,
): Promise<{ code: number; reason: string; message?: string }> {
  return JSON.parse(
    await host.run(process.execPath, ['--import', 'tsx', 'test/fixtures/admin-call.ts', address]),
  );
}

/** `host:port` for a URL or a gRPC target, IPv6 in brackets. */
function at(listen: string, port: number): string {
  return `${listen}:${port}`;
}

describe('--admin-networks', () => {
  it('admits a peer inside the list on both edges, as IPv4 and as IPv4 mapped into IPv6', async () => {
    const host = await startTestHost();
    const network = `${host.peerAddress}/30`;
    // The host's own address, then all interfaces of a dual-stack listener (the peer shows as ::ffff:169.254.…).
    for (const listen of [host.hostAddress, '[::]']) {
      const t = await startTestServer([
        '--grpc-listen',
        `${listen}:0`,
        '--http-listen',
        `${listen}:0`,
        '--admin-networks',
        network,
      ]);
      const http = `http://${at(host.hostAddress, t.server.httpPort)}`;
      expect(await httpFrom(host, `${http}/admin/mode`), listen).toEqual({
        status: 200,
        body: { mode: 'redlock' },
      });
      const set = await httpFrom(host, `${http}/admin/mode?mode=single`, { method: 'POST' });
      expect(set.status, listen).toBe(200);
      expect(t.server.coordinator.getMode(), listen).toBe('single');
      expect(await grpcFrom(host, at(host.hostAddress, t.server.grpcPort)), listen).toMatchObject({
        code: Status.OK,
      });
    }
  });

  it('refuses a peer outside the list: PERMISSION_DENIED and HTTP 403, naming --admin-networks', async () => {
    const host = await startTestHost();
    const t = await startTestServer([
      '--grpc-listen',
      `${host.hostAddress}:0`,
      '--http-listen',
      `${host.hostAddress}:0`,
      '--admin-networks',
      '10.0.0.0/8,fd00::/8',
    ]);
    const message = `admin calls are not accepted from ${host.peerAddress}: add its network to --admin-networks (REDLEASE_ADMIN_NETWORKS), or configure an admin token`;
    const http = await httpFrom(host, `http://${at(host.hostAddress, t.server.httpPort)}/admin/redis/status`);
    expect(http).toEqual({
      status: 403,
      body: { error: { code: 'PERMISSION_DENIED', reason: 'ADMIN_NETWORK_REFUSED', message } },
    });
    expect(await grpcFrom(host, at(host.hostAddress, t.server.grpcPort))).toEqual({
      code: Status.PERMISSION_DENIED,
      reason: 'ADMIN_NETWORK_REFUSED',
      message,
    });
    expect(t.server.coordinator.getMode()).toBe('redlock');
  });

  it('keeps the admin token working: it admits a peer outside the list, which is 401 without it', async () => {
    const host = await startTestHost();
    const token = 'admin-token-0123456789';
    const t = await startTestServer(
      [
        '--grpc-listen',
        `${host.hostAddress}:0`,
        '--http-listen',
        `${host.hostAddress}:0`,
        '--admin-networks',
        '10.0.0.0/8',
      ],
      { env: { REDLEASE_ADMIN_TOKEN: token } },
    );
    const url = `http://${at(host.hostAddress, t.server.httpPort)}/admin/mode`;
    expect(await httpFrom(host, url, { token })).toEqual({ status: 200, body: { mode: 'redlock' } });
    const without = await httpFrom(host, url);
    expect(without.status).toBe(401);
    expect(without.body.error).toMatchObject({ code: 'UNAUTHENTICATED', reason: 'ADMIN_TOKEN_REQUIRED' });
    expect(without.body.error?.message).toContain('--admin-networks');
  });
});
