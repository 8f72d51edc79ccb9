/** Test/demo harness: a real redlease server as a child process (`node --import tsx server/main.ts`, or the
 *  compiled `dist/server/main.js` the container image runs: `entry`). */
import { type Exit, type LogLine, NodeProcess, type NodeProcessOptions } from './node-process.js';
import { waitFor } from './wait.js';

export type { Exit, LogLine, NodeProcessOptions };

/** `entry`: the script to run (default `server/main.ts` under tsx; a `.js` file runs without tsx). */
type SpawnOptions = NodeProcessOptions & { replaceEnv?: boolean; entry?: string };

export class ServerProcess extends NodeProcess {
  #listening: LogLine | undefined;

  /** Spawns the server with `args` (flags of server/config.ts) without waiting for it. `env` is added to this
   *  process's environment, or is the whole environment with `options.replaceEnv`. */
  static spawn(
    args: readonly string[],
    env: NodeJS.ProcessEnv = {},
    options: SpawnOptions = {},
  ): ServerProcess {
    const fullEnv = options.replaceEnv ? env : { ...process.env, ...env };
    const entry = options.entry ?? 'server/main.ts';
    return new ServerProcess(NodeProcess.spawnScript(entry, args, fullEnv, options), options);
  }

  /** Spawns the server and waits until it listens (its 'redlease listening' line: keep --log-level at info or
   *  lower); `grpcPort` is then known (use --grpc-listen 127.0.0.1:0). */
  static async start(
    args: readonly string[],
    env: NodeJS.ProcessEnv = {},
    options: SpawnOptions = {},
  ): Promise<ServerProcess> {
    const server = ServerProcess.spawn(args, env, options);
    try {
      await waitFor(
        'the server to listen',
        () => {
          if (server.exitInfo) {
            throw new Error(`server exited (${JSON.stringify(server.exitInfo)}): ${server.output.join('')}`);
          }
          return server.listening !== undefined;
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

  /** Its 'redlease listening' line, once written (kept when older log lines are trimmed, see keepLines). */
  get listening(): LogLine | undefined {
    this.#listening ??= this.logs.find((l) => l.msg === 'redlease listening');
    return this.#listening;
  }

  private listeningPort(field: 'grpc' | 'http'): number {
    const address = String(this.listening?.[field] ?? '');
    return Number(address.slice(address.lastIndexOf(':') + 1));
  }
}
