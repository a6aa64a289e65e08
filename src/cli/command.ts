import type { Writable } from 'node:stream';

/** What a subcommand gets: its arguments (after the subcommand name) and where to write. */
export interface CommandIo {
  argv: string[];
  stdout: Writable;
  stderr: Writable;
  env: NodeJS.ProcessEnv;
  /** Aborted on SIGINT/SIGTERM. */
  signal: AbortSignal;
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

/** A usage error: printed with the command's help hint, exit code 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}
