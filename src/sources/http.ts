/**
 * HTTP for sources: retries on 408/429/5xx and network errors, honouring Retry-After (never sooner),
 * within a bounded attempt count and a per-read wait budget. Everything else fails with a typed SourceError.
 * Waiting and backoff come from src/core/async.ts.
 */
import type { Dispatcher } from 'undici';
import type { OperationOptions } from '../core/async.js';
import { backoffDelay, parseRetryAfter, retryAfterWithJitter, sleep } from '../core/async.js';
import { noTelemetry, type DependencyCall } from '../core/telemetry.js';
import type { RetryDefinition } from './rest/definition.js';
import type { SourceDeps } from './types.js';
import { displayUrl, SourceError } from './types.js';

export interface AuthProvider {
  /**
   * Request headers (and a TLS dispatcher for client certificates). A bare AbortSignal is still accepted from
   * callers that have not moved to the options bag.
   */
  prepare(
    options?: OperationOptions | AbortSignal,
  ): Promise<{ headers: Record<string, string>; dispatcher?: Dispatcher }>;
  /** Called on a 401: drop cached credentials; true when a retry may succeed. */
  onUnauthorized(): Promise<boolean>;
}

/** Shared by all requests of one read, so a long throttle cannot stretch a read forever. */
export interface RetryBudget {
  remainingMs: number;
}

export interface RequestContext extends OperationOptions {
  deps: SourceDeps;
  retry?: RetryDefinition;
  budget?: RetryBudget;
  auth?: AuthProvider;
  /** Used when there is no auth dispatcher (e.g. extra CA). */
  dispatcher?: Dispatcher;
  timeoutMs?: number;
  headers?: Record<string, string>;
}

const RETRYABLE = new Set([408, 429, 500, 502, 503, 504]);
const MAX_BACKOFF_MS = 60_000;

/** `sleep` from the toolkit, with an abort reported as a SourceError. */
async function wait(ms: number, abortSignal: AbortSignal | undefined, shown: string): Promise<void> {
  try {
    await sleep(ms, { abortSignal });
  } catch (e) {
    if (abortSignal?.aborted)
      throw new SourceError('SourceAborted', `request to ${shown} aborted`, { url: shown, cause: e });
    throw e;
  }
}

/**
 * One source call with its retries: a dependency span (status, retries, waits) around {@link attempts}.
 */
export async function requestWithRetry(url: string, init: RequestInit, ctx: RequestContext): Promise<Response> {
  const call = (ctx.deps.telemetry ?? noTelemetry).dependency('source', {
    method: init.method ?? 'GET',
    url: displayUrl(url),
  });
  try {
    const res = await attempts(url, init, ctx, call);
    call.end({ status: res.status });
    return res;
  } catch (error) {
    call.end({ error, ...(error instanceof SourceError && error.status ? { status: error.status } : {}) });
    throw error;
  }
}

