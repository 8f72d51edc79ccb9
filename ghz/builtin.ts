// The built-in runner: ghz's command line and config files, its run and its report, for machines without the
// ghz binary. Exit codes are ghz's: 0 when the run took place (whatever the calls answered), 1 for a usage or
// setup error (bad flag or config, unknown method, unreachable reflection, bad call data), with the error on
// stderr and nothing on stdout.
import { readFile, writeFile } from 'node:fs/promises';
import { type FileRegistry, fromBinary } from '@bufbuild/protobuf';
import { FileDescriptorSetSchema } from '@bufbuild/protobuf/wkt';
import { parseCommandLine, USAGE, UsageError } from './cli.js';
import { ConfigError, type GhzConfig, loadConfigFile } from './config.js';
import { connectionSettings } from './connection.js';
import { registryOf } from './file-registry.js';
import { findMethod } from './method.js';
import { type RunOptions, resolveOptions } from './options.js';
import { formatReport } from './printer.js';
import { loadProtoFiles } from './proto-files.js';
import { reflectDescriptors } from './reflection-client.js';
import { startRun } from './requester.js';

/** Where the runner writes and reads; run.ts passes the process's, tests their own. */
export interface GhzIo {
  stdout(text: string): void;
  stderr(text: string): void;
  /** For `-d @`. */
  readStdin(): Promise<string>;
  /** Called once the run has started, with the function that stops it early (run.ts wires it to Ctrl-C). */
  onStart?(stop: () => void): void;
}

/** Runs ghz's command line `argv` (without the program name); resolves with the exit code. */
export async function runBuiltinGhz(argv: readonly string[], io: GhzIo): Promise<number> {
  try {
    const commandLine = parseCommandLine(argv);
    if (commandLine.help) {
      io.stdout(USAGE);
      return 0;
    }
    if (commandLine.version) {
      io.stdout('ghz built-in runner (redlease, ghz/README.md)\n');
      return 0;
    }
    if (commandLine.binary) {
      throw new ConfigError(
        'binary call data (--binary) is not supported by the built-in runner; install ghz',
      );
    }
    const file: Partial<GhzConfig> = commandLine.configPath
      ? await loadConfigFile(commandLine.configPath, (warning) => io.stderr(`ghz: warning: ${warning}\n`))
      : {};
    const options = await resolveOptions(file, commandLine.config, io.readStdin);
    const registry = await descriptors(options);
    const method = findMethod(options.call, registry);
    const run = startRun(options, method, registry);
    io.onStart?.(run.stop);
    const report = await run.done;
    const text = formatReport(report, options.format);
    if (options.output) await writeFile(options.output, text);
    else io.stdout(text);
    return 0;
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    io.stderr(error instanceof UsageError ? `ghz: error: ${message}, try --help\n` : `${message}\n`);
    return 1;
  }
}

/** The descriptors that define the call: from --proto, else --protoset, else server reflection (as ghz). */
async function descriptors(options: RunOptions): Promise<FileRegistry> {
  if (options.proto) return loadProtoFiles(options.proto, options.importPaths);
  if (options.protoset) {
    let bytes: Buffer;
    try {
      bytes = await readFile(options.protoset);
    } catch (error) {
      throw new ConfigError(
        `could not load protoset file "${options.protoset}": ${(error as Error).message}`,
      );
    }
    try {
      return registryOf(fromBinary(FileDescriptorSetSchema, bytes).file);
    } catch (error) {
      throw new ConfigError(
        `could not parse contents of protoset file "${options.protoset}": ${(error as Error).message}`,
      );
    }
  }
  return reflectDescriptors(options.call, {
    host: options.host,
    settings: connectionSettings(options),
    metadata: options.reflectMetadata,
    timeoutNs: options.connectTimeoutNs,
  });
}
