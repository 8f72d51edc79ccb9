/**
 * `redlease lock RESOURCE -- CMD [ARGS…]`: runs CMD under a lease, the way `flock` runs it under a file lock,
 * with the fencing token in its environment and the lease renewed over KeepAlive while it runs.
 *
 * - CMD runs in a session and process group of its own (spawn's `detached`), so that when the lease is lost
 *   the whole group, grandchildren included, can be signalled: SIGTERM at once, SIGKILL after --grace. A
 *   terminal's Ctrl-C therefore reaches redlease only; it forwards SIGINT, SIGTERM and SIGHUP to the group.
 * - CMD's exit releases the lease; redlease exits with CMD's code (128 + n when a signal ended it), or with
 *   EXIT.LEASE_LOST when the lease was lost while it ran, whatever CMD's code: its work may not have been
 *   exclusive.
 * - Any end of the lease while CMD runs counts as lost: its expiry, the server's LOST, and a Release by its lock
 *   id from elsewhere (`redlease release RESOURCE LOCK_ID`, e.g. an operator freeing a stuck resource). Only
 *   CMD's exit lets the lease go without stopping it.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { LeaseLostError, type LeaseReleasedError, LockHeldError } from '../errors.js';
import type { Lease } from '../lease.js';
import { LockClient } from '../lock-client.js';
import { EXIT, signalExitCode } from './exit-codes.js';
import type { Connection } from './options.js';
import { formatDuration, note, type Output } from './output.js';
import { QueueProgress } from './progress.js';

export interface LockOptions {
  waitMs: number;
  ttlMs: number;
  graceMs: number;
  clientId?: string;
}

/** Signals redlease handles itself: while waiting they cancel the Acquire; while CMD runs they are forwarded. */
const FORWARDED: readonly NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
/** How often to look whether a lost lease's CMD has left its process group entirely. */
const GROUP_POLL_MS = 20;

type Ended = { code: number | null; signal: NodeJS.Signals | null } | { error: NodeJS.ErrnoException };

export async function lock(
  connection: Connection,
  out: Output,
  resource: string,
  command: readonly string[],
  options: LockOptions,
): Promise<number> {
  const client = new LockClient({
    ...connection,
    // One Acquire and one Release: plain calls, which per-method metrics and proxies see as such.
    transport: 'unary',
    ttlMs: options.ttlMs,
    ...(options.clientId !== undefined && { clientId: options.clientId }),
  });
  let lastRenewalFailure = '';
  client.on('renewed', () => (lastRenewalFailure = ''));
  client.on('renewalFailed', (_lease, reason) => (lastRenewalFailure = reason));
  client.on(
    'streamError',
    (error) => (lastRenewalFailure = error instanceof Error ? error.message : String(error)),
  );

  const interrupted = new AbortController();
  let child: ChildProcess | undefined;
  const onSignal = (signal: NodeJS.Signals) => {
    if (!child) {
      interrupted.abort(signal); // still waiting: leave the queue
    } else if (child.exitCode === null && child.signalCode === null) {
      signalGroup(child, signal);
      note(out, { event: 'signal', signal, forwarded: true }, () => `${signal}: forwarded to CMD`);
    }
    // CMD has exited: the release under way ends redlease anyway.
  };
  for (const signal of FORWARDED) process.on(signal, onSignal);
  try {
    const lease = await acquire(client, out, resource, options, interrupted.signal);
    if (typeof lease === 'number') return lease;
    return await run(
      lease,
      out,
      command,
      options,
      () => lastRenewalFailure,
      (spawned) => (child = spawned),
    );
  } finally {
    for (const signal of FORWARDED) process.off(signal, onSignal);
    await client.close();
  }
}

/** The lease, or the exit code when there is none (not acquired in time, interrupted); other failures throw. */
async function acquire(
  client: LockClient,
  out: Output,
  resource: string,
  options: LockOptions,
  interrupted: AbortSignal,
): Promise<Lease | number> {
  const started = performance.now();
  const progress =
    !out.json && out.stderr.isTTY && options.waitMs > 0
      ? new QueueProgress(client, resource, out.stderr, out.err, started)
      : undefined;
  try {
    const lease = await client.acquire(resource, {
      waitMs: options.waitMs,
      ttlMs: options.ttlMs,
      signal: interrupted,
    });
    progress?.stop();
    const waitedMs = Math.round(performance.now() - started);
    note(
      out,
      {
        event: 'acquired',
        resource,
        fencingToken: lease.fencingToken,
        clientId: lease.clientId,
        nodes: lease.nodes,
        ttlMs: options.ttlMs,
        waitedMs,
      },
      // On a terminal only: a cron job's log shows CMD's output, and redlease's only when something went wrong.
      () =>
        out.stderr.isTTY
          ? `acquired "${resource}" with fencing token ${lease.fencingToken} after ${formatDuration(waitedMs)}`
          : undefined,
    );
    return lease;
  } catch (error) {
    progress?.stop();
    const waitedMs = Math.round(performance.now() - started);
    if (interrupted.aborted) {
      const signal = interrupted.reason as NodeJS.Signals;
      note(
        out,
        { event: 'interrupted', signal, waitedMs },
        () => `${signal} while waiting for "${resource}": not acquired`,
      );
      return signalExitCode(signal);
    }
    if (!(error instanceof LockHeldError)) throw error;
    const holder = await client.describe(resource).catch(() => undefined);
    const by = holder?.locked
      ? `held by ${holder.holderClientId || '(no client id)'} with token ${holder.fencingToken}`
      : error.message;
    note(
      out,
      {
        event: 'not-acquired',
        exitCode: EXIT.NOT_ACQUIRED,
        resource,
        waitedMs,
        holderClientId: holder?.locked ? holder.holderClientId : undefined,
        fencingToken: holder?.locked ? holder.fencingToken : undefined,
        reason: error.reason,
      },
      () =>
        `"${resource}" not acquired ${options.waitMs === 0 ? '(--wait 0: tried once)' : `within ${formatDuration(options.waitMs)} (--wait)`}: ${by}`,
    );
    return EXIT.NOT_ACQUIRED;
  }
}

