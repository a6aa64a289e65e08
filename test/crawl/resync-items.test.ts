/**
 * Resync of single items (`POST /api/resync {"mode":"items","itemIds":[…]}`): only the listed records are read
 * into the crawl and re-sent (with force, even unchanged), nothing else is written, and nothing is swept.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startStack, type Stack } from '../support/stack.js';

let stack: Stack;
const record = (i: number) =>
  JSON.stringify({
    ticketId: `TSP6${String(i).padStart(4, '0')}`,
    title: `Items mode ${i}`,
    description: 'd',
    status: 'open',
    priority: 1,
    createdBy: 'adele@contoso.com',
    assignedTo: 'adele@contoso.com',
    team: 'payments',
    tags: [],
    createdDate: '2026-01-01T00:00:00Z',
    lastEditedDate: '2026-01-01T00:00:00Z',
    visibility: 'team',
  });

beforeAll(async () => {
  stack = await startStack({ records: Array.from({ length: 10 }, (_, i) => record(i)).join('\n') });
  const { job } = await stack.crawl({ mode: 'full' });
  expect(job?.counts.ingested).toBe(10);
  await stack.takeWrites();
}, 60_000);
afterAll(async () => stack?.close());

it('re-sends exactly the listed items, by source key, and touches nothing else', async () => {
  const { job } = await stack.crawl({ mode: 'items', itemIds: ['TSP60002', 'TSP60007'], force: true });
  expect(job?.status).toBe('completed');
  expect(job?.counts).toMatchObject({ enumerated: 2, enqueued: 2, ingested: 2, deleted: 0 });
  expect(await stack.takeWrites()).toEqual({ puts: 2, deletes: 0, throttled: 0 });
});

it('without force, listed items that did not change are not sent', async () => {
  const { job } = await stack.crawl({ mode: 'items', itemIds: ['TSP60003'] });
  expect(job?.counts).toMatchObject({ enumerated: 1, unchanged: 1, enqueued: 0 });
  expect(await stack.takeWrites()).toEqual({ puts: 0, deletes: 0, throttled: 0 });
});
