import { describe, expect, it } from 'vitest';
import {
  AdminNetworks,
  AuthError,
  Authenticator,
  LOOPBACK_NETWORKS,
  parseNetworks,
  peerAddress,
} from './auth.js';

describe('peerAddress (the gRPC edge: grpc-js peer strings)', () => {
  it.each([
    ['127.0.0.1:50000', '127.0.0.1'],
    ['ipv4:127.0.0.1:50000', '127.0.0.1'],
    ['[::1]:50000', '::1'],
    ['ipv6:[::1]:50000', '::1'],
    ['[::ffff:127.0.0.1]:50000', '::ffff:127.0.0.1'],
    // What grpc-js reports on a dual-stack ([::]) listener: IPv6 without brackets, then the port.
    ['::1:47892', '::1'],
    ['::ffff:172.16.37.1:35756', '::ffff:172.16.37.1'],
    ['2001:db8::1:50000', '2001:db8::1'],
    ['[2001:db8::1]:50000', '2001:db8::1'],
    ['unix:/run/redlease.sock', undefined],
  ])('%s → %s', (peer, address) => {
    expect(peerAddress(peer)).toBe(address);
  });
});

describe('AdminNetworks (who may make admin calls without the admin token)', () => {
  const loopback = new AdminNetworks(LOOPBACK_NETWORKS);
  it.each([
    ['127.0.0.1', true],
    ['127.8.9.10', true],
    ['::1', true],
    ['::ffff:127.0.0.1', true],
    ['::FFFF:127.0.0.1', true],
    ['10.0.0.5', false],
    ['128.0.0.1', false],
    ['::ffff:10.0.0.1', false],
    ['2001:db8::1', false],
    ['::2', false],
    ['', false],
    ['localhost', false],
  ])('loopback, the default: %s → %s', (address, allowed) => {
    expect(loopback.allows(address)).toBe(allowed);
  });

  const lab = new AdminNetworks(parseNetworks('172.16.37.0/24,fd00:37::/64'));
  it.each([
    ['172.16.37.1', true],
    ['172.16.37.254', true],
    ['::ffff:172.16.37.1', true], // IPv4 mapped into IPv6, as a dual-stack listener reports it
    ['172.16.38.1', false],
    ['127.0.0.1', false], // the list replaces loopback, it does not add to it
    ['fd00:37::5', true],
    ['fd00:37:0:1::5', false],
    ['fe80::1%eth0', false],
  ])('172.16.37.0/24 and fd00:37::/64: %s → %s', (address, allowed) => {
    expect(lab.allows(address)).toBe(allowed);
  });

  it('admits a unix socket peer (no address) exactly when loopback is admitted', () => {
    expect(loopback.allows(undefined)).toBe(true);
    expect(lab.allows(undefined)).toBe(false);
  });
});

describe('parseNetworks', () => {
  it('writes each entry out as address/prefix; single addresses are /32 or /128', () => {
    expect(parseNetworks('10.0.0.0/8, 10.1.2.3 ,::1,fd00::/8')).toEqual([
      '10.0.0.0/8',
      '10.1.2.3/32',
      '::1/128',
      'fd00::/8',
    ]);
    expect(parseNetworks('')).toEqual([]);
  });

  it.each([
    '10.0.0.0/33',
    '10.0.0/8',
    '10.0.0.0/',
    '10.0.0.0/-1',
    'fd00::/129',
    'host.example',
    '10.0.0.0/08x',
  ])('refuses %s, saying how to write a network', (text) => {
    expect(() => parseNetworks(text)).toThrow(`"${text}" is not a network: write address/prefix`);
  });
});

describe('Authenticator: admin calls', () => {
  const refused = (f: () => void): AuthError => {
    try {
      f();
    } catch (error) {
      if (error instanceof AuthError) return error;
      throw error;
    }
    throw new Error('the call was admitted');
  };
  const none = () => undefined;

  it('without a token: a peer outside the networks is PERMISSION_DENIED, naming the option', () => {
    const auth = new Authenticator({
      adminNetworks: new AdminNetworks(['172.16.37.0/24']),
      clientTokens: [],
    });
    expect(() => auth.check('admin', none, () => '172.16.37.1')).not.toThrow();
    const error = refused(() => auth.check('admin', none, () => '10.9.8.7'));
    expect(error).toMatchObject({ code: 'PERMISSION_DENIED', reason: 'ADMIN_NETWORK_REFUSED' });
    expect(error.message).toBe(
      'admin calls are not accepted from 10.9.8.7: add its network to --admin-networks (REDLEASE_ADMIN_NETWORKS), or configure an admin token',
    );
  });

  it('with a token: the token admits from anywhere, the networks without it; else UNAUTHENTICATED', () => {
    const auth = new Authenticator({
      adminToken: 'admin-token-0123456789',
      adminNetworks: new AdminNetworks(['172.16.37.0/24']),
      clientTokens: ['client-token-0123456789'],
    });
    expect(() => auth.check('admin', none, () => '172.16.37.9')).not.toThrow();
    expect(() =>
      auth.check(
        'admin',
        () => 'Bearer admin-token-0123456789',
        () => '10.9.8.7',
      ),
    ).not.toThrow();
    expect(refused(() => auth.check('admin', none, () => '10.9.8.7'))).toMatchObject({
      code: 'UNAUTHENTICATED',
      reason: 'ADMIN_TOKEN_REQUIRED',
    });
    expect(
      refused(() =>
        auth.check(
          'admin',
          () => 'Bearer client-token-0123456789',
          () => '10.9.8.7',
        ),
      ),
    ).toMatchObject({ code: 'PERMISSION_DENIED', reason: 'CLIENT_TOKEN_ON_ADMIN' });
  });
});
