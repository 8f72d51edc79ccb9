/**
 * The `redlease` command line: its commands, options and help (commander), and the exit code of a run. Each
 * command's action does its work and records the exit code; nothing here calls process.exit (main.ts does).
 */
import { performance } from 'node:perf_hooks';
import { Argument, type Command, CommanderError, Option, Command as Program } from 'commander';
import { EXIT } from './exit-codes.js';
import { fail } from './failure.js';
import { health, type ModeName, mode, nodes, release, status } from './inspect.js';
import { lock } from './lock.js';
import { type ConnectionFlags, connection, duration } from './options.js';
import { type Output, output } from './output.js';

const MAX_WAIT_MS = 300_000; // the server's longest wait (5 min)
const MIN_TTL_MS = 100;
const MAX_TTL_MS = 3_600_000;

/** `lock`'s own options, as commander parsed them (durations in ms). */
interface LockFlags {
  wait: number;
  ttl: number;
  grace: number;
  clientId?: string;
}

const EXIT_CODES = `
Exit codes:
  0    success; for lock, CMD's own exit code (128 + n if signal n ended it)
  1    the server refused (lock id not holding the resource, credentials…)
  2    bad usage (one line on stderr)
  69   server unreachable, not answering, or no quorum, after retries; health: NOT_SERVING
  75   lock: not acquired within --wait
  79   lock: the lease was lost while CMD ran; CMD was stopped
  126  lock: CMD not executable; 127: CMD not found`;

const ENVIRONMENT = `
Environment (a flag wins over its variable):
  REDLEASE_ADDRESS, REDLEASE_TLS (true/false), REDLEASE_TLS_CA, REDLEASE_TLS_CERT, REDLEASE_TLS_KEY,
  REDLEASE_TLS_SERVER_NAME, REDLEASE_CALL_TIMEOUT, REDLEASE_TOKEN_FILE: as the flags.
  REDLEASE_TOKEN      bearer token (there is no flag for the token itself: argv is visible in ps)
  NO_COLOR            no colours even on a terminal`;

/** Runs `redlease` with `argv` (the arguments after the program name); resolves with the exit code. */
export async function runCli(argv: readonly string[], env: NodeJS.ProcessEnv): Promise<number> {
  let exitCode: number = EXIT.OK;
  const program = build(env, (code) => (exitCode = code));
  try {
    await program.parseAsync([...argv], { from: 'user' });
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode === 0 ? EXIT.OK : EXIT.USAGE;
    throw error;
  }
  return exitCode;
}

