/**
 * The demo launcher: `npm run demo` (scripts/demo.sh installs what is missing, then runs this file with the
 * arguments given). Starts three Redis lock nodes, the workers' store Redis, the redlease server and the workers
 * as child processes, shows their logs interleaved, and runs until stopped; `npm run nodes` (scripts/nodes.ts)
 * stops, starts, pauses and resumes the nodes meanwhile. See --help, and demo-launcher.ts for how nothing is left
 * behind.
 *
 * Exit codes: 0 stopped by Ctrl-C, SIGTERM or SIGHUP (a clean stop); 1 failed (already running, a port in use, a
 * process that would not start, the server died, or a second signal killed everything); 2 bad option.
 * Wiring only: options in lib/demo-options.ts, processes in lib/demo-launcher.ts.
 */
import { performance } from 'node:perf_hooks';
import { demoBanner } from './lib/demo-banner.js';
import { DemoLauncher, StartInterrupted } from './lib/demo-launcher.js';
import { DemoOptionsError, type ParsedDemoOptions, parseDemoOptions } from './lib/demo-options.js';
import { DemoOutput } from './lib/demo-output.js';
import { AlreadyRunningError } from './lib/demo-state.js';

/**
 * `npm run demo` forwards the terminal's Ctrl-C to the launcher, which also gets it from the terminal itself: a
 * repeat this soon is that echo. A later one is someone who does not want to wait: everything is killed at once.
 */
const SIGNAL_ECHO_MS = 1_000;

async function main(): Promise<number> {
  let parsed: ParsedDemoOptions;
  try {
    parsed = parseDemoOptions(process.argv.slice(2));
  } catch (error) {
    if (!(error instanceof DemoOptionsError)) throw error;
    process.stderr.write(`demo: ${error.message}\n`);
    return 2;
  }
  if ('help' in parsed) {
    process.stdout.write(parsed.help);
    return 0;
  }
  const out = new DemoOutput();
  const launcher = new DemoLauncher(parsed.options, out);

  let firstSignalAt: number | undefined;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (firstSignalAt === undefined) {
      firstSignalAt = performance.now();
      out.demo(`${signal}: stopping everything (workers, then the server, then Redis)`);
      void launcher.stop(0);
      return;
    }
    if (performance.now() - firstSignalAt < SIGNAL_ECHO_MS) return;
    out.demo(`${signal} again: killing everything now`, 'warn');
    launcher.killNow();
    process.exit(1);
  };
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, onSignal);

  try {
    await launcher.start();
  } catch (error) {
    if (error instanceof AlreadyRunningError) {
      process.stderr.write(
        `demo: ${error.message} in ${launcher.state.dir}: stop it with Ctrl-C in its terminal (or kill ` +
          `${error.record.pid}), or start this one with another --state-dir and other ports\n`,
      );
    } else if (!(error instanceof StartInterrupted)) {
      process.stderr.write(
        `demo: could not start: ${error instanceof Error ? error.message : String(error)}\n`,
      );
    }
    await launcher.stop(1);
    return error instanceof StartInterrupted ? await launcher.done : 1;
  }
  for (const line of demoBanner(parsed.options, launcher.workerNames, out.color)) out.write('demo', line);
  return await launcher.done;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(
      `demo: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
    process.exit(1);
  },
);
