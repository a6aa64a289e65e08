/**
 * A recrawl of unchanged items must be cheap: getItems + markSeen batch by bucket partition.
 * Default size (3 000) is small to keep the suite fast; STATE_BENCH_ITEMS=100000 measures the 100k case.
 */
import { describe, expect, it } from 'vitest';
import type { TransactionAction } from '@azure/data-tables';
import { ITEM_ROW_VERSION, Ledger, newCrawlId } from '../../src/state/ledger.js';
import { chunk, mapLimit } from '../../src/state/util.js';
import { connectionId, freshState } from './helpers.js';

const N = Number(process.env.STATE_BENCH_ITEMS ?? 3000);

async function seed(ledger: Ledger, conn: string, c1: string, ids: string[]): Promise<number> {
  // Seed settled rows directly (the shape settle writes), one transaction per ≤100 rows of a bucket.
  const byPk = new Map<string, string[]>();
  for (const id of ids) {
    const pk = Ledger.partitionOf(conn, id);
    byPk.set(pk, [...(byPk.get(pk) ?? []), id]);
  }
  const batches = [...byPk].flatMap(([pk, list]) => chunk(list, 100).map((c) => [pk, c] as const));
  const at = new Date().toISOString();
  const tSeed = Date.now();
  await mapLimit(batches, 16, async ([pk, list]) => {
    const actions: TransactionAction[] = list.map((id) => [
      'create',
      {
        partitionKey: pk,
        rowKey: id,
        hash: `h${id}`,
        generation: 1,
        lastCrawlId: c1,
        settledCrawlId: c1,
        state: 'settled',
        updatedAt: at,
        version: ITEM_ROW_VERSION,
      },
    ]);
    await ledger.items.submitTransaction(actions);
  });
  return Date.now() - tSeed;
}

describe('recrawl of unchanged items', () => {
  it(`marks ${N} unchanged items seen in bucket-batched transactions`, { timeout: 600_000 }, async () => {
    const { ledger } = await freshState({});
    const conn = connectionId();
    const c1 = newCrawlId(Date.now() - 60_000);
    const ids = Array.from({ length: N }, (_, i) => `rec${i}`);
    const seedMs = await seed(ledger, conn, c1, ids);
    const c2 = newCrawlId();
    const t0 = Date.now();
    const rows = await ledger.getItems(conn, ids);
    const tRead = Date.now() - t0;
    const r = await ledger.markSeen(conn, c2, 2, [...rows.values()]);
    const tAll = Date.now() - t0;
    console.log(
      `recrawl ${N} unchanged (seeding by plain create transactions: ${seedMs} ms): getItems ${tRead} ms, markSeen ${tAll - tRead} ms, total ${tAll} ms (${Math.round((N / tAll) * 1000)} items/s)`,
    );
    expect(rows.size).toBe(N);
    expect(r.seen).toBe(N);
    expect((await ledger.counts(conn, c2)).unchanged).toBe(N);
    let unseen = 0;
    for await (const _ of ledger.listUnseen(conn, 2)) unseen++;
    expect(unseen).toBe(0);
  });

  it(
    'with crawler-sized pages (200), seenWriter fills whole bucket transactions across pages',
    { timeout: 600_000 },
    async () => {
      const { ledger } = await freshState({});
      const conn = connectionId();
      const c1 = newCrawlId(Date.now() - 60_000);
      const ids = Array.from({ length: N }, (_, i) => `pg${i}`);
      await seed(ledger, conn, c1, ids);
      const c2 = newCrawlId();
      const t0 = Date.now();
      const writer = ledger.seenWriter(conn, c2, 2);
      let maxBuffered = 0;
      for (const page of chunk(ids, 200)) {
        const rows = await ledger.getItems(conn, page);
        expect(await writer.add([...rows.values()])).toEqual([]);
        maxBuffered = Math.max(maxBuffered, writer.buffered);
        expect(writer.buffered).toBeLessThanOrEqual(256 * 98);
      }
      expect(maxBuffered).toBeGreaterThan(0);
      const total = await writer.flush();
      const ms = Date.now() - t0;
      console.log(
        `recrawl ${N} unchanged in pages of 200 with seenWriter: ${ms} ms (${Math.round((N / ms) * 1000)} items/s)`,
      );
      expect(total).toEqual({ seen: N, already: 0, refused: [] });
      expect(writer.buffered).toBe(0);
      expect((await ledger.counts(conn, c2)).unchanged).toBe(N);
      let unseen = 0;
      for await (const _ of ledger.listUnseen(conn, 2)) unseen++;
      expect(unseen).toBe(0);
    },
  );
});