/** Runs CMD under `lease` until it exits; stops it if the lease is lost; releases; resolves with the exit code. */
async function run(
  lease: Lease,
  out: Output,
  command: readonly string[],
  options: LockOptions,
  lastRenewalFailure: () => string,
  spawned: (child: ChildProcess) => void,
): Promise<number> {
  const [file, ...args] = command as [string, ...string[]];
  if (!lease.isHeld()) {
    // Lost between the grant and now (this process stalled): CMD must not start without it.
    const reason = lease.signal.reason as Error;
    note(
      out,
      {
        event: 'exit',
        exitCode: EXIT.LEASE_LOST,
        resource: lease.resource,
        leaseLost: true,
        reason: reason.message,
      },
      () => `${reason.message}; CMD not started`,
    );
    return EXIT.LEASE_LOST;
  }
  const child = spawn(file, args, {
    stdio: 'inherit',
    detached: true,
    env: {
      ...process.env,
      REDLEASE_RESOURCE: lease.resource,
      REDLEASE_LOCK_ID: lease.lockId,
      REDLEASE_FENCING_TOKEN: String(lease.fencingToken),
    },
  });
  const ended = new Promise<Ended>((resolve) => {
    child.once('error', (error) => resolve({ error }));
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
  if (child.pid !== undefined) spawned(child);

  let exited = false;
  /** How the lease ended while CMD ran, if it did. */
  let lost: LeaseLostError['kind'] | 'released' | undefined;
  let killAt = Number.POSITIVE_INFINITY;
  let killTimer: NodeJS.Timeout | undefined;
  const onEnd = () => {
    if (exited) return;
    const reason = lease.signal.reason as LeaseLostError | LeaseReleasedError;
    lost = reason instanceof LeaseLostError ? reason.kind : 'released';
    const failure = lastRenewalFailure();
    const why = `${reason.message}${failure ? `; last renewal failure: ${failure}` : ''}`;
    note(
      out,
      {
        event: 'lost',
        resource: lease.resource,
        fencingToken: lease.fencingToken,
        kind: lost,
        reason: why,
        graceMs: options.graceMs,
      },
      () => `${why}; stopping CMD: SIGTERM now, SIGKILL after ${formatDuration(options.graceMs)}`,
    );
    signalGroup(child, 'SIGTERM');
    killAt = performance.now() + options.graceMs;
    killTimer = setTimeout(() => signalGroup(child, 'SIGKILL'), options.graceMs);
  };
  lease.signal.addEventListener('abort', onEnd, { once: true });

  const end = await ended;
  lease.isHeld(); // a deadline that passed unnoticed ends the lease now (as lost), before CMD's exit counts
  exited = true;
  lease.signal.removeEventListener('abort', onEnd);

  if (lost) {
    // CMD's leader is gone; what else runs in its group gets the rest of the grace, then SIGKILL.
    while (groupAlive(child) && performance.now() < killAt) await sleep(GROUP_POLL_MS);
    clearTimeout(killTimer);
    if (groupAlive(child)) signalGroup(child, 'SIGKILL');
  }
  const released = lease.isHeld()
    ? await lease.release().catch((error: unknown) => {
        note(
          out,
          { event: 'release-failed', message: String(error) },
          () =>
            `could not release "${lease.resource}" (it expires within its ttl): ${error instanceof Error ? error.message : String(error)}`,
        );
        return false;
      })
    : false;

  let exitCode: number;
  let why: string;
  if (lost) {
    exitCode = EXIT.LEASE_LOST;
    why = `CMD stopped: the lease on "${lease.resource}" was lost (${lost})`;
  } else if ('error' in end) {
    exitCode = end.error.code === 'ENOENT' ? EXIT.NOT_FOUND : EXIT.CANNOT_EXECUTE;
    why = `cannot run ${JSON.stringify(file)}: ${end.error.code === 'ENOENT' ? 'command not found' : end.error.message}`;
  } else if (end.signal) {
    exitCode = signalExitCode(end.signal);
    why = `CMD ended by ${end.signal}`;
  } else {
    exitCode = end.code ?? EXIT.FAILED;
    why = `CMD exited with ${exitCode}`;
  }
  note(
    out,
    {
      event: 'exit',
      exitCode,
      resource: lease.resource,
      fencingToken: lease.fencingToken,
      leaseLost: lost !== undefined,
      released,
      ...('error' in end ? { error: end.error.code } : { code: end.code, signal: end.signal }),
    },
    // CMD's own exit is its business; redlease speaks when it stopped CMD or could not run it.
    () => (lost || 'error' in end ? why : undefined),
  );
  return exitCode;
}

/** Signals CMD's whole process group (CMD is its leader); nothing when it is gone already. */
function signalGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // ESRCH: nobody left in the group.
  }
}

function groupAlive(child: ChildProcess): boolean {
  if (child.pid === undefined) return false;
  try {
    process.kill(-child.pid, 0);
    return true;
  } catch {
    return false;
  }
}
