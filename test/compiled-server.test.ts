// The server as the container image runs it and as `npm run bench` measures it: compiled by `npm run build`'s
// steps (tsc -p tsconfig.build.json, then the run-time files) and started with plain `node dist/server/main.js`,
// no tsx. What only the compiled tree can get wrong: a file read at run time that the build does not copy (the Lua
// scripts, the reflection descriptors), an import that resolves under tsx but not in plain Node.
import { createClient } from 'nice-grpc';
import { beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { HealthCheckResponse_ServingStatus } from '../gen/grpc/health/v1/health.js';
import { ServerReflectionDefinition } from '../gen/grpc/reflection/v1/reflection.js';
import { buildServer } from '../scripts/lib/build-server.js';
import { RedisCluster } from '../scripts/lib/redis-process.js';
import { ServerProcess } from '../scripts/lib/server-process.js';
import { connect, uniqueResource } from './support/server.js';

// `npm test` runs `npm run build` before the suite starts (so tsc's CPU burst does not compete with the tests
// running in parallel) and says so in TEST_COMPILED_SERVER_BUILT; run alone, the test builds for itself. Either
// way the build goes to dist/, where `npm run build` and the bench put it (ignored by git).
const ENTRY = 'dist/server/main.js';
let entry = '';

describe('the compiled server (node dist/server/main.js)', () => {
  beforeAll(async () => {
    entry = process.env.TEST_COMPILED_SERVER_BUILT === '1' ? ENTRY : await buildServer();
  }, 180_000);

  it('runs without tsx: serves health, grants with a fencing token, releases, and answers reflection', async () => {
    expect(entry).toBe(ENTRY);
    const cluster = await RedisCluster.start(3);
    onTestFinished(() => cluster.dispose());
    const server = await ServerProcess.start(
      [
        '--nodes',
        cluster.addresses.join(','),
        '--grpc-listen',
        '127.0.0.1:0',
        '--http-listen',
        '127.0.0.1:0',
      ],
      {},
      { entry },
    );
    onTestFinished(() => server.stop('SIGKILL').then(() => undefined));
    // Spawned as `node <entry>`: the command line names the compiled file and no tsx loader.
    expect(server.child.spawnargs).toContain(entry);
    expect(server.child.spawnargs).not.toContain('tsx');

    const { lock, health, channel } = connect(`127.0.0.1:${server.grpcPort}`);
    expect((await health.check({ service: '' })).status).toBe(HealthCheckResponse_ServingStatus.SERVING);

    // The acquire and release Lua scripts are read from the compiled tree at run time.
    const resource = uniqueResource('compiled');
    const first = await lock.acquire({ resource, ttlMs: 5_000, clientId: 'compiled-test' });
    expect(first.lease?.nodes).toHaveLength(3);
    expect(first.lease!.fencingToken).toBeGreaterThan(0);
    expect(await lock.release({ resource, lockId: first.lease!.lockId })).toMatchObject({ released: true });
    const second = await lock.acquire({ resource, ttlMs: 5_000 });
    expect(second.lease!.fencingToken).toBeGreaterThan(first.lease!.fencingToken);

    // Reflection serves the descriptor set the build copied next to the compiled module.
    const reflection = createClient(ServerReflectionDefinition, channel);
    const services: string[] = [];
    async function* list() {
      yield { host: '', messageRequest: { $case: 'listServices' as const, value: '' } };
    }
    for await (const answer of reflection.serverReflectionInfo(list())) {
      if (answer.messageResponse?.$case === 'listServicesResponse')
        services.push(...answer.messageResponse.value.service.map((s) => s.name));
    }
    expect(services).toContain('redlease.v1.LockService');
  }, 60_000);
});
