/**
 * A crawl diffs against one snapshot, pinned at its first page — also when that snapshot is empty (a first crawl).
 * Bug class prevented: a first crawl read in several slices re-folded the connection's touch rows at every slice,
 * so its own operations that had already settled were folded into the snapshot and their touch rows deleted: the
 * crawl under-counted what it sent and ingested (a record in no bucket), counted re-read records as unchanged,
 * and its seen bitmap pointed at positions of another snapshot than the one its sweep reads.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStack, type Stack } from '../support/stack.js';
import { emulatorItems, jsonl, recs, requestLog } from './helpers.js';

let stack: Stack;
const records = recs(53, 'FOLD');

beforeAll(async () => {
  // One page of 5 records per slice: 11 slices, with the ingest settling items between them.
  stack = await startStack({ records: jsonl(records), settings: { pageSize: 5, slicePages: 1 } });
}, 90_000);
afterAll(async () => stack?.close());

describe('a first crawl read in many slices', () => {
  it('counts every record once and ingests each item once', async () => {
    const { job } = await stack.crawl({ mode: 'full' });
    expect(job?.status, job?.error).toBe('completed');
    expect(job!.checkpoint.slice).toBeGreaterThanOrEqual(10);
    expect(job!.counts).toMatchObject({
      enumerated: records.length,
      enqueued: records.length,
      ingested: records.length,
      unchanged: 0,
      rejected: 0,
      deleted: 0,
      pending: 0,
    });
    expect((await emulatorItems(stack)).length).toBe(records.length);
    await stack.admin('requests', { method: 'DELETE' });
  });

  it('the next crawl finds every item unchanged and neither writes nor sweeps anything', async () => {
    const { job } = await stack.crawl({ mode: 'full' });
    expect(job?.status, job?.error).toBe('completed');
    expect(job!.counts).toMatchObject({ enumerated: records.length, unchanged: records.length, enqueued: 0 });
    expect((await requestLog(stack)).filter((e) => e.method === 'PUT' || e.method === 'DELETE')).toEqual([]);
    expect((await emulatorItems(stack)).length).toBe(records.length);
  });
});
