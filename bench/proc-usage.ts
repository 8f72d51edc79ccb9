/**
 * CPU and memory of processes from Linux's /proc: `utime + stime` of /proc/<pid>/stat (clock ticks) and VmRSS of
 * /proc/<pid>/status. Unreadable (not Linux, process gone): NaN, reported as "n/a".
 */
import { readFileSync } from 'node:fs';

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
  try {
    const fields = readFileSync('/proc/stat', 'utf8')
      .split('\n', 1)[0]!
      .trim()
      .split(/\s+/)
      .slice(1)
      .map(Number);
    const [user, nice, system, , , irq, softirq, steal] = fields;
    return (
      ((user ?? 0) + (nice ?? 0) + (system ?? 0) + (irq ?? 0) + (softirq ?? 0) + (steal ?? 0)) /
      CLOCK_TICKS_PER_SECOND
    );
  } catch {
    return Number.NaN;
  }
}

/**
 * Cores used by each named group of processes between start() and stop() (CPU seconds / wall seconds), and by
 * the whole machine ("machine").
 */
export class CpuMeter {
  #startCpu = new Map<string, number>();
  #startAt = 0;

  constructor(private readonly groups: Record<string, readonly (number | undefined)[]>) {}

  start(): void {
    this.#startAt = performance.now();
    for (const [name, pids] of Object.entries(this.groups)) this.#startCpu.set(name, this.#sum(pids));
    this.#startCpu.set('machine', machineBusySeconds());
  }

  /** Cores per group since start(), rounded to 0.01. */
  stop(): Record<string, number> {
    const wallSeconds = (performance.now() - this.#startAt) / 1_000;
    const cores: Record<string, number> = {};
    for (const [name, pids] of Object.entries(this.groups)) {
      const used = this.#sum(pids) - (this.#startCpu.get(name) ?? Number.NaN);
      cores[name] = Math.round((used / wallSeconds) * 100) / 100;
    }
    // Everything busy on the box, ours or not: near the core count means the run was CPU-bound.
    const machine = machineBusySeconds() - (this.#startCpu.get('machine') ?? Number.NaN);
    cores.machine = Math.round((machine / wallSeconds) * 100) / 100;
    return cores;
  }

  #sum(pids: readonly (number | undefined)[]): number {
    let total = 0;
    for (const pid of pids) total += pid === process.pid ? ownCpuSeconds() : cpuSeconds(pid);
    return total;
  }
}
