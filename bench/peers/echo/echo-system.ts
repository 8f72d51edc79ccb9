/**
 * The grpc-js echo ceilings as lock systems, with nothing behind them. `grpc-echo`: "acquire" is one unary echo
 * call and "release" another, so one cycle is exactly two unary calls, like redlease's Acquire + Release; its
 * cycles/s × 2 is the calls/s ceiling, and its cycles/s the ceiling for a cycle of two RPCs. `grpc-echo-stream`:
 * each client opens one bidirectional stream, and "acquire" and "release" are one message each way on it (the
 * server answers in order, so the answers are matched to the requests by order): the ceiling for a cycle of two
 * requests carried as messages on an open stream.
 */
import {
  type Client,
  type ClientDuplexStream,
  credentials,
  makeGenericClientConstructor,
} from '@grpc/grpc-js';
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

/** One open echo stream: requests are answered in the order they were written. */
class EchoStream {
  private readonly stream: ClientDuplexStream<Buffer, Buffer>;
  private readonly waiting: { resolve: () => void; reject: (error: Error) => void }[] = [];
  private failure: Error | undefined;

  constructor(client: Client) {
    this.stream = (client as unknown as { stream: () => ClientDuplexStream<Buffer, Buffer> }).stream();
    this.stream.on('data', () => this.waiting.shift()?.resolve());
    this.stream.on('error', (error: Error) => this.fail(error));
    this.stream.on('end', () => this.fail(new Error('the echo stream ended')));
  }

  echo(): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.waiting.push({ resolve, reject });
      this.stream.write(PAYLOAD);
    });
  }

  close(): void {
    this.failure ??= new Error('the echo stream was closed');
    this.stream.cancel();
  }

  private fail(error: Error): void {
    this.failure ??= error;
    for (const w of this.waiting.splice(0)) w.reject(this.failure);
  }
}

export class EchoStreamSystem implements LockSystem {
  readonly name = 'grpc-echo-stream';

  constructor(private readonly address: string) {}

  async connect(): Promise<Locker> {
    const client = new EchoClient(this.address, credentials.createInsecure(), OWN_CONNECTION);
    const stream = new EchoStream(client);
    const held: Held = { release: () => stream.echo() };
    return {
      async acquire(): Promise<Held> {
        await stream.echo();
        return held;
      },
      async close() {
        stream.close();
        client.close();
      },
    };
  }
}
