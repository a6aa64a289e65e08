/**
 * REST sources resume natively: a page is one response, its position the next request (nextLink, Link header,
 * page number or offset, with the incremental cursor). Next links stay on the source's origin; paging tokens are
 * stored in positions but never logged.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMemoryLogger, silentLogger } from '../../src/log.js';
import type { RestSourceDefinition, SourceDeps } from '../../src/sources/index.js';
import { createSource, SourceError } from '../../src/sources/index.js';
import { collectPages, expectResumable, failure, memorySecrets, stored } from './helpers.js';

const TOTAL = 7;
const rows = (from: number, n: number) => Array.from({ length: Math.max(0, n) }, (_, i) => ({ id: `R${from + i}` }));
const hits: { path: string; query: URLSearchParams; host: string | undefined }[] = [];
const throttledOnce = new Set<string>();

function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
}

/** An opaque, secret-looking paging token for the record offset. */
const token = (skip: number) => `tok-SECRET-${Buffer.from(String(skip)).toString('base64url')}`;
const untoken = (t: string | null) =>
  t ? Number(Buffer.from(t.replace('tok-SECRET-', ''), 'base64url').toString()) : 0;

function handler(req: IncomingMessage, res: ServerResponse) {
  const url = new URL(req.url ?? '/', 'http://x');
  const q = url.searchParams;
  hits.push({ path: url.pathname, query: q, host: req.headers.host });
  const host = `http://${req.headers.host}`;
  switch (url.pathname) {
    case '/odata': {
      // 3 a page, a skiptoken in the next link, the total on every page when $count=true.
      const skip = untoken(q.get('$skiptoken'));
      if (q.get('throttle') === '1' && skip > 0 && !throttledOnce.has(String(skip))) {
        throttledOnce.add(String(skip));
        return json(res, 429, {}, { 'retry-after': '0' });
      }
      const next = new URL(`${host}/odata`);
      for (const [k, v] of q) if (k !== '$skiptoken') next.searchParams.set(k, v);
      next.searchParams.set('$skiptoken', token(skip + 3));
      return json(res, 200, {
        ...(q.get('$count') === 'true' ? { '@odata.count': TOTAL } : {}),
        value: rows(skip, Math.min(3, TOTAL - skip)).map((r) => ({ ...r, filter: q.get('$filter') })),
        ...(skip + 3 < TOTAL ? { '@odata.nextLink': next.href } : {}),
      });
    }
    case '/link': {
      const p = Number(q.get('p') ?? 0);
      const headers: Record<string, string> = p < 3 ? { link: `</link?p=${p + 1}>; rel="next"` } : {};
      return json(res, 200, { data: { items: rows(p * 2, p < 3 ? 2 : 1) }, meta: { total: TOTAL } }, headers);
    }
    case '/page': {
      const page = Number(q.get('page'));
      const size = Number(q.get('size'));
      return json(res, 200, rows((page - 1) * size, Math.min(size, TOTAL - (page - 1) * size)));
    }
    case '/offset': {
      const offset = Number(q.get('offset'));
      const limit = Number(q.get('limit'));
      return json(res, 200, { results: rows(offset, Math.min(limit, TOTAL - offset)) });
    }
    case '/elsewhere': {
      // The next link names this very server by another host name: another origin.
      const port = (server.address() as AddressInfo).port;
      return json(res, 200, {
        value: rows(0, 2),
        '@odata.nextLink': `http://localhost:${port}/odata?$skiptoken=${token(2)}`,
      });
    }
    default:
      return json(res, 404, {});
  }
}

