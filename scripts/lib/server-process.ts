/** Test/demo harness: a real redlease server as a child process (`node --import tsx server/main.ts`). */
import { type Exit, type LogLine, NodeProcess } from './node-process.js';
import { waitFor } from './wait.js';

export type { Exit, LogLine };

export class ServerProcess extends NodeProcess {
  /** Spawns the server with `args` (flags of server/config.ts) without waiting for it. */
  static spawn(args: readonly string[], env: NodeJS.ProcessEnv = {}): ServerProcess {
    return new ServerProcess(NodeProcess.spawnScript('server/main.ts', args, { ...process.env, ...env }));
  }

  /** Spawns the server and waits until it listens (its 'redlease listening' line: keep --log-level at info or
   *  lower); `grpcPort` is then known (use --grpc-listen 127.0.0.1:0). */
  static async start(args: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<ServerProcess> {
    const server = ServerProcess.spawn(args, env);
    try {
      await waitFor(
        'the server to listen',
        () => {
          if (server.exitInfo) {
            throw new Error(`server exited (${JSON.stringify(server.exitInfo)}): ${server.output.join('')}`);
          }
          return server.logs.some((l) => l.msg === 'redlease listening');
        },
        20_000,
        20,
      );
    } catch (error) {
      server.child.kill('SIGKILL');
      throw error;
    }
    return server;
  }

  get grpcPort(): number {
    return this.listeningPort('grpc');
  }

  /** The lab JSON API's port (use --http-listen 127.0.0.1:0 for a free one). */
  get httpPort(): number {
    return this.listeningPort('http');
  }

  private listeningPort(field: 'grpc' | 'http'): number {
    const line = this.logs.find((l) => l.msg === 'redlease listening');
    const address = String(line?.[field] ?? '');
    return Number(address.slice(address.lastIndexOf(':') + 1));
  }
}
