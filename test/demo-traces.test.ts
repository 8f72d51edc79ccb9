/**
 * `npm run demo -- --traces`: the launcher receives the server's and the workers' spans over OTLP/HTTP and prints
 * each finished acquire as one line; a node that stops answering shows there as that node's timeout. Also: with
 * OTEL_EXPORTER_OTLP_ENDPOINT set, the same spans go on to that collector.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { OtlpReceiver } from '../scripts/lib/otlp-receiver.js';
import { demoArgs, ScriptRun, startLauncher } from './support/demo.js';
import { waitFor } from './support/server.js';

const COMMAND_TIMEOUT_MS = 20_000;

describe('npm run demo -- --traces', () => {
  it('prints each finished acquire as one line; a paused node shows as its timeout; spans go on to OTEL_EXPORTER_OTLP_ENDPOINT', async () => {
    const stateDir = await mkdtemp(join(tmpdir(), 'redlease-demo-traces-'));
    onTestFinished(() => rm(stateDir, { recursive: true, force: true }));
    const jaeger = await OtlpReceiver.start(); // stands in for a Jaeger the user runs
    onTestFinished(() => jaeger.close());
    process.env.OTEL_EXPORTER_OTLP_ENDPOINT = jaeger.endpoint;
    let launcher: ScriptRun;
    try {
      ({ launcher } = await startLauncher((p) =>
        demoArgs(p, stateDir, ['--traces', '--workers', '2', '--pause-ms', '100']),
      ));
    } finally {
      delete process.env.OTEL_EXPORTER_OTLP_ENDPOINT;
    }
    onTestFinished(() => {
      if (launcher.exit === undefined) launcher.child.kill('SIGKILL');
    });

    const granted =
      /^trace {3}│ w[12] acquired shared-resource · (queued \d+ ms · )?(\d+ attempts · )?redis-1 granted [\d.]+ ms · redis-2 granted [\d.]+ ms · redis-3 granted [\d.]+ ms · (token written back to [\w, -]+ · )?token \d+$/m;
    await launcher.waitForOutput(granted, 20_000);
    // Someone waited for someone: a queued acquire says how long.
    await launcher.waitForOutput(
      /^trace {3}│ w[12] acquired shared-resource · queued [1-9]\d* ms · /m,
      20_000,
    );

    const paused = new ScriptRun('scripts/nodes.ts', ['pause', 'redis-3', '--state-dir', stateDir]);
    expect((await paused.finish(COMMAND_TIMEOUT_MS)).code, paused.dump()).toBe(0);
    await launcher.waitForOutput(
      /^trace {3}│ w[12] acquired shared-resource · .*redis-1 granted [\d.]+ ms · redis-2 granted [\d.]+ ms · redis-3 timeout \d+ ms · .*token \d+$/m,
      20_000,
    );
    const resumed = new ScriptRun('scripts/nodes.ts', ['resume', 'redis-3', '--state-dir', stateDir]);
    expect((await resumed.finish(COMMAND_TIMEOUT_MS)).code, resumed.dump()).toBe(0);

    // The user's collector got the same spans, the server's and the workers'.
    await waitFor(
      'the server’s and a worker’s spans at the forwarded endpoint',
      () =>
        jaeger.spans.some((s) => s.service === 'redlease' && s.name === 'redlease.v1.LockService/Acquire') &&
        jaeger.spans.some((s) => s.service === 'redlease-worker' && s.name === 'round'),
      10_000,
    );

    launcher.child.kill('SIGINT');
    expect(await launcher.finish(30_000), launcher.dump()).toEqual({ code: 0, signal: null });
  }, 120_000);
});
