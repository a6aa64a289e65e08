/**
 * Earlier versions of the connector sent only `[A-Za-z0-9]` item ids and encoded every other one (`T-0044` →
 * `b32…`); this one keeps `-` and `_`. Upgrading must not look like a source that lost most of its records.
 * Bug class prevented: an id-format change read as "every old id vanished" — a sweep refused by the ratio guard
 * (or, forced, a mass delete followed by a mass re-PUT), old ids left in the index next to the new ones, and
 * URL resolvers that name ids Graph does not hold.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { reconciliationTable } from '../../src/local/run.js';
import { encodeItemIdAlphanumericOnly } from '../../src/mapping/item-id.js';
import type { Mapper } from '../../src/mapping/types.js';
import { startStack, type Stack } from '../support/stack.js';
import { emulatorItems, jsonl, rec, requestLog } from './helpers.js';

let stack: Stack;
// 20 ids the earlier scheme encoded (hyphen, underscore) and 10 it kept as they are.
const records = [
  ...Array.from({ length: 12 }, (_, i) => rec(i, { ticketId: `T-${1000 + i}` })),
  ...Array.from({ length: 8 }, (_, i) => rec(20 + i, { ticketId: `case_${20 + i}` })),
  ...Array.from({ length: 10 }, (_, i) => rec(40 + i, { ticketId: `T${2000 + i}` })),
];
const sourceIds = records.map((r) => String(r.ticketId));
const movedIds = sourceIds.filter((id) => /[-_]/.test(id));

/** The mapper as an earlier connector version ran it: same items, ids in the alphanumeric-only scheme. */
function earlierVersion(mapper: Mapper): Mapper {
  return {
    map(record, context) {
      const r = mapper.map(record, context);
      return r.ok ? { ...r, item: { ...r.item, id: encodeItemIdAlphanumericOnly(r.sourceId) } } : r;
    },
  };
}

async function deletesAndPuts(): Promise<{ deletes: string[]; puts: string[] }> {
  const log = await requestLog(stack);
  await stack.admin('requests', { method: 'DELETE' });
  const ok = log.filter((e) => e.status < 300 && e.itemId);
  return {
    deletes: ok.filter((e) => e.method === 'DELETE').map((e) => e.itemId!),
    puts: ok.filter((e) => e.method === 'PUT').map((e) => e.itemId!),
  };
}

beforeAll(async () => {
  stack = await startStack({ records: jsonl(records) });
  const current = stack.rt.pipeline.mapper;
  stack.rt.pipeline.mapper = earlierVersion(current);
  const first = await stack.crawl({ mode: 'full' });
  stack.rt.pipeline.mapper = current;
  expect(first.job?.status, first.job?.error).toBe('completed');
  expect(first.job!.counts.ingested).toBe(records.length);
  const held = (await emulatorItems(stack)).map((i) => i.id).sort();
  expect(held).toEqual(sourceIds.map(encodeItemIdAlphanumericOnly).sort());
  expect(held.filter((id) => id.startsWith('b32'))).toHaveLength(movedIds.length);
  await stack.admin('requests', { method: 'DELETE' });
}, 90_000);
afterAll(async () => stack?.close());

describe('an item-id format change is a planned move, not a mass deletion', () => {
  it('moves every changed id (old DELETE, new PUT) past the ratio guard, and reports it', async () => {
    const { job } = await stack.crawl({ mode: 'full' });
    expect(job?.status, job?.error).toBe('completed');
    // 20 of 30 ids changed: far over the guard's 10 %, yet nothing was refused and nothing else deleted.
    expect(job!.notes ?? []).not.toContainEqual(expect.stringMatching(/sweep skipped/));
    expect(job!.counts.moved).toBe(movedIds.length);
    expect(job!.counts.unchanged).toBe(records.length - movedIds.length);
    expect(job!.counts.ingested).toBe(movedIds.length);
    // The only deletes are the moved items' old ids: the sweep deleted nothing.
    expect(job!.counts.deleted).toBe(movedIds.length);

    const { deletes, puts } = await deletesAndPuts();
    expect(deletes.sort()).toEqual(movedIds.map(encodeItemIdAlphanumericOnly).sort());
    expect(puts.sort()).toEqual([...movedIds].sort());
    // Graph ends holding exactly the new ids: no old id left beside its new one.
    expect((await emulatorItems(stack)).map((i) => i.id).sort()).toEqual([...sourceIds].sort());

    const report = reconciliationTable(job!, { puts: puts.length, deletes: deletes.length });
    expect(report).toMatch(/moved\s+20\s+ids whose format changed/);
  });

  it('the next crawl finds everything unchanged and writes nothing', async () => {
    const { job } = await stack.crawl({ mode: 'full' });
    expect(job?.status, job?.error).toBe('completed');
    expect(job!.counts.unchanged).toBe(records.length);
    expect(job!.counts.moved).toBe(0);
    const { deletes, puts } = await deletesAndPuts();
    expect(deletes).toEqual([]);
    expect(puts).toEqual([]);
  });
});
