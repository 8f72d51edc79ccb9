// The bench's CPU meter: cores used per process group, and the time those processes waited for a CPU (their
// threads' run-queue wait), read from /proc. Measured on real processes that spin: one more than the machine has
// CPUs, so some of them must wait whatever else runs on the box. They spin at the lowest priority (nice 19), so
// that the test file running beside this one (vitest runs two) keeps its CPU and its Redis nodes stay timely.
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { availableParallelism, cpus as machineCpus, setPriority } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { CpuMeter, queuedSeconds } from './proc-usage.js';

const children: ChildProcess[] = [];

afterEach(async () => {
  await Promise.all(
    children.splice(0).map(async (child) => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = once(child, 'exit');
      child.kill('SIGKILL');
      await exited;
    }),
  );
});

async function spinners(count: number): Promise<number[]> {
  const started = Array.from({ length: count }, () => {
    const child = spawn(process.execPath, ['-e', 'process.stdout.write("ready\\n"); for (;;) {}'], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    children.push(child);
    setPriority(child.pid!, 19);
    return once(child.stdout!, 'data').then(() => child.pid!);
  });
  return Promise.all(started);
}

describe('CpuMeter', () => {
  it('counts the cores a group used and the time it waited for a CPU', async () => {
    const cpus = availableParallelism();
    const pids = await spinners(cpus + 1);
    const meter = new CpuMeter({ spinners: pids, absent: [undefined] });
    meter.start();
    await sleep(600);
    const { cores, queued } = meter.stop();
    // cpus + 1 busy processes on cpus CPUs: they fill the machine, and one CPU's worth of them is always queued
    // (more when the test beside this one takes CPU from them: at nice 19 on a box pinned to one core, as
    // `npm run test:soak -- --pin 0` runs it, they got 0.02 cores, so the floor is only that they ran at all).
    expect(cores.spinners).toBeGreaterThan(0);
    expect(cores.spinners).toBeLessThanOrEqual(cpus + 0.1);
    expect(queued.spinners).toBeGreaterThan(0.3);
    // A spinning thread is always either running or queued: together, one core's worth per spinner. The meter
    // can read low (2.61 of 3 in one loaded CI run), never high: start() reads the clock before the counters and
    // stop() after them. Reading the run time as the wait would count each spinner's running twice (3.9 here).
    const accounted = (cores.spinners ?? 0) + (queued.spinners ?? 0);
    expect(accounted).toBeGreaterThan((cpus + 1) * 0.6);
    expect(accounted).toBeLessThan(cpus + 1 + 0.3);
    // Idle cores are counted machine-wide; CPUs this process may not use (taskset) can idle whatever it does.
    expect(queued.machineIdle).toBeLessThan(cpus * 0.5 + (machineCpus().length - cpus));
    expect(cores.absent).toBeNaN();
    expect(queued.absent).toBeNaN();
  });

  it('reads no wait for a process that is gone', async () => {
    const [pid] = await spinners(1);
    expect(queuedSeconds(pid)).toBeGreaterThanOrEqual(0);
    const child = children[0]!;
    const exited = once(child, 'exit');
    child.kill('SIGKILL');
    await exited;
    expect(queuedSeconds(pid)).toBeNaN();
    expect(queuedSeconds(undefined)).toBeNaN();
  });
});
