/**
 * Structured logging for the connector (not the emulator, which has its own).
 *
 * - One JSON object per line: `{"time","level","msg", ...fields}`, human lines for the CLI, or any other
 *   {@link LogSink} (under the Functions host: the invocation's context, see docs/operations.md).
 * - Every secret value the process learns is registered with {@link registerSecret}; every log line,
 *   error message and job record passes through {@link redact} so no secret value can leave the process.
 * - Item content is only logged at `debug`.
 */

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export type LogFields = Record<string, unknown>;

export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  /** A logger that adds these fields to every line. */
  child(fields: LogFields): Logger;
}

const secrets = new Set<string>();

/** Remember a secret value so that {@link redact} removes it from anything logged or stored. */
export function registerSecret(value: string | undefined | null): void {
  // Very short values would redact ordinary words; they are not meaningful secrets anyway.
  if (value && value.length >= 6) secrets.add(value);
}

/** Forget all registered secrets (tests only). */
export function clearRegisteredSecrets(): void {
  secrets.clear();
}

const REDACTED = '[REDACTED]';
const BEARER = /\b(Bearer\s+)[A-Za-z0-9\-_.~+/]+=*/g;
const JWT = /\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}/g;
/** The signature of a SAS token in a URL (`?…&sig=…`): URLs are shown without queries, this catches any left. */
const SAS_SIGNATURE = /([?&]sig=)[^&\s"'#<>]+/gi;

/** Remove registered secrets, bearer tokens, JWTs and SAS signatures from a string. */
export function redact(text: string): string {
  let out = text.replace(BEARER, `$1${REDACTED}`).replace(JWT, REDACTED).replace(SAS_SIGNATURE, `$1${REDACTED}`);
  for (const s of secrets) if (out.includes(s)) out = out.split(s).join(REDACTED);
  return out;
}

/** Deep-redact a value for logging or persistence. */
export function redactValue(value: unknown, depth = 0): unknown {
  if (typeof value === 'string') return redact(value);
  if (depth > 8 || value === null || typeof value !== 'object') return value;
  if (value instanceof Error) {
    return { name: value.name, message: redact(value.message), ...(redactValue({ ...value }, depth + 1) as object) };
  }
  if (Array.isArray(value)) return value.map((v) => redactValue(v, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    out[k] =
      /secret|password|token|authorization|apikey|api_key/i.test(k) && typeof v === 'string'
        ? REDACTED
        : redactValue(v, depth + 1);
  }
  return out;
}

/** One log entry as a sink receives it: message and fields already redacted, undefined fields left out. */
export interface LogEntry {
  time: string;
  level: LogLevel;
  msg: string;
  fields: LogFields;
}

/** Where entries go: a line writer (JSON or pretty), the Functions invocation context, a test's array. */
export type LogSink = (entry: LogEntry) => void;

export interface LoggerOptions {
  level?: LogLevel;
  /** Where lines go; defaults to stderr so stdout stays free for command output. Ignored with `sink`. */
  write?: (line: string) => void;
  fields?: LogFields;
  /** Human-readable single lines instead of JSON (the CLI's default on a TTY). Ignored with `sink`. */
  pretty?: boolean;
  /** Where entries go instead of lines through `write`. */
  sink?: LogSink;
}

/** `{"time","level","msg",...fields}` on one line. */
export function jsonLine(entry: LogEntry): string {
  return JSON.stringify({ time: entry.time, level: entry.level, msg: entry.msg, ...entry.fields });
}

/** `level message  key=value ...` on one line. */
export function prettyLine(entry: LogEntry): string {
  const extra = Object.entries(entry.fields)
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
    .join(' ');
  return `${entry.level.padEnd(5)} ${entry.msg}${extra ? '  ' + extra : ''}`;
}

/** The default sink: JSON lines to stderr. */
export function stderrJsonSink(): LogSink {
  return (entry) => process.stderr.write(jsonLine(entry) + '\n');
}

export function levelFromEnv(env: NodeJS.ProcessEnv = process.env): LogLevel {
  const v = (env.LOG_LEVEL ?? '').toLowerCase();
  return v === 'debug' || v === 'info' || v === 'warn' || v === 'error' ? v : 'info';
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const level = options.level ?? levelFromEnv();
  const write = options.write ?? ((line: string) => process.stderr.write(line + '\n'));
  const format = options.pretty ? prettyLine : jsonLine;
  const sink = options.sink ?? ((entry: LogEntry) => write(format(entry)));
  const base = options.fields ?? {};
  const emit = (lvl: LogLevel, msg: string, fields?: LogFields) => {
    if (ORDER[lvl] < ORDER[level]) return;
    const all = redactValue({ ...base, ...fields }) as LogFields;
    for (const k of Object.keys(all)) if (all[k] === undefined) delete all[k];
    sink({ time: new Date().toISOString(), level: lvl, msg: redact(msg), fields: all });
  };
  return {
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
    child: (fields) => createLogger({ ...options, level, sink, fields: { ...base, ...fields } }),
  };
}

/** A logger that keeps lines in memory: for tests and for scanning a run's output for secrets. */
export function createMemoryLogger(level: LogLevel = 'debug'): Logger & { lines: string[] } {
  const lines: string[] = [];
  const logger = createLogger({ level, write: (l) => lines.push(l) });
  return Object.assign(logger, { lines });
}

export const silentLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
  child() {
    return silentLogger;
  },
};

/** Where a command writes its log lines: a stream that may be a terminal. */
export interface LogStream {
  write(text: string): unknown;
  isTTY?: boolean;
}

/**
 * The one rule for the log lines of a `graph-connector` command: human lines (`warn  message  key=value`) when
 * the stream is a terminal, one JSON object per line when it is not (a pipe, a file, a CI log). A command a person
 * runs logs warnings and errors by default (`verbose`: info too); `LOG_LEVEL=debug` shows everything. The
 * commands that do the Functions host's work (`worker`) pass `level` and follow LOG_LEVEL like the host.
 */
export function commandLogger(
  stream: LogStream,
  options: { env?: NodeJS.ProcessEnv; verbose?: boolean; level?: LogLevel } = {},
): Logger {
  const debug = (options.env?.LOG_LEVEL ?? '').toLowerCase() === 'debug';
  const level: LogLevel = options.level ?? (debug ? 'debug' : options.verbose ? 'info' : 'warn');
  return createLogger({ level, pretty: stream.isTTY === true, write: (line) => stream.write(line + '\n') });
}
