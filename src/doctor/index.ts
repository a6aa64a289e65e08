/**
 * `graph-connector doctor`: checks a connector's environment end to end (environment, definition, secrets,
 * Graph token and permissions, Graph endpoint, connection, storage, schedule) and says how to fix what fails.
 * See docs/doctor.md.
 */
import { redact, silentLogger, type Logger } from '../log.js';
import type { SecretProvider } from '../secrets/types.js';
import type { StorageClients } from '../state/storage.js';
import { ALL_CHECKS, type DoctorContext } from './checks.js';
import { DEFAULT_CHECK_TIMEOUT_MS, runChecks, type CheckResult, type CheckStatus } from './runner.js';

export type { CheckResult, CheckStatus, CheckOutcome } from './runner.js';
export { DEFAULT_CHECK_TIMEOUT_MS } from './runner.js';
export { nextOccurrence } from './schedule.js';
export { decodeJwtPayload, REQUIRED_ROLES } from './checks.js';
export { requiredStorage, LEDGER_TABLES, type StorageResource, type StorageNames } from './storage.js';

export interface DoctorOptions {
  /** The connector's environment (app settings / shell). */
  env: NodeJS.ProcessEnv;
  /** The connector definition (default: CONNECTOR_CONFIG, else ./connector.json). */
  configPath?: string;
  /** Create missing queues, tables and the claims container. */
  create?: boolean;
  /** Time limit per check (default 15 s). */
  timeoutMs?: number;
  /** Interrupts doctor: the running check stops and the rest are skipped. */
  abortSignal?: AbortSignal;
  /** Called with each result as soon as it is known, in order (already redacted). */
  onResult?: (result: CheckResult) => void;
  /** Base for relative paths and local.settings.json (default process.cwd()). */
  cwd?: string;
  /** Use this secret provider instead of createSecretProvider(env). */
  secrets?: SecretProvider;
  /** Use these storage clients instead of building them from the environment. */
  storage?: StorageClients;
  logger?: Logger;
  now?: () => Date;
}

export interface DoctorReport {
  /** False when any check failed. */
  ok: boolean;
  counts: Record<CheckStatus, number>;
  checks: CheckResult[];
}

function redactResult(r: CheckResult): CheckResult {
  const { details: _details, fix: _fix, ...rest } = r;
  return {
    ...rest,
    message: redact(r.message),
    ...(r.details?.length ? { details: r.details.map(redact) } : {}),
    ...(r.fix ? { fix: redact(r.fix) } : {}),
  };
}

/** Run every check; never throws for a failing check (see the report). */
export async function runDoctor(options: DoctorOptions): Promise<DoctorReport> {
  const env = options.env;
  const ctx: DoctorContext = {
    rawEnv: env,
    configPath: options.configPath ?? (env.CONNECTOR_CONFIG?.trim() || './connector.json'),
    create: options.create ?? false,
    cwd: options.cwd ?? process.cwd(),
    logger: options.logger ?? silentLogger,
    now: options.now ?? (() => new Date()),
    badVars: [],
    ...(options.secrets ? { secretsOverride: options.secrets } : {}),
    ...(options.storage ? { storageOverride: options.storage } : {}),
  };
  const checks = await runChecks(ALL_CHECKS, ctx, {
    timeoutMs: options.timeoutMs ?? DEFAULT_CHECK_TIMEOUT_MS,
    abortSignal: options.abortSignal,
    onResult: (r) => options.onResult?.(redactResult(r)),
  });
  const redacted = checks.map(redactResult);
  const counts: Record<CheckStatus, number> = { pass: 0, warn: 0, fail: 0, skip: 0 };
  for (const c of redacted) counts[c.status]++;
  return { ok: counts.fail === 0, counts, checks: redacted };
}

const LABEL: Record<CheckStatus, string> = { pass: 'PASS', warn: 'WARN', fail: 'FAIL', skip: 'SKIP' };

/** One result as text: `PASS  title  message`, then details and the fix, indented. */
export function formatResult(r: CheckResult, titleWidth = 22): string {
  const lines = [`${LABEL[r.status]}  ${r.title.padEnd(titleWidth)}  ${r.message}`];
  const indent = ' '.repeat(6 + titleWidth + 2);
  for (const d of r.details ?? []) lines.push(`${indent}- ${d}`);
  if (r.fix && (r.status === 'fail' || r.status === 'warn')) lines.push(`${indent}fix: ${r.fix}`);
  return lines.join('\n');
}

export function formatSummary(report: DoctorReport): string {
  const { pass, warn, fail, skip } = report.counts;
  return `doctor: ${pass} passed, ${warn} warning${warn === 1 ? '' : 's'}, ${fail} failed, ${skip} skipped`;
}
