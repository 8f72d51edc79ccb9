import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { setPriority, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, it, onTestFinished } from 'vitest';
import { RedisProcess, startTestServer } from './support/server.js';

/**
 * The SDK as another project gets it: `npm pack` of client/, installed from the tarball into a fresh TypeScript
 * project outside this repo, compiled with strict NodeNext settings, and run against a real server. This catches
 * what in-repo tests cannot: a missing file in the package (Lua scripts, generated code), an import that only
 * resolves inside the repo, a dependency missing from client/package.json, declarations that do not compile, a
 * `redlease` bin that `npx` cannot find or run.
 */

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const CLIENT = join(ROOT, 'client');

/** The versions this repo builds with (already in the npm cache after `npm ci`), so the install stays offline. */
function installedVersion(name: string): string {
  return JSON.parse(readFileSync(join(ROOT, 'node_modules', name, 'package.json'), 'utf8')).version;
}

/**
 * The environment for the child npm/tsc/node runs. Under `npm test` npm exports variables describing this repo
 * (`npm_config_local_prefix` = the repo, npm_package_* from its package.json, lifecycle names); the consumer
 * project is a different one, so they are left out rather than trusting every npm version to ignore them in a
 * nested `npm install`. Registry, cache and TLS settings (the other npm_config_*) are kept.
 */
function childEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    const lower = key.toLowerCase();
    if (
      lower === 'npm_config_local_prefix' ||
      lower === 'init_cwd' ||
      lower === 'npm_command' ||
      lower.startsWith('npm_package_') ||
      lower.startsWith('npm_lifecycle_')
    ) {
      continue;
    }
    env[key] = value;
  }
  return env;
}

interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs a command to completion; kills its whole process group (npm's children too) after `timeoutMs`, so the test
 * can never hang on a child. Rejects on a non-zero exit unless `allowFailure`, with the output's tail.
 */
function run(
  command: string,
  args: readonly string[],
  options: { cwd: string; timeoutMs: number; allowFailure?: boolean },
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd: options.cwd,
      env: childEnv(),
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true, // its own process group, killed as a whole on timeout
    });
    // npm install and tsc are CPU-heavy for seconds; at a lower priority they leave the CPU to timing-sensitive
    // tests running in the other vitest worker. Their children inherit it.
    try {
      if (child.pid !== undefined) setPriority(child.pid, 10);
    } catch {
      // Not permitted here: it only runs at normal priority.
    }
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const what = [command, ...args].join(' ');
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      if (child.pid !== undefined) {
        try {
          process.kill(-child.pid, 'SIGKILL');
        } catch {
          // Already gone.
        }
      }
    }, options.timeoutMs);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(new Error(`${what}: ${error.message}`, { cause: error }));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const result = { code: code ?? -1, stdout, stderr };
      if (timedOut) {
        reject(new Error(`${what} did not finish within ${options.timeoutMs} ms\n${tail(stdout, stderr)}`));
      } else if ((code !== 0 || signal) && !options.allowFailure) {
        reject(new Error(`${what} exited with ${signal ?? code}\n${tail(stdout, stderr)}`));
      } else {
        resolve(result);
      }
    });
  });
}

function tail(stdout: string, stderr: string): string {
  return `--- stdout:\n${stdout.slice(-3_000)}\n--- stderr:\n${stderr.slice(-3_000)}`;
}

/** The consumer program: imports only the package, as any other project would. */
const CONSUMER_SOURCE = `import { FencedStore, type Lease, LockClient, StaleTokenError } from '@redlease/client';

const [address, redisUrl] = process.argv.slice(2);
if (!address || !redisUrl) {
  console.error('usage: node dist/index.js <host:port> <redis-url>');
  process.exit(2);
}

const resource = \`sdk-package-\${process.pid}\`;
await using client = new LockClient({ address, clientId: 'consumer-1' });
await using rival = new LockClient({ address, clientId: 'consumer-2' });
await using store = await FencedStore.connect({ redis: redisUrl, keyPrefix: \`\${resource}:\` });

let first: Lease;
let whileHeld;
{
  await using lease = await client.acquire(resource, { ttlMs: 5_000, waitMs: 2_000 });
  first = lease;
  const description = await client.describe(resource);
  const rivalLease = await rival.tryAcquire(resource);
  const written = await store.write('report', 'written under the lease', lease.fencingToken);
  const read = await store.read('report', lease.fencingToken);
  whileHeld = {
    token: lease.fencingToken,
    lockIdLength: lease.lockId.length,
    locked: description.locked,
    holder: description.holderClientId,
    rivalGotLease: rivalLease !== null,
    held: lease.isHeld(),
    previousToken: written.previousToken,
    value: read.value,
  };
}

// The block's end released the lease: the rival gets the resource now, with a larger token, and the first
// holder's token is refused by the store.
const nextToken = await rival.withLock(resource, async (_signal, lease) => {
  await store.write('report', 'written by the next holder', lease.fencingToken);
  return lease.fencingToken;
});
let staleRefused = false;
try {
  await store.write('report', 'late write of the first holder', first.fencingToken);
} catch (error) {
  staleRefused = error instanceof StaleTokenError;
}

console.log(
  JSON.stringify({
    ...whileHeld,
    releasedSignal: first.signal.aborted,
    lockedAfter: (await client.describe(resource)).locked,
    nextToken,
    staleRefused,
    finalValue: (await store.peek('report')).value,
  }),
);
`;

