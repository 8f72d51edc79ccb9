/** Test harness: a real worker as a child process (`node --import tsx workers/worker.ts`), killed when the test
 *  ends. */
import { onTestFinished } from 'vitest';
import { type Exit, type LogLine, NodeProcess } from '../../scripts/lib/node-process.js';
import { waitFor } from '../../scripts/lib/wait.js';

export type WorkerLog = LogLine & { worker?: string; token?: number };
export type { Exit };

export class WorkerProcess extends NodeProcess {
  declare readonly logs: WorkerLog[];

  /** Spawns a worker with `args` (flags of workers/options.ts); killed when the current test ends. */
  static start(args: readonly string[], env: NodeJS.ProcessEnv = {}): WorkerProcess {
    // The REDLEASE_ variables of whoever runs the tests must not leak into the workers' options.
    const child = NodeProcess.spawnScript('workers/worker.ts', args, {
      ...withoutRedlease(process.env),
      ...env,
    });
    const worker = new WorkerProcess(child);
    onTestFinished(() => worker.stop('SIGKILL').then(() => undefined));
    return worker;
  }

  /** The name it logs under (its --name). */
  get name(): string | undefined {
    return this.logs.find((l) => typeof l.worker === 'string')?.worker;
  }

  /** The first line of `event` (matching `match`), waiting for it; fails early if the worker exits first. */
  async next(event: string, match: (line: WorkerLog) => boolean = () => true, timeoutMs = 20_000) {
    return await waitFor(
      `"${event}" from the worker`,
      () => {
        const line = this.logs.find((l) => l.event === event && match(l));
        if (line) return line;
        if (this.exitInfo) {
          throw new Error(
            `the worker exited (${JSON.stringify(this.exitInfo)}) without "${event}": ${this.dump()}`,
          );
        }
        return undefined;
      },
      timeoutMs,
      20,
    );
  }
}

function withoutRedlease(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(env).filter(([name]) => !name.startsWith('REDLEASE_')));
}
