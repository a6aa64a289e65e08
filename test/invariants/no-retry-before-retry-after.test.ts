/**
 * Invariant 4: no request is retried before its Retry-After.
 * Bug class prevented: a throttled item operation re-sent early (hammering a throttled Graph, which extends
 * the throttling and can get the app blocked), or a throttled item lost instead of re-sent.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStack, type Stack } from '../support/stack.js';
import { addFault, emulatorItems, jsonl, recs, requestLog, type LogEntry } from './helpers.js';

let stack: Stack;
const records = recs(30);

/** For each item, every request after a throttled one must start no sooner than the Retry-After allowed. */
async function checkRetries(method: string): Promise<{ checked: number; early: string[] }> {
  const log = (await requestLog(stack)).filter((e) => e.method === method) as (LogEntry & { durationMs: number })[];
  const byItem = new Map<string, (LogEntry & { durationMs: number })[]>();
  for (const e of log) {
    const list = byItem.get(e.itemId!) ?? [];
    list.push(e);
    byItem.set(e.itemId!, list);
  }
  const early: string[] = [];
  let checked = 0;
  for (const [itemId, entries] of byItem) {
    entries.sort((a, b) => Date.parse(a.time) - Date.parse(b.time));
    for (let i = 0; i + 1 < entries.length; i++) {
      const e = entries[i]!;
      if (e.retryAfter === undefined) continue;
      checked++;
      // Retry-After counts from the answer: the throttled request's start + its duration.
      const answeredAt = Date.parse(e.time) + e.durationMs;
      const next = Date.parse(entries[i + 1]!.time);
      if (next < answeredAt + e.retryAfter * 1000)
        early.push(`${itemId}: retried ${next - answeredAt} ms after a ${e.status} with Retry-After ${e.retryAfter}`);
    }
    // Every item's last request succeeded.
    expect(entries.at(-1)!.status, `${method} ${itemId}`).toBeLessThan(300);
  }
  return { checked, early };
}

beforeAll(async () => {
  stack = await startStack({
    records: jsonl(records),
    emulator: { seed: 7 },
    editDefinition: (def) => {
      delete def.source.groups; // random faults are for the item path; group sync has its own tests
    },
  });
  await stack.admin('requests', { method: 'DELETE' });
}, 60_000);
afterAll(async () => stack?.close());

describe('no retry before Retry-After', () => {
  it('scripted 429s (Retry-After 1–2 s) plus random faults: every item lands, and no retry comes early', async () => {
    await addFault(stack, {
      faults: [
        { match: { method: 'PUT', route: 'item' }, action: 'status', status: 429, retryAfter: 1, count: 15 },
        { match: { method: 'PUT', route: 'item' }, action: 'status', status: 429, retryAfter: 2, count: 15 },
      ],
    });
    await stack.admin('settings', { method: 'PATCH', body: { faultRate: 0.08 } });
    const { job, stats } = await stack.crawl({ mode: 'full' }, 8);
    await stack.admin('settings', { method: 'PATCH', body: { faultRate: 0 } });
    expect(job?.status, job?.error).toBe('completed');
    expect(job!.counts.ingested).toBe(records.length);
    expect(job!.counts.deadLettered).toBe(0);
    expect(stats!.throttled).toBeGreaterThanOrEqual(30);
    expect((await emulatorItems(stack)).map((i) => i.id).sort()).toEqual(records.map((r) => String(r.ticketId)).sort());

    const { checked, early } = await checkRetries('PUT');
    expect(checked).toBeGreaterThanOrEqual(30);
    expect(early).toEqual([]);
  });

  it('throttled sweep DELETEs: every item is deleted, and no retry comes before its Retry-After', async () => {
    await stack.admin('requests', { method: 'DELETE' });
    await stack.writeRecords(jsonl(records.slice(3)));
    await addFault(stack, {
      match: { method: 'DELETE', route: 'item' },
      action: 'status',
      status: 503,
      retryAfter: 1,
      count: 5,
    });
    const { job } = await stack.crawl({ mode: 'full', force: true });
    expect(job?.status, job?.error).toBe('completed');
    expect(job!.counts.deleted).toBe(3);
    const { checked, early } = await checkRetries('DELETE');
    expect(checked).toBe(5);
    expect(early).toEqual([]);
  });
});
