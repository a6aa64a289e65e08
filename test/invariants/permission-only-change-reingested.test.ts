/**
 * A permission-only change is a change (DESIGN: the diff hashes properties + content + ACL).
 * Bug class prevented: a record whose audience changed but whose text did not is skipped as unchanged, so
 * Graph keeps showing it to people who lost access (or hiding it from people who gained it).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStack, type Stack } from '../support/stack.js';
import { jsonl, recs, searchAs } from './helpers.js';

let stack: Stack;
const records = recs(20);

async function visibleTo(user: string, i: number): Promise<boolean> {
  return (await searchAs(stack, user, `zqinv${i}`)).includes(String(records[i]!.ticketId));
}

beforeAll(async () => {
  stack = await startStack({ records: jsonl(records) });
  const { job } = await stack.crawl({ mode: 'full' });
  expect(job?.status, job?.error).toBe('completed');
  expect(job!.counts.ingested).toBe(records.length);
  await stack.takeWrites();
}, 60_000);
afterAll(async () => stack?.close());

describe('a permission-only change is re-ingested', () => {
  it('allowedUsers adele → megan: exactly one PUT; adele loses the item, megan gains it', async () => {
    expect(await visibleTo('adele@contoso.com', 5)).toBe(true);
    expect(await visibleTo('megan@contoso.com', 5)).toBe(false);
    records[5] = { ...records[5], allowedUsers: ['megan@contoso.com'] };
    await stack.writeRecords(jsonl(records));
    const { job } = await stack.crawl({ mode: 'full' });
    expect(job?.status, job?.error).toBe('completed');
    expect(job!.counts.enqueued).toBe(1);
    expect(job!.counts.unchanged).toBe(records.length - 1);
    expect(await stack.takeWrites()).toEqual({ puts: 1, deletes: 0, throttled: 0 });
    expect(await visibleTo('adele@contoso.com', 5)).toBe(false);
    expect(await visibleTo('megan@contoso.com', 5)).toBe(true);
  });

  it('visibility restricted → team: one PUT per changed record; the team sees it, the old audience does not', async () => {
    expect(await visibleTo('alex@contoso.com', 7)).toBe(false);
    records[7] = { ...records[7], visibility: 'team', team: 'logistics' };
    // `team` is also a property, so keep a pure visibility change too: only the audience moves.
    records[8] = { ...records[8], visibility: 'team' }; // team payments: adele, megan, isaiah
    await stack.writeRecords(jsonl(records));
    const { job } = await stack.crawl({ mode: 'full' });
    expect(job?.status, job?.error).toBe('completed');
    expect(job!.counts.enqueued).toBe(2);
    expect(await stack.takeWrites()).toEqual({ puts: 2, deletes: 0, throttled: 0 });
    expect(await visibleTo('alex@contoso.com', 7)).toBe(true);
    expect(await visibleTo('adele@contoso.com', 7)).toBe(false);
    expect(await visibleTo('isaiah@contoso.com', 8)).toBe(true);
    expect(await visibleTo('alex@contoso.com', 8)).toBe(false);
  });

  it('a new deny alone (deniedUsers) is re-ingested and hides the item from that user', async () => {
    expect(await visibleTo('isaiah@contoso.com', 8)).toBe(true);
    records[8] = { ...records[8], deniedUsers: ['isaiah@contoso.com'] };
    await stack.writeRecords(jsonl(records));
    const { job } = await stack.crawl({ mode: 'full' });
    expect(job?.status, job?.error).toBe('completed');
    expect(await stack.takeWrites()).toEqual({ puts: 1, deletes: 0, throttled: 0 });
    expect(await visibleTo('isaiah@contoso.com', 8)).toBe(false);
    expect(await visibleTo('megan@contoso.com', 8)).toBe(true);
  });
});
