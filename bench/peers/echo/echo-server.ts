/**
 * The grpc-js echo server, run by the bench as a process of its own (like the redlease server, so both have one
 * event loop to themselves and share the same 2 cores with the clients). Prints `{"event":"listening","port":N}`
 * on stdout once it listens; stops on SIGTERM.
 */
import {
  Server,
  ServerCredentials,
  type ServerDuplexStream,
  type ServerUnaryCall,
  type sendUnaryData,
} from '@grpc/grpc-js';
import { ECHO_SERVICE } from './echo-service.js';

const server = new Server();
server.addService(ECHO_SERVICE, {
  echo: (call: ServerUnaryCall<Buffer, Buffer>, callback: sendUnaryData<Buffer>) =>
    callback(null, call.request),
  stream: (call: ServerDuplexStream<Buffer, Buffer>) => {
    call.on('data', (message: Buffer) => call.write(message));
    call.on('end', () => call.end());
    call.on('error', () => undefined); // the client went away: nothing to answer
  },
});
server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (error, port) => {
  if (error) {
    process.stderr.write(`echo server: ${error.message}\n`);
    process.exit(1);
  }
  process.stdout.write(`${JSON.stringify({ event: 'listening', port })}\n`);
});
process.once('SIGTERM', () => server.tryShutdown(() => process.exit(0)));
