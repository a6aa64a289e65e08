import { describe, expect, it } from 'vitest';
import { ConcurrencyError, Ledger, newCrawlId, outstandingOf, type LedgerItem } from '../../src/state/ledger.js';
import { bucketOf } from '../../src/state/util.js';
import { connectionId, freshState } from './helpers.js';

const ids = (n: number, prefix = 'it') => Array.from({ length: n }, (_, i) => `${prefix}${i}`);

/** Seed settled rows quickly: pending + settle through the public API would be slow for hundreds. */
async function seedSettled(ledger: Ledger, conn: string, crawlId: string, generation: number, itemIds: string[]) {
  await ledger.markPending(
    conn,
    crawlId,
    generation,
    itemIds.map((itemId) => ({ itemId, hash: `h-${itemId}`, op: 'upsert' as const, current: null })),
  );
  const settle = async (i: number): Promise<void> => {
    if (i >= itemIds.length) return;
    const id = itemIds[i]!;
    await ledger.settle(conn, id, { crawlId, hash: `h-${id}`, state: 'settled', generation });
    await settle(i + 8);
  };
  await Promise.all(Array.from({ length: 8 }, (_, k) => settle(k)));
}

describe('ledger items', () => {
  it('partitions items into 256 hash buckets per connection', () => {
    expect(Ledger.partitionOf('conn1', 'abc')).toBe(`conn1-${bucketOf('abc')}`);
    const buckets = new Set(ids(2000).map(bucketOf));
    expect(buckets.size).toBe(256);
  });

  it('markSeen batches across partitions, counts once, and refuses rows that are not settled', async () => {
    const { ledger } = await freshState();
    const conn = connectionId();
    const c1 = newCrawlId(Date.now() - 1000);
    const all = ids(300);
    await seedSettled(ledger, conn, c1, 1, all);
    const c2 = newCrawlId();
    const rows = await ledger.getItems(conn, all);
    expect(rows.size).toBe(300);
    const partitions = new Set([...rows.keys()].map((id) => Ledger.partitionOf(conn, id)));
    expect(partitions.size).toBeGreaterThan(150);
    // One of them is pending in the new crawl: it cannot be "unchanged".
    await ledger.markPending(conn, c2, 2, [{ itemId: 'it7', hash: 'changed', op: 'upsert' }]);
    const t0 = Date.now();
    const r = await ledger.markSeen(conn, c2, 2, [...rows.values()]);
    const ms = Date.now() - t0;
    expect(r.refused).toEqual(['it7']);
    expect(r.seen).toBe(299);
    // Idempotent: again with the (now stale-ETag) rows re-reads and counts nothing new.
    const again = await ledger.markSeen(
      conn,
      c2,
      2,
      [...rows.values()].filter((x) => x.itemId !== 'it7'),
    );
    expect(again).toEqual({ seen: 0, already: 299, refused: [] });
    const counts = await ledger.counts(conn, c2);
    expect(counts.unchanged).toBe(299);
    expect(counts.enqueued).toBe(1);
    const after = await ledger.getItems(conn, ['it0', 'it299']);
    expect(after.get('it0')).toMatchObject({ generation: 2, lastCrawlId: c2, state: 'settled', hash: 'h-it0' });
    expect(ms).toBeLessThan(10_000);
  });

  it('markSeen of many unchanged items in one bucket uses full 99-item transactions', async () => {
    const { ledger } = await freshState();
    const conn = connectionId();
    // 150 ids that all fall into the same bucket (two transactions, read by a partition scan).
    const same: string[] = [];
    for (let i = 0; same.length < 150; i++) if (bucketOf(`s${i}`) === '00') same.push(`s${i}`);
    const c1 = newCrawlId(Date.now() - 1000);
    await seedSettled(ledger, conn, c1, 1, same);
    const rows = await ledger.getItems(conn, same); // dense bucket: read by partition scan
    expect(rows.size).toBe(150);
    const c2 = newCrawlId();
    const r = await ledger.markSeen(conn, c2, 2, [...rows.values()]);
    expect(r.seen).toBe(150);
    expect((await ledger.counts(conn, c2)).unchanged).toBe(150);
  });

  it('seenWriter writes a bucket as soon as it holds 99 rows and the rest on flush', async () => {
    const { ledger } = await freshState();
    const conn = connectionId();
    const same: string[] = [];
    for (let i = 0; same.length < 130; i++) if (bucketOf(`w${i}`) === '7f') same.push(`w${i}`);
    const c1 = newCrawlId(Date.now() - 1000);
    await seedSettled(ledger, conn, c1, 1, same);
    const c2 = newCrawlId();
    const writer = ledger.seenWriter(conn, c2, 2);
    const rows = await ledger.getItems(conn, same);
    const list = same.map((id) => rows.get(id)!);
    await writer.add(list.slice(0, 60));
    expect(writer.buffered).toBe(60);
    expect((await ledger.counts(conn, c2)).unchanged).toBe(0); // nothing written yet
    await writer.add(list.slice(60, 120));
    expect(writer.buffered).toBe(21); // 99 went out in one transaction
    expect((await ledger.counts(conn, c2)).unchanged).toBe(99);
    await writer.add(list.slice(120));
    expect(await writer.flush()).toEqual({ seen: 130, already: 0, refused: [] });
    expect((await ledger.counts(conn, c2)).unchanged).toBe(130);
  });

  it('listUnseen returns exactly the settled items of older generations', async () => {
    const { ledger } = await freshState();
    const conn = connectionId();
    const other = connectionId();
    const c1 = newCrawlId(Date.now() - 2000);
    const all = ids(120);
    await seedSettled(ledger, conn, c1, 1, all);
    await seedSettled(ledger, other, c1, 1, ['x1', 'x2']);
    const c2 = newCrawlId();
    const seenIds = all.filter((_, i) => i % 3 !== 0);
    const rows = await ledger.getItems(conn, seenIds);
    await ledger.markSeen(conn, c2, 2, [...rows.values()]);
    // A pending item of generation 1 is not a sweep candidate (its message has not settled).
    await ledger.markPending(conn, c2, 1, [{ itemId: 'it0', hash: 'z', op: 'upsert' }]);
    const unseen: LedgerItem[] = [];
    for await (const r of ledger.listUnseen(conn, 2)) unseen.push(r);
    const expected = all.filter((_, i) => i % 3 === 0 && i !== 0).sort();
    expect(unseen.map((u) => u.itemId).sort()).toEqual(expected);
    for (const u of unseen) expect(u.generation).toBe(1);
    const count = await ledger.countItems(conn);
    expect(count.total).toBe(120);
    expect(count.byState).toMatchObject({ settled: 119, pending: 1 });
  });

  it('getItems mixes point reads and partition scans and omits absent ids', async () => {
    const { ledger } = await freshState();
    const conn = connectionId();
    const c = newCrawlId();
    await seedSettled(ledger, conn, c, 1, ['a1', 'a2', 'a3']);
    const got = await ledger.getItems(conn, ['a1', 'a3', 'missing1']);
    expect([...got.keys()].sort()).toEqual(['a1', 'a3']);
    await expect(ledger.getItems(conn, ['bad id'])).rejects.toThrow(/alphanumerics/);
  });
});

