/**
 * `redlease` server entry point: reads the configuration, starts the server, and stops it gracefully on SIGTERM
 * or SIGINT (a second signal exits at once). Wiring only; see app.ts.
 */
import { pino } from 'pino';
import { startServer } from './app.js';
import { ConfigError, parseConfig } from './config.js';

async function main(): Promise<void> {
  let parsed: ReturnType<typeof parseConfig>;
  try {
    parsed = parseConfig(process.argv.slice(2), process.env);
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`redlease: ${error.message}\n`);
      process.exit(2);
    }
    throw error;
  }
  if ('help' in parsed) {
    process.stdout.write(parsed.help);
    return;
  }
  const { config, warnings } = parsed;
  // Asynchronous writes: lines logged while one write is under way go out together in the next, so a log line per
  // lock event costs no syscall of its own under load. The buffer is bounded (16 MiB; past it lines are dropped,
  // not memory), and flushed synchronously before every exit.
  const destination = pino.destination({ dest: 1, sync: false, maxLength: 16 * 1024 * 1024 });
  const log = pino({ level: config.logLevel, base: { service: 'redlease' } }, destination);
  const exit = (code: number): never => {
    destination.flushSync();
    process.exit(code);
  };
  for (const warning of warnings) log.warn(warning);

  const server = await startServer(config, log).catch((error: unknown) => {
    log.fatal({ err: error }, 'redlease could not start');
    return exit(1);
  });

  let stopping = false;
  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) {
      log.warn({ signal }, 'second signal: exiting now');
      exit(1);
    }
    stopping = true;
    log.info({ signal }, 'shutting down');
    server.close().then(
      () => exit(0),
      (error: unknown) => {
        log.error({ err: error }, 'shutdown failed');
        exit(1);
      },
    );
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

await main();
