/**
 * Invariant 3: the watermark never passes an item that has not settled. It is taken before enumerating and
 * committed only when every operation of the crawl settled; a failed incremental crawl never moves it.
 * Bug class prevented: a watermark committed at the end of enumeration (or after a failure) while an item is
 * still throttled — if that item then fails, the next incremental crawl filters it out and it is lost.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LocalCrawlResult } from '../../src/local/crawl-locally.js';
import { startStack, type Stack } from '../support/stack.js';
import { addFault, recs, restSourceDefinition, sleep, startRestSource, type RestSourceServer } from './helpers.js';

let stack: Stack;
let rest: RestSourceServer;
const records = recs(20);
const slowId = String(records[4]!.ticketId);

async function cursor(): Promise<string | undefined> {
  return (await stack.rt.pipeline.state.cursors.get(stack.rt.pipeline.connectionId))?.value;
}

/**
 * Run an incremental crawl while `slowId`'s PUT is throttled (three 429s, Retry-After 1 s), sampling the cursor
 * while the item is pending.
 */
async function throttledIncremental(): Promise<{
  result: LocalCrawlResult;
  before: string | undefined;
  pendingSamples: (string | undefined)[];
}> {
  await addFault(stack, {
    match: { method: 'PUT', route: 'item', itemId: slowId },
    action: 'status',
    status: 429,
    retryAfter: 1,
    count: 3,
  });
  const before = await cursor();
  let done = false;
  const running = stack.crawl({ mode: 'incremental' }).finally(() => (done = true));
  const pendingSamples: (string | undefined)[] = [];
  const { items } = stack.rt.pipeline.state;
  while (!done) {
    const row = await items.getItem(stack.rt.pipeline.connectionId, slowId);
    const value = await cursor();
    if (row?.state === 'pending') pendingSamples.push(value);
    await sleep(100);
  }
  return { result: await running, before, pendingSamples };
}

beforeAll(async () => {
  rest = await startRestSource([...records]);
  stack = await startStack({
    editDefinition: (def) => {
      def.source = restSourceDefinition(rest.base, {
        incremental: { query: { filter: 'modified ge {cursor}' }, overlapSeconds: 0 },
      });
    },
  });
}, 60_000);
afterAll(async () => {
  await stack?.close();
  await rest?.close();
});

describe('the watermark moves only after the crawl settled', () => {
  let first: string;

  it('first incremental crawl: no cursor while an item is throttled; then the value taken before enumerating', async () => {
    const t0 = Date.now();
    const { result, before, pendingSamples } = await throttledIncremental();
    expect(before).toBeUndefined();
    expect(result.job?.status, result.job?.error).toBe('completed');
    expect(result.job!.counts.ingested).toBe(records.length);
    expect(pendingSamples.length).toBeGreaterThan(3); // the item really was outstanding for a while
    expect(new Set(pendingSamples)).toEqual(new Set([undefined]));
    first = (await cursor())!;
    expect(first).toBe(result.job!.cursorAfter);
    // Taken before the source was read: not later than its first request (overlap 0), not before the crawl.
    expect(Date.parse(first)).toBeGreaterThanOrEqual(t0 - 1000);
    expect(Date.parse(first)).toBeLessThanOrEqual(rest.times[0]!);
    expect(rest.queries[0]!.filter).toBeUndefined();
  });

  it('next incremental crawl reads from the cursor; the cursor holds while an item is outstanding', async () => {
    rest.records = records.map((r) =>
      String(r.ticketId) === slowId ? { ...r, title: `${String(r.title)} (edited)` } : r,
    );
    rest.queries.length = 0;
    rest.times.length = 0;
    const { result, before, pendingSamples } = await throttledIncremental();
    expect(before).toBe(first);
    expect(rest.queries[0]!.filter).toBe(`modified ge ${first}`);
    expect(result.job?.status, result.job?.error).toBe('completed');
    expect(result.job!.counts.ingested).toBe(1);
    expect(pendingSamples.length).toBeGreaterThan(3);
    expect(new Set(pendingSamples)).toEqual(new Set([first]));
    const second = await cursor();
    expect(second).toBe(result.job!.cursorAfter);
    expect(Date.parse(second!)).toBeGreaterThan(Date.parse(first));
    first = second!;
  });

  it('a failing incremental crawl never moves the watermark', async () => {
    rest.failPage = { page: 2, status: 500 };
    const { job } = await stack.crawl({ mode: 'incremental' });
    rest.failPage = undefined;
    expect(job?.status).toBe('failed');
    expect(job?.error).toMatch(/watermark was not moved/);
    expect(await cursor()).toBe(first);
  });
});
