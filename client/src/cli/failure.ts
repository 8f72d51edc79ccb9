/** How a failed command ends: its exit code (exit-codes.ts) and one line saying why. */
import { CommanderError } from 'commander';
import {
  InvalidArgumentError,
  LockError,
  LockHeldError,
  LockNotHeldError,
  LockTimeoutError,
  UnavailableError,
} from '../errors.js';
import { EXIT } from './exit-codes.js';
import { UsageError } from './options.js';
import { note, type Output } from './output.js';

export function exitCodeOf(error: unknown): number {
  if (error instanceof UsageError || error instanceof InvalidArgumentError) return EXIT.USAGE;
  if (error instanceof CommanderError) return EXIT.USAGE;
  if (error instanceof UnavailableError || error instanceof LockTimeoutError) return EXIT.UNAVAILABLE;
  if (error instanceof LockHeldError) return EXIT.NOT_ACQUIRED;
  return EXIT.FAILED;
}

/** One line, for people. */
export function describeFailure(error: unknown, address: string): string {
  if (error instanceof UnavailableError) {
    // The server's own UNAVAILABLE carries a reason (QUORUM_UNAVAILABLE, SHUTTING_DOWN); a transport failure none.
    const what =
      error.reason === '' ? `cannot reach ${address}` : `${address} is unavailable (${error.reason})`;
    return oneLine(`${what}, after retries: ${error.message}`);
  }
  if (error instanceof LockTimeoutError)
    return oneLine(`${address} did not answer in time: ${error.message}`);
  if (error instanceof LockNotHeldError) {
    return `"${error.resource}" is not held by that lock id (expired, released or taken over): ${error.message}`;
  }
  return oneLine(error instanceof Error ? error.message : String(error));
}

/**
 * Reports `error` on stderr (one line, or a JSON event with --json, which also says how long the command tried:
 * `elapsedMs`, retries included) and returns the exit code.
 */
export function fail(out: Output, error: unknown, address: string, elapsedMs: number): number {
  const exitCode = exitCodeOf(error);
  const lock = error instanceof LockError ? { code: error.code, reason: error.reason } : {};
  note(
    out,
    {
      event: 'error',
      exitCode,
      elapsedMs: Math.round(elapsedMs),
      error: {
        type: error instanceof Error ? error.name : typeof error,
        ...lock,
        message: describeFailure(error, address),
      },
    },
    () => describeFailure(error, address),
  );
  return exitCode;
}

/** grpc-js details can span lines and end in an empty "Resolution note:". */
function oneLine(text: string): string {
  return text
    .replace(/\s*\n\s*/g, ' ')
    .replace(/\s*Resolution note:\s*$/, '')
    .trim();
}
