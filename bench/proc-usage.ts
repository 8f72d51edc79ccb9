/**
 * CPU and memory of processes from Linux's /proc: `utime + stime` of /proc/<pid>/stat (clock ticks), the time
 * their threads spent waiting for a CPU (/proc/<pid>/task/<tid>/schedstat), and VmRSS of /proc/<pid>/status.
 * Unreadable (not Linux, process gone, a kernel without schedstat): NaN, reported as "n/a".
 */
import { readdirSync, readFileSync } from 'node:fs';

/** USER_HZ: the unit of utime/stime; 100 on every Linux architecture Node runs on (`getconf CLK_TCK`). */
const CLOCK_TICKS_PER_SECOND = 100;

/** CPU seconds (user + system) used by `pid` so far. */
export function cpuSeconds(pid: number | undefined): number {
  if (pid === undefined) return Number.NaN;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) is in parentheses and may hold spaces: count fields after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // fields[0] is field 3 (state), so utime (14) and stime (15) are fields[11] and fields[12].
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_SECOND;
  } catch {
    return Number.NaN;
  }
}

/**
 * Seconds `pid`'s threads have spent runnable but not running, waiting on a run queue for a CPU, so far: the
 * second field of /proc/<pid>/task/<tid>/schedstat (nanoseconds), summed over the threads alive now.
 */
export function queuedSeconds(pid: number | undefined): number {
  if (pid === undefined) return Number.NaN;
  let threads: string[];
  try {
    threads = readdirSync(`/proc/${pid}/task`);
  } catch {
    return Number.NaN;
  }
  let total = 0;
  for (const tid of threads) {
    try {
      total += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[1]);
    } catch {
      // the thread ended meanwhile: its wait is gone with it
    }
  }
  return total / 1e9;
}

/** CPU seconds used by this process (its worker threads included). */
function ownCpuSeconds(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1e6;
}

/** Resident set size of `pid`, in bytes. */
export function rssBytes(pid: number | undefined): number {
  if (pid === undefined) return Number.NaN;
  try {
    const match = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) * 1024 : Number.NaN;
  } catch {
    return Number.NaN;
  }
}

/**
 * Busy CPU seconds of the whole machine so far (every process, this harness's and anyone else's), from the
 * first line of /proc/stat: user + nice + system + irq + softirq + steal ticks.
 */
export function machineBusySeconds(): number {
  const fields = machineTicks();
  const [user, nice, system, , , irq, softirq, steal] = fields;
  return (
    ((user ?? Number.NaN) + (nice ?? 0) + (system ?? 0) + (irq ?? 0) + (softirq ?? 0) + (steal ?? 0)) /
    CLOCK_TICKS_PER_SECOND
  );
}

/** Idle CPU seconds of the whole machine so far (idle + iowait ticks of /proc/stat's first line). */
export function machineIdleSeconds(): number {
  const [, , , idle, iowait] = machineTicks();
  return ((idle ?? Number.NaN) + (iowait ?? 0)) / CLOCK_TICKS_PER_SECOND;
}

/** The tick counters of /proc/stat's first line (all CPUs); empty when unreadable. */
function machineTicks(): number[] {
  try {
    return readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!.trim().split(/\s+/).slice(1).map(Number);
  } catch {
    return [];
  }
}

/** What a CpuMeter measured, in cores (seconds per wall second), per group of processes. */
export interface CpuUsage {
  /** CPU used by each group, and by the whole machine ("machine"). */
  cores: Record<string, number>;
  /**
   * Time each group's threads spent runnable but waiting for a CPU, and the machine's idle CPU meanwhile
   * ("machineIdle"). Work that waits while a CPU idles is time the scheduler left on the table.
   */
  queued: Record<string, number>;
}

/**
 * Cores used by each named group of processes between start() and stop() (CPU seconds / wall seconds), and by
 * the whole machine ("machine"); and how long each group waited for a CPU meanwhile.
 */
export class CpuMeter {
  #startCpu = new Map<string, number>();
  #startQueued = new Map<string, number>();
  #startAt = 0;

  constructor(private readonly groups: Record<string, readonly (number | undefined)[]>) {}

  start(): void {
    this.#startAt = performance.now();
    for (const [name, pids] of Object.entries(this.groups)) {
      this.#startCpu.set(name, this.#sum(pids));
      this.#startQueued.set(name, sumOver(pids, queuedSeconds));
    }
    this.#startCpu.set('machine', machineBusySeconds());
    this.#startQueued.set('machineIdle', machineIdleSeconds());
  }

  /** Cores used and cores' worth of waiting per group since start(), and the machine's; rounded to 0.01. */
  stop(): CpuUsage {
    // Every counter is read before the clock, as start() reads the clock before them: a read delayed (this
    // process preempted) can then only shorten the interval the counters cover, never lengthen it.
    const used = new Map<string, { cpu: number; waited: number }>();
    for (const [name, pids] of Object.entries(this.groups)) {
      used.set(name, { cpu: this.#sum(pids), waited: sumOver(pids, queuedSeconds) });
    }
    const machineBusy = machineBusySeconds();
    const machineIdle = machineIdleSeconds();
    const wallSeconds = (performance.now() - this.#startAt) / 1_000;
    const perWallSecond = (seconds: number): number => Math.round((seconds / wallSeconds) * 100) / 100;
    const cores: Record<string, number> = {};
    const queued: Record<string, number> = {};
    for (const [name, { cpu, waited }] of used) {
      cores[name] = perWallSecond(cpu - (this.#startCpu.get(name) ?? Number.NaN));
      // A thread that ended took its wait with it: never below 0.
      queued[name] = perWallSecond(Math.max(0, waited - (this.#startQueued.get(name) ?? Number.NaN)));
    }
    // Everything busy on the box, ours or not: near the core count means the run was CPU-bound.
    cores.machine = perWallSecond(machineBusy - (this.#startCpu.get('machine') ?? Number.NaN));
    queued.machineIdle = perWallSecond(machineIdle - (this.#startQueued.get('machineIdle') ?? Number.NaN));
    return { cores, queued };
  }

  #sum(pids: readonly (number | undefined)[]): number {
    return sumOver(pids, (pid) => (pid === process.pid ? ownCpuSeconds() : cpuSeconds(pid)));
  }
}

function sumOver(pids: readonly (number | undefined)[], read: (pid: number | undefined) => number): number {
  let total = 0;
  for (const pid of pids) total += read(pid);
  return total;
}
