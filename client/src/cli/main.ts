#!/usr/bin/env node
/**
 * `redlease`: the command line of the SDK package (its `bin`). `npx redlease --help` once @redlease/client is
 * installed; `npm run cli -- --help` in the repository. docs/cli.md describes every command and exit code.
 */
import { runCli } from './program.js';

// grpc-js warns (DEP0123) when TLS connects to an IP address, which is how servers are often addressed; a user
// cannot act on it, and it would break the rule that redlease's own stderr is one line per message.
process.removeAllListeners('warning');
process.on('warning', (warning: Error & { code?: string }) => {
  if (warning.code !== 'DEP0123') process.stderr.write(`redlease: warning: ${warning.message}\n`);
});

const code = await runCli(process.argv.slice(2), process.env);
// Every handle is closed by now, but a stray one (a timer of a library) must not keep a finished command alive.
process.exit(code);