let server: Server;
let base = '';
beforeAll(async () => {
  server = createServer((req, res) => handler(req, res));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

const deps = (over: Partial<SourceDeps> = {}): SourceDeps => ({
  secrets: memorySecrets({}),
  logger: silentLogger,
  baseDir: process.cwd(),
  ...over,
});
const rest = (over: Partial<RestSourceDefinition>): RestSourceDefinition => ({
  type: 'rest',
  url: `${base}/odata`,
  keyField: 'id',
  retry: { maxAttempts: 3, baseDelayMs: 10 },
  ...over,
});
const ids = Array.from({ length: TOTAL }, (_, i) => `R${i}`);

describe('REST positions: one page per response, resumable from every page', () => {
  it('odata: the position is the nextLink (token included), pages are counted', async () => {
    const pages = await expectResumable(createSource(rest({}), deps()));
    expect(pages.map((p) => p.records.map((r) => r.key))).toEqual([ids.slice(0, 3), ids.slice(3, 6), ids.slice(6)]);
    expect(pages[0]!.next).toMatchObject({ v: 1, source: 'rest', page: 1, records: 3 });
    expect(String(pages[0]!.next!.url)).toContain(token(3));
    expect(pages.map((p) => p.progress)).toEqual([1, 2, 3].map((done) => ({ done, unit: 'pages' })));
    expect(pages[1]!.records[0]!.position).toBe('page 2 item 1');
  });

  it('odata with $count: progress counts records against @odata.count', async () => {
    const pages = await expectResumable(createSource(rest({ query: { $count: 'true' } }), deps()));
    expect(pages.map((p) => p.progress)).toEqual([3, 6, 7].map((done) => ({ done, total: TOTAL, unit: 'records' })));
  });

  it('Link header, with a countPath for the total', async () => {
    const def = rest({
      url: `${base}/link`,
      paging: { type: 'link' },
      recordsPath: 'data.items',
      countPath: 'meta.total',
    });
    const pages = await expectResumable(createSource(def, deps()));
    expect(pages.flatMap((p) => p.records).map((r) => r.key)).toEqual(ids);
    expect(pages.at(-1)!.progress).toEqual({ done: TOTAL, total: TOTAL, unit: 'records' });
  });

  it('page numbers and offsets', async () => {
    const page = rest({
      url: `${base}/page`,
      recordsPath: '',
      paging: { type: 'page', sizeParam: 'size', pageSize: 2 },
    });
    const pages = await expectResumable(createSource(page, deps()));
    expect(pages.map((p) => p.records.length)).toEqual([2, 2, 2, 1]);
    expect(pages[1]!.next).toMatchObject({ pageNo: 3 });
    const offset = rest({ url: `${base}/offset`, recordsPath: 'results', paging: { type: 'offset', pageSize: 3 } });
    const byOffset = await expectResumable(createSource(offset, deps()));
    expect(byOffset.map((p) => p.records.length)).toEqual([3, 3, 1]);
    expect(byOffset[0]!.next).toMatchObject({ offset: 3 });
  });

  it('incremental: the position keeps the cursor and its query; another cursor cannot resume it', async () => {
    const def = rest({ incremental: { query: { $filter: 'modified ge {cursor}' } } });
    const cursor = '2025-06-01T00:00:00.000Z';
    const source = createSource(def, deps());
    const pages = await expectResumable(source, { cursor });
    expect(pages[0]!.next).toMatchObject({ cursor });
    const start = hits.length;
    await collectPages(source, { cursor, position: stored(pages[0]!.next!) });
    expect(hits[start]!.query.get('$filter')).toBe(`modified ge ${cursor}`);
    expect(pages.flatMap((p) => p.records).every((r) => r.data?.filter === `modified ge ${cursor}`)).toBe(true);
    const other = await failure(() => collectPages(source, { cursor: 'x', position: stored(pages[0]!.next!) }));
    expect(other.code).toBe('SourcePosition');
    const full = await failure(() => collectPages(source, { position: stored(pages[0]!.next!) }));
    expect(full.code).toBe('SourcePosition');
  });
});

describe('next links stay on the source origin', () => {
  it('a nextLink to another origin fails the read before anything is sent there', async () => {
    const start = hits.length;
    const err = await failure(() => collectPages(createSource(rest({ url: `${base}/elsewhere` }), deps())));
    expect(err).toBeInstanceOf(SourceError);
    expect(err.code).toBe('SourceHttp');
    expect(err.message).toMatch(/points to http:\/\/localhost:\d+, not the source's origin http:\/\/127\.0\.0\.1:\d+/);
    expect(err.message).not.toContain('tok-SECRET');
    expect(hits.slice(start).every((h) => h.host?.startsWith('127.0.0.1'))).toBe(true);
  });

  it('a saved position pointing elsewhere (or at another definition) is refused', async () => {
    const source = createSource(rest({}), deps());
    const [first] = await collectPages(source);
    const moved = { ...stored(first!.next!), url: 'https://attacker.example/odata' };
    const err = await failure(() => collectPages(source, { position: moved }));
    expect(err.code).toBe('SourcePosition');
    const otherDef = await failure(() =>
      collectPages(createSource(rest({ query: { $top: '3' } }), deps()), { position: stored(first!.next!) }),
    );
    expect(otherDef.code).toBe('SourcePosition');
    // Settings that do not change what is read (retries, timeouts, page limits) keep the position usable.
    const tuned = createSource(
      rest({ retry: { maxAttempts: 5, budgetSeconds: 600 }, timeoutSeconds: 5, maxPages: 50 }),
      deps(),
    );
    const rest2 = await collectPages(tuned, { position: stored(first!.next!) });
    expect(rest2.flatMap((p) => p.records).map((r) => r.key)).toEqual(ids.slice(3));
  });

  it('paging tokens are stored in positions but never logged', async () => {
    const logger = createMemoryLogger('debug');
    const source = createSource(rest({ query: { throttle: '1' } }), deps({ logger }));
    const pages = await expectResumable(source);
    expect(String(pages[0]!.next!.url)).toContain('tok-SECRET');
    expect(logger.lines.some((l) => l.includes('will be retried'))).toBe(true);
    expect(logger.lines.join('\n')).not.toContain('tok-SECRET');
  });
});
