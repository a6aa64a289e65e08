/**
 * Retry middleware for the Graph client (waiting and backoff from src/core/async.ts).
 * - 429/503/504 with Retry-After (seconds or HTTP-date): wait at least that long, never less.
 * - Otherwise (500, 502, 503/504 without Retry-After, network errors): exponential backoff with full jitter.
 * - The budget may be 0: the caller gets the GraphError (with retryAfterMs) and re-enqueues instead of sleeping.
 * - sleep/random/now are injectable so tests are fast and deterministic.
 */
import {
  GraphClientError,
  type Context,
  type Middleware,
  type MiddlewareOptions,
} from '@microsoft/microsoft-graph-client';
import { randomUUID } from 'node:crypto';
import { backoffDelay, parseRetryAfter, sleep, type OperationOptions } from '../core/async.js';
import { GraphError } from './errors.js';
import { requestUrl, wrapForClient } from './http.js';

export type RetryOn = number | 'network';

export interface RetryPolicy {
  /** Retries after the first attempt (0 = never retry). */
  maxRetries: number;
  /** Base of the exponential backoff. */
  baseDelayMs: number;
  /** Cap of one backoff delay. A Retry-After longer than this is not waited for: the response is returned. */
  maxDelayMs: number;
  /** Statuses (and 'network') that are retried; 'all' retries every 4xx/5xx and network error. */
  retryOn: RetryOn[] | 'all';
  backoff: 'exponential' | 'fixed';
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = {
  maxRetries: 4,
  baseDelayMs: 500,
  maxDelayMs: 60_000,
  retryOn: [429, 500, 502, 503, 504, 'network'],
  backoff: 'exponential',
};

export interface RetryClock {
  sleep(ms: number, options?: OperationOptions): Promise<void>;
  random(): number;
  now(): number;
}

export const systemRetryClock: RetryClock = { sleep, random: Math.random, now: Date.now };

/** Per-request override, passed with `.middlewareOptions([new GraphRetryOptions({...})])`. */
export class GraphRetryOptions implements MiddlewareOptions {
  constructor(readonly policy: Partial<RetryPolicy>) {}
}

/**
 * Per-request observer of the attempts (the client's telemetry), passed like {@link GraphRetryOptions}: every
 * response with its Retry-After (when the status is one that honours it), and every retry with its wait.
 */
export class GraphAttemptObserver implements MiddlewareOptions {
  constructor(
    readonly observe: {
      response(status: number, retryAfterMs: number | undefined): void;
      retry(delayMs: number, reason: RetryEvent['reason']): void;
    },
  ) {}
}

/** Statuses whose Retry-After is honoured. */
const RETRY_AFTER_STATUSES = new Set([429, 503, 504]);

export interface RetryEvent {
  attempt: number;
  delayMs: number;
  status: number;
  reason: 'retry-after' | 'backoff';
  url: string;
  method: string;
}

export class RetryMiddleware implements Middleware {
  private next?: Middleware;
  private readonly policy: RetryPolicy;
  private readonly clock: RetryClock;
  constructor(
    policy: Partial<RetryPolicy> = {},
    clock: Partial<RetryClock> = {},
    private readonly onRetry?: (e: RetryEvent) => void,
  ) {
    this.policy = { ...DEFAULT_RETRY_POLICY, ...policy };
    this.clock = { ...systemRetryClock, ...clock };
  }

  setNext(next: Middleware): void {
    this.next = next;
  }

  /** The backoff delay before retry number `attempt` (1-based): full jitter, or exactly the base when fixed. */
  backoffDelay(attempt: number, policy: RetryPolicy = this.policy): number {
    return policy.backoff === 'fixed'
      ? backoffDelay(attempt - 1, {
          kind: 'fixed',
          baseMs: policy.baseDelayMs,
          maxMs: policy.baseDelayMs,
          jitter: false,
        })
      : backoffDelay(attempt - 1, {
          baseMs: policy.baseDelayMs,
          maxMs: policy.maxDelayMs,
          jitter: 'full',
          random: () => this.clock.random(),
        });
  }

  private shouldRetry(policy: RetryPolicy, status: number | 'network'): boolean {
    if (policy.retryOn === 'all') return status === 'network' || status >= 400;
    return policy.retryOn.includes(status);
  }

  async execute(context: Context): Promise<void> {
    const override = context.middlewareControl?.getMiddlewareOptions(GraphRetryOptions) as
      | GraphRetryOptions
      | undefined;
    const policy: RetryPolicy = { ...this.policy, ...(override?.policy ?? {}) };
    const observer = (
      context.middlewareControl?.getMiddlewareOptions(GraphAttemptObserver) as GraphAttemptObserver | undefined
    )?.observe;
    const options = (context.options ??= {});
    const headers = (options.headers ??= {}) as Record<string, string>;
    if (!Object.keys(headers).some((k) => k.toLowerCase() === 'client-request-id')) {
      headers['client-request-id'] = randomUUID();
    }
    const url = requestUrl(context);
    const method = (options.method ?? 'GET').toUpperCase();
    const abortSignal = options.signal ?? undefined;
    for (let attempt = 1; ; attempt++) {
      context.response = undefined;
      let status: number | 'network';
      let failure: unknown;
      try {
        await this.next!.execute(context);
        status = context.response!.status;
      } catch (e) {
        const inner = e instanceof GraphClientError ? (e.customError as unknown) : undefined;
        // A failure before any response is retried, unless it cannot succeed later (an untrusted certificate).
        if (!(inner instanceof GraphError) || inner.status !== 0 || !inner.retryable) throw e;
        failure = e;
        status = 'network';
      }
      const retryAfter =
        status !== 'network' && RETRY_AFTER_STATUSES.has(status)
          ? parseRetryAfter(context.response!.headers.get('retry-after'), this.clock.now())
          : undefined;
      if (status !== 'network') observer?.response(status, retryAfter);
      if ((status !== 'network' && status < 400) || attempt > policy.maxRetries || !this.shouldRetry(policy, status)) {
        if (failure) throw failure as Error;
        return;
      }
      let delayMs: number;
      let reason: RetryEvent['reason'] = 'backoff';
      if (retryAfter !== undefined) {
        // Never sooner than asked. If the wait is beyond our cap, hand the response back (re-enqueue upstream).
        if (retryAfter > policy.maxDelayMs) return;
        delayMs = retryAfter;
        reason = 'retry-after';
      } else {
        delayMs = this.backoffDelay(attempt, policy);
      }
      const previous = context.response as Response | undefined;
      if (previous) await previous.arrayBuffer().catch(() => undefined);
      this.onRetry?.({ attempt, delayMs, status: status === 'network' ? 0 : status, reason, url, method });
      observer?.retry(delayMs, reason);
      try {
        await this.clock.sleep(delayMs, { abortSignal });
      } catch (e) {
        // Aborted while waiting: surface the caller's reason untouched (not wrapped by the Graph client).
        throw wrapForClient(e instanceof Error ? e : new Error(String(e)));
      }
    }
  }
}
