import { createServer } from 'node:net';

/**
 * Ask the kernel for a currently free TCP port on `host`: listen on port 0, read the port it picked, close.
 *
 * The port is only free at the moment of the call; whoever binds it next may race another process. Callers that
 * spawn a server on it (see RedisProcess) must detect "Address already in use" and retry with a new port.
 */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  return await new Promise<number>((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen({ host, port: 0, exclusive: true }, () => {
      const address = server.address();
      if (address === null || typeof address === 'string') {
        server.close();
        reject(new Error(`freePort: unexpected server address ${String(address)}`));
        return;
      }
      const { port } = address;
      server.close((err) => (err ? reject(err) : resolve(port)));
    });
  });
}
