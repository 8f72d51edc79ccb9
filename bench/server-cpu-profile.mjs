/**
 * Preloaded into the redlease server by `npm run bench -- --server-cpu-prof <dir>` (NODE_OPTIONS=--import …:
 * Node 20 refuses --cpu-prof in NODE_OPTIONS, and ServerProcess spawns node itself). Starts V8's sampling
 * profiler at once and writes <dir>/server-<pid>.cpuprofile (Chrome DevTools format) when the process exits —
 * the server exits through process.exit after a graceful SIGTERM. Plain JavaScript: it loads before tsx.
 */
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import { join } from 'node:path';

const dir = process.env.REDLEASE_BENCH_CPU_PROF_DIR;
if (dir) {
  const session = new Session();
  session.connect();
  session.post('Profiler.enable');
  // 100 µs between samples (V8's default is 1 ms): cycles take about a millisecond, so see inside them.
  session.post('Profiler.setSamplingInterval', { interval: 100 });
  session.post('Profiler.start');
  process.once('exit', () => {
    // In the main thread the inspector answers synchronously, so this completes inside the 'exit' handler.
    session.post('Profiler.stop', (error, result) => {
      if (!error)
        writeFileSync(join(dir, `server-${process.pid}.cpuprofile`), JSON.stringify(result.profile));
    });
  });
}