function build(env: NodeJS.ProcessEnv, done: (code: number) => void): Program {
  let helpAsError = false;
  const program = new Program('redlease')
    .description(
      'Locks from the shell, over a redlease server: run a command under a lease with a fencing token, and inspect or administer the server.',
    )
    .addOption(
      new Option('--address <host:port>', 'redlease server')
        .env('REDLEASE_ADDRESS')
        .default('127.0.0.1:50051'),
    )
    .addOption(
      new Option('--tls', 'TLS, verifying the server against the system CAs (env: REDLEASE_TLS=true)'),
    )
    .addOption(
      new Option('--tls-ca <file>', 'TLS, verifying the server against this PEM CA').env('REDLEASE_TLS_CA'),
    )
    .addOption(new Option('--tls-cert <file>', 'client certificate (PEM) for mTLS').env('REDLEASE_TLS_CERT'))
    .addOption(new Option('--tls-key <file>', "the client certificate's key (PEM)").env('REDLEASE_TLS_KEY'))
    .addOption(
      new Option(
        '--tls-server-name <name>',
        "name to verify when the certificate's differs from the address",
      ).env('REDLEASE_TLS_SERVER_NAME'),
    )
    .addOption(
      new Option('--token-file <file>', 'file holding the bearer token (else REDLEASE_TOKEN)').env(
        'REDLEASE_TOKEN_FILE',
      ),
    )
    .addOption(
      new Option('--call-timeout <duration>', 'time the server has to answer a call')
        .env('REDLEASE_CALL_TIMEOUT')
        .default(5_000, '5s')
        .argParser(duration(100, MAX_TTL_MS)),
    )
    .addOption(new Option('--json', 'print JSON for scripts instead of tables and prose'))
    .helpCommand(false)
    .configureOutput({
      // Commander answers a missing command with the whole help (and its epilogue) on stderr, then exits: a
      // usage error is one line here, so that help is replaced by the line.
      writeErr: (text) => {
        if (text.startsWith('Usage:')) {
          helpAsError = true;
          process.stderr.write('redlease: missing command (see redlease --help)\n');
        } else if (!helpAsError) {
          process.stderr.write(text);
        }
      },
    })
    .configureHelp({ showGlobalOptions: true, sortSubcommands: false })
    .addHelpText(
      'after',
      `${EXIT_CODES}\n${ENVIRONMENT}\n\nEach command has --help with examples: redlease lock --help`,
    );
  oneLineErrors(program);

  /** Runs a command's work with the shared options, recording its exit code; any failure becomes one. */
  const act =
    (work: (conn: ReturnType<typeof connection>, out: Output, ...args: never[]) => Promise<number>) =>
    async (...args: unknown[]) => {
      const started = performance.now();
      const command = args[args.length - 1] as Command;
      const flags = command.optsWithGlobals<ConnectionFlags>();
      const out = output(flags.json === true, env);
      try {
        const conn = connection(flags, env);
        done(await work(conn, out, ...(args.slice(0, -1) as never[])));
      } catch (error) {
        done(fail(out, error, flags.address, performance.now() - started));
      }
    };

  const lockCommand = program
    .command('lock')
    .summary('run CMD while holding a lease on RESOURCE, its fencing token in its environment')
    .description(
      'Run CMD while holding a lease on RESOURCE: wait in line for it, run CMD with REDLEASE_RESOURCE, ' +
        'REDLEASE_LOCK_ID and REDLEASE_FENCING_TOKEN in its environment, renew the lease while it runs, ' +
        "release it when CMD exits and exit with CMD's code. If the lease is lost, CMD's process group gets " +
        'SIGTERM at once and SIGKILL after --grace, and redlease exits 79. SIGINT, SIGTERM and SIGHUP are ' +
        'forwarded to CMD; the lease is released after CMD exits.',
    )
    .argument('<resource>', 'name of the resource: 1–256 visible ASCII characters')
    .argument('<cmd...>', 'the command and its arguments (put -- before it when it has options)')
    .addOption(
      new Option('--wait <duration>', 'how long to wait in line; 0 tries once (at most 5m)')
        .default(30_000, '30s')
        .argParser(duration(0, MAX_WAIT_MS)),
    )
    .addOption(
      new Option('--ttl <duration>', 'lease ttl, renewed every third of it while CMD runs')
        .env('REDLEASE_TTL')
        .default(10_000, '10s')
        .argParser(duration(MIN_TTL_MS, MAX_TTL_MS)),
    )
    .addOption(
      new Option('--grace <duration>', 'after a lost lease, time between SIGTERM and SIGKILL to CMD')
        .default(5_000, '5s')
        .argParser(duration(0, MAX_TTL_MS)),
    )
    .addOption(
      new Option('--client-id <name>', 'holder name shown by status (default host:pid)').env(
        'REDLEASE_CLIENT_ID',
      ),
    )
    .addHelpText(
      'after',
      `
Examples:
  # wait up to 30s for the lease, then run the report under it
  redlease lock nightly-report -- ./report.sh
  # try once: exit 75 at once if someone has it
  redlease lock --wait 0 backup -- pg_dump -f /backups/app.sql app
  # hand the fencing token to what writes, so a stale holder's writes are refused
  redlease lock --ttl 30s --grace 10s migrate -- sh -c 'migrate --fencing-token "$REDLEASE_FENCING_TOKEN"'
  # crontab: never two syncs at once, on any machine
  */5 * * * * redlease lock --wait 0 sync -- /usr/local/bin/sync`,
    )
    .action(
      act((conn, out, resource: string, cmd: string[], flags: LockFlags) =>
        lock(conn, out, resource, cmd, {
          waitMs: flags.wait,
          ttlMs: flags.ttl,
          graceMs: flags.grace,
          ...(flags.clientId !== undefined && { clientId: flags.clientId }),
        }),
      ),
    );
  oneLineErrors(lockCommand);

  const statusCommand = program
    .command('status')
    .summary("show RESOURCE's holder, token, validity, waiters and per-node state")
    .description(
      "Show RESOURCE's state: holder, fencing token, validity, waiters, and what each Redis node holds.",
    )
    .argument('<resource>', 'name of the resource')
    .addHelpText(
      'after',
      `
Examples:
  redlease status nightly-report
  redlease status nightly-report --json | jq .fencingToken`,
    )
    .action(act((conn, out, resource: string) => status(conn, out, resource)));
  oneLineErrors(statusCommand);

  const nodesCommand = program
    .command('nodes')
    .summary('list the Redis nodes: up, voting, latency, quarantine time left')
    .description(
      'List the Redis nodes (AdminService.ListNodes): up, voting, latency, quarantine time left, last error; ' +
        'the mode and whether a quorum is available.',
    )
    .addHelpText(
      'after',
      `
Examples:
  redlease nodes
  redlease nodes --json | jq -r '.nodes[] | select(.quarantined) | "\\(.name) \\(.quarantineRemainingMs)"'`,
    )
    .action(act((conn, out) => nodes(conn, out)));
  oneLineErrors(nodesCommand);

  const healthCommand = program
    .command('health')
    .summary("check the server's health; exit 69 unless SERVING")
    .description(
      "Check the server's health (grpc.health.v1): every service, or just SERVICE. Exit 0 when SERVING, " +
        '69 when NOT_SERVING (the lock service is NOT_SERVING without a quorum).',
    )
    .argument('[service]', 'a service name, e.g. redlease.v1.LockService; "" is the server as a whole')
    .addHelpText(
      'after',
      `
Examples:
  redlease health
  redlease health redlease.v1.LockService && echo "leases can be granted"`,
    )
    .action(act((conn, out, service: string | undefined) => health(conn, out, service)));
  oneLineErrors(healthCommand);

  const modeCommand = program
    .command('mode')
    .summary('show or switch the locking mode: redlock or single')
    .description(
      'Show the locking mode, or switch it: redlock (a quorum of the nodes) or single (node 1 alone: ' +
        "unsafe, the lab's comparison). Admin calls: from loopback, or with the admin token.",
    )
    .addArgument(new Argument('[mode]', 'the mode to switch to').choices(['single', 'redlock']))
    .addOption(
      new Option(
        '--force',
        'switch even while leases are live, ending them (their holders are told LOST); without it the server refuses',
      ),
    )
    .addHelpText(
      'after',
      `
Examples:
  redlease mode
  REDLEASE_TOKEN_FILE=/etc/redlease/admin-token redlease mode single
  redlease mode --force redlock`,
    )
    .action(
      act((conn, out, next: ModeName | undefined, flags: { force?: boolean }) =>
        mode(conn, out, next, flags.force === true),
      ),
    );
  oneLineErrors(modeCommand);

  const releaseCommand = program
    .command('release')
    .summary('release the lease LOCK_ID holds on RESOURCE')
    .description(
      'Release the lease LOCK_ID holds on RESOURCE (only that lease: a lock id is the capability to end it).',
    )
    .argument('<resource>', 'name of the resource')
    .argument(
      '<lock-id>',
      "the lease's lock id: 32 lowercase hex characters (CMD has it in REDLEASE_LOCK_ID)",
    )
    .addHelpText(
      'after',
      `
Examples:
  # free a resource whose holder is stuck; a redlease lock holding it stops its CMD (exit 79)
  redlease release deploy 3f9c0e0b6a1d4e2f8a7b5c6d7e8f9a0b`,
    )
    .action(act((conn, out, resource: string, lockId: string) => release(conn, out, resource, lockId)));
  oneLineErrors(releaseCommand);

  return program;
}

/** Usage errors as one line on stderr, naming where help is; exit codes through exceptions (runCli maps them). */
function oneLineErrors(command: Command): void {
  const name = command.name() === 'redlease' ? 'redlease' : `redlease ${command.name()}`;
  // CMD's own options reach lock only after `--`; without it they look like lock's.
  const hint = name === 'redlease lock' ? 'put -- before CMD when it has options; ' : '';
  command.exitOverride().configureOutput({
    outputError: (text, write) => {
      const line = text
        .replace(/^error: /, '')
        .trim()
        .replace(/\s*\n\s*/g, ' ');
      write(`redlease: ${line} (${line.startsWith('unknown option') ? hint : ''}see ${name} --help)\n`);
    },
  });
}
