/**
 * The item store against Azurite: pending marks (insert and read paths, idempotent per crawl and item), the fence
 * an operation takes before its write, the settle transaction, and the touch rows that count a crawl exactly.
 */
import { describe, expect, it } from 'vitest';
import { mapLimit } from '../../src/core/async.js';
import { newCrawlId } from '../../src/state/jobs.js';
import { itemKeyOf } from '../../src/state/keys.js';
import { connectionId, freshState } from './helpers.js';

const fence = (over: { itemId: string; crawlId: string; hash: string; token?: string; etag?: string | undefined }) => {
  const { etag, ...rest } = over;
  return { ttlMs: 60_000, token: 't1', op: 'upsert' as const, ...rest, ...(etag ? { etag } : {}) };
};

describe('item store: pending marks', () => {
  it('inserts unknown items in one transaction per bucket and returns their row ETags', async () => {
    const { items } = await freshState();
    const conn = connectionId();
    const c = newCrawlId();
    const entries = Array.from({ length: 40 }, (_, i) => ({
      itemId: `Doc${i}`,
      hash: `h${i}`,
      op: 'upsert' as const,
      pos: `0:${i}`,
    }));
    const r = await items.markPending(conn, c, entries);
    expect([...r.values()].every((m) => m.status === 'marked' && m.etag)).toBe(true);
    expect(await items.getItem(conn, 'doc7')).toMatchObject({
      itemId: 'Doc7',
      state: 'pending',
      pendingCrawlId: c,
      pendingHash: 'h7',
      hash: '',
    });
    expect(await items.counts(conn, c)).toMatchObject({ enqueued: 40, pending: 40 });
  });

  it('a page read again re-sends what is pending, skips what settled, and counts nothing twice', async () => {
    const { items } = await freshState();
    const conn = connectionId();
    const c = newCrawlId();
    const e = (id: string, hash: string, pos: string) => ({ itemId: id, hash, op: 'upsert' as const, pos });
    const first = await items.markPending(conn, c, [e('a1', 'ha', '0:0'), e('a2', 'hb', '0:1')]);
    const f = await items.fence(conn, fence({ itemId: 'a1', crawlId: c, hash: 'ha', etag: first.get('a1')!.etag }));
    expect(f.outcome).toBe('fenced');
    await items.settle(conn, {
      itemId: 'a1',
      crawlId: c,
      hash: 'ha',
      op: 'upsert',
      result: 'ok',
      etag: (f as { etag: string }).etag,
      token: 't1',
      takeover: false,
    });
    const again = await items.markPending(conn, c, [e('a1', 'ha', '0:0'), e('a2', 'hb', '0:1')]);
    expect(again.get('a1')!.status).toBe('settled');
    expect(again.get('a2')!.status).toBe('again');
    expect(again.get('a2')!.etag).toBeTruthy();
    expect(await items.counts(conn, c)).toMatchObject({ enqueued: 2, pending: 1, ingested: 1 });
  });

  it('a second record producing the same id (in any case) is a duplicate naming where the first was', async () => {
    const { items } = await freshState();
    const conn = connectionId();
    const c = newCrawlId();
    await items.markPending(conn, c, [{ itemId: 'Ticket-1', hash: 'h', op: 'upsert', pos: '0:3' }]);
    const dup = await items.markPending(conn, c, [{ itemId: 'ticket-1', hash: 'h2', op: 'upsert', pos: '4:9' }]);
    expect(dup.get('ticket-1')).toMatchObject({ status: 'duplicate', firstPos: '0:3' });
    expect(await items.counts(conn, c)).toMatchObject({ enqueued: 1 });
  });

  it('a newer crawl takes over a pending operation; the older crawl counts it superseded', async () => {
    const { items } = await freshState();
    const conn = connectionId();
    const older = newCrawlId(Date.now() - 60_000);
    const newer = newCrawlId();
    await items.markPending(conn, older, [{ itemId: 'doc', hash: 'h1', op: 'upsert' }]);
    const r = await items.markPending(conn, newer, [{ itemId: 'doc', hash: 'h2', op: 'upsert', known: true }]);
    expect(r.get('doc')!.status).toBe('marked');
    expect(await items.counts(conn, older)).toMatchObject({ enqueued: 1, superseded: 1, pending: 0 });
    expect(await items.counts(conn, newer)).toMatchObject({ enqueued: 1, pending: 1 });
  });

  it('the ledger confirms an unchanged item (no operation) and names the case-changed id Graph holds', async () => {
    const { items } = await freshState();
    const conn = connectionId();
    const c1 = newCrawlId(Date.now() - 60_000);
    const m = await items.markPending(conn, c1, [{ itemId: 'ABC', hash: 'h', op: 'upsert' }]);
    const f = await items.fence(conn, fence({ itemId: 'ABC', crawlId: c1, hash: 'h', etag: m.get('abc')!.etag }));
    await items.settle(conn, {
      itemId: 'ABC',
      crawlId: c1,
      hash: 'h',
      op: 'upsert',
      result: 'ok',
      etag: (f as { etag: string }).etag,
      token: 't1',
      takeover: false,
    });
    const c2 = newCrawlId();
    const same = await items.markPending(conn, c2, [{ itemId: 'ABC', hash: 'h', op: 'upsert', known: true }]);
    expect(same.get('abc')!.status).toBe('unchanged');
    const renamed = await items.markPending(conn, c2, [{ itemId: 'abc', hash: 'h9', op: 'upsert', known: true }]);
    expect(renamed.get('abc')).toMatchObject({ status: 'marked', previousItemId: 'ABC' });
  });
});

