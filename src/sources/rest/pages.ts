/**
 * The REST / OData page reader: one HTTP response is one page. Pages via `@odata.nextLink`, `Link: rel="next"`,
 * page numbers or offsets. The state after a page is the next page's URL (with the page and offset counters), so a
 * read resumes with the request it would have made next. Next links must stay on the source's origin: the source's
 * credentials are never sent elsewhere. A failure mid-way throws SourceError: a read is complete or it failed.
 */
import type { AuthProvider, RetryBudget } from '../http.js';
import { requestWithRetry } from '../http.js';
import type { SourceDeps } from '../types.js';
import { displayUrl, SourceError } from '../types.js';
import type { PagingDefinition, RestSourceDefinition } from './definition.js';

export interface PageReaderConfig {
  url: string;
  recordsPath?: string;
  countPath?: string;
  paging?: PagingDefinition;
  query?: Record<string, string>;
  headers?: Record<string, string>;
  retry?: RestSourceDefinition['retry'];
  timeoutSeconds?: number;
  maxPages?: number;
}

/** Where a REST read stands between two pages: what a position stores. */
export interface RestState {
  /** The next request. Its query may hold a paging token: stored by the crawl, never logged. */
  url: string;
  /** Pages read so far. */
  page: number;
  /** Records read so far. */
  records: number;
  /** `page` paging: the next page number. */
  pageNo?: number;
  /** `offset` paging: the next offset. */
  offset?: number;
  /** The total record count the server announced (countPath), when it did. */
  total?: number;
}

export interface RestPage {
  records: unknown[];
  /** 1-based page number. */
  page: number;
  /** Where to go on; undefined after the last page. */
  next: RestState | undefined;
  /** Records read up to and including this page. */
  recordsSoFar: number;
  total?: number;
}

/** Parse an RFC 8288 Link header and return the rel="next" target. */
export function nextFromLinkHeader(header: string | null, base: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(/,(?=\s*<)/)) {
    const m = /^\s*<([^>]*)>(.*)$/.exec(part);
    if (!m) continue;
    const params = m[2] ?? '';
    const rel = /;\s*rel\s*=\s*"?([^";]+)"?/i.exec(params);
    if (rel && rel[1]!.split(/\s+/).includes('next')) return new URL(m[1]!, base).href;
  }
  return undefined;
}

function at(body: unknown, path: string | undefined): unknown {
  if (path === undefined || path === '') return body;
  const obj = body as Record<string, unknown> | null;
  if (obj !== null && typeof obj === 'object' && Object.prototype.hasOwnProperty.call(obj, path)) return obj[path];
  let cur = body;
  for (const seg of path.split('.')) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[seg];
  }
  return cur;
}

function countAt(body: unknown, path: string | undefined): number | undefined {
  if (!path) return undefined;
  const v = at(body, path);
  const n = typeof v === 'string' && v.trim() !== '' ? Number(v) : v;
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 0 ? n : undefined;
}

/** The first request of a read: the source URL with the configured query, the incremental query and paging. */
export function firstState(cfg: PageReaderConfig, extraQuery: Record<string, string> | undefined): RestState {
  const paging: PagingDefinition = cfg.paging ?? { type: 'odata' };
  const first = new URL(cfg.url);
  for (const [k, v] of Object.entries({ ...cfg.query, ...extraQuery })) first.searchParams.set(k, v);
  const state: RestState = { url: '', page: 0, records: 0 };
  if (paging.type === 'page') state.pageNo = paging.startPage ?? 1;
  if (paging.type === 'offset') state.offset = 0;
  state.url = withPaging(first, paging, state).href;
  return state;
}

function withPaging(u: URL, paging: PagingDefinition, state: RestState): URL {
  if (paging.type === 'page') {
    u.searchParams.set(paging.pageParam ?? 'page', String(state.pageNo));
    if (paging.pageSize !== undefined) u.searchParams.set(paging.sizeParam ?? 'pageSize', String(paging.pageSize));
  } else if (paging.type === 'offset') {
    u.searchParams.set(paging.offsetParam ?? 'offset', String(state.offset));
    u.searchParams.set(paging.limitParam ?? 'limit', String(paging.pageSize ?? 100));
  }
  return u;
}

