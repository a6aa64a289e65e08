/**
 * An older crawl's operation delivered late (a slow redelivery, a replay) never reaches Graph once a newer
 * crawl settled the same item: Graph keeps the newer content.
 * Bug class prevented: out-of-order queue delivery rolling an item back to old content (or deleting an item
 * a newer crawl re-created).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ExternalItem } from '../../src/config/model.js';
import type { ItemMessage } from '../../src/state/queues/items.js';
import type { IngestOutcome } from '../../src/ingest/ingest.js';
import { runWorker } from '../../src/local/worker.js';
import { startStack, type Stack } from '../support/stack.js';
import { jsonl, recs, requestLog } from './helpers.js';

let stack: Stack;
const records = recs(20);
const target = String(records[6]!.ticketId);
let oldUpsert: ItemMessage;
let oldDelete: ItemMessage;

async function stored(): Promise<ExternalItem & { content: { value: string } }> {
  return stack.admin(`connections/${stack.rt.definition.connection.id}/items/${target}`);
}

async function deliver(msg: ItemMessage): Promise<IngestOutcome[]> {
  const outcomes: IngestOutcome[] = [];
  await stack.rt.pipeline.state.queue.send(msg);
  await runWorker(stack.rt.pipeline, {
    concurrency: 2,
    pollMs: 50,
    visibilityTimeoutMs: 5_000,
    abortSignal: AbortSignal.timeout(15_000),
    stopWhen: () => Promise.resolve(true),
    onOutcome: (o) => outcomes.push(o),
  });
  return outcomes;
}

beforeAll(async () => {
  stack = await startStack({ records: jsonl(records) });
  const first = await stack.crawl({ mode: 'full' });
  expect(first.job?.status, first.job?.error).toBe('completed');
  const { pipeline } = stack.rt;
  const row = (await pipeline.state.items.getItem(pipeline.connectionId, target))!;
  const { id, acl, properties, content } = await stored();
  const envelope = {
    v: 1 as const,
    connectionId: pipeline.connectionId,
    itemId: target,
    crawlId: first.job!.crawlId,
    generation: first.job!.generation,
    hash: row.hash,
    attempt: 0,
  };
  oldUpsert = { ...envelope, op: 'upsert', item: { id, acl, properties, content } };
  oldDelete = { ...envelope, op: 'delete' };

  records[6] = { ...records[6], title: 'Newer title zqnewer', description: 'Newer content.' };
  await stack.writeRecords(jsonl(records));
  const second = await stack.crawl({ mode: 'full' });
  expect(second.job?.status, second.job?.error).toBe('completed');
  expect(second.job!.counts.ingested).toBe(1);
  expect((await stored()).content.value).toMatch(/Newer content/);
  await stack.admin('requests', { method: 'DELETE' });
}, 60_000);
afterAll(async () => stack?.close());

describe('no stale overwrite in Graph', () => {
  it("an older crawl's upsert delivered after a newer crawl settled the item does not reach Graph", async () => {
    const outcomes = await deliver(oldUpsert);
    expect(outcomes.map((o) => o.outcome)).toEqual(['superseded']);
    expect((await requestLog(stack)).filter((e) => e.itemId === target)).toEqual([]);
    const item = await stored();
    expect(item.content.value).toMatch(/Newer content/);
    expect((item.properties as Record<string, unknown>).title).toBe('Newer title zqnewer');
  });

  it("an older crawl's delete delivered late does not delete the newer item", async () => {
    const outcomes = await deliver(oldDelete);
    expect(outcomes.map((o) => o.outcome)).toEqual(['superseded']);
    expect((await requestLog(stack)).filter((e) => e.itemId === target)).toEqual([]);
    expect((await stored()).content.value).toMatch(/Newer content/);
    const { pipeline } = stack.rt;
    expect((await pipeline.state.items.getItem(pipeline.connectionId, target))?.state).toBe('settled');
  });
});
