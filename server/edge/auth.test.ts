import { describe, expect, it } from 'vitest';
import { isLoopbackAddress, isLoopbackPeer } from './auth.js';

describe('isLoopbackPeer (admin calls without an admin token are accepted only from loopback)', () => {
  it.each([
    ['127.0.0.1:50000', true],
    ['ipv4:127.0.0.1:50000', true],
    ['127.8.9.10:1', true],
    ['[::1]:50000', true],
    ['ipv6:[::1]:50000', true],
    ['[::ffff:127.0.0.1]:50000', true],
    // What grpc-js reports on a dual-stack ([::]) listener: IPv6 without brackets, then the port.
    ['::1:47892', true],
    ['::ffff:127.0.0.1:35756', true],
    ['::ffff:10.0.0.1:35756', false],
    ['2001:db8::1:50000', false],
    ['10.0.0.5:50000', false],
    ['192.168.1.2:443', false],
    ['[2001:db8::1]:50000', false],
    ['[::ffff:10.0.0.1]:50000', false],
    ['128.0.0.1:1', false],
    ['localhost.evil.example:1', false],
  ])('%s → %s', (peer, loopback) => {
    expect(isLoopbackPeer(peer)).toBe(loopback);
  });
});

describe('isLoopbackAddress (the HTTP edge: socket.remoteAddress, no port)', () => {
  it.each([
    ['127.0.0.1', true],
    ['127.8.9.10', true],
    ['::1', true],
    ['::ffff:127.0.0.1', true],
    ['::FFFF:127.0.0.1', true],
    ['10.0.0.5', false],
    ['::ffff:10.0.0.1', false],
    ['2001:db8::1', false],
    ['', false],
  ])('%s → %s', (address, loopback) => {
    expect(isLoopbackAddress(address)).toBe(loopback);
  });
});
