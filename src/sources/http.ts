/**
 * HTTP for sources: retries on 408/429/5xx and network errors, honouring Retry-After (never sooner),
 * within a bounded attempt count and a per-read wait budget. Everything else fails with a typed SourceError.
 */
import type { Dispatcher } from 'undici';
import type { RetryDefinition } from '../config/source-definition.js';
import type { SourceDeps } from './types.js';
import { displayUrl, SourceError } from './types.js';

export interface AuthProvider {
  /** Request headers (and a TLS dispatcher for client certificates). */
  prepare(signal?: AbortSignal): Promise<{ headers: Record<string, string>; dispatcher?: Dispatcher }>;
  /** Called on a 401: drop cached credentials; true when a retry may succeed. */
  onUnauthorized(): Promise<boolean>;
}

/** Shared by all requests of one read, so a long throttle cannot stretch a read forever. */
export interface RetryBudget {
  remainingMs: number;
}

export interface RequestContext {
  deps: SourceDeps;
  signal?: AbortSignal;
  retry?: RetryDefinition;
  budget?: RetryBudget;
  auth?: AuthProvider;
  /** Used when there is no auth dispatcher (e.g. extra CA). */
  dispatcher?: Dispatcher;
  timeoutMs?: number;
  headers?: Record<string, string>;
}

const RETRYABLE = new Set([408, 429, 500, 502, 503, 504]);

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((ok, fail) => {
    if (signal?.aborted) {
      fail(new SourceError('aborted', 'read aborted'));
      return;
    }
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      ok();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      fail(new SourceError('aborted', 'read aborted'));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Retry-After as milliseconds: delta-seconds or an HTTP date. */
export function parseRetryAfter(value: string | null, now = Date.now()): number | undefined {
  if (!value) return undefined;
  const v = value.trim();
  if (/^\d+(\.\d+)?$/.test(v)) return Math.ceil(Number(v) * 1000);
  const t = Date.parse(v);
  return Number.isNaN(t) ? undefined : Math.max(0, t - now);
}

export async function requestWithRetry(url: string, init: RequestInit, ctx: RequestContext): Promise<Response> {
  const doFetch = ctx.deps.fetch ?? fetch;
  const maxAttempts = ctx.retry?.maxAttempts ?? 5;
  const base = ctx.retry?.baseDelayMs ?? 500;
  const budget = ctx.budget ?? { remainingMs: (ctx.retry?.budgetSeconds ?? 300) * 1000 };
  const shown = displayUrl(url);
  let reauthed = false;
  for (let attempt = 1; ; attempt++) {
    if (ctx.signal?.aborted) throw new SourceError('aborted', `request to ${shown} aborted`, { url: shown });
    const prepared = ctx.auth ? await ctx.auth.prepare(ctx.signal) : { headers: {} };
    const dispatcher = prepared.dispatcher ?? ctx.dispatcher;
    const timeout = AbortSignal.timeout(ctx.timeoutMs ?? 60_000);
    const signal = ctx.signal ? AbortSignal.any([ctx.signal, timeout]) : timeout;
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
      if (ctx.signal?.aborted)
        throw new SourceError('aborted', `request to ${shown} aborted`, { url: shown, cause: e });
      const err = e as Error & { cause?: { code?: string; message?: string } };
      failure = timeout.aborted
        ? `timed out after ${ctx.timeoutMs ?? 60_000} ms`
        : `${err.cause?.code ?? err.cause?.message ?? err.message}`;
      if (attempt >= maxAttempts) {
        throw new SourceError('network', `request to ${shown} failed after ${attempt} attempts: ${failure}`, {
          url: shown,
          retryable: true,
          cause: e,
        });
      }
    }
    if (res) {
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
      if (!RETRYABLE.has(res.status)) {
        throw new SourceError(
          res.status === 401 || res.status === 403 ? 'auth' : 'http',
          `${init.method ?? 'GET'} ${shown} returned ${res.status}${detail}` +
            (res.status === 401 || res.status === 403 ? '; check source.auth and the secret it names' : ''),
          { status: res.status, url: shown },
        );
      }
      failure = `${res.status}${detail}`;
      if (attempt >= maxAttempts) {
        throw new SourceError(
          res.status === 429 ? 'throttled' : 'http',
          `${init.method ?? 'GET'} ${shown} still failing after ${attempt} attempts (last: ${failure})`,
          { status: res.status, url: shown, retryable: true },
        );
      }
      const retryAfter = parseRetryAfter(res.headers.get('retry-after'));
      const wait = retryAfter ?? Math.round(base * 2 ** (attempt - 1) * (0.5 + Math.random() * 0.5));
      if (wait > budget.remainingMs) {
        throw new SourceError(
          res.status === 429 ? 'throttled' : 'http',
          `${shown} asked to wait ${wait} ms (status ${res.status}) but only ${budget.remainingMs} ms of the retry budget are left; raise source.retry.budgetSeconds or run later`,
          { status: res.status, url: shown, retryable: true },
        );
      }
      ctx.deps.logger.warn('source request will be retried', { url: shown, status: res.status, attempt, waitMs: wait });
      budget.remainingMs -= wait;
      await sleep(wait, ctx.signal);
      continue;
    }
    const wait = Math.round(base * 2 ** (attempt - 1) * (0.5 + Math.random() * 0.5));
    if (wait > budget.remainingMs) {
      throw new SourceError('network', `request to ${shown} failed (${failure!}) and the retry budget is spent`, {
        url: shown,
        retryable: true,
      });
    }
    ctx.deps.logger.warn('source request failed, will retry', { url: shown, error: failure!, attempt, waitMs: wait });
    budget.remainingMs -= wait;
    await sleep(wait, ctx.signal);
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
