import { type AddressInfo, connect, createServer, type Socket } from 'node:net';
import { describe, expect, it, onTestFinished } from 'vitest';
import { stall } from '../../test/support/stall.js';
import { isNodeTimeout, NodeTimeoutError, withinNodeTimeout } from './node-timeout.js';

const never = new Promise<never>(() => undefined);

describe('withinNodeTimeout', () => {
  it('passes a reply or an error through, and rejects with NodeTimeoutError when nothing comes', async () => {
    expect(await withinNodeTimeout(Promise.resolve('PONG'), 50)).toBe('PONG');
    await expect(withinNodeTimeout(Promise.reject(new Error('ERR x')), 50)).rejects.toThrow('ERR x');
    const started = performance.now();
    const error = await withinNodeTimeout(never, 50).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NodeTimeoutError);
    expect(isNodeTimeout(error)).toBe(true);
    expect(performance.now() - started).toBeGreaterThanOrEqual(50);
  });

  it('counts a reply that arrived while this process was busy past the timeout', async () => {
    // A real socket, so the reply comes in through I/O and waits in the kernel while the loop is blocked.
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    onTestFinished(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const accepted = new Promise<Socket>((resolve) => server.once('connection', resolve));
    const client = connect((server.address() as AddressInfo).port, '127.0.0.1');
    onTestFinished(() => {
      client.destroy();
    });
    const peer = await accepted;
    onTestFinished(() => {
      peer.destroy();
    });

    const reply = new Promise<string>((resolve) => client.once('data', (chunk) => resolve(String(chunk))));
    const judged = withinNodeTimeout(reply, 50);
    peer.write('+PONG');
    stall(200);
    expect(await judged).toBe('+PONG');
  });

  it('still times out a reply that never comes when this process stalled (one extension, not more)', async () => {
    const judged = withinNodeTimeout(never, 50);
    setImmediate(() => stall(200));
    await expect(judged).rejects.toBeInstanceOf(NodeTimeoutError);
  });
});
