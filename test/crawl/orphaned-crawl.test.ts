/**
 * A crawl whose worker died leaves its lease to expire. The next crawl takes the connection over and closes the
 * orphaned job as failed (so status never shows a ghost crawl), and the orphan deletes nothing.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startCrawl } from '../../src/crawl/index.js';
import { startStack, type Stack } from '../support/stack.js';

let stack: Stack;
const records = Array.from({ length: 5 }, (_, i) =>
  JSON.stringify({
    ticketId: `TSP7${i}`,
    title: `Orphan ${i}`,
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
  }),
).join('\n');

beforeAll(async () => {
  stack = await startStack({ records });
}, 60_000);
afterAll(async () => stack?.close());

it('a crawl started after an expired lease closes the orphaned job as failed', async () => {
  const d = stack.rt.pipeline;
  const first = await startCrawl(d, { mode: 'full', trigger: 'timer' });
  expect(first.status).toBe('started');
  const busy = await startCrawl(d, { mode: 'full', trigger: 'http' });
  expect(busy).toMatchObject({ status: 'busy', crawlId: first.status === 'started' ? first.crawlId : '' });

  // The worker "dies": nobody runs the crawl, and its lease runs out.
  const lease = await d.state.leases.table.getEntity<Record<string, unknown>>('contosotasks', 'crawl');
  await d.state.leases.table.updateEntity(
    { partitionKey: 'contosotasks', rowKey: 'crawl', expiresAt: new Date(Date.now() - 1000).toISOString() },
    'Merge',
    { etag: lease.etag },
  );

  const second = await startCrawl(d, { mode: 'full', trigger: 'http' });
  expect(second.status).toBe('started');
  const orphan = await d.state.jobs.get('contosotasks', (first as { crawlId: string }).crawlId);
  expect(orphan?.status).toBe('failed');
  expect(orphan?.error).toMatch(/abandoned: its worker stopped and its lease expired.*nothing was deleted/);
  const { value } = await stack.admin<{ value: { method: string; route: string }[] }>(
    'requests?connectionId=contosotasks',
  );
  expect(value.filter((e) => e.route === 'item' && e.method === 'DELETE')).toHaveLength(0);
});
