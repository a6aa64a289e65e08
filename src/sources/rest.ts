/**
 * REST / OData JSON source: pages via `@odata.nextLink`, `Link: rel="next"`, page numbers or offsets;
 * incremental reads via a query template with `{cursor}`. A failure mid-way throws SourceError: a read
 * is complete or it failed, never silently short.
 */
import type { PagingDefinition, RestSourceDefinition } from '../config/source-definition.js';
import type { AuthProvider, RetryBudget } from './http.js';
import { requestWithRetry } from './http.js';
import type { ReadOptions, SourceDeps } from './types.js';
import { displayUrl, SourceError } from './types.js';

export interface PageReaderConfig {
  url: string;
  recordsPath?: string;
  paging?: PagingDefinition;
  query?: Record<string, string>;
  headers?: Record<string, string>;
  retry?: RestSourceDefinition['retry'];
  timeoutSeconds?: number;
  maxPages?: number;
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
  let cur = body;
  for (const seg of path.split('.')) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[seg];
  }
  return cur;
}

/** Yields raw records page by page. */
export async function* readPages(
  cfg: PageReaderConfig,
  deps: SourceDeps,
  auth: AuthProvider | undefined,
  options: ReadOptions & { extraQuery?: Record<string, string> } = {},
): AsyncGenerator<{ record: unknown; page: number; index: number }> {
  const paging: PagingDefinition = cfg.paging ?? { type: 'odata' };
  const recordsPath = cfg.recordsPath ?? (paging.type === 'odata' ? 'value' : undefined);
  const budget: RetryBudget = { remainingMs: (cfg.retry?.budgetSeconds ?? 300) * 1000 };
  const maxPages = cfg.maxPages ?? 100_000;
  const first = new URL(cfg.url);
  for (const [k, v] of Object.entries({ ...cfg.query, ...options.extraQuery })) first.searchParams.set(k, v);

  const pageSize = 'pageSize' in paging ? paging.pageSize : undefined;
  let pageNo = paging.type === 'page' ? (paging.startPage ?? 1) : 0;
  let offset = 0;
  const setPos = (u: URL) => {
    if (paging.type === 'page') {
      u.searchParams.set(paging.pageParam ?? 'page', String(pageNo));
      if (pageSize !== undefined) u.searchParams.set(paging.sizeParam ?? 'pageSize', String(pageSize));
    } else if (paging.type === 'offset') {
      u.searchParams.set(paging.offsetParam ?? 'offset', String(offset));
      u.searchParams.set(paging.limitParam ?? 'limit', String(pageSize ?? 100));
    }
  };
  setPos(first);

  let url: string | undefined = first.href;
  const seen = new Set<string>();
  let page = 0;
  while (url) {
    page++;
    if (page > maxPages) {
      throw new SourceError(
        'http',
        `${displayUrl(cfg.url)}: more than ${maxPages} pages; raise source.maxPages if that is expected`,
      );
    }
    if (seen.has(url)) {
      throw new SourceError(
        'http',
        `${displayUrl(url)}: the server returned the same next page twice (paging loop) at page ${page}`,
      );
    }
    seen.add(url);
    const res = await requestWithRetry(
      url,
      { method: 'GET' },
      {
        deps,
        signal: options.signal,
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
      throw new SourceError('parse', `page ${page} of ${displayUrl(url)} is not valid JSON: ${(e as Error).message}`, {
        url: displayUrl(url),
        cause: e,
      });
    }
    const records = at(body, recordsPath);
    if (!Array.isArray(records)) {
      throw new SourceError(
        'parse',
        `page ${page} of ${displayUrl(url)} has no array at recordsPath "${recordsPath ?? ''}"; set source.recordsPath to where the records are`,
        { url: displayUrl(url) },
      );
    }
    for (let i = 0; i < records.length; i++) yield { record: records[i], page, index: i };

    let next: string | undefined;
    switch (paging.type) {
      case 'none':
        next = undefined;
        break;
      case 'odata': {
        const link = (body as Record<string, unknown>)['@odata.nextLink'];
        next = typeof link === 'string' && link ? new URL(link, url).href : undefined;
        break;
      }
      case 'link':
        next = nextFromLinkHeader(res.headers.get('link'), url);
        break;
      case 'page':
      case 'offset': {
        const full = pageSize === undefined ? records.length > 0 : records.length >= pageSize;
        if (!full || records.length === 0) {
          next = undefined;
          break;
        }
        const u = new URL(url);
        if (paging.type === 'page') pageNo++;
        else offset += records.length;
        setPos(u);
        next = u.href;
        break;
      }
    }
    url = next;
  }
}
