/**
 * The grpc-js echo ceiling as a lock system: "acquire" is one echo call and "release" another, so one cycle is
 * exactly two unary calls, like redlease's Acquire + Release, with nothing behind them. Its cycles/s × 2 is the
 * calls/s ceiling, and its cycles/s is the ceiling for a cycle of two RPCs.
 */
import { type Client, credentials, makeGenericClientConstructor } from '@grpc/grpc-js';
import type { Held, Locker, LockSystem } from '../../lock-system.js';
import { OWN_CONNECTION } from '../redlease.js';
import { ECHO_SERVICE } from './echo-service.js';

/** About the size of an AcquireRequest (resource, 32-hex lock id, client id, ttl). */
const PAYLOAD = Buffer.alloc(100, 'x');

const EchoClient = makeGenericClientConstructor(ECHO_SERVICE, 'Echo');

function echo(client: Client): Promise<void> {
  return new Promise((resolve, reject) => {
    (client as unknown as { echo: (m: Buffer, cb: (e: Error | null) => void) => void }).echo(
      PAYLOAD,
      (error) => (error ? reject(error) : resolve()),
    );
  });
}

export class EchoSystem implements LockSystem {
  readonly name = 'grpc-echo';

  constructor(private readonly address: string) {}

  async connect(): Promise<Locker> {
    const client = new EchoClient(this.address, credentials.createInsecure(), OWN_CONNECTION);
    const held: Held = { release: () => echo(client) };
    return {
      async acquire(): Promise<Held> {
        await echo(client);
        return held;
      },
      async close() {
        client.close();
      },
    };
  }
}
