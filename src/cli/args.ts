/**
 * Reading a command's arguments, one way for every command: a command is declared with {@link defineCommand}
 * (its flags beside its help), its arguments are parsed by strict `parseArgs` before it runs, and flag values are
 * checked with messages that name the flag, the value and what it takes. Every problem is a {@link UsageError}
 * (exit 2, with the command's help hint).
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { UsageError, type Command, type CommandIo } from './command.js';

/** What a command declares: its options and whether it takes positionals (strict mode is always on). */
export type CommandArgsConfig = Omit<ParseArgsConfig, 'args' | 'strict'>;

/** `parseArgs` over `argv` in strict mode; an unknown flag or a missing value is a UsageError. */
export function parseCommandArgs<const T extends CommandArgsConfig>(
  argv: string[],
  config: T,
): ReturnType<typeof parseArgs<T & { args: string[]; strict: true }>> {
  try {
    return parseArgs({ ...config, args: argv, strict: true });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

/** `-c, --config <file>`: the connector definition (every command that reads it). */
export const CONFIG_FLAG = { config: { type: 'string', short: 'c' } } as const;

/** `-v, --verbose`: log at info level (default: warnings and errors; see commandLogger in src/log.ts). */
export const VERBOSE_FLAG = { verbose: { type: 'boolean', short: 'v', default: false } } as const;

/** `--state-dir <dir>`: the local state of `graph-connector run` (default `.local`). */
export const STATE_DIR_FLAG = { 'state-dir': { type: 'string' } } as const;

/** `--json`: print the result as JSON. */
export const JSON_FLAG = { json: { type: 'boolean', default: false } } as const;

/** Commands that read or drain storage need AzureWebJobsStorage (or its identity-based form). */
export function requireStorageSetting(env: NodeJS.ProcessEnv, why: string): void {
  if (!env.AzureWebJobsStorage && !env.AzureWebJobsStorage__queueServiceUri) {
    throw new UsageError(`AzureWebJobsStorage is not set: ${why}`);
  }
}

/** The values and positionals {@link parseCommandArgs} returns for a command's declaration. */
export type CommandArgs<T extends CommandArgsConfig> = ReturnType<typeof parseCommandArgs<T>>;

/** What a command declares: its name, help, flags, and what it does with the parsed arguments. */
export interface CommandSpec<T extends CommandArgsConfig> extends Omit<Command, 'run'> {
  /** Its flags (and whether it takes positionals): parsed strictly before `run`, a bad one is a UsageError. */
  args: T;
  run(args: CommandArgs<T>, io: CommandIo): Promise<number>;
}

/** A {@link Command} whose arguments are parsed from its declaration, the one way every command reads them. */
export function defineCommand<const T extends CommandArgsConfig>(spec: CommandSpec<T>): Command {
  return {
    name: spec.name,
    summary: spec.summary,
    help: spec.help,
    run: async (io) => spec.run(parseCommandArgs(io.argv, spec.args), io),
  };
}

const DURATION_UNITS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 } as const;

/** `500ms`, `30s`, `20m`, `1h` (a bare number is seconds) in milliseconds. */
export function parseDuration(text: string, flag: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim());
  if (!m) throw new UsageError(`${flag} '${text}' is not a duration; use e.g. 500ms, 30s, 20m or 1h`);
  return Math.round(Number(m[1]) * DURATION_UNITS[(m[2] ?? 's') as keyof typeof DURATION_UNITS]);
}

/** A whole number from `min` to `max`; `why` explains the range in the message (e.g. a service limit). */
export function parseWholeNumber(flag: string, raw: string, min: number, max: number, why?: string): number {
  const n = Number(raw);
  if (raw.trim() === '' || !Number.isInteger(n) || n < min || n > max) {
    const range = max === Infinity ? `${min} or more` : `from ${min} to ${max}`;
    throw new UsageError(`${flag} must be a whole number ${range}${why ? ` (${why})` : ''}, got '${raw}'`);
  }
  return n;
}
