/** Small helpers shared by the state layer: bounded concurrency, hashing, storage error checks. */
import { createHash, randomBytes } from 'node:crypto';

/** Run `fn` over `items` with at most `limit` in flight; results keep input order. Stops launching on first error. */
export async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<R>,
  signal?: AbortSignal,
): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  let failed: unknown;
  let hasFailed = false;
  const worker = async (): Promise<void> => {
    while (!hasFailed && next < items.length) {
      if (signal?.aborted) throw abortReason(signal);
      const i = next++;
      try {
        results[i] = await fn(items[i] as T, i);
      } catch (err) {
        if (!hasFailed) {
          hasFailed = true;
          failed = err;
        }
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  if (hasFailed) throw failed;
  return results;
}

/** The 2 lowercase hex chars of sha256(value): the ledger's item bucket (256 buckets). */
export function bucketOf(itemId: string): string {
  return createHash('sha256').update(itemId, 'utf8').digest('hex').slice(0, 2);
}

/** All 256 bucket names, `00`..`ff`. */
export const ALL_BUCKETS: readonly string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

export function randomId(bytes = 6): string {
  return randomBytes(bytes).toString('hex');
}

/** HTTP status of an Azure SDK RestError (or anything shaped like one). */
export function statusOf(err: unknown): number | undefined {
  if (err && typeof err === 'object' && 'statusCode' in err) {
    const s = (err as { statusCode?: unknown }).statusCode;
    return typeof s === 'number' ? s : undefined;
  }
  return undefined;
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

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(abortReason(signal));
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(abortReason(signal));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Split an array into chunks of at most `size`. */
export function chunk<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/** Graph's item id rule (alphanumeric, 1–128), which also makes the id a safe Table row key. */
export const ITEM_ID = /^[A-Za-z0-9]{1,128}$/;
/** Graph's connection id rule (alphanumeric, 3–32). */
export const CONNECTION_ID = /^[A-Za-z0-9]{3,32}$/;

/** The abort reason as an Error (AbortSignal.reason may be any value). */
export function abortReason(signal: AbortSignal | undefined): Error {
  const r: unknown = signal?.reason;
  return r instanceof Error ? r : new Error(typeof r === 'string' ? r : 'aborted');
}
