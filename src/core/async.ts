/**
 * The connector's one toolkit for waiting, retrying and bounding concurrency: used by the Graph client, the
 * sources, attachments, Key Vault, OCR and the state layer. Cancellation is always an `abortSignal` in an
 * options bag (the Azure SDK convention).
 */
import { setTimeout as delay } from 'node:timers/promises';

/** The options bag every cancellable operation takes as its last parameter. */
export interface OperationOptions {
  abortSignal?: AbortSignal;
}

/** The abort reason as an Error (AbortSignal.reason may be any value). */
export function abortReason(signal: AbortSignal | undefined): Error {
  const r: unknown = signal?.reason;
  if (r instanceof Error) return r;
  const e = new Error(typeof r === 'string' ? r : 'the operation was aborted');
  e.name = 'AbortError';
  return e;
}

/** Wait `ms`; rejects with the signal's reason when it fires first. */
export async function sleep(ms: number, options: OperationOptions = {}): Promise<void> {
  const signal = options.abortSignal;
  if (signal?.aborted) throw abortReason(signal);
  try {
    await delay(Math.max(0, ms), undefined, signal ? { signal } : undefined);
  } catch (err) {
    if (signal?.aborted) throw abortReason(signal);
    throw err;
  }
}

/**
 * Settle with `promise`, or reject with the signal's reason (or `onAbort()`'s error) as soon as it fires. The
 * promise itself keeps running: use this for work that cannot be cancelled (a worker's reply, a shared fetch).
 */
export function raceAbort<T>(promise: Promise<T>, signal: AbortSignal | undefined, onAbort?: () => Error): Promise<T> {
  if (!signal) return promise;
  const reason = () => (onAbort ? onAbort() : abortReason(signal));
  if (signal.aborted) return Promise.reject(reason());
  return new Promise<T>((resolve, reject) => {
    const abort = () => reject(reason());
    signal.addEventListener('abort', abort, { once: true });
    promise.then(
      (v) => {
        signal.removeEventListener('abort', abort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', abort);
        reject(e instanceof Error ? e : new Error(String(e)));
      },
    );
  });
}

/** Both signals (either may be absent). */
export function anySignal(...signals: (AbortSignal | undefined)[]): AbortSignal | undefined {
  const present = signals.filter((s): s is AbortSignal => s !== undefined);
  if (present.length <= 1) return present[0];
  return AbortSignal.any(present);
}

/** Retry-After (delta seconds or an HTTP-date) in milliseconds from `now`; undefined when absent or unreadable. */
export function parseRetryAfter(value: string | null | undefined, now: number = Date.now()): number | undefined {
  if (value === null || value === undefined) return undefined;
  const v = value.trim();
  if (v === '') return undefined;
  if (/^\d+(\.\d+)?$/.test(v)) return Math.ceil(Number(v) * 1000);
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/** Retry-After plus up to `jitterRatio` of it again (at least 250 ms of spread): never less than Retry-After. */
export function retryAfterWithJitter(
  retryAfterMs: number,
  random: () => number = Math.random,
  jitterRatio = 0.2,
): number {
  const spread = Math.max(250, retryAfterMs * jitterRatio);
  return Math.ceil(retryAfterMs + random() * spread);
}

export interface BackoffOptions {
  baseMs: number;
  maxMs: number;
  /** `exponential` (default): base·2^attempt; `linear`: base·(attempt+1); `fixed`: base. */
  kind?: 'exponential' | 'linear' | 'fixed';
  /**
   * `true` (default): a random delay between half and all of it; `'full'`: between none and all of it (full
   * jitter, for retries many clients make at once); `false`: exactly the delay.
   */
  jitter?: boolean | 'full';
  random?: () => number;
}

/** The delay before retry number `attempt` (0-based), capped at maxMs. */
export function backoffDelay(attempt: number, options: BackoffOptions): number {
  const a = Math.max(0, Math.min(attempt, 30));
  const raw =
    options.kind === 'fixed'
      ? options.baseMs
      : options.kind === 'linear'
        ? options.baseMs * (a + 1)
        : options.baseMs * 2 ** a;
  const capped = Math.min(options.maxMs, raw);
  if (options.jitter === false) return Math.round(capped);
  const r = (options.random ?? Math.random)();
  if (options.jitter === 'full') return Math.floor(r * capped);
  return Math.round(capped / 2 + (r * capped) / 2);
}

/**
 * Run `fn` over `items` with at most `limit` in flight; results keep input order. Stops launching on the first
 * error (which it rethrows once the running calls finished) or when the signal fires.
 */
export async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<R>,
  options: OperationOptions = {},
): Promise<R[]> {
  const results = new Array<R>(items.length);
  const signal = options.abortSignal;
  let next = 0;
  let failure: { error: unknown } | undefined;
  const worker = async (): Promise<void> => {
    while (!failure && next < items.length) {
      if (signal?.aborted) {
        failure ??= { error: abortReason(signal) };
        return;
      }
      const i = next++;
      try {
        results[i] = await fn(items[i] as T, i);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  if (failure) throw failure.error;
  return results;
}

/** A counting semaphore: at most `limit` holders at once, served first come first served. */
export class Semaphore {
  private active = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(readonly limit: number) {
    if (!Number.isInteger(limit) || limit < 1) throw new RangeError(`a semaphore needs a limit ≥ 1 (got ${limit})`);
  }

  get inUse(): number {
    return this.active;
  }

  async acquire(options: OperationOptions = {}): Promise<() => void> {
    const signal = options.abortSignal;
    if (signal?.aborted) throw abortReason(signal);
    if (this.active < this.limit) {
      this.active++;
      return this.releaser();
    }
    await new Promise<void>((resolve, reject) => {
      const entry = () => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      };
      const onAbort = () => {
        const i = this.waiting.indexOf(entry);
        if (i >= 0) this.waiting.splice(i, 1);
        reject(abortReason(signal));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiting.push(entry);
    });
    this.active++;
    return this.releaser();
  }

  /** Run `fn` holding one permit. */
  async run<T>(fn: () => Promise<T>, options: OperationOptions = {}): Promise<T> {
    const release = await this.acquire(options);
    try {
      return await fn();
    } finally {
      release();
    }
  }

  private releaser(): () => void {
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.active--;
      this.waiting.shift()?.();
    };
  }
}
