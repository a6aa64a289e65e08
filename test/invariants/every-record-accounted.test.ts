/**
 * Invariant 1: every source record ends in exactly one bucket — ingested, unchanged, rejected (with a reason
 * naming the record and the field) or dead-lettered (with Graph's error) — and the counts add up.
 * Bug class prevented: records silently dropped (a bad line, a bad value, a duplicate id) or counted twice.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeItemId } from '../../src/mapping/index.js';
import { startStack, type Stack } from '../support/stack.js';
import { addFault, deadLetters, emulatorItems, jsonl, rec, recs, type Rec } from './helpers.js';

let stack: Stack;
let firstCrawlId = '';
let firstRejected = 0;
const good = recs(24);
const encodedSource = 'INV-9/x y';
const lines: (Rec | string)[] = [
  ...good.slice(0, 6),
  '{"ticketId": "BADJSON1", "title": oops',
  rec(100, { priority: 'high' }), // wrong type → priority
  rec(101, { title: '' }), // missing title → required
  rec(102, { allowedUsers: ['nobody@contoso.com'] }), // unresolvable ACL user → acl.noGrant
  rec(103, { createdDate: 'yesterday' }), // not a date → createdDateTime
  ...good.slice(6, 12),
  rec(104, { ticketId: encodedSource }), // illegal id characters → encoded, ingested
  good[0]!, // duplicate of the first record → unique-id
  '[1, 2, 3]', // not an object
  ...good.slice(12),
  rec(105, { priority: 'urgent' }), // two distinct bad records that share a key
  rec(105, { priority: 2.5 }),
];
const rejectedExpect: { key: string | RegExp; field: RegExp }[] = [
  { key: /^line 7$/, field: /line 7/ },
  { key: 'INV1100', field: /field "priority"/ },
  { key: 'INV1101', field: /field "title"/ },
  { key: 'INV1102', field: /acl|allowedUsers/ },
  { key: 'INV1103', field: /field "createdDateTime"|createdDate/ },
  { key: 'INV1000', field: /field "id".*unique-id/ },
  { key: /^line \d+$/, field: /line \d+/ },
  { key: 'INV1105', field: /field "priority"/ },
  { key: 'INV1105', field: /field "priority"/ },
];
const deadLetteredId = 'INV1015';

beforeAll(async () => {
  stack = await startStack({ records: jsonl(lines) });
}, 60_000);
afterAll(async () => stack?.close());

describe('every record is accounted for', () => {
  it('enumerated = ingested + unchanged + rejected + deadLettered + superseded, with a reason for each reject', async () => {
    await addFault(stack, {
      match: { method: 'PUT', route: 'item', itemId: deadLetteredId },
      action: 'status',
      status: 400,
      code: 'InvalidRequest',
      count: 0,
    });
    const { job } = await stack.crawl({ mode: 'full' });
    expect(job?.status, job?.error).toBe('completed');
    const c = job!.counts;
    expect(c.enumerated).toBe(lines.length);
    expect(c.enumerated).toBe(c.ingested + c.unchanged + c.rejected + c.deadLettered + c.superseded);
    expect(c.enumerated).toBe(c.enqueued + c.unchanged + c.rejected);
    expect(c.rejected).toBe(rejectedExpect.length);
    expect(c.deadLettered).toBe(1);
    expect(c.ingested).toBe(good.length + 1 - 1);

    firstCrawlId = job!.crawlId;
    firstRejected = c.rejected;
    const dls = await deadLetters(stack, job!.crawlId);
    const rejections = dls.filter((d) => d.op === 'reject');
    for (const want of rejectedExpect) {
      const hit = rejections.find(
        (d) =>
          (typeof want.key === 'string' ? d.itemId === want.key : want.key.test(d.itemId)) &&
          want.field.test(d.message),
      );
      expect(hit, `a rejection for ${String(want.key)} naming ${String(want.field)}`).toBeDefined();
      // The reason names the record itself.
      expect(hit!.message).toContain(hit!.itemId);
    }
    const graphRefused = dls.filter((d) => d.op === 'upsert');
    expect(graphRefused.map((d) => [d.itemId, d.status])).toEqual([[deadLetteredId, 400]]);

    const stored = new Set((await emulatorItems(stack)).map((i) => i.id));
    for (const r of good) {
      const id = String(r.ticketId);
      if (id === deadLetteredId) expect(stored.has(id)).toBe(false);
      else expect(stored.has(id), id).toBe(true);
    }
    expect(stored.has(encodeItemId(encodedSource))).toBe(true);
    expect(stored.size).toBe(c.ingested);
  });

  // Regression (was a bug in src/state/dead-letters.ts row key + src/pipeline/crawl.ts processBatch): a rejection's row key is
  // `${crawlId}~reject~${recordKey}`, so two distinct rejected records with the same source key (the keyField
  // value) share one row and the second reason overwrites the first: `rejected` counts 2, the listing shows 1.
  // Fixed: make the row key unique per record (e.g. add the record's position, `line 30`, when it has one).
  it('every rejected record has its own rejection entry (two bad records with one key included)', async () => {
    const rejections = (await deadLetters(stack, firstCrawlId)).filter((d) => d.op === 'reject');
    expect(rejections.filter((d) => d.itemId === 'INV1105').map((d) => d.message)).toHaveLength(2);
    expect(rejections).toHaveLength(firstRejected);
  });

  it('a recrawl accounts for every record again (unchanged instead of ingested)', async () => {
    await stack.admin('faults', { method: 'DELETE' });
    const { job } = await stack.crawl({ mode: 'full' });
    expect(job?.status, job?.error).toBe('completed');
    const c = job!.counts;
    expect(c.enumerated).toBe(lines.length);
    expect(c.enumerated).toBe(c.ingested + c.unchanged + c.rejected + c.deadLettered + c.superseded);
    expect(c.rejected).toBe(rejectedExpect.length);
    expect(c.unchanged).toBeGreaterThanOrEqual(good.length);
  });
});
