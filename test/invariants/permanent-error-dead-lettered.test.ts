/**
 * Invariant 1 (the dead-letter bucket): a permanent Graph error (4xx) dead-letters the item with Graph's
 * status, error code, inner code and request id; the crawl still completes, the counts add up, and a replay
 * after the cause is fixed ingests the item.
 * Bug class prevented: one bad item failing (or stalling) the whole crawl, retried forever, or lost without
 * the facts an operator needs to ask Microsoft support about it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { replayDeadLetters } from '../../src/host/status.js';
import { runWorker } from '../../src/local/worker.js';
import { startStack, type Stack } from '../support/stack.js';
import { addFault, deadLetters, emulatorItems, jsonl, rec, recs, requestLog } from './helpers.js';

let stack: Stack;
const records = recs(20);
const badId = String(records[11]!.ticketId);
const extra = rec(500);
const extraId = String(extra.ticketId);

async function replayAndDrain(itemId: string): Promise<void> {
  const result = await replayDeadLetters(stack.rt, { itemIds: [itemId], all: false });
  expect(result).toEqual({ replayed: 1, skipped: [] });
  const { pipeline } = stack.rt;
  const stats = await runWorker(pipeline, {
    concurrency: 4,
    pollMs: 50,
    visibilityTimeoutMs: 5_000,
    abortSignal: AbortSignal.timeout(15_000),
    stopWhen: () => Promise.resolve(true), // as soon as the queues are empty and nothing is in flight
  });
  expect(stats.ingested).toBe(1);
}

beforeAll(async () => {
  stack = await startStack({ records: jsonl(records) });
}, 60_000);
afterAll(async () => stack?.close());

describe('a permanent Graph error is dead-lettered, not fatal', () => {
  it('a 400 on one item: dead letter with status, code and request id; the crawl completes; counts add up', async () => {
    await addFault(stack, {
      match: { method: 'PUT', route: 'item', itemId: badId },
      action: 'status',
      status: 400,
      code: 'InvalidRequest',
      message: 'Property priority in payload has a value that does not match schema.',
      count: 0,
    });
    const { job } = await stack.crawl({ mode: 'full' });
    expect(job?.status, job?.error).toBe('completed');
    const c = job!.counts;
    expect(c.deadLettered).toBe(1);
    expect(c.ingested).toBe(records.length - 1);
    expect(c.enumerated).toBe(c.ingested + c.unchanged + c.rejected + c.deadLettered + c.superseded);

    const refused = (await requestLog(stack)).filter((e) => e.itemId === badId && e.status === 400);
    expect(refused).toHaveLength(1); // permanent: not retried
    const [dl, ...others] = await deadLetters(stack, job!.crawlId);
    expect(others).toEqual([]);
    expect(dl).toMatchObject({ itemId: badId, op: 'upsert', status: 400, code: 'InvalidRequest' });
    expect(dl!.requestId).toBe(refused[0]!.requestId);
    expect(dl!.message).toMatch(/does not match schema/);
    const row = await stack.rt.pipeline.state.items.getItem(stack.rt.pipeline.connectionId, badId);
    expect(row?.state).toBe('deadLettered');
    await stack.takeWrites();
  });

  it('a replay after the fault is cleared ingests the item', async () => {
    await stack.admin('faults', { method: 'DELETE' });
    await replayAndDrain(badId);
    expect((await stack.takeWrites()).puts).toBe(1);
    expect((await emulatorItems(stack)).map((i) => i.id)).toContain(badId);
    expect(await deadLetters(stack)).toEqual([]);
  });

  it("a Graph 400 with an inner code (item quota full → ConnectionLimitExceeded) keeps Graph's inner code", async () => {
    const cid = stack.rt.definition.connection.id;
    await stack.admin(`connections/${cid}`, { method: 'PATCH', body: { itemQuota: records.length } });
    await stack.writeRecords(jsonl([...records, extra]));
    await stack.admin('requests', { method: 'DELETE' });
    const { job } = await stack.crawl({ mode: 'full' });
    expect(job?.status, job?.error).toBe('completed');
    expect(job!.counts.deadLettered).toBe(1);
    const refused = (await requestLog(stack)).filter((e) => e.itemId === extraId && e.status === 400);
    expect(refused).toHaveLength(1);
    const dls = await deadLetters(stack, job!.crawlId);
    expect(dls).toHaveLength(1);
    expect(dls[0]).toMatchObject({
      itemId: extraId,
      status: 400,
      code: 'InvalidRequest',
      innerCode: 'ConnectionLimitExceeded',
    });
    expect(dls[0]!.requestId).toBe(refused[0]!.requestId);

    await stack.admin(`connections/${cid}`, { method: 'PATCH', body: { itemQuota: null, state: 'ready' } });
    await replayAndDrain(extraId);
    expect((await emulatorItems(stack)).map((i) => i.id)).toContain(extraId);
  });

  // Regression (was a bug in src/state/ledger.ts `settle`): the replayed message carries the dead-lettered operation's crawl id, and
  // settle treats "settledCrawlId === crawlId" as a duplicate delivery, so the row stays `deadLettered` (with the
  // hash Graph held before, '' for a new item) although Graph now holds the item. listUnseen only offers
  // `settled` rows to the sweep, so such an item is never deleted from Graph after it leaves the source.
  // Fixed: in settle, let a non-dead-letter outcome replace a `deadLettered` row of the same crawl.
  it('after a replay the ledger says settled, so the sweep can delete the item once it leaves the source', async () => {
    const { pipeline } = stack.rt;
    // extraId was replayed by the previous test and no crawl ran since; now it leaves the source.
    expect((await emulatorItems(stack)).map((i) => i.id)).toContain(extraId);
    await stack.writeRecords(jsonl(records));
    const { job } = await stack.crawl({ mode: 'full', force: true });
    expect(job?.status, job?.error).toBe('completed');
    expect((await emulatorItems(stack)).map((i) => i.id)).not.toContain(extraId);
    expect((await pipeline.state.items.getItem(pipeline.connectionId, extraId))?.state).toBe('deleted');
  });
});
