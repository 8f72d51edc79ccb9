// docs/lab.md, run: a demo (scripts/demo.ts) on free loopback ports with its own state dir, then every `sh` block
// of the page in order, one bash per section, with the page's default ports rewritten to the demo's; each
// block's `<!-- expect: … -->` lines are checked against its output, and quoted source files against the repo.
// The page's Docker blocks are not run here (test/compose.test.ts checks the services they name); each must be
// followed by the same step without Docker. The k6 twin runs with BASE_URL set to the demo's HTTP port.
// grpcurl and ghz run as themselves when installed, else grpcurl as the stand-in in test/support/grpc-cli.ts and
// ghz as the built-in runner of ghz/ (ghz/run.ts, told by GHZ_BUILTIN not to look for ghz on PATH: the shim).
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DemoPorts, type DemoRun, startDemo } from './support/demo.js';
import { type LabBlock, parseLabDoc } from './support/lab-doc.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const doc = parseLabDoc(await readFile(join(ROOT, 'docs/lab.md'), 'utf8'));
/** One section: a restart quarantine of up to the demo's max ttl (30 s), worker start-ups, the k6 runs of
 *  exercise 6 (30 s and 60 s), a few waits. */
const SECTION_TIMEOUT_MS = 180_000;
/** The lab's six exercises, in order, by the lab document's titles. */
const EXERCISES = [
  'Basic lock acquisition',
  'Lock contention',
  'Redis instance failure',
  'Single Redis vs Redlock',
  'The Redlock controversy',
  'Load testing',
];
/** The page's default ports (DESIGN: 6381–6383, 6390, 50051, 8000), rewritten to the demo's. */
const DEFAULT_PORTS: DemoPorts = { redis: [6381, 6382, 6383], store: 6390, grpc: 50051, http: 8000 };

let demo: DemoRun;
let bin: string;

beforeAll(async () => {
  // The demo's own settings, as a reader runs it (exercise 3 waits out a restart quarantine of up to its 30 s).
  demo = await startDemo();
  // Exercise 2 looks at the counter the workers write: wait for a first write.
  await demo.launcher.waitForOutput(/\bwrote\b/, 30_000);
  bin = await mkdtemp(join(tmpdir(), 'redlease-lab-bin-'));
  const node = `"${process.execPath}" --import tsx`;
  const standIns: Record<string, string> = {
    grpcurl: `exec ${node} "${join(ROOT, 'test/support/grpc-cli.ts')}" grpcurl "$@"`,
    ghz: `GHZ_BUILTIN=1 exec ${node} "${join(ROOT, 'ghz/run.ts')}" "$@"`,
  };
  for (const [tool, command] of Object.entries(standIns)) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`]).status === 0) continue;
    const shim = join(bin, tool);
    await writeFile(shim, `#!/bin/sh\n${command}\n`);
    await chmod(shim, 0o755);
  }
}, 60_000);

afterAll(async () => {
  await demo?.stop();
  if (bin) await rm(bin, { recursive: true, force: true });
});

/** The block with the page's default ports replaced by the demo's (only in `host:port` and `-p port`). */
function rewrite(code: string, ports: DemoPorts): string {
  const map = new Map<number, number>([
    ...DEFAULT_PORTS.redis.map((p, i) => [p, ports.redis[i]!] as [number, number]),
    [DEFAULT_PORTS.store, ports.store],
    [DEFAULT_PORTS.grpc, ports.grpc],
    [DEFAULT_PORTS.http, ports.http],
  ]);
  return code.replace(/(localhost:|127\.0\.0\.1:|-p )(\d+)\b/g, (whole, prefix: string, port: string) => {
    const to = map.get(Number(port));
    return to === undefined ? whole : `${prefix}${to}`;
  });
}

const MARK = '@@lab-block@@';

/** Runs `blocks` in one bash (so variables carry from block to block); returns each block's output. */
async function runBlocks(
  blocks: readonly LabBlock[],
): Promise<{ outputs: string[]; code: number | null; all: string }> {
  const script = [
    'set -eo pipefail',
    'exec 2>&1',
    ...blocks.flatMap((b) => [`echo '${MARK}'`, rewrite(b.code, demo.ports)]),
  ].join('\n');
  const child = spawn('bash', ['-c', script], {
    cwd: ROOT,
    detached: true,
    env: {
      ...process.env,
      NO_COLOR: '1',
      PATH: `${bin}:${process.env.PATH}`,
      // Where the page's commands find the demo without flags: the workers, the SDK script, npm run nodes.
      REDLEASE_ADDRESS: `127.0.0.1:${demo.ports.grpc}`,
      REDLEASE_STORE: `redis://127.0.0.1:${demo.ports.store}`,
      REDLEASE_DEMO_STATE_DIR: demo.stateDir,
      BASE_URL: `http://127.0.0.1:${demo.ports.http}`,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let all = '';
  child.stdout.setEncoding('utf8').on('data', (c: string) => (all += c));
  child.stderr.setEncoding('utf8').on('data', (c: string) => (all += c));
  const timer = setTimeout(() => process.kill(-child.pid!, 'SIGKILL'), SECTION_TIMEOUT_MS - 5_000);
  const [code] = (await once(child, 'close')) as [number | null];
  clearTimeout(timer);
  const outputs = all.split(`${MARK}\n`).slice(1);
  return { outputs, code, all };
}

describe('docs/lab.md', () => {
  it("follows the lab's six exercises, in order, each with commands and checks", () => {
    const exercises = doc.sections.filter((s) => s.exercise);
    expect(exercises.map((e) => e.title)).toEqual(EXERCISES.map((title, i) => `Exercise ${i + 1}: ${title}`));
    for (const exercise of exercises) {
      expect(exercise.blocks.length, exercise.title).toBeGreaterThan(0);
      expect(
        exercise.blocks.some((b) => b.expects.length > 0),
        exercise.title,
      ).toBe(true);
    }
  });

  it('gives each Docker step its command without Docker right after it', () => {
    const alone = doc.sections.flatMap((section) =>
      section.docker
        .filter((d) => d.kind === 'compose' && d.next !== 'sh' && d.next !== 'sh demo')
        .map((d) => `docs/lab.md:${d.line} (${section.title}) is followed by ${d.next ?? 'nothing'}`),
    );
    expect(alone).toEqual([]);
    const steps = doc.sections.flatMap((s) => s.docker.filter((d) => d.kind === 'compose'));
    expect(steps.length).toBeGreaterThanOrEqual(10);
  });

  it('quotes its source files exactly', async () => {
    expect(doc.sources.length).toBeGreaterThan(0);
    for (const source of doc.sources) {
      expect(source.code, `docs/lab.md:${source.line} quotes ${source.path}`).toBe(
        await readFile(join(ROOT, source.path), 'utf8'),
      );
    }
  });

  for (const section of doc.sections.filter((s) => s.blocks.length > 0)) {
    it(
      section.title,
      async () => {
        const blocks = [...doc.setup, ...section.blocks];
        const { outputs, code, all } = await runBlocks(blocks);
        expect(
          code,
          `the commands failed (exit ${code}):\n${all}\n--- demo ---\n${demo.launcher.stdout.split('\n').slice(-60).join('\n')}`,
        ).toBe(0);
        expect(outputs).toHaveLength(blocks.length);
        blocks.forEach((block, i) => {
          for (const pattern of block.expects) {
            expect(outputs[i], `docs/lab.md:${block.line}: expected ${pattern}`).toMatch(pattern);
          }
        });
      },
      SECTION_TIMEOUT_MS,
    );
  }
});
