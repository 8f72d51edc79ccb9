/**
 * redlease demo worker: competes with other workers for one resource and increments a shared counter through
 * the FencedStore with its lease's fencing token. Run three of them against one server and one store Redis:
 *
 *   node --import tsx workers/worker.ts --name w1 --address 127.0.0.1:50051 --store redis://127.0.0.1:6390
 *   node --import tsx workers/worker.ts --name w2 --stall --ttl-ms 1000   # pauses past its lease: write refused
 *
 * Every event is one pino JSON line on stdout (`worker`, `event`, `token`, `waited_ms`, `value`…), ending with
 * `done` and the counts. SIGTERM / SIGINT: stop after the current step, release the lease, exit 0 (a second
 * signal exits at once with 1). Exit codes: 0 done, 1 failed, 2 bad option. `--help` lists every flag.
 * Wiring only: options in options.ts, rounds in worker-loop.ts.
 */
import { pino } from 'pino';
import { FencedStore, LockClient } from '../client/src/index.js';
import { traceLogFields } from '../telemetry/log-fields.js';
import { describeTracing, startTracing } from '../telemetry/tracing.js';
import { OptionsError, type ParsedOptions, parseOptions } from './options.js';
import { type WorkerCounts, WorkerLoop } from './worker-loop.js';

async function main(): Promise<number> {
  let parsed: ParsedOptions;
  try {
    parsed = parseOptions(process.argv.slice(2), process.env);
  } catch (error) {
    if (!(error instanceof OptionsError)) throw error;
    process.stderr.write(`worker: ${error.message}\n`);
    return 2;
  }
  if ('help' in parsed) {
    process.stdout.write(parsed.help);
    return 0;
  }
  const { options } = parsed;
  // Tracing on (an OTLP endpoint is set): one trace per round, and log lines written in it carry its ids.
  const tracing = options.tracing
    ? await startTracing(options.tracing, { 'service.instance.id': options.name })
    : undefined;
  // Synchronous writes: a line logged just before --stall freezes the event loop is out before the freeze.
  const log = pino(
    { level: options.logLevel, base: { worker: options.name }, ...(tracing && { mixin: traceLogFields }) },
    pino.destination({ dest: 1, sync: true }),
  );
  if (tracing) log.debug({ event: 'tracing', tracing: describeTracing(options.tracing) }, 'tracing');

  const stop = new AbortController();
  const onSignal = (signal: NodeJS.Signals): void => {
    if (stop.signal.aborted) {
      log.warn({ event: 'second signal', signal }, 'second signal: exiting now');
      process.exit(1);
    }
    log.info({ event: 'stopping', signal }, 'stopping after the current step');
    stop.abort();
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);

  let code = 0;
  let loop: WorkerLoop | undefined;
  try {
    const store = await FencedStore.connect({ redis: options.store });
    const client = new LockClient({
      address: options.address,
      clientId: options.name,
      ttlMs: options.ttlMs,
      ...(options.token !== undefined && { token: options.token }),
    });
    loop = new WorkerLoop(client, store, log, options, stop.signal);
    try {
      await loop.run();
    } finally {
      await client.close(); // releases a lease still held (none after a finished round)
      await store.close();
    }
  } catch (error) {
    // The store is unreachable, the resource name is refused, the credentials are, the counter key holds
    // something else…: retrying cannot help.
    log.fatal({ event: 'failed', err: error }, 'worker failed');
    code = 1;
  }
  const counts: WorkerCounts = loop?.counts ?? {
    rounds: 0,
    wins: 0,
    writes: 0,
    refused: 0,
    lost: 0,
    timed_out: 0,
  };
  log.info({ event: 'done', ...counts }, 'done');
  await tracing?.shutdown(2_000); // the last rounds' spans
  return code;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(
      `worker: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
    process.exit(1);
  },
);
