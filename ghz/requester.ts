// The load itself, as ghz's requester and workers make it (runner/requester.go, runner/worker.go): `connections`
// gRPC connections, `concurrency` workers spread over them ("g<worker>c<connection>"), each taking the next
// request number from one shared pacer (-n, --rps) and making one unary call at a time with the per-request
// timeout. A call's latency runs from just before it is started to its status, response decoded (ghz measures
// the same span with a stats handler). The run ends when the pacer has released every request and the calls in
// flight have ended; or earlier when -z/-x runs out or on stop() (Ctrl-C), and then calls in flight are
// cancelled and counted ("close"), cancelled and not counted ("ignore"), or awaited ("wait").
import { type DescMethod, fromBinary, type Message, type Registry, toBinary } from '@bufbuild/protobuf';
import {
  Client,
  type ClientUnaryCall,
  status as grpcStatus,
  type Metadata,
  type ServiceError,
} from '@grpc/grpc-js';
import { newCallData } from './call-data.js';
import { connectionSettings } from './connection.js';
import { DataProvider } from './data.js';
import type { RunOptions } from './options.js';
import { ConstantPacer } from './pacer.js';
import { type EndReason, type Report, Reporter } from './report.js';
import { rpcErrorText, statusName } from './status.js';

/** A started run; `done` settles with the report, or rejects when the call data cannot make a request. */
export interface Run {
  done: Promise<Report>;
  /** Ends the run early (ghz's reaction to Ctrl-C): endReason "cancel". */
  stop(): void;
}

/** Starts the load for `method` (unary only) as `options` describe. */
export function startRun(options: RunOptions, method: DescMethod, registry: Registry): Run {
  if (method.methodKind !== 'unary') {
    throw new Error(
      `${method.parent.typeName}.${method.name} is a ${method.methodKind.replace('_', ' ')} method; ` +
        'the built-in runner makes unary calls only (install ghz for streaming calls)',
    );
  }
  const workerName = (worker: number, connection: number) =>
    `${options.name ? `${options.name}:` : ''}g${worker}c${connection}`;
  const provider = new DataProvider(
    method,
    registry,
    options.dataText,
    options.metadataText,
    newCallData(method, '', 0),
  );
  const settings = connectionSettings(options);
  const clients = Array.from(
    { length: options.connections },
    // A local subchannel pool gives each client its own connection, as ghz dials one per --connections.
    () =>
      new Client(options.host, settings.credentials, {
        ...settings.options,
        'grpc.use_local_subchannel_pool': 1,
      }),
  );
  const path = `/${method.parent.typeName}/${method.name}`;
  const serialize = (message: Message) => Buffer.from(toBinary(method.input, message));
  const deserialize = (bytes: Buffer) => fromBinary(method.output, bytes);

  const reporter = new Reporter(options);
  const pacer = new ConstantPacer(options.rps, options.total);
  const inFlight = new Set<ClientUnaryCall>();
  const stopped = new AbortController();
  let endReason: EndReason = 'normal';
  let ignoreResults = false;
  let failure: unknown;
  let hits = 0;
  let turn: Promise<unknown> = Promise.resolve();
  const start = process.hrtime.bigint();
  const elapsedNs = () => Number(process.hrtime.bigint() - start);

  /** Ends the run: no request starts after this; calls in flight end as --duration-stop says. */
  function stop(reason: EndReason): void {
    if (stopped.signal.aborted) return;
    endReason = reason;
    stopped.abort();
    if (options.durationStop === 'wait') return;
    ignoreResults = options.durationStop === 'ignore';
    for (const call of inFlight) call.cancel();
  }

  /** The next request number, once the pacer releases it; undefined when the run is over. Workers take turns. */
  function next(): Promise<number | undefined> {
    const ticket = turn.then(async () => {
      if (stopped.signal.aborted) return undefined;
      const { waitNs, stop: done } = pacer.pace(elapsedNs(), hits);
      if (done) return undefined;
      if (waitNs > 0) await sleep(waitNs / 1e6, stopped.signal);
      return stopped.signal.aborted ? undefined : hits++;
    });
    turn = ticket;
    return ticket;
  }

  async function worker(id: string, client: Client): Promise<void> {
    for (;;) {
      const requestNumber = await next();
      if (requestNumber === undefined) return;
      let message: Message;
      let metadata: Metadata;
      try {
        const data = newCallData(method, id, requestNumber);
        message = provider.message(data);
        metadata = provider.metadata(data);
      } catch (error) {
        failure ??= error;
        stop(endReason);
        return;
      }
      await call(client, message, metadata);
    }
  }

  function call(client: Client, message: Message, metadata: Metadata): Promise<void> {
    return new Promise((resolve) => {
      const deadline = options.timeoutNs > 0 ? new Date(Date.now() + options.timeoutNs / 1e6) : Infinity;
      const began = process.hrtime.bigint();
      const unary = client.makeUnaryRequest(
        path,
        serialize,
        deserialize,
        message,
        metadata,
        { deadline },
        (error: ServiceError | null) => {
          const latencyNs = Number(process.hrtime.bigint() - began);
          inFlight.delete(unary);
          if (!ignoreResults) {
            const code = error ? error.code : grpcStatus.OK;
            reporter.add({
              latencyNs,
              status: statusName(code),
              error: error ? rpcErrorText(code, error.details) : '',
              timestamp: new Date(),
            });
          }
          resolve();
        },
      );
      inFlight.add(unary);
    });
  }

  const timer =
    options.durationNs > 0
      ? setTimeout(() => stop('timeout'), Math.ceil(options.durationNs / 1e6))
      : undefined;
  const done = (async () => {
    try {
      await Promise.all(
        Array.from({ length: options.concurrency }, (_, w) =>
          worker(workerName(w, w % options.connections), clients[w % options.connections]!),
        ),
      );
    } finally {
      clearTimeout(timer);
      for (const client of clients) client.close();
    }
    if (failure !== undefined) throw failure;
    return reporter.finalize(endReason, elapsedNs());
  })();
  return { done, stop: () => stop('cancel') };
}

/** Resolves after `ms`, or at once when `signal` aborts. */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
  });
}