it('installs from the packed tarball into a fresh TypeScript project that compiles and runs a lock round trip, and exposes `npx redlease`', async () => {
  const work = await mkdtemp(join(tmpdir(), 'redlease-sdk-package-'));
  onTestFinished(() => rm(work, { recursive: true, force: true }));
  const consumer = join(work, 'consumer');
  await mkdir(consumer);

  // Pack (prepack builds client/dist afresh) while the servers start.
  const [packed, server, storeRedis] = await Promise.all([
    run('npm', ['pack', '--json', '--pack-destination', work], { cwd: CLIENT, timeoutMs: 90_000 }),
    startTestServer(),
    // Registered as soon as it runs, so it is stopped even when packing fails.
    RedisProcess.start({ name: 'sdk-package-store' }).then((redis) => {
      onTestFinished(() => redis.dispose());
      return redis;
    }),
  ]);

  const [pack] = JSON.parse(packed.stdout) as { name: string; filename: string; files: { path: string }[] }[];
  expect(pack?.name).toBe('@redlease/client');
  const files = pack!.files.map((file) => file.path);
  expect(files).toEqual(
    expect.arrayContaining([
      'package.json',
      'README.md',
      'dist/client/src/index.js',
      'dist/client/src/index.d.ts',
      'dist/client/src/lua/fenced-read-1.lua',
      'dist/client/src/lua/fenced-write-1.lua',
      'dist/gen/redlease/v1/lock.js',
      'dist/client/src/cli/main.js', // the `redlease` bin
      'dist/gen/redlease/v1/admin.js',
      'dist/gen/grpc/health/v1/health.js',
    ]),
  );
  expect(files.filter((path) => path.includes('.test.'))).toEqual([]);
  expect(
    files.filter((path) => !path.startsWith('dist/') && !['package.json', 'README.md'].includes(path)),
  ).toEqual([]);

  await writeFile(
    join(consumer, 'package.json'),
    JSON.stringify(
      { name: 'redlease-sdk-consumer', version: '1.0.0', private: true, type: 'module' },
      null,
      2,
    ),
  );
  await writeFile(
    join(consumer, 'tsconfig.json'),
    JSON.stringify(
      {
        compilerOptions: {
          // A plain strict NodeNext project: `await using` works without extra libs (@types/node declares
          // Symbol.asyncDispose), and lib checking stays on, so the package's declarations are checked too.
          target: 'ES2022',
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          strict: true,
          types: ['node'],
          outDir: 'dist',
          rootDir: '.',
        },
        files: ['index.ts'],
      },
      null,
      2,
    ),
  );
  await writeFile(join(consumer, 'index.ts'), CONSUMER_SOURCE);

  await run(
    'npm',
    [
      'install',
      join(work, pack!.filename),
      // The SDK's peer dependency, as an application that traces brings it (the version this repo builds with).
      `@opentelemetry/api@${installedVersion('@opentelemetry/api')}`,
      `typescript@${installedVersion('typescript')}`,
      `@types/node@${installedVersion('@types/node')}`,
      '--prefer-offline',
      '--no-audit',
      '--no-fund',
      '--loglevel=error',
    ],
    { cwd: consumer, timeoutMs: 150_000 },
  );
  // The consumer's own TypeScript from its node_modules, not this repo's.
  await run(process.execPath, [join(consumer, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json'], {
    cwd: consumer,
    timeoutMs: 60_000,
  });

  // No process.exit in the program: exiting by itself also shows that close() leaves no handle open.
  const output = await run(
    process.execPath,
    ['dist/index.js', server.address, `redis://${storeRedis.address}`],
    {
      cwd: consumer,
      timeoutMs: 30_000,
    },
  );
  expect(output.code).toBe(0);
  const result = JSON.parse(output.stdout.trim());
  expect(result).toEqual({
    token: expect.any(Number),
    lockIdLength: 32, // 16 random bytes, hex
    locked: true,
    holder: 'consumer-1',
    rivalGotLease: false,
    held: true,
    previousToken: 0,
    value: 'written under the lease',
    releasedSignal: true,
    lockedAfter: false,
    nextToken: expect.any(Number),
    staleRefused: true,
    finalValue: 'written by the next holder',
  });
  expect(result.token).toBeGreaterThan(0);
  expect(result.nextToken).toBeGreaterThan(result.token);

  // The package's bin: `npx redlease` resolves to it from the project's node_modules/.bin (no download).
  const help = await run('npx', ['--no-install', 'redlease', '--help'], { cwd: consumer, timeoutMs: 30_000 });
  expect(help.stdout).toMatch(/^Usage: redlease \[options\] \[command\]/);
  for (const command of ['lock', 'status', 'nodes', 'health', 'mode', 'release']) {
    expect(help.stdout).toMatch(new RegExp(`^  ${command} `, 'm'));
  }
  // A real command through it: a lease, CMD run under it with its fencing token, then released.
  const resource = `sdk-package-cli-${process.pid}`;
  const locked = await run(
    'npx',
    [
      '--no-install',
      'redlease',
      '--address',
      server.address,
      '--json',
      'lock',
      resource,
      '--',
      'sh',
      '-c',
      'echo "$REDLEASE_RESOURCE $REDLEASE_FENCING_TOKEN"',
    ],
    { cwd: consumer, timeoutMs: 30_000 },
  );
  const acquired = JSON.parse(locked.stderr.split('\n')[0]!);
  expect(acquired).toMatchObject({ event: 'acquired', resource });
  expect(locked.stdout).toBe(`${resource} ${acquired.fencingToken}\n`);
  expect(acquired.fencingToken).toBeGreaterThan(result.nextToken);
  const status = await run(
    'npx',
    ['--no-install', 'redlease', '--address', server.address, '--json', 'status', resource],
    {
      cwd: consumer,
      timeoutMs: 30_000,
    },
  );
  expect(JSON.parse(status.stdout)).toMatchObject({ resource, locked: false });
}, 240_000);