describe('item store: fence and settle', () => {
  it('fences with the message ETag (no read), settles in one transaction, and a redelivery is a duplicate', async () => {
    const { items } = await freshState();
    const conn = connectionId();
    const c = newCrawlId();
    const m = await items.markPending(conn, c, [{ itemId: 'x1', hash: 'h', op: 'upsert' }]);
    const f = await items.fence(conn, fence({ itemId: 'x1', crawlId: c, hash: 'h', etag: m.get('x1')!.etag }));
    expect(f).toMatchObject({ outcome: 'fenced', takeover: false });
    const s = await items.settle(conn, {
      itemId: 'x1',
      crawlId: c,
      hash: 'h',
      op: 'upsert',
      result: 'ok',
      etag: (f as { etag: string }).etag,
      token: 't1',
      takeover: false,
    });
    expect(s).toEqual({ outcome: 'applied', suspect: false });
    const row = (await items.getItem(conn, 'x1'))!;
    expect(row).toMatchObject({ state: 'settled', hash: 'h', settledCrawlId: c, suspect: false });
    expect(row.fence).toBeUndefined();
    expect(row.pendingCrawlId).toBeUndefined();
    const again = await items.fence(
      conn,
      fence({ itemId: 'x1', crawlId: c, hash: 'h', token: 't2', etag: m.get('x1')!.etag }),
    );
    expect(again.outcome).toBe('duplicate');
    expect(await items.counts(conn, c)).toMatchObject({ enqueued: 1, ingested: 1, pending: 0 });
  });

  it('an older crawl reaching the fence after a newer crawl marked or settled the item is superseded', async () => {
    const { items } = await freshState();
    const conn = connectionId();
    const older = newCrawlId(Date.now() - 60_000);
    const newer = newCrawlId();
    const a = await items.markPending(conn, older, [{ itemId: 'y1', hash: 'old', op: 'upsert' }]);
    await items.markPending(conn, newer, [{ itemId: 'y1', hash: 'new', op: 'upsert', known: true }]);
    const f = await items.fence(conn, fence({ itemId: 'y1', crawlId: older, hash: 'old', etag: a.get('y1')!.etag }));
    expect(f).toMatchObject({ outcome: 'superseded', byCrawlId: newer });
  });

  it('while one version is being written, another version waits (busy) until it settles or its fence expires', async () => {
    let now = Date.now();
    const { items } = await freshState({ now: () => now });
    const conn = connectionId();
    const a = newCrawlId(now - 60_000);
    const b = newCrawlId(now);
    const ma = await items.markPending(conn, a, [{ itemId: 'z1', hash: 'ha', op: 'upsert' }]);
    const fa = await items.fence(
      conn,
      fence({ itemId: 'z1', crawlId: a, hash: 'ha', token: 'ta', etag: ma.get('z1')!.etag }),
    );
    expect(fa.outcome).toBe('fenced');
    await items.markPending(conn, b, [{ itemId: 'z1', hash: 'hb', op: 'upsert', known: true }]);
    const fb = await items.fence(conn, fence({ itemId: 'z1', crawlId: b, hash: 'hb', token: 'tb' }));
    expect(fb.outcome).toBe('busy');
    // a's write stalls past its fence: b takes the fence over, and its settle says Graph may hold either.
    now += 120_000;
    const fb2 = await items.fence(conn, fence({ itemId: 'z1', crawlId: b, hash: 'hb', token: 'tb' }));
    expect(fb2).toMatchObject({ outcome: 'fenced', takeover: true });
    const sb = await items.settle(conn, {
      itemId: 'z1',
      crawlId: b,
      hash: 'hb',
      op: 'upsert',
      result: 'ok',
      etag: (fb2 as { etag: string }).etag,
      token: 'tb',
      takeover: true,
    });
    expect(sb.suspect).toBe(true);
    // a's stalled write lands late: its settle cannot claim anything, and marks the row suspect.
    const sa = await items.settle(conn, {
      itemId: 'z1',
      crawlId: a,
      hash: 'ha',
      op: 'upsert',
      result: 'ok',
      etag: (fa as { etag: string }).etag,
      token: 'ta',
      takeover: false,
    });
    expect(sa).toMatchObject({ outcome: 'raced', suspect: true });
    const row = (await items.getItem(conn, 'z1'))!;
    expect(row).toMatchObject({ suspect: true, state: 'settled', hash: 'hb' });
  });

  it('a settle racing a newer pending mark records what Graph holds and keeps the newer operation pending', async () => {
    const { items } = await freshState();
    const conn = connectionId();
    const a = newCrawlId(Date.now() - 60_000);
    const b = newCrawlId();
    const ma = await items.markPending(conn, a, [{ itemId: 'w1', hash: 'ha', op: 'upsert' }]);
    const fa = await items.fence(conn, fence({ itemId: 'w1', crawlId: a, hash: 'ha', etag: ma.get('w1')!.etag }));
    await items.markPending(conn, b, [{ itemId: 'w1', hash: 'hb', op: 'upsert', known: true }]);
    const s = await items.settle(conn, {
      itemId: 'w1',
      crawlId: a,
      hash: 'ha',
      op: 'upsert',
      result: 'ok',
      etag: (fa as { etag: string }).etag,
      token: 't1',
      takeover: false,
    });
    expect(s.outcome).toBe('raced');
    expect(await items.getItem(conn, 'w1')).toMatchObject({
      hash: 'ha',
      state: 'pending',
      pendingCrawlId: b,
      pendingHash: 'hb',
    });
    expect((await items.getItem(conn, 'w1'))!.fence).toBeUndefined();
  });

  it('50 concurrent operations in few buckets are each counted exactly once', async () => {
    const { items } = await freshState();
    const conn = connectionId();
    const c = newCrawlId();
    const ids = Array.from({ length: 50 }, (_, i) => `c${i}`);
    const marks = await items.markPending(
      conn,
      c,
      ids.map((itemId) => ({ itemId, hash: 'h', op: 'upsert' as const })),
    );
    await mapLimit(ids, 50, async (itemId) => {
      const f = await items.fence(
        conn,
        fence({ itemId, crawlId: c, hash: 'h', token: itemId, etag: marks.get(itemKeyOf(itemId).key)!.etag }),
      );
      await items.settle(conn, {
        itemId,
        crawlId: c,
        hash: 'h',
        op: 'upsert',
        result: 'ok',
        etag: (f as { etag: string }).etag,
        token: itemId,
        takeover: false,
      });
    });
    expect(await items.counts(conn, c)).toMatchObject({ enqueued: 50, ingested: 50, pending: 0 });
  });
});
