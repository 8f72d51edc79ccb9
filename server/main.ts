/**
 * `redlease` server entry point: reads the configuration, starts the server, and stops it gracefully on SIGTERM
 * or SIGINT (a second signal exits at once). Wiring only; see app.ts.
 */
import { hostname } from 'node:os';
import { pino } from 'pino';
import { traceLogFields } from '../telemetry/log-fields.js';
import { startTracing, type Tracing } from '../telemetry/tracing.js';
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
  // not memory), and all written, in order, before every exit. (minLength 1 writes as soon as a line is there, as
  // 0 would, but makes flush(cb) wait for a write in flight.)
  const destination = pino.destination({ dest: 1, sync: false, minLength: 1, maxLength: 16 * 1024 * 1024 });
  // Tracing on (an OTLP endpoint is set): spans are exported, and log lines written under a span carry its ids.
  // Off: nothing of the OpenTelemetry SDK is loaded, and the API the code calls stays a no-op.
  let tracing: Tracing | undefined;
  if (config.tracing) {
    tracing = await startTracing(config.tracing, { 'service.instance.id': `${hostname()}:${process.pid}` });
  }
  const log = pino(
    { level: config.logLevel, base: { service: 'redlease' }, ...(tracing && { mixin: traceLogFields }) },
    destination,
  );
  // flushSync alone would write the lines still queued before the write in flight: the last lines out of order
  // (CI once saw "shutting down" after "redlease stopped"). So wait for the queue to drain, at most a second.
  const exit = async (code: number, sendSpans = true): Promise<never> => {
    if (sendSpans) await tracing?.shutdown(1_000); // the spans still queued: the last calls' traces
    return new Promise<never>(() => {
      const now = (): void => {
        try {
          destination.flushSync();
        } catch {
          // stdout is gone: nothing more can be said
        }
        process.exit(code);
      };
      const timer = setTimeout(now, 1_000);
      destination.flush(() => {
        clearTimeout(timer);
        now();
      });
    });
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
      void exit(1, false);
      return;
    }
    stopping = true;
    log.info({ signal }, 'shutting down');
    server.close().then(
      () => exit(0),
      (error: unknown) => {
        log.error({ err: error }, 'shutdown failed');
        return exit(1);
      },
    );
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

await main();
