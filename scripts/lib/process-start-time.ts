/**
 * Is pid N still the process we started, or a new one that reused its number? Linux's /proc/<pid>/stat gives each
 * process's start time (clock ticks since boot, field 22): a pid plus that time names one process for good. The
 * demo records both for every process it starts, so a later start can kill what a killed launcher left behind
 * without ever touching an unrelated process.
 */
import { readdirSync, readFileSync } from 'node:fs';

/**
 * Start time of the live process `pid`; undefined when there is none: gone, or a zombie awaiting its parent whose
 * threads have all exited. A zombie main thread alone is not enough: a multi-threaded process (node) killed by a
 * signal shows its main thread as a zombie while its other threads still exit, and its sockets and ports are
 * closed only when the last of them is gone.
 */
export function processStartTime(pid: number): number | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // "pid (comm) state ppid …": comm may hold spaces and parentheses, so count fields after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const state = fields[0];
  if ((state === 'Z' || state === 'X') && !otherThreadsLeft(pid)) return undefined;
  const startTime = Number(fields[19]); // field 22 of the whole line; fields[0] is field 3
  return Number.isFinite(startTime) ? startTime : undefined;
}

/** Whether threads other than the main one of `pid` are still there (still exiting, when it is a zombie). */
function otherThreadsLeft(pid: number): boolean {
  try {
    return readdirSync(`/proc/${pid}/task`).some((tid) => tid !== String(pid));
  } catch {
    return false;
  }
}
