import { readFileSync } from 'node:fs';
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

/** Where fixed ports are drawn from when the ephemeral range is unknown: below Linux's default 32768–60999. */
const FIXED_PORT_MIN = 20_000;
const DEFAULT_EPHEMERAL_START = 32_768;
/** Fixed ports handed out by this process, never handed out twice. */
const fixedPortsGiven = new Set<number>();

/** First port of the kernel's ephemeral range (Linux; the default elsewhere). */
function ephemeralStart(): number {
  try {
    const start = Number(
      readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0],
    );
    return Number.isInteger(start) && start > FIXED_PORT_MIN + 1_000 ? start : DEFAULT_EPHEMERAL_START;
  } catch {
    return DEFAULT_EPHEMERAL_START;
  }
}

/**
 * A free TCP port on `host` below the kernel's ephemeral range, for a service that must keep its port while it
 * stops and starts again (the demo's Redis nodes). The kernel gives ports of that range to every listen on port 0
 * and every outgoing connection, so a port from freePort() that is released for a moment can be taken by any
 * process on the machine; a port below it is only ever taken by someone who asks for that very number.
 * Random in [20000, start of the ephemeral range), probed by listening; never the same twice in one process.
 */
export async function freeFixedPort(host = '127.0.0.1'): Promise<number> {
  const end = ephemeralStart();
  for (let attempt = 0; attempt < 100; attempt++) {
    const port = FIXED_PORT_MIN + Math.floor(Math.random() * (end - FIXED_PORT_MIN));
    if (fixedPortsGiven.has(port)) continue;
    fixedPortsGiven.add(port); // before the probe, so concurrent calls never pick the same port
    if (await canListen(host, port)) return port;
    fixedPortsGiven.delete(port);
  }
  throw new Error(`freeFixedPort: no free port found in [${FIXED_PORT_MIN}, ${end}) on ${host}`);
}

function canListen(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.unref();
    server.once('error', () => resolve(false));
    server.listen({ host, port, exclusive: true }, () => server.close(() => resolve(true)));
  });
}