async function attempts(url: string, init: RequestInit, ctx: RequestContext, call: DependencyCall): Promise<Response> {
  const doFetch = ctx.deps.fetch ?? fetch;
  const maxAttempts = ctx.retry?.maxAttempts ?? 5;
  const backoff = { baseMs: ctx.retry?.baseDelayMs ?? 500, maxMs: MAX_BACKOFF_MS };
  const budget = ctx.budget ?? { remainingMs: (ctx.retry?.budgetSeconds ?? 300) * 1000 };
  const abortSignal = ctx.abortSignal;
  const shown = displayUrl(url);
  const method = init.method ?? 'GET';
  let reauthed = false;
  for (let attempt = 1; ; attempt++) {
    if (abortSignal?.aborted) throw new SourceError('SourceAborted', `request to ${shown} aborted`, { url: shown });
    const prepared = ctx.auth ? await ctx.auth.prepare({ abortSignal }) : { headers: {} };
    const dispatcher = prepared.dispatcher ?? ctx.dispatcher;
    const timeout = AbortSignal.timeout(ctx.timeoutMs ?? 60_000);
    const signal = abortSignal ? AbortSignal.any([abortSignal, timeout]) : timeout;
    let res: Response | undefined;
    let failure: string;
    try {
      res = await doFetch(url, {
        ...init,
        headers: {
          accept: 'application/json',
          ...ctx.headers,
          ...(init.headers as Record<string, string>),
          ...prepared.headers,
        },
        signal,
        ...(dispatcher ? { dispatcher } : {}),
      });
    } catch (e) {
      if (abortSignal?.aborted)
        throw new SourceError('SourceAborted', `request to ${shown} aborted`, { url: shown, cause: e });
      const err = e as Error & { cause?: { code?: string; message?: string } };
      failure = timeout.aborted
        ? `timed out after ${ctx.timeoutMs ?? 60_000} ms`
        : `${err.cause?.code ?? err.cause?.message ?? err.message}`;
      if (attempt >= maxAttempts) {
        throw new SourceError('SourceNetwork', `request to ${shown} failed after ${attempt} attempts: ${failure}`, {
          url: shown,
          retryable: true,
          cause: e,
        });
      }
    }
    if (res) {
      call.response(res.status);
      if (res.ok) return res;
      if (res.status === 401 && ctx.auth && !reauthed) {
        reauthed = true;
        if (await ctx.auth.onUnauthorized()) {
          await res.body?.cancel();
          attempt--; // a credential refresh is not a retry of the request
          continue;
        }
      }
      const detail = await errorDetail(res);
      const authFailure = res.status === 401 || res.status === 403;
      if (!RETRYABLE.has(res.status)) {
        throw new SourceError(
          authFailure ? 'SourceAuth' : 'SourceHttp',
          `${method} ${shown} returned ${res.status}${detail}` +
            (authFailure ? '; check source.auth and the secret it names' : ''),
          { status: res.status, url: shown },
        );
      }
      failure = `${res.status}${detail}`;
      const retryAfter = parseRetryAfter(res.headers.get('retry-after'));
      if (attempt >= maxAttempts) {
        throw new SourceError(
          res.status === 429 ? 'SourceThrottled' : 'SourceHttp',
          `${method} ${shown} still failing after ${attempt} attempts (last: ${failure})`,
          {
            status: res.status,
            url: shown,
            retryable: true,
            ...(retryAfter !== undefined ? { retryAfterMs: retryAfter } : {}),
          },
        );
      }
      const delay = retryAfter !== undefined ? retryAfterWithJitter(retryAfter) : backoffDelay(attempt - 1, backoff);
      if ((retryAfter ?? delay) > budget.remainingMs) {
        throw new SourceError(
          res.status === 429 ? 'SourceThrottled' : 'SourceHttp',
          `${shown} asked to wait ${retryAfter ?? delay} ms (status ${res.status}) but only ${budget.remainingMs} ms of the retry budget are left; raise source.retry.budgetSeconds or run later`,
          {
            status: res.status,
            url: shown,
            retryable: true,
            ...(retryAfter !== undefined ? { retryAfterMs: retryAfter } : {}),
          },
        );
      }
      ctx.deps.logger.warn('source request will be retried', {
        url: shown,
        status: res.status,
        attempt,
        waitMs: delay,
      });
      budget.remainingMs -= Math.min(delay, budget.remainingMs);
      call.retry(delay, retryAfter !== undefined);
      await wait(delay, abortSignal, shown);
      continue;
    }
    const delay = backoffDelay(attempt - 1, backoff);
    if (delay > budget.remainingMs) {
      throw new SourceError('SourceNetwork', `request to ${shown} failed (${failure!}) and the retry budget is spent`, {
        url: shown,
        retryable: true,
      });
    }
    ctx.deps.logger.warn('source request failed, will retry', { url: shown, error: failure!, attempt, waitMs: delay });
    budget.remainingMs -= delay;
    call.retry(delay, false);
    await wait(delay, abortSignal, shown);
  }
}

async function errorDetail(res: Response): Promise<string> {
  try {
    const text = (await res.text()).slice(0, 300).replace(/\s+/g, ' ').trim();
    return text ? `: ${text}` : '';
  } catch {
    return '';
  }
}
