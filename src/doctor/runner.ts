/**
 * Runs doctor checks in order. Each check has a time limit and its own failure; one failing check never
 * stops the others, but a check whose prerequisite did not pass is reported as skipped, with the reason.
 */
import { setMaxListeners } from 'node:events';
import { anySignal, raceAbort, type OperationOptions } from '../core/async.js';
import { ConnectorError } from '../core/errors.js';

export type CheckStatus = 'pass' | 'warn' | 'fail' | 'skip';

/** What a check reports. Never put a secret value in any of these strings. */
export interface CheckOutcome {
  status: CheckStatus;
  /** One line: what was found. */
  message: string;
  /** More lines (every problem, every resource), shown indented under the line. */
  details?: string[];
  /** What to do about it (for fail and warn). */
  fix?: string;
}

export interface CheckResult extends CheckOutcome {
  id: string;
  title: string;
  durationMs: number;
}

export interface Check<C> {
  id: string;
  title: string;
  /** Ids of checks that must pass (or warn) first; otherwise this one is skipped. */
  needs?: string[];
  /** `abortSignal` fires at the check's time limit or when doctor is interrupted. */
  run(ctx: C, options: Required<OperationOptions>): Promise<CheckOutcome>;
}

export interface RunChecksOptions extends OperationOptions {
  /** Time limit per check in ms (default 15 s). */
  timeoutMs?: number;
  /** Called as each result is known (in order). */
  onResult?: (result: CheckResult) => void;
  now?: () => number;
}

export const DEFAULT_CHECK_TIMEOUT_MS = 15_000;

/** A check's own way to say "not applicable / cannot run" with a reason. */
export function skipped(message: string): CheckOutcome {
  return { status: 'skip', message };
}

/** A check did not finish within its time limit (code `CheckTimeout`; it may pass when tried again). */
export class CheckTimeout extends ConnectorError {
  override name = 'CheckTimeout';
  constructor(message: string) {
    super(message, { code: 'CheckTimeout', retryable: true });
  }
}

function formatSeconds(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${(ms / 1000).toFixed(1)} s`;
}

export async function runChecks<C>(checks: Check<C>[], ctx: C, options: RunChecksOptions = {}): Promise<CheckResult[]> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_CHECK_TIMEOUT_MS;
  const now = options.now ?? Date.now;
  const results = new Map<string, CheckResult>();
  const out: CheckResult[] = [];
  for (const check of checks) {
    const started = now();
    let outcome: CheckOutcome;
    const blocker = (check.needs ?? [])
      .map((id) => results.get(id))
      .find((r) => !r || r.status === 'fail' || r.status === 'skip');
    if (blocker) {
      outcome = {
        status: 'skip',
        message: `skipped: ${blocker.title} ${blocker.status === 'skip' ? 'was skipped' : 'failed'}`,
      };
    } else if (options.abortSignal?.aborted) {
      outcome = { status: 'skip', message: 'skipped: doctor was interrupted' };
    } else {
      outcome = await runOne(check, ctx, timeoutMs, options.abortSignal);
    }
    const result: CheckResult = {
      id: check.id,
      title: check.title,
      ...outcome,
      durationMs: Math.max(0, now() - started),
    };
    results.set(check.id, result);
    out.push(result);
    options.onResult?.(result);
  }
  return out;
}

async function runOne<C>(check: Check<C>, ctx: C, timeoutMs: number, outer?: AbortSignal): Promise<CheckOutcome> {
  const deadline = new AbortController();
  const abortSignal = anySignal(outer, deadline.signal)!;
  // A check may run many requests at once on its signal (e.g. one per storage resource).
  setMaxListeners(100, abortSignal);
  const timer = setTimeout(
    () => deadline.abort(new CheckTimeout(`did not finish within ${formatSeconds(timeoutMs)}`)),
    timeoutMs,
  );
  const work = check.run(ctx, { abortSignal });
  work.catch(() => undefined); // a late rejection after the deadline is not unhandled
  try {
    // The race ends the check at its limit even when the work in it ignores the abort signal.
    return await raceAbort(work, abortSignal);
  } catch (err) {
    if (err instanceof CheckTimeout) {
      return {
        status: 'fail',
        message: `${check.title} ${err.message}`,
        fix: 'check that the endpoint is reachable from here (network, proxy, firewall, DNS), or raise --timeout',
      };
    }
    if (outer?.aborted) return { status: 'skip', message: 'skipped: doctor was interrupted' };
    return {
      status: 'fail',
      message: `${check.title}: unexpected error: ${(err as Error)?.message ?? String(err)}`,
      fix: 'this is a doctor bug or an unexpected environment; run again with LOG_LEVEL=debug and report it',
    };
  } finally {
    clearTimeout(timer);
  }
}
