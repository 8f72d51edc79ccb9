/**
 * A test host of our own with a non-loopback address: a network namespace joined to this one by a veth pair, on
 * a /30 link-local subnet that exists only between the two ends. A server bound to `hostAddress` sees calls from
 * `run(...)` (a command inside the namespace) coming from `peerAddress`, which is not loopback. Needs root
 * (CI runs as root); removed when the test ends. No traffic leaves the machine.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { onTestFinished } from 'vitest';
import { waitFor } from '../../scripts/lib/wait.js';

const exec = promisify(execFile);
let made = 0;

export interface TestHost {
  /** This side's address (bind the server here). */
  hostAddress: string;
  /** The namespace's address: where its calls come from. */
  peerAddress: string;
  /** Runs `command` inside the namespace; resolves with its stdout. */
  run(command: string, args: readonly string[], timeoutMs?: number): Promise<string>;
}

export async function startTestHost(): Promise<TestHost> {
  const id = `${process.pid % 10_000}${String.fromCharCode(97 + (made++ % 26))}`;
  const ns = `rl-${id}`;
  const [outer, inner] = [`rl${id}o`, `rl${id}i`];
  // 169.254.x.y/30: one subnet per namespace, chosen from the pid so parallel runs do not collide.
  const base = ((process.pid * 7 + made * 4) % 252) & ~3;
  const [hostAddress, peerAddress] = [`169.254.213.${base + 1}`, `169.254.213.${base + 2}`];
  const ip = (...args: string[]) => exec('ip', args);
  try {
    await ip('netns', 'add', ns);
  } catch (error) {
    throw new Error(`cannot create a network namespace (the test needs root and iproute2): ${String(error)}`);
  }
  onTestFinished(async () => {
    await ip('link', 'del', outer).catch(() => undefined);
    await ip('netns', 'del', ns).catch(() => undefined);
  });
  await ip('link', 'add', outer, 'type', 'veth', 'peer', 'name', inner);
  await ip('link', 'set', inner, 'netns', ns);
  await ip('addr', 'add', `${hostAddress}/30`, 'dev', outer);
  await ip('link', 'set', outer, 'up');
  await ip('netns', 'exec', ns, 'ip', 'addr', 'add', `${peerAddress}/30`, 'dev', inner);
  await ip('netns', 'exec', ns, 'ip', 'link', 'set', inner, 'up');
  await ip('netns', 'exec', ns, 'ip', 'link', 'set', 'lo', 'up');
  // A veth end reports its carrier (LOWER_UP) a moment after both ends are up; before that nothing gets through.
  await waitFor('the veth link to come up', async () => {
    const [here, there] = await Promise.all([
      ip('-o', 'link', 'show', outer),
      ip('netns', 'exec', ns, 'ip', '-o', 'link', 'show', inner),
    ]);
    return here.stdout.includes('LOWER_UP') && there.stdout.includes('LOWER_UP');
  });
  return {
    hostAddress,
    peerAddress,
    async run(command, args, timeoutMs = 30_000) {
      const { stdout } = await exec('ip', ['netns', 'exec', ns, command, ...args], { timeout: timeoutMs });
      return stdout;
    },
  };
}
