/**
 * The `redlease` command line (client/src/cli) as a real process against a real server on real Redis nodes: lock
 * runs that never overlap, a CMD stopped when its lease is lost, exit codes, signal forwarding, --json output
 * checked against the server's own answers, and what a terminal shows.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { describe, expect, it, onTestFinished } from 'vitest';
import { LockClient } from '../client/src/index.js';
import {
  HealthCheckResponse_ServingStatus,
  healthCheckResponse_ServingStatusToJSON,
} from '../gen/grpc/health/v1/health.js';
import { Mode } from '../gen/redlease/v1/admin.js';
import { freePort } from '../scripts/lib/free-port.js';
import { CliProcess, jsonLines, runCli, running } from './support/cli.js';
import { startTestServer, uniqueResource, waitFor } from './support/server.js';

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'redlease-cli-'));
  onTestFinished(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

function sdk(address: string, clientId: string): LockClient {
  const client = new LockClient({ address, clientId });
  onTestFinished(() => client.close());
  return client;
}

/** Kills, when the test ends, the processes whose pids a CMD wrote to `file` (one per line), if still running. */
function killPidsIn(file: string): void {
  onTestFinished(() => {
    if (!existsSync(file)) return;
    for (const pid of readFileSync(file, 'utf8').split('\n').filter(Boolean).map(Number)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
  });
}

describe('redlease lock', () => {
  it('two lock runs at once never interleave, and their fencing tokens strictly increase', async () => {
    const { address } = await startTestServer();
    const dir = await tempDir();
    const log = join(dir, 'log');
    const resource = uniqueResource('cli-mutex');
    // Each critical section appends "start TOKEN", works for a second, appends "end TOKEN". Two loops of two runs
    // each start at the same moment, so without the lock their sections would overlap.
    const section =
      'echo "start $REDLEASE_FENCING_TOKEN" >> "$LOG"; sleep 1; echo "end $REDLEASE_FENCING_TOKEN" >> "$LOG"';
    const loop = async () => {
      const exits = [];
      for (let i = 0; i < 2; i++) {
        exits.push(
          await runCli(
            ['--address', address, '--json', 'lock', resource, '--wait', '20s', '--', 'sh', '-c', section],
            { LOG: log },
          ),
        );
      }
      return exits;
    };
    const exits = (await Promise.all([loop(), loop()])).flat();
    for (const exit of exits) expect(exit.code, exit.stderr).toBe(0);
    // They did contend: some run waited in line for another's section.
    const waited = exits.map(
      (e) => jsonLines(e.stderr).find((l) => l.event === 'acquired')!.waitedMs as number,
    );
    expect(Math.max(...waited)).toBeGreaterThan(500);

    const lines = readFileSync(log, 'utf8').trim().split('\n');
    expect(lines).toHaveLength(8);
    const tokens: number[] = [];
    for (let i = 0; i < lines.length; i += 2) {
      const start = /^start (\d+)$/.exec(lines[i]!);
      const end = /^end (\d+)$/.exec(lines[i + 1]!);
      expect(start && end && start[1] === end[1], `section ${i / 2} interleaved:\n${lines.join('\n')}`).toBe(
        true,
      );
      tokens.push(Number(start![1]));
    }
    for (let i = 1; i < tokens.length; i++) expect(tokens[i]).toBeGreaterThan(tokens[i - 1]!);
  }, 60_000); // four CLI processes and four 1 s sections in a row: 10 s seen on a loaded machine

  it('a CMD that outlives its lease is killed within ttl + grace when two nodes stop; exit 79 names the reason', async () => {
    const { address, nodes } = await startTestServer();
    const dir = await tempDir();
    const pids = join(dir, 'pids');
    killPidsIn(pids);
    const resource = uniqueResource('cli-lost');
    const ttlMs = 2_000;
    const graceMs = 1_000;
    // CMD ignores SIGTERM, and so does the grandchild it leaves in its process group: only SIGKILL stops them.
    const cli = CliProcess.start(
      [
        '--address',
        address,
        'lock',
        resource,
        '--ttl',
        '2s',
        '--grace',
        '1s',
        '--',
        'sh',
        '-c',
        'trap "" TERM; echo $$ >> "$PIDS"; sleep 60 & echo $! >> "$PIDS"; wait',
      ],
      { PIDS: pids },
    );
    const [shell, sleeper] = await waitFor(
      'CMD and its grandchild running',
      () => {
        const list = existsSync(pids)
          ? readFileSync(pids, 'utf8').split('\n').filter(Boolean).map(Number)
          : [];
        return list.length === 2 ? list : undefined;
      },
      15_000,
    );
    expect((await sdk(address, 'probe').describe(resource)).locked).toBe(true);

    const stoppedAt = performance.now();
    await Promise.all([nodes[1].stop(), nodes[2].stop()]);
    await waitFor(
      'CMD and its grandchild gone',
      () => !running(shell!) && !running(sleeper!),
      ttlMs + graceMs + 3_000,
      20,
    );
    const goneAfterMs = performance.now() - stoppedAt;
    const exit = await cli.finish();

    expect(goneAfterMs).toBeLessThan(ttlMs + graceMs + 1_000);
    expect(exit.code, exit.stderr).toBe(79);
    const lines = exit.stderr.trim().split('\n');
    // The lease expired for want of renewals, and the renewals failed for want of a quorum.
    expect(lines[0]).toMatch(
      new RegExp(`^redlease: lease on "${resource}" \\(token \\d+\\) expired: .*quorum`),
    );
    expect(lines[0]).toContain('SIGKILL after 1.0s');
    expect(lines.at(-1)).toBe(`redlease: CMD stopped: the lease on "${resource}" was lost (expired)`);
  });

  it("a Release by the lease's lock id from elsewhere stops CMD: exit 79, the release named", async () => {
    const { address, lock } = await startTestServer();
    const dir = await tempDir();
    const id = join(dir, 'lock-id');
    const resource = uniqueResource('cli-released');
    const cli = CliProcess.start(
      [
        '--address',
        address,
        '--json',
        'lock',
        resource,
        '--ttl',
        '1s',
        '--',
        'sh',
        '-c',
        'echo "$REDLEASE_LOCK_ID" > "$ID"; i=0; while [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done',
      ],
      { ID: id },
    );
    const lockId = await waitFor('the lock id from CMD', () =>
      existsSync(id) ? readFileSync(id, 'utf8').trim() : '',
    );
    const released = await runCli(['--address', address, 'release', resource, lockId]);
    expect(released.code, released.stderr).toBe(0);
    expect(released.stdout).toBe(`released "${resource}" on redis-1, redis-2, redis-3\n`);

    const exit = await cli.finish();
    expect(exit.code).toBe(79);
    expect(await cli.event('lost')).toMatchObject({ resource, reason: expect.stringMatching(/Release/) });
    expect(await cli.event('exit')).toMatchObject({ exitCode: 79, leaseLost: true, signal: 'SIGTERM' });
    expect((await lock.describe({ resource })).locked).toBe(false);
  });

  it('--wait 0 on a held resource exits 75 at once, without running CMD', async () => {
    const { address } = await startTestServer();
    const dir = await tempDir();
    const resource = uniqueResource('cli-held');
    const holder = await sdk(address, 'the-holder').acquire(resource, { ttlMs: 10_000 });
    const ran = join(dir, 'ran');

    const exit = await runCli([
      '--address',
      address,
      '--json',
      'lock',
      resource,
      '--wait',
      '0',
      '--',
      'touch',
      ran,
    ]);
    expect(exit.code, exit.stderr).toBe(75);
    const [event] = jsonLines(exit.stderr);
    expect(event).toMatchObject({
      event: 'not-acquired',
      exitCode: 75,
      resource,
      holderClientId: 'the-holder',
      fencingToken: holder.fencingToken,
      reason: 'LOCK_HELD',
    });
    expect(event!.waitedMs).toBeLessThan(1_000); // one try, no waiting in line (the default wait is 30 s)
    expect(existsSync(ran)).toBe(false);

    const human = await runCli(['--address', address, 'lock', resource, '--wait', '0', '--', 'true']);
    expect(human.code).toBe(75);
    expect(human.stderr).toBe(
      `redlease: "${resource}" not acquired (--wait 0: tried once): held by the-holder with token ${holder.fencingToken}\n`,
    );
  });

  it('an unreachable address exits 69 after the retries, with one line naming the address', async () => {
    const port = await freePort(); // nothing listens there
    const address = `127.0.0.1:${port}`;
    for (const args of [['status', 'r'], ['lock', 'r', '--', 'true'], ['nodes']]) {
      const exit = await runCli(['--address', address, '--json', ...args]);
      expect(exit.code, exit.stderr).toBe(69);
      const [event] = jsonLines(exit.stderr);
      expect(event).toMatchObject({
        event: 'error',
        exitCode: 69,
        error: { code: 'UNAVAILABLE', reason: '' },
      });
      // A refused connection fails in a few ms; four attempts sleep at least 25 + 50 + 100 ms between them.
      expect(event!.elapsedMs, args.join(' ')).toBeGreaterThanOrEqual(175);

      const human = await runCli(['--address', address, ...args]);
      expect(human.code).toBe(69);
      expect(human.stderr).toMatch(
        new RegExp(`^redlease: cannot reach ${address}, after retries: UNAVAILABLE: [^\\n]*\\n$`),
      );
    }
  }, 60_000); // six CLI processes, each ~0.5 s of CPU: slower on a loaded machine

  it('without a quorum, lock exits 69 and health reports NOT_SERVING with 69', async () => {
    const { address, nodes } = await startTestServer();
    await Promise.all([nodes[1].stop(), nodes[2].stop()]);
    const health = await waitFor(
      'health to say NOT_SERVING',
      async () => {
        const exit = await runCli(['--address', address, '--json', 'health']);
        return exit.code === 69 ? JSON.parse(exit.stdout) : undefined;
      },
      10_000,
      50,
    );
    expect(health.status).toBe('NOT_SERVING');
    expect(health.services['redlease.v1.LockService']).toBe('NOT_SERVING');
    expect(health.services['redlease.v1.AdminService']).toBe('SERVING'); // admin calls need no quorum
    const exit = await runCli(['--address', address, 'lock', uniqueResource(), '--', 'true']);
    expect(exit.code).toBe(69);
    expect(exit.stderr).toMatch(
      /^redlease: 127\.0\.0\.1:\d+ is unavailable \(QUORUM_UNAVAILABLE\), after retries: UNAVAILABLE: quorum unavailable[^\n]*\n$/,
    );
  });

  it('bad usage exits 2 with one line on stderr and nothing on stdout', async () => {
    const { address } = await startTestServer();
    const cases: [string[], RegExp][] = [
      [[], /missing command/],
      [['frobnicate'], /unknown command 'frobnicate'/],
      [['lock'], /missing required argument 'resource'/],
      [['lock', 'r'], /missing required argument 'cmd'/],
      [['lock', 'r', '--wait', 'soon', '--', 'true'], /--wait.*'soon' is invalid/],
      [['lock', 'r', '--wait', '6m', '--', 'true'], /--wait.*between 0ms and 5m00s/],
      [['lock', 'r', 'sh', '-c', 'true'], /unknown option '-c' \(put -- before CMD/],
      [['mode', 'fast'], /'fast' is invalid.*single, redlock/],
      [['status', 'r', '--tls-cert', 'client.pem'], /--tls-cert and --tls-key go together/],
      [['lock', 'no spaces allowed', '--', 'true'], /resource/], // refused by the server: INVALID_ARGUMENT
    ];
    for (const [args, message] of cases) {
      const exit = await runCli(['--address', address, ...args]);
      expect(exit.code, `${args.join(' ')}: ${exit.stderr}`).toBe(2);
      expect(exit.stdout).toBe('');
      expect(exit.stderr).toMatch(/^redlease: [^\n]+\n$/);
      expect(exit.stderr).toMatch(message);
    }
  }, 60_000); // a dozen CLI processes, each ~0.5 s of CPU: slower on a loaded machine

  it('SIGINT reaches CMD; the lease is released only after CMD exits, and Describe shows it free', async () => {
    const { address, lock } = await startTestServer();
    const dir = await tempDir();
    const log = join(dir, 'log');
    const go = join(dir, 'go');
    const resource = uniqueResource('cli-sigint');
    // On SIGINT, CMD notes it, then waits for the test's go-ahead (bounded) before exiting 3.
    const cmd = [
      'trap \'echo got-INT >> "$LOG"; i=0; while [ ! -e "$GO" ] && [ $i -lt 300 ]; do sleep 0.05; i=$((i+1)); done; exit 3\' INT',
      'echo ready >> "$LOG"',
      'i=0; while [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done',
    ].join('; ');
    const cli = CliProcess.start(['--address', address, '--json', 'lock', resource, '--', 'sh', '-c', cmd], {
      LOG: log,
      GO: go,
    });
    const acquired = await cli.event('acquired');
    await waitFor('CMD ready', () => existsSync(log) && readFileSync(log, 'utf8').includes('ready'), 10_000);

    cli.child.kill('SIGINT');
    await waitFor('CMD got SIGINT', () => readFileSync(log, 'utf8').includes('got-INT'), 10_000);
    await cli.event('signal', (e) => e.signal === 'SIGINT' && e.forwarded === true);
    // CMD is still handling it: the lease is still held, by the same token.
    const during = await lock.describe({ resource });
    expect(during).toMatchObject({ locked: true, fencingToken: acquired.fencingToken });

    writeFileSync(go, '');
    const exit = await cli.finish();
    expect(exit.code).toBe(3);
    expect(await cli.event('exit')).toMatchObject({ exitCode: 3, code: 3, released: true, leaseLost: false });
    expect((await lock.describe({ resource })).locked).toBe(false);
  });

  it('SIGTERM ends a CMD that does not handle it: exit 143, lease released', async () => {
    const { address, lock } = await startTestServer();
    const resource = uniqueResource('cli-sigterm');
    const cli = CliProcess.start(['--address', address, '--json', 'lock', resource, '--', 'sleep', '30']);
    await cli.event('acquired');
    cli.child.kill('SIGTERM');
    const exit = await cli.finish();
    expect(exit.code).toBe(143);
    expect(await cli.event('exit')).toMatchObject({ signal: 'SIGTERM', released: true });
    expect((await lock.describe({ resource })).locked).toBe(false);
  });

  it('a missing CMD exits 127 and releases the lease', async () => {
    const { address, lock } = await startTestServer();
    const resource = uniqueResource('cli-enoent');
    const exit = await runCli(['--address', address, 'lock', resource, '--', '/nonexistent/cmd']);
    expect(exit.code).toBe(127);
    expect(exit.stderr).toBe('redlease: cannot run "/nonexistent/cmd": command not found\n');
    expect((await lock.describe({ resource })).locked).toBe(false);
  });
});

describe('redlease --json', () => {
  it('status, lock, nodes, health, mode and release print JSON that matches the server', async () => {
    const { address, lock, admin, health } = await startTestServer();
    const dir = await tempDir();
    const json = async (...args: string[]) => {
      const exit = await runCli(['--address', address, '--json', ...args]);
      expect(exit.code, exit.stderr).toBe(0);
      return JSON.parse(exit.stdout);
    };
    const timeless = <T extends object>(value: T, ...keys: string[]) =>
      JSON.parse(JSON.stringify(value, (key, v) => (keys.includes(key) ? '<varies>' : v)));

    // status: Describe, while a lease is held.
    const resource = uniqueResource('cli-json');
    const held = await sdk(address, 'json-holder').acquire(resource, { ttlMs: 10_000 });
    const status = await json('status', resource);
    const described = await lock.describe({ resource });
    expect(timeless(status, 'validityMs', 'ttlMs')).toEqual(timeless(described, 'validityMs', 'ttlMs'));
    expect(status).toMatchObject({
      locked: true,
      holderClientId: 'json-holder',
      fencingToken: held.fencingToken,
    });
    expect(status.validityMs).toBeGreaterThan(0);
    expect(status.validityMs).toBeLessThanOrEqual(10_000);
    await held.release();

    // lock: the acquired event is the lease Describe shows while CMD runs.
    const go = join(dir, 'go');
    const cli = CliProcess.start(
      [
        '--address',
        address,
        '--json',
        'lock',
        resource,
        '--client-id',
        'json-cli',
        '--',
        'sh',
        '-c',
        'i=0; while [ ! -e "$GO" ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i+1)); done',
      ],
      { GO: go },
    );
    const acquired = await cli.event('acquired');
    expect(acquired).toMatchObject({ resource, clientId: 'json-cli', ttlMs: 10_000 });
    expect(await lock.describe({ resource })).toMatchObject({
      locked: true,
      holderClientId: 'json-cli',
      fencingToken: acquired.fencingToken,
    });
    writeFileSync(go, '');
    expect((await cli.finish()).code).toBe(0);
    expect(jsonLines(cli.stderr).map((e) => e.event)).toEqual(['acquired', 'exit']);

    // nodes: ListNodes, the mode by the name `redlease mode` takes.
    const nodes = await json('nodes');
    const listed = await admin.listNodes({});
    expect(timeless(nodes, 'latencyMs')).toEqual(timeless({ ...listed, mode: 'redlock' }, 'latencyMs'));
    expect(nodes.nodes.map((n: { name: string }) => n.name)).toEqual(['redis-1', 'redis-2', 'redis-3']);

    // health: List, and the server as a whole.
    const healthJson = await json('health');
    const { statuses } = await health.list({});
    expect(healthJson).toEqual({
      status: 'SERVING',
      services: Object.fromEntries(
        Object.entries(statuses).map(([name, s]) => [
          name,
          healthCheckResponse_ServingStatusToJSON(s.status),
        ]),
      ),
    });
    expect(await json('health', 'redlease.v1.LockService')).toEqual({
      service: 'redlease.v1.LockService',
      status: healthCheckResponse_ServingStatusToJSON(HealthCheckResponse_ServingStatus.SERVING),
    });

    // mode: GetMode, and SetMode as the server then reports it.
    expect(await json('mode')).toEqual({ mode: 'redlock' });
    expect(await json('mode', 'single')).toEqual({ mode: 'single' });
    expect((await admin.getMode({})).mode).toBe(Mode.MODE_SINGLE);
    expect(await json('mode', 'redlock')).toEqual({ mode: 'redlock' });
    expect((await admin.getMode({})).mode).toBe(Mode.MODE_REDLOCK);
    // With a live lease the switch is refused (nothing changes) unless --force, which ends it.
    await lock.acquire({ resource: `${resource}-mode`, ttlMs: 10_000 });
    const refused = await runCli(['--address', address, '--json', 'mode', 'single']);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/1 lease is live/);
    expect((await admin.getMode({})).mode).toBe(Mode.MODE_REDLOCK);
    expect(await json('mode', '--force', 'single')).toEqual({ mode: 'single', leases_ended: 1 });
    expect(await json('mode', 'redlock')).toEqual({ mode: 'redlock' });

    // release: by lock id; a second release finds nothing to release (exit 1, the server's reason).
    const taken = await lock.acquire({ resource, ttlMs: 10_000, clientId: 'raw' });
    const lockId = taken.lease!.lockId;
    const released = await json('release', resource, lockId);
    expect(released).toEqual({ released: true, nodes: ['redis-1', 'redis-2', 'redis-3'] });
    expect((await lock.describe({ resource })).locked).toBe(false);
    const again = await runCli(['--address', address, '--json', 'release', resource, lockId]);
    expect(again.code).toBe(1);
    expect(jsonLines(again.stderr)[0]).toMatchObject({
      event: 'error',
      exitCode: 1,
      error: { type: 'LockNotHeldError', code: 'FAILED_PRECONDITION' },
    });
  }, 60_000); // a dozen CLI processes, each ~0.5 s of CPU: slower on a loaded machine
});

describe('redlease on a terminal', () => {
  it('lock shows its place in line and the time waited while it waits, coloured', async () => {
    const { address } = await startTestServer();
    const resource = uniqueResource('cli-tty');
    const holder = await sdk(address, 'tty-holder').acquire(resource, { ttlMs: 10_000 });
    const cli = CliProcess.onTerminal([
      '--address',
      address,
      'lock',
      resource,
      '--wait',
      '20s',
      '--',
      'echo',
      'CMD-ran',
    ]);
    const line = new RegExp(
      `waiting for "${resource}": 1st of 1 in line, \\d+\\.\\ds waited \\(held by tty-holder, token ${holder.fencingToken}\\)`,
    );
    await waitFor('the waiting line', () => line.test(cli.stdout), 15_000, 20);
    expect(cli.stdout).toContain('\x1b[2m'); // dim: a terminal without NO_COLOR gets colour
    await holder.release();
    const exit = await cli.finish();
    expect(exit.code, exit.stdout).toBe(0);
    expect(exit.stdout).toMatch(new RegExp(`acquired "${resource}" with fencing token \\d+ after \\d`));
    expect(exit.stdout).toContain('CMD-ran');
  });

  it('NO_COLOR turns colour off on a terminal; tables stay aligned', async () => {
    const { address } = await startTestServer();
    const coloured = await CliProcess.onTerminal(['--address', address, 'nodes']).finish();
    expect(coloured.code).toBe(0);
    expect(coloured.stdout).toContain('\x1b[32mup\x1b[39m');
    const plain = await CliProcess.onTerminal(['--address', address, 'nodes'], { NO_COLOR: '1' }).finish();
    expect(plain.code).toBe(0);
    expect(plain.stdout).not.toContain('\x1b[');
    const rows = plain.stdout
      .replaceAll('\r', '')
      .split('\n')
      .filter((l) => l.startsWith('redis-') || l.startsWith('node '));
    expect(rows).toHaveLength(4);
    // Every column starts at the same offset in every row.
    const starts = (row: string) => [...row.matchAll(/(?<=\s{2})\S/g)].map((m) => m.index);
    for (const row of rows.slice(1)) expect(starts(row).slice(0, 4)).toEqual(starts(rows[0]!).slice(0, 4));
  });
});

describe('redlease connection options', () => {
  it('reaches a TLS server with --tls-ca or REDLEASE_TLS_CA, and a token from REDLEASE_TOKEN or --token-file', async () => {
    const fixture = (name: string) => new URL(`./fixtures/tls/${name}`, import.meta.url).pathname;
    const dir = await tempDir();
    const tokenFile = join(dir, 'token');
    writeFileSync(tokenFile, 'cli-secret-token\n');
    const { address } = await startTestServer(
      ['--tls-cert-file', fixture('server.pem'), '--tls-key-file', fixture('server-key.pem')],
      { env: { REDLEASE_CLIENT_TOKENS: 'cli-secret-token' } },
    );
    const resource = uniqueResource('cli-tls');
    const viaFlags = await runCli([
      '--address',
      address,
      '--tls-ca',
      fixture('ca.pem'),
      '--token-file',
      tokenFile,
      'status',
      resource,
    ]);
    expect(viaFlags.code, viaFlags.stderr).toBe(0);
    const viaEnv = await runCli(['status', resource, '--json'], {
      REDLEASE_ADDRESS: address,
      REDLEASE_TLS_CA: fixture('ca.pem'),
      REDLEASE_TOKEN: 'cli-secret-token',
    });
    expect(viaEnv.code, viaEnv.stderr).toBe(0);
    expect(JSON.parse(viaEnv.stdout).resource).toBe(resource);

    const noToken = await runCli(['--address', address, '--tls-ca', fixture('ca.pem'), 'status', resource]);
    expect(noToken.code).toBe(1);
    expect(noToken.stderr).toMatch(/^redlease: UNAUTHENTICATED: [^\n]+\n$/);
    const plaintext = await runCli(['--address', address, '--token-file', tokenFile, 'status', resource]);
    expect(plaintext.code).toBe(69);
  });
});
