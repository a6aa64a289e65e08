import type { Writable } from 'node:stream';
import { ConnectorError } from '../core/errors.js';

/** What a subcommand gets: its arguments (after the subcommand name) and where to write. */
export interface CommandIo {
  argv: string[];
  stdout: Writable;
  stderr: Writable;
  env: NodeJS.ProcessEnv;
  /** Fires on SIGINT/SIGTERM. */
  abortSignal: AbortSignal;
}

export interface Command {
  name: string;
  /** One line for the command list. */
  summary: string;
  /** Full help text, printed by `graph-connector <name> --help`. */
  help: string;
  /** Returns the process exit code. */
  run(io: CommandIo): Promise<number>;
}

/** The command line is wrong (code `InvalidUsage`): printed with the command's help hint, exit code 2. */
export class UsageError extends ConnectorError {
  override name = 'UsageError';
  constructor(message: string) {
    super(message, { code: 'InvalidUsage' });
  }
}
