/**
 * Jobs (the crawl's checkpoint, written with its ETag), cursors, snapshots (written block by block, loaded as
 * 16 bytes an item) and dead letters (one entry per item and reason) against Azurite.
 */
import { describe, expect, it } from 'vitest';
import { ConcurrencyError } from '../../src/state/cursors.js';
import { emptyCheckpoint, newCrawlId } from '../../src/state/jobs.js';
import { hashKeyOf, itemKeyOf } from '../../src/state/keys.js';
import { Snapshot } from '../../src/state/snapshot.js';
import { connectionId, freshState } from './helpers.js';

describe('jobs', () => {
  it('round-trips a checkpoint (position, counts, seen delta) and refuses a write from a stale copy', async () => {
    const { jobs } = await freshState();
    const conn = connectionId();
    const crawlId = newCrawlId();
    const job = await jobs.create({ connectionId: conn, crawlId, mode: 'full', trigger: 'cli', generation: 3 });
    const delta = new Uint8Array(new Uint32Array([5, 9, 4_000_000]).buffer);
    const next = await jobs.replace({
      ...job,
      checkpoint: {
        ...emptyCheckpoint(),
        pages: 4,
        position: { offset: 123456, line: 4001 },
        progress: { done: 123456, total: 999999, unit: 'bytes' },
        enumerated: 4000,
        unchanged: 3990,
        rejected: 2,
        enqueued: 8,
        seenDelta: delta,
      },
    });
    const read = (await jobs.get(conn, crawlId))!;
    expect(read.checkpoint).toMatchObject({ pages: 4, position: { offset: 123456, line: 4001 }, enumerated: 4000 });
    expect([...new Uint32Array(new Uint8Array(read.checkpoint.seenDelta!).buffer)]).toEqual([5, 9, 4_000_000]);
    // The copy read before the last write is stale: a second runner of the same slice loses.
    await expect(jobs.replace({ ...job, status: 'enumerated' })).rejects.toBeInstanceOf(ConcurrencyError);
    await expect(jobs.replace({ ...next, status: 'enumerated' })).resolves.toMatchObject({ status: 'enumerated' });
  });

  it('lists newest first and finds unfinished jobs with a stale heartbeat', async () => {
    let now = Date.now();
    const { jobs } = await freshState({ now: () => now });
    const conn = connectionId();
    const a = newCrawlId(now - 5000);
    const b = newCrawlId(now);
    await jobs.create({ connectionId: conn, crawlId: a, mode: 'full', trigger: 'cli', generation: 1 });
    await jobs.create({ connectionId: conn, crawlId: b, mode: 'incremental', trigger: 'timer', generation: 1 });
    expect((await jobs.list(conn)).map((j) => j.crawlId)).toEqual([b, a]);
    now += 60_000;
    await jobs.heartbeat(conn, b);
    expect((await jobs.listStale(conn, 30_000)).map((j) => j.crawlId)).toEqual([a]);
  });
});

describe('cursors', () => {
  it('commit with ETag concurrency: a second commit from the same read loses', async () => {
    const { cursors } = await freshState();
    const conn = connectionId();
    const first = await cursors.commit(conn, 'v1', undefined);
    await expect(cursors.commit(conn, 'v0', undefined)).rejects.toBeInstanceOf(ConcurrencyError);
    await cursors.commit(conn, 'v2', first.etag);
    await expect(cursors.commit(conn, 'v3', first.etag)).rejects.toBeInstanceOf(ConcurrencyError);
    expect((await cursors.get(conn))!.value).toBe('v2');
  });
});

describe('snapshots', () => {
  it('written in key order block by block, loaded as digests; ids stream in the same order', async () => {
    const { snapshots } = await freshState();
    const conn = connectionId();
    const ids = Array.from({ length: 70_000 }, (_, i) => `Item-${i}`);
    const entries = ids.map((id) => ({ id, k: itemKeyOf(id) })).sort((x, y) => x.k.hi - y.k.hi || x.k.lo - y.k.lo);
    const w = snapshots.writer(conn, 1);
    for (const e of entries) {
      const h = hashKeyOf(`hash-of-${e.id}`);
      await w.add(e.k.hi, e.k.lo, h[0], h[1], e.id);
    }
    const ref = await w.finish();
    expect(ref.count).toBe(70_000);
    await snapshots.commit(conn, ref, undefined);
    const current = (await snapshots.current(conn))!;
    const snap = await snapshots.load(conn, current.ref);
    expect(snap.bytes).toBe(70_000 * 16);
    const k = itemKeyOf('item-123');
    const i = snap.indexOf(k.hi, k.lo);
    expect(i).toBeGreaterThanOrEqual(0);
    expect(snap.holds(i, hashKeyOf('hash-of-Item-123'))).toBe(true);
    expect(snap.holds(i, hashKeyOf('something else'))).toBe(false);
    expect(snap.indexOf(1, 2)).toBe(-1);
    const streamed: string[] = [];
    for await (const id of snapshots.ids(snap)) streamed.push(id);
    expect(streamed).toEqual(entries.map((e) => e.id));
    expect(Snapshot.empty(conn).indexOf(k.hi, k.lo)).toBe(-1);
  });

  it('refuses entries out of order', async () => {
    const { snapshots } = await freshState();
    const w = snapshots.writer(connectionId(), 1);
    await w.add(10, 5, 1, 1, 'a');
    await expect(w.add(10, 5, 1, 1, 'b')).rejects.toThrow(/out of order/);
  });
});

describe('dead letters', () => {
  it('one entry per item and reason: seen again, it takes the latest crawl and counts crawls, not deliveries', async () => {
    const { deadLetters } = await freshState();
    const conn = connectionId();
    const c1 = newCrawlId(Date.now() - 1000);
    const c2 = newCrawlId();
    const reject = (crawlId: string) =>
      deadLetters.addRejection({
        connectionId: conn,
        crawlId,
        recordKey: 'T 0046',
        reasons: ['bad url'],
        position: 'line 4',
      });
    await reject(c1);
    await reject(c1); // the same crawl again (a page read twice): still one crawl
    await reject(c2);
    const big = await deadLetters.add({
      connectionId: conn,
      itemId: 'i2',
      crawlId: c2,
      op: 'upsert',
      status: 413,
      message: 'too big',
      body: 'b'.repeat(40_000),
    });
    await deadLetters.add({
      connectionId: conn,
      itemId: 'i2',
      crawlId: c2,
      op: 'upsert',
      status: 413,
      message: 'too big',
      body: 'b'.repeat(40_000),
    });
    const all = [];
    for await (const d of deadLetters.list(conn)) all.push(d);
    expect(all).toHaveLength(2);
    expect(all.find((d) => d.op === 'reject')).toMatchObject({
      itemId: 'T 0046',
      crawlId: c2,
      count: 2,
      position: 'line 4',
    });
    const stored = (await deadLetters.get(conn, big))!;
    expect(stored.count).toBe(1);
    expect(await deadLetters.body(stored)).toBe('b'.repeat(40_000));
    // A crawl that no longer produces a rejection removes it.
    const c3 = newCrawlId(Date.now() + 1000);
    expect(await deadLetters.pruneRejections(conn, c3)).toBe(1);
    const left = [];
    for await (const d of deadLetters.list(conn)) left.push(d);
    expect(left.map((d) => d.op)).toEqual(['upsert']);
  });
});