describe('ledger jobs and counters', () => {
  it('the table service rejects a whole transaction when one ETag is stale (the basis of exact counts)', async () => {
    const { ledger } = await freshState();
    const t = ledger.items;
    await t.createEntity({ partitionKey: 'p', rowKey: 'a', n: 1 });
    await t.createEntity({ partitionKey: 'p', rowKey: 'b', n: 1 });
    const a = await t.getEntity('p', 'a');
    const b = await t.getEntity('p', 'b');
    await t.updateEntity({ partitionKey: 'p', rowKey: 'b', n: 2 }, 'Replace', { etag: b.etag });
    await expect(
      t.submitTransaction([
        ['update', { partitionKey: 'p', rowKey: 'a', n: 10 }, 'Replace', { etag: a.etag }],
        ['update', { partitionKey: 'p', rowKey: 'b', n: 10 }, 'Replace', { etag: b.etag }],
      ]),
    ).rejects.toMatchObject({ statusCode: 412 });
    expect((await t.getEntity('p', 'a')).n).toBe(1); // atomic: the valid half was not applied either
  });

  it('50 concurrent counter increments add up exactly (sharded job counters)', async () => {
    const { ledger } = await freshState();
    const conn = connectionId();
    const job = await ledger.createJob({ connectionId: conn, mode: 'full', trigger: 'cli', generation: 1 });
    await Promise.all(
      Array.from({ length: 50 }, (_, i) => ledger.addCounts(conn, job.crawlId, { enumerated: 2, rejected: i % 2 })),
    );
    const counts = await ledger.counts(conn, job.crawlId);
    expect(counts.enumerated).toBe(100);
    expect(counts.rejected).toBe(25);
  });

  it('50 concurrent settles (many sharing buckets) are each counted exactly once; outstanding reaches 0', async () => {
    const { ledger } = await freshState();
    const conn = connectionId();
    const c = newCrawlId();
    // 50 items in only 4 buckets so settles really contend on the same counter rows.
    const items: string[] = [];
    for (let i = 0; items.length < 50; i++)
      if (['00', '01', '02', '03'].includes(bucketOf(`k${i}`))) items.push(`k${i}`);
    await ledger.markPending(
      conn,
      c,
      1,
      items.map((itemId) => ({ itemId, hash: 'h', op: 'upsert' as const })),
    );
    expect(await ledger.outstanding(conn, c)).toBe(50);
    const results = await Promise.all(
      items.map((id, i) =>
        ledger.settle(conn, id, {
          crawlId: c,
          hash: 'h',
          state: i % 10 === 0 ? 'deadLettered' : 'settled',
          error: 'e',
        }),
      ),
    );
    expect(results.every((r) => r.outcome === 'applied' && r.counted)).toBe(true);
    // and 50 concurrent redeliveries count nothing twice
    await Promise.all(
      items.map((id) => ledger.settle(conn, id, { crawlId: c, hash: 'h', state: 'deadLettered', error: 'e' })),
    );
    const counts = await ledger.counts(conn, c);
    expect(counts).toMatchObject({ enqueued: 50, ingested: 45, deadLettered: 5 });
    expect(outstandingOf(counts)).toBe(0);
    expect(await ledger.getItem(conn, items[0]!)).toMatchObject({
      state: 'deadLettered',
      failedHash: 'h',
      lastError: 'e',
    });
    // a dead letter of this crawl that later succeeds (a replay) records what Graph holds, without counting again
    const replayed = await ledger.settle(conn, items[0]!, { crawlId: c, hash: 'h', state: 'settled' });
    expect(replayed).toMatchObject({ outcome: 'applied', counted: false });
    expect(await ledger.getItem(conn, items[0]!)).toMatchObject({ state: 'settled', hash: 'h' });
    expect(await ledger.counts(conn, c)).toMatchObject({ ingested: 45, deadLettered: 5 });
  });

  it('jobs list newest first, update with ETags, and fold counts on finish', async () => {
    const { ledger } = await freshState();
    const conn = connectionId();
    const j1 = await ledger.createJob({
      connectionId: conn,
      mode: 'full',
      trigger: 'timer',
      generation: 1,
      crawlId: newCrawlId(Date.now() - 5000),
    });
    const j2 = await ledger.createJob({
      connectionId: conn,
      mode: 'incremental',
      trigger: 'http',
      generation: 1,
      cursorBefore: 'c0',
    });
    await ledger.addCounts(conn, j2.crawlId, { enumerated: 3 });
    const listed = await ledger.listJobs(conn, 10);
    expect(listed.map((j) => j.crawlId)).toEqual([j2.crawlId, j1.crawlId]);
    expect(listed[0]!.counts.enumerated).toBe(3);
    // Concurrent updates through the retry loop both land.
    await Promise.all([
      ledger.updateJob(conn, j2.crawlId, () => ({ status: 'enumerated', enumeratedAt: new Date().toISOString() })),
      ledger.heartbeat(conn, j2.crawlId),
    ]);
    const mid = await ledger.getJob(conn, j2.crawlId);
    expect(mid).toMatchObject({ status: 'enumerated', cursorBefore: 'c0', countsFinal: false });
    expect(mid!.enumeratedAt).toBeTruthy();
    const done = await ledger.finishJob(conn, j2.crawlId, 'completed', { cursorAfter: 'c1' });
    expect(done).toMatchObject({ status: 'completed', countsFinal: true, cursorAfter: 'c1' });
    const reread = await ledger.getJob(conn, j2.crawlId);
    expect(reread!.counts.enumerated).toBe(3);
    expect(await ledger.listJobs(conn, 1)).toHaveLength(1);
    expect(await ledger.getJob(conn, 'nope')).toBeUndefined();
  });

  it('lists unfinished jobs whose heartbeat is stale', async () => {
    let now = Date.now();
    const { ledger } = await freshState({ now: () => now });
    const conn = connectionId();
    const dead = await ledger.createJob({ connectionId: conn, mode: 'full', trigger: 'timer', generation: 1 });
    const done = await ledger.createJob({ connectionId: conn, mode: 'full', trigger: 'timer', generation: 1 });
    await ledger.finishJob(conn, done.crawlId, 'completed');
    now += 10 * 60_000;
    const alive = await ledger.createJob({ connectionId: conn, mode: 'incremental', trigger: 'http', generation: 1 });
    const stale = await ledger.listStaleJobs(conn, 5 * 60_000);
    expect(stale.map((j) => j.crawlId)).toEqual([dead.crawlId]);
    expect(stale.map((j) => j.crawlId)).not.toContain(alive.crawlId);
  });

  it('commits cursors with ETag concurrency', async () => {
    const { ledger } = await freshState();
    const conn = connectionId();
    expect(await ledger.getCursor(conn)).toBeUndefined();
    const first = await ledger.commitCursor(conn, '2024-01-01T00:00:00Z', undefined);
    await expect(ledger.commitCursor(conn, 'again', undefined)).rejects.toBeInstanceOf(ConcurrencyError);
    const read = await ledger.getCursor(conn);
    expect(read).toMatchObject({ value: '2024-01-01T00:00:00Z', etag: first.etag });
    await ledger.commitCursor(conn, 'v2', read!.etag);
    await expect(ledger.commitCursor(conn, 'v3', read!.etag)).rejects.toThrow(/changed since it was read/);
    expect((await ledger.getCursor(conn))!.value).toBe('v2');
  });
});

