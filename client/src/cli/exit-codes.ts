import { constants } from 'node:os';

/**
 * The exit codes of `redlease`, one table for every command (docs/cli.md shows the same table). `lock` exits
 * with its CMD's own code when the CMD ran under a lease it never lost; every other outcome is one of these.
 */
export const EXIT = {
  /** The command did what it was asked. */
  OK: 0,
  /** The server answered but refused: a lock id that does not hold the resource, bad credentials, a bad name… */
  FAILED: 1,
  /** Bad usage: an unknown command or option, a missing or malformed argument. One line on stderr. */
  USAGE: 2,
  /**
   * EX_UNAVAILABLE: the server could not be reached, did not answer in time, or had no quorum of Redis nodes,
   * after the SDK's retries; `health` also exits with it when the server reports NOT_SERVING.
   */
  UNAVAILABLE: 69,
  /** EX_TEMPFAIL: `lock` did not get the lease within --wait (as `flock -w` does). Try again later. */
  NOT_ACQUIRED: 75,
  /**
   * `lock` lost its lease while CMD ran (it expired without a renewal, or the server said it was gone); CMD was
   * stopped. The first code past the sysexits range (64–78): no sysexits meaning, and no shell meaning (126, 127,
   * 128 + n), so it cannot be mistaken for either.
   */
  LEASE_LOST: 79,
  /** CMD could not be run: found but not executable (as a shell reports it). */
  CANNOT_EXECUTE: 126,
  /** CMD was not found (as a shell reports it). */
  NOT_FOUND: 127,
} as const;

/** 128 + the signal's number: how a shell reports a process ended by that signal (SIGINT: 130, SIGTERM: 143). */
export function signalExitCode(signal: NodeJS.Signals): number {
  return 128 + constants.signals[signal];
}
