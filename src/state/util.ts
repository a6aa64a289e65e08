/** Small helpers of the state layer: storage error checks, ids, chunks. */
import { randomBytes } from 'node:crypto';
import { statusOf } from '../core/errors.js';

export { statusOf };

export function randomId(bytes = 6): string {
  return randomBytes(bytes).toString('hex');
}

/** Storage error code (`x-ms-error-code`), e.g. `EntityAlreadyExists`, `UpdateConditionNotSatisfied`. */
export function codeOf(err: unknown): string | undefined {
  if (err && typeof err === 'object' && 'code' in err) {
    const c = (err as { code?: unknown }).code;
    return typeof c === 'string' ? c : undefined;
  }
  return undefined;
}

/** True for an optimistic-concurrency failure: 412 (ETag mismatch) or 409 (already exists). */
export function isConflict(err: unknown): boolean {
  const s = statusOf(err);
  return s === 412 || s === 409;
}

export function isNotFound(err: unknown): boolean {
  return statusOf(err) === 404;
}

/** Backoff for ETag retry loops: jittered, small, capped. */
export function conflictDelayMs(attempt: number): number {
  const base = Math.min(200, 5 * 2 ** Math.min(attempt, 6));
  return Math.floor(base / 2 + Math.random() * base);
}

/** Split an array into chunks of at most `size`. */
export function chunk<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}
