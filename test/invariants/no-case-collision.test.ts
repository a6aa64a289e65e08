/**
 * Item ids that differ only in case: Graph does not document whether it compares item ids with or without case,
 * so the connector makes a collision impossible either way — ids are compared without regard to case.
 * Bug class prevented: two records whose ids differ only in case overwriting each other in Graph (or living on
 * as two items), and an id whose case changed leaving its old spelling behind (or deleting the new one).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStack, type Stack } from '../support/stack.js';
import { deadLetters, emulatorItems, jsonl, rec } from './helpers.js';

let stack: Stack;

beforeAll(async () => {
  stack = await startStack({ records: jsonl([rec(1, { ticketId: 'CASE1' }), rec(2, { ticketId: 'CASE2' })]) });
}, 60_000);
afterAll(async () => stack?.close());

describe('item ids that differ only in case', () => {
  it('two records of one crawl with CASE1 and case1: the second is rejected naming both records', async () => {
    await stack.writeRecords(
      jsonl([rec(1, { ticketId: 'CASE1' }), rec(2, { ticketId: 'CASE2' }), rec(3, { ticketId: 'case1' })]),
    );
    const { job } = await stack.crawl({ mode: 'full' });
    expect(job?.status, job?.error).toBe('completed');
    expect(job!.counts).toMatchObject({ enumerated: 3, ingested: 2, rejected: 1 });
    const rejects = (await deadLetters(stack)).filter((d) => d.op === 'reject');
    expect(rejects).toHaveLength(1);
    expect(rejects[0]!.message).toMatch(/record case1 \(line 3\).*record CASE1 \(line 1\)/);
    expect((await emulatorItems(stack)).map((i) => i.id).sort()).toEqual(['CASE1', 'CASE2']);
    await stack.takeWrites();
  });

  it('an id whose case changes is moved: the old spelling is deleted before the new one is written', async () => {
    await stack.writeRecords(jsonl([rec(1, { ticketId: 'case1' }), rec(2, { ticketId: 'CASE2' })]));
    const { job } = await stack.crawl({ mode: 'full' });
    expect(job?.status, job?.error).toBe('completed');
    expect(job!.counts).toMatchObject({ enumerated: 2, ingested: 1, unchanged: 1, deleted: 0 });
    expect((await emulatorItems(stack)).map((i) => i.id).sort()).toEqual(['CASE2', 'case1']);
    const log = await stack.admin<{ value: { method: string; itemId?: string; status: number; time: string }[] }>(
      `requests?connectionId=${stack.rt.definition.connection.id}`,
    );
    const writes = log.value.filter((e) => e.itemId?.toLowerCase() === 'case1' && e.method !== 'GET');
    expect(writes.map((e) => `${e.method} ${e.itemId}`)).toEqual(['DELETE CASE1', 'PUT case1']);
    const row = await stack.rt.pipeline.state.items.getItem(stack.rt.pipeline.connectionId, 'CASE1');
    expect(row).toMatchObject({ itemId: 'case1', state: 'settled' });
    // A crawl of the same data sends nothing.
    await stack.takeWrites();
    const again = await stack.crawl({ mode: 'full' });
    expect(again.job!.counts).toMatchObject({ unchanged: 2, ingested: 0 });
    expect(await stack.takeWrites()).toEqual({ puts: 0, deletes: 0, throttled: 0 });
  });
});