/** A next link must stay on the source's origin (scheme, host and port): it receives the source's credentials. */
export function checkSameOrigin(next: string, cfg: PageReaderConfig, what: string): void {
  const origin = new URL(cfg.url).origin;
  let target: string;
  try {
    target = new URL(next).origin;
  } catch {
    throw new SourceError('SourceHttp', `${what} is not a valid URL`, { url: displayUrl(cfg.url) });
  }
  if (target !== origin) {
    throw new SourceError(
      'SourceHttp',
      `${what} points to ${target}, not the source's origin ${origin}; the connector does not send the source's ` +
        `credentials to another origin (point source.url at the host that serves the next pages)`,
      { url: displayUrl(cfg.url) },
    );
  }
}

/** Yields one page per response, from `start` (a state from {@link firstState} or a saved position). */
export async function* fetchPages(
  cfg: PageReaderConfig,
  deps: SourceDeps,
  auth: AuthProvider | undefined,
  start: RestState,
  options: { abortSignal?: AbortSignal } = {},
): AsyncGenerator<RestPage> {
  const paging: PagingDefinition = cfg.paging ?? { type: 'odata' };
  const recordsPath = cfg.recordsPath ?? (paging.type === 'odata' ? 'value' : undefined);
  const countPath = cfg.countPath ?? (paging.type === 'odata' ? '@odata.count' : undefined);
  const budget: RetryBudget = { remainingMs: (cfg.retry?.budgetSeconds ?? 300) * 1000 };
  const maxPages = cfg.maxPages ?? 100_000;
  const pageSize = 'pageSize' in paging ? paging.pageSize : undefined;

  let state: RestState | undefined = start;
  const seen = new Set<string>();
  while (state) {
    const url: string = state.url;
    const page: number = state.page + 1;
    if (page > maxPages) {
      throw new SourceError(
        'SourceHttp',
        `${displayUrl(cfg.url)}: more than ${maxPages} pages; raise source.maxPages if that is expected`,
      );
    }
    if (seen.has(url)) {
      throw new SourceError(
        'SourceHttp',
        `${displayUrl(url)}: the server returned the same next page twice (paging loop) at page ${page}`,
      );
    }
    seen.add(url);
    const res = await requestWithRetry(
      url,
      { method: 'GET' },
      {
        deps,
        abortSignal: options.abortSignal,
        retry: cfg.retry,
        budget,
        auth,
        headers: cfg.headers,
        timeoutMs: (cfg.timeoutSeconds ?? 60) * 1000,
      },
    );
    let body: unknown;
    try {
      body = await res.json();
    } catch (e) {
      throw new SourceError(
        'SourceParse',
        `page ${page} of ${displayUrl(url)} is not valid JSON: ${(e as Error).message}`,
        {
          url: displayUrl(url),
          cause: e,
        },
      );
    }
    const records = at(body, recordsPath);
    if (!Array.isArray(records)) {
      throw new SourceError(
        'SourceParse',
        `page ${page} of ${displayUrl(url)} has no array at recordsPath "${recordsPath ?? ''}"; set source.recordsPath to where the records are`,
        { url: displayUrl(url) },
      );
    }
    const total: number | undefined = countAt(body, countPath) ?? state.total;
    const recordsSoFar: number = state.records + records.length;

    let nextUrl: string | undefined;
    let pageNo: number | undefined = state.pageNo;
    let offset: number | undefined = state.offset;
    switch (paging.type) {
      case 'none':
        break;
      case 'odata': {
        const link = (body as Record<string, unknown> | null)?.['@odata.nextLink'];
        nextUrl = typeof link === 'string' && link ? new URL(link, url).href : undefined;
        break;
      }
      case 'link':
        nextUrl = nextFromLinkHeader(res.headers.get('link'), url);
        break;
      case 'page':
      case 'offset': {
        const full = pageSize === undefined ? records.length > 0 : records.length >= pageSize;
        if (!full || records.length === 0) break;
        if (paging.type === 'page') pageNo = (pageNo ?? 1) + 1;
        else offset = (offset ?? 0) + records.length;
        nextUrl = withPaging(new URL(url), paging, { ...state, pageNo, offset }).href;
        break;
      }
    }
    if (nextUrl !== undefined)
      checkSameOrigin(nextUrl, cfg, `the next-page link of page ${page} of ${displayUrl(url)}`);
    const next: RestState | undefined =
      nextUrl === undefined
        ? undefined
        : {
            url: nextUrl,
            page,
            records: recordsSoFar,
            ...(pageNo !== undefined ? { pageNo } : {}),
            ...(offset !== undefined ? { offset } : {}),
            ...(total !== undefined ? { total } : {}),
          };
    yield { records, page, next, recordsSoFar, ...(total !== undefined ? { total } : {}) };
    state = next;
  }
}
