/**
 * The launcher's end of the node-control protocol (control-protocol.ts): a unix socket server that reads one
 * request line per connection, answers with the handler's response, and closes. Only the owner can connect (the
 * socket is chmod 600). Every wait is bounded: a client has 5 s to send its line, a request is at most 4 KiB.
 */
import { chmod, rm } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { type ControlRequest, type ControlResponse, parseRequest } from './control-protocol.js';

/** A request line is about 50 bytes; anything near this is not one. */
const MAX_REQUEST_BYTES = 4_096;
/** The command writes its line at once after connecting: a client silent this long is not ours. */
const REQUEST_TIMEOUT_MS = 5_000;
/** On close, connections still waiting for an action get this long before they are cut. */
const CLOSE_GRACE_MS = 2_000;

export class ControlServer {
  readonly #sockets = new Set<Socket>();

  private constructor(
    private readonly server: Server,
    readonly path: string,
  ) {}

  /** Listens on `path` (a leftover socket file there is replaced: the caller owns the state dir). */
  static async listen(
    path: string,
    handler: (request: ControlRequest) => Promise<ControlResponse>,
  ): Promise<ControlServer> {
    await rm(path, { force: true });
    const server = createServer();
    const control = new ControlServer(server, path);
    server.on('connection', (socket) => control.#serve(socket, handler));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(path, () => {
        server.off('error', reject);
        resolve();
      });
    });
    await chmod(path, 0o600);
    return control;
  }

  /** Stops accepting; lets answers in progress finish for up to 2 s; removes the socket file. */
  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    const timer = setTimeout(() => {
      for (const socket of this.#sockets) socket.destroy();
    }, CLOSE_GRACE_MS);
    await closed;
    clearTimeout(timer);
    await rm(this.path, { force: true });
  }

  #serve(socket: Socket, handler: (request: ControlRequest) => Promise<ControlResponse>): void {
    this.#sockets.add(socket);
    socket.on('close', () => this.#sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    socket.setTimeout(REQUEST_TIMEOUT_MS, () => socket.destroy());
    let buffer = '';
    const onData = (chunk: Buffer): void => {
      buffer += chunk.toString('utf8');
      const newline = buffer.indexOf('\n');
      if (newline < 0) {
        if (buffer.length > MAX_REQUEST_BYTES) reply({ ok: false, error: 'request too long' });
        return;
      }
      socket.off('data', onData);
      socket.setTimeout(0); // the action itself is bounded by the launcher
      let request: ControlRequest | string;
      try {
        request = parseRequest(JSON.parse(buffer.slice(0, newline)));
      } catch {
        request = 'the request is not JSON';
      }
      if (typeof request === 'string') {
        reply({ ok: false, error: request });
        return;
      }
      handler(request).then(reply, (error: unknown) =>
        reply({ ok: false, error: error instanceof Error ? error.message : String(error) }),
      );
    };
    const reply = (response: ControlResponse): void => {
      if (!socket.destroyed) socket.end(`${JSON.stringify(response)}\n`);
    };
    socket.on('data', onData);
  }
}
