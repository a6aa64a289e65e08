/**
 * Invariant 8: Graph ends holding the newest version of every item, whatever order operations land in; the ledger
 * never claims a hash Graph does not hold.
 * Bug class prevented: a stale ACL winning for good. An older crawl's write of an item (adele may see it) that is
 * still in flight — or arrives late — while a newer crawl writes and settles the item's new ACL (megan may see it)
 * used to land last and stay: Graph showed the item to adele, the ledger said "megan's version", and every later
 * crawl counted the item unchanged.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { failCrawl, startCrawl } from '../../src/crawl/index.js';
import { ingestItem, type IngestOutcome } from '../../src/ingest/ingest.js';
import { drainCrawl } from '../../src/local/crawl-locally.js';
import { startStack, type Stack } from '../support/stack.js';
import { addFault, jsonl, rec, recs, searchAs, sleep } from './helpers.js';

let stack: Stack;
const records = recs(6, 'ACL');
const target = 3;
const targetId = String(records[target]!.ticketId);
const word = `zqacl${target}`;

async function who(): Promise<{ adele: boolean; megan: boolean }> {
  return {
    adele: (await searchAs(stack, 'adele@contoso.com', word)).includes(targetId),
    megan: (await searchAs(stack, 'megan@contoso.com', word)).includes(targetId),
  };
}

/** Start a crawl and take its one operation for `targetId` off the queue by hand (the rest drain normally). */
async function crawlHoldingTarget(): Promise<{ crawlId: string; payload: string; messageId: string }> {
  const { pipeline } = stack.rt;
  const started = await startCrawl(pipeline, { mode: 'full', trigger: 'cli' });
  if (started.status !== 'started') throw new Error('crawl did not start');
  // Run the enumeration only (no item worker), then pick the target's message.
  for (let i = 0; i < 100; i++) {
    const control = await pipeline.control.receive(1, 30_000);
    for (const m of control) {
      if (m.message?.kind === 'crawl') {
        const { runSlice } = await import('../../src/crawl/enumerate.js');
        await runSlice(pipeline, m.message.crawlId, { slice: m.message.slice });
      }
      await pipeline.control.delete(m);
    }
    const job = await pipeline.state.jobs.get(pipeline.connectionId, started.crawlId);
    if (job?.status !== 'running') break;
    await sleep(50);
  }
  for (let i = 0; i < 100; i++) {
    for (const m of await pipeline.state.queue.receive(32, 600_000)) {
      if (m.message?.itemId === targetId && m.message.crawlId === started.crawlId) {
        return { crawlId: started.crawlId, payload: m.text, messageId: m.messageId };
      }
      await pipeline.state.queue.updateVisibility(m, 0);
    }
    await sleep(50);
  }
  throw new Error('the target operation was not found on the queue');
}

beforeAll(async () => {
  stack = await startStack({ records: jsonl(records), settings: { fenceTtlMs: 60_000 } });
  const first = await stack.crawl({ mode: 'full' });
  expect(first.job?.status, first.job?.error).toBe('completed');
  await stack.takeWrites();
}, 90_000);
afterAll(async () => stack?.close());

describe('no stale ACL after a race', () => {
  it("an older crawl's write still in flight when a newer crawl writes the item: Graph ends with the newer ACL", async () => {
    const { pipeline } = stack.rt;
    // Crawl A: the target is restricted to adele (a change, so A sends it).
    records[target] = rec(target, { allowedUsers: ['adele@contoso.com'], description: 'Version A.' }, 'ACL');
    await stack.writeRecords(jsonl(records));
    const a = await crawlHoldingTarget();
    // A's PUT reaches Graph and hangs there for 6 s (Graph applies it only after the wait).
    await addFault(stack, { match: { method: 'PUT', itemId: targetId }, action: 'delay', ms: 6_000, count: 1 });
    const aOutcome: Promise<IngestOutcome> = ingestItem(pipeline, {
      payload: a.payload,
      messageId: a.messageId,
      dequeueCount: 1,
    });
    await sleep(1_000);
    // A fails while its write is in flight; the connection is free for B.
    await failCrawl(pipeline, a.crawlId, 'test: crawl A fails while its write is in flight');
    // Crawl B: megan now, and only megan.
    records[target] = rec(target, { allowedUsers: ['megan@contoso.com'], description: 'Version B.' }, 'ACL');
    await stack.writeRecords(jsonl(records));
    const b = await startCrawl(pipeline, { mode: 'full', trigger: 'cli' });
    expect(b.status).toBe('started');
    const bDone = await drainCrawl(pipeline, (b as { crawlId: string }).crawlId, {
      concurrency: 4,
      pollMs: 50,
      visibilityTimeoutMs: 30_000,
    });
    expect(bDone.job?.status, bDone.job?.error).toBe('completed');
    expect(await aOutcome).toMatchObject({ outcome: 'ingested' });
    // Whatever landed when, Graph holds B's version: megan sees the item, adele does not.
    expect(await who()).toEqual({ adele: false, megan: true });
    const stored = await stack.admin<{ content: { value: string } }>(
      `connections/${stack.rt.definition.connection.id}/items/${targetId}`,
    );
    expect(stored.content.value).toMatch(/Version B/);
    // The ledger claims B's hash, and Graph holds it: a crawl of the same data sends nothing.
    const c = await stack.crawl({ mode: 'full' });
    expect(c.job?.status, c.job?.error).toBe('completed');
    expect(c.job!.counts.unchanged).toBe(records.length);
    await stack.takeWrites();
  }, 120_000);

  it("an older crawl's operation delivered after a newer crawl settled the item never reaches Graph", async () => {
    const { pipeline } = stack.rt;
    records[target] = rec(target, { allowedUsers: ['adele@contoso.com'], description: 'Version C.' }, 'ACL');
    await stack.writeRecords(jsonl(records));
    const a = await crawlHoldingTarget();
    await failCrawl(pipeline, a.crawlId, 'test: crawl A fails with its operation still queued');
    records[target] = rec(target, { allowedUsers: ['megan@contoso.com'], description: 'Version D.' }, 'ACL');
    await stack.writeRecords(jsonl(records));
    const b = await stack.crawl({ mode: 'full' });
    expect(b.job?.status, b.job?.error).toBe('completed');
    await stack.takeWrites();
    // A's message arrives late (a redelivery, a stalled worker): superseded at the fence, no write.
    const late = await ingestItem(pipeline, { payload: a.payload, messageId: a.messageId, dequeueCount: 2 });
    expect(late.outcome).toBe('superseded');
    expect(await stack.takeWrites()).toEqual({ puts: 0, deletes: 0, throttled: 0 });
    expect(await who()).toEqual({ adele: false, megan: true });
  }, 120_000);
});