describe('dead letters', () => {
  it('adds, lists by crawl, stores large bodies as blobs, and removes', async () => {
    const { deadLetters } = await freshState();
    const conn = connectionId();
    const c1 = newCrawlId(Date.now() - 1000);
    const c2 = newCrawlId();
    await deadLetters.add({
      connectionId: conn,
      itemId: 'i1',
      crawlId: c1,
      op: 'upsert',
      status: 400,
      code: 'InvalidRequest',
      requestId: 'r1',
      clientRequestId: 'cr1',
      message: 'bad property',
      attempts: 1,
      body: '{"v":1}',
    });
    const bigKey = await deadLetters.add({
      connectionId: conn,
      itemId: 'i2',
      crawlId: c2,
      op: 'upsert',
      status: 413,
      message: 'too big',
      body: 'b'.repeat(40_000),
    });
    await deadLetters.addRejection({
      connectionId: conn,
      crawlId: c2,
      recordKey: 'row 17/x',
      reasons: ['missing title', 'bad date'],
    });
    const all = [];
    for await (const d of deadLetters.list(conn)) all.push(d);
    expect(all).toHaveLength(3);
    const ofC2 = [];
    for await (const d of deadLetters.list(conn, { crawlId: c2 })) ofC2.push(d);
    expect(ofC2.map((d) => d.op).sort()).toEqual(['reject', 'upsert']);
    const rej = ofC2.find((d) => d.op === 'reject')!;
    expect(rej).toMatchObject({ itemId: 'row 17/x', reasons: ['missing title', 'bad date'] });
    const big = (await deadLetters.get(conn, bigKey))!;
    expect(big.bodyBlob).toBeTruthy();
    expect(await deadLetters.body(big)).toBe('b'.repeat(40_000));
    const first = all.find((d) => d.itemId === 'i1')!;
    expect(first).toMatchObject({
      status: 400,
      code: 'InvalidRequest',
      requestId: 'r1',
      clientRequestId: 'cr1',
      attempts: 1,
      body: '{"v":1}',
    });
    expect(await deadLetters.remove(conn, bigKey)).toBe(true);
    expect(await deadLetters.remove(conn, bigKey)).toBe(false);
    expect(await deadLetters.get(conn, bigKey)).toBeUndefined();
  });
});
