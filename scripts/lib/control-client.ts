/**
 * The command's end of the node-control protocol (control-protocol.ts): sends one request to the launcher's
 * socket and returns its response. Bounded: a stop or start may take the launcher up to about 12 s (redis
 * SHUTDOWN, then SIGTERM, then SIGKILL, each after a bounded wait; a start waits ≤ 10 s for PING).
 */
import { connect } from 'node:net';
import type { ControlRequest, ControlResponse } from './control-protocol.js';

const RESPONSE_TIMEOUT_MS = 30_000;

/** Thrown when the launcher cannot be reached or does not answer; `code` is the socket error code, if any. */
export class ControlUnreachableError extends Error {
  override readonly name = 'ControlUnreachableError';
  constructor(
    message: string,
    readonly code?: string,
  ) {
    super(message);
  }
}

export async function sendControl(
  path: string,
  request: ControlRequest,
  timeoutMs = RESPONSE_TIMEOUT_MS,
): Promise<ControlResponse> {
  return await new Promise<ControlResponse>((resolve, reject) => {
    const socket = connect(path);
    let buffer = '';
    const fail = (error: Error): void => {
      socket.destroy();
      reject(error);
    };
    socket.setTimeout(timeoutMs, () =>
      fail(new ControlUnreachableError(`the demo did not answer within ${timeoutMs / 1000} s`)),
    );
    socket.once('connect', () => socket.write(`${JSON.stringify(request)}\n`));
    socket.on('data', (chunk: Buffer) => {
      buffer += chunk.toString('utf8');
    });
    socket.once('error', (error: NodeJS.ErrnoException) =>
      fail(new ControlUnreachableError(error.message, error.code)),
    );
    socket.once('close', () => {
      const line = buffer.split('\n')[0] ?? '';
      try {
        resolve(JSON.parse(line) as ControlResponse);
      } catch {
        reject(new ControlUnreachableError('the demo closed the connection without an answer'));
      }
    });
  });
}
