/**
 * Regression class: a stale queue message (older crawl, redelivery, superseded operation) overwriting a newer
 * ledger state. Every case here runs against Azurite with real ETag-conditional table transactions.
 */
import { describe, expect, it } from 'vitest';
import { newCrawlId } from '../../src/state/ledger.js';
import { connectionId, freshState } from './helpers.js';

describe('settle never lets an older write overwrite a newer one', () => {
  it('a message of an older crawl arriving after a newer crawl settled is ignored', async () => {
    const { ledger } = await freshState();
    const conn = connectionId();
    const older = newCrawlId(Date.now() - 60_000);
    const newer = newCrawlId(Date.now());
    await ledger.markPending(conn, older, 1, [{ itemId: 'doc1', hash: 'h-old', op: 'upsert' }]);
    await ledger.markPending(conn, newer, 2, [{ itemId: 'doc1', hash: 'h-new', op: 'upsert' }]);
    const n = await ledger.settle(conn, 'doc1', { crawlId: newer, hash: 'h-new', state: 'settled', generation: 2 });
    expect(n).toMatchObject({ outcome: 'applied', counted: true });
    const o = await ledger.settle(conn, 'doc1', { crawlId: older, hash: 'h-old', state: 'settled', generation: 1 });
    expect(o.outcome).toBe('stale');
    const row = await ledger.getItem(conn, 'doc1');
    expect(row).toMatchObject({ hash: 'h-new', state: 'settled', settledCrawlId: newer, generation: 2 });
    // Accounting: the older crawl's operation was superseded, so neither crawl has anything outstanding.
    expect(await ledger.outstanding(conn, newer)).toBe(0);
    expect(await ledger.outstanding(conn, older)).toBe(0);
    expect((await ledger.counts(conn, older)).superseded).toBe(1);
  });

  it('a superseded message arriving before the newer one settles does not settle the item', async () => {
    const { ledger } = await freshState();
    const conn = connectionId();
    const a = newCrawlId(Date.now() - 1000);
    const b = newCrawlId(Date.now());
    await ledger.markPending(conn, a, 1, [{ itemId: 'doc2', hash: 'ha', op: 'upsert' }]);
    await ledger.markPending(conn, b, 1, [{ itemId: 'doc2', hash: 'hb', op: 'delete' }]);
    expect((await ledger.settle(conn, 'doc2', { crawlId: a, hash: 'ha', state: 'settled' })).outcome).toBe('stale');
    expect(await ledger.getItem(conn, 'doc2')).toMatchObject({ state: 'deleting', pendingCrawlId: b });
    expect(await ledger.outstanding(conn, b)).toBe(1);
    expect((await ledger.settle(conn, 'doc2', { crawlId: b, hash: 'hb', state: 'deleted' })).outcome).toBe('applied');
    expect(await ledger.getItem(conn, 'doc2')).toMatchObject({ state: 'deleted', hash: '' });
    expect(await ledger.outstanding(conn, b)).toBe(0);
  });

  it('a redelivered message is a duplicate and is counted once', async () => {
    const { ledger } = await freshState();
    const conn = connectionId();
    const c = newCrawlId();
    await ledger.markPending(conn, c, 1, [{ itemId: 'doc3', hash: 'h', op: 'upsert' }]);
    // Re-marking by the same crawl (crawler retry) does not count twice either.
    expect(await ledger.markPending(conn, c, 1, [{ itemId: 'doc3', hash: 'h', op: 'upsert' }])).toEqual({
      marked: 0,
      already: 1,
    });
    expect((await ledger.settle(conn, 'doc3', { crawlId: c, hash: 'h', state: 'settled' })).outcome).toBe('applied');
    expect((await ledger.settle(conn, 'doc3', { crawlId: c, hash: 'h', state: 'settled' })).outcome).toBe('duplicate');
    const counts = await ledger.counts(conn, c);
    expect(counts).toMatchObject({ enqueued: 1, ingested: 1 });
  });

  it('concurrent settles of an older and a newer crawl end with the newer state, whatever the order', async () => {
    const { ledger } = await freshState();
    const conn = connectionId();
    for (let round = 0; round < 6; round++) {
      const id = `race${round}`;
      const older = newCrawlId(Date.now() - 5000);
      const newer = newCrawlId(Date.now());
      await ledger.markPending(conn, older, 1, [{ itemId: id, hash: 'old', op: 'upsert' }]);
      await ledger.markPending(conn, newer, 2, [{ itemId: id, hash: 'new', op: 'upsert' }]);
      const settles = [
        () => ledger.settle(conn, id, { crawlId: older, hash: 'old', state: 'settled' }),
        () => ledger.settle(conn, id, { crawlId: newer, hash: 'new', state: 'settled' }),
      ];
      if (round % 2) settles.reverse();
      await Promise.all(settles.map((f) => f()));
      expect(await ledger.getItem(conn, id)).toMatchObject({ hash: 'new', settledCrawlId: newer });
    }
  });

  it('a settle from an older crawl without a pending mark (e.g. a replay) does not overwrite a newer settle', async () => {
    const { ledger } = await freshState();
    const conn = connectionId();
    const older = newCrawlId(Date.now() - 10_000);
    const newer = newCrawlId(Date.now());
    await ledger.settle(conn, 'doc4', { crawlId: newer, hash: 'n', state: 'settled' });
    expect(
      (await ledger.settle(conn, 'doc4', { crawlId: older, hash: 'o', state: 'deadLettered', error: 'x' })).outcome,
    ).toBe('stale');
    expect(await ledger.getItem(conn, 'doc4')).toMatchObject({ hash: 'n', state: 'settled' });
  });
});
