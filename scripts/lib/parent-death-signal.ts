/**
 * A command line that makes the kernel signal the command when its parent (this process) dies, even by SIGKILL:
 * Linux's PR_SET_PDEATHSIG, set by util-linux's `setpriv --pdeathsig` just before it execs the command. The exec
 * keeps the pid, so the caller's pid bookkeeping and readiness checks hold as without it. The signal fires when the
 * thread that spawned the child ends; Node spawns from its main thread, so that is when the process ends.
 *
 * Where setpriv is missing (not Linux, or a system without util-linux) the command runs unwrapped: a launcher
 * then relies on its own cleanup (the demo's state file: scripts/lib/demo-state.ts).
 */
import { accessSync, constants } from 'node:fs';

/** util-linux is Essential on Debian, so setpriv is always here (/usr/bin); the others for other layouts. */
const SETPRIV_PATHS = ['/usr/bin/setpriv', '/bin/setpriv', '/usr/sbin/setpriv'];

let setprivPath: string | null | undefined;

function findSetpriv(): string | null {
  if (setprivPath !== undefined) return setprivPath;
  setprivPath = null;
  if (process.platform !== 'linux') return setprivPath;
  for (const candidate of SETPRIV_PATHS) {
    try {
      accessSync(candidate, constants.X_OK);
      setprivPath = candidate;
      break;
    } catch {
      // not here
    }
  }
  return setprivPath;
}

/** `command args` wrapped so that it gets `signal` when this process dies; unchanged when that is not possible. */
export function withParentDeathSignal(
  command: string,
  args: readonly string[],
  signal: NodeJS.Signals | undefined,
): { command: string; args: string[] } {
  const setpriv = signal === undefined ? null : findSetpriv();
  if (setpriv === null || signal === undefined) return { command, args: [...args] };
  // setpriv takes the name without the SIG prefix ("KILL"); it also accepts "SIGKILL", but not a number.
  return { command: setpriv, args: ['--pdeathsig', signal.replace(/^SIG/, ''), command, ...args] };
}
