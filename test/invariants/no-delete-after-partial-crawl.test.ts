/**
 * Invariant 2: a failed, partial or cancelled crawl never deletes anything; a sweep that would delete a large
 * share of the ledger is refused unless forced.
 * Bug class prevented: mass deletion in Graph after a truncated or failed read of the source.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStack, type Stack } from '../support/stack.js';
import {
  emulatorItems,
  recs,
  requestLog,
  restSourceDefinition,
  startRestSource,
  type RestSourceServer,
} from './helpers.js';

let stack: Stack;
let rest: RestSourceServer;
const all = recs(40);
const ids = all.map((r) => String(r.ticketId));

async function ledgerStates(): Promise<string[]> {
  const { items } = stack.rt.pipeline.state;
  const rows = await Promise.all(ids.map((id) => items.getItem(stack.rt.pipeline.connectionId, id)));
  return rows.map((r) => r?.state ?? 'missing');
}

async function deletesSeen(): Promise<number> {
  const log = await requestLog(stack);
  await stack.admin('requests', { method: 'DELETE' });
  return log.filter((e) => e.method === 'DELETE').length;
}

beforeAll(async () => {
  rest = await startRestSource([...all]);
  stack = await startStack({
    editDefinition: (def) => {
      def.source = restSourceDefinition(rest.base);
    },
  });
  const { job } = await stack.crawl({ mode: 'full' });
  expect(job?.status, job?.error).toBe('completed');
  expect(job!.counts.ingested).toBe(all.length);
  expect((await emulatorItems(stack)).length).toBe(all.length);
  await stack.admin('requests', { method: 'DELETE' });
}, 60_000);
afterAll(async () => {
  await stack?.close();
  await rest?.close();
});

describe('no delete after a partial crawl', () => {
  it('(a) a source that fails half way: the job fails, nothing is deleted, the ledger keeps every item', async () => {
    rest.failPage = { page: 3, status: 500 };
    const { job } = await stack.crawl({ mode: 'full' });
    rest.failPage = undefined;
    expect(job?.status).toBe('failed');
    expect(job?.error).toMatch(/source failed/);
    expect(job?.error).toMatch(/nothing was deleted/);
    // A failed crawl counts what happened up to the failure: the two pages (10 records each) read before page 3.
    expect(job!.counts.enumerated).toBe(20);
    expect(job!.counts.unchanged).toBe(20);
    expect(rest.queries.some((q) => q.page === '3')).toBe(true);
    expect(await deletesSeen()).toBe(0);
    expect(await ledgerStates()).toEqual(ids.map(() => 'settled'));
    expect((await emulatorItems(stack)).length).toBe(all.length);
    // The connection is free again: the next crawl runs and, with the full source back, deletes nothing.
    const next = await stack.crawl({ mode: 'full' });
    expect(next.job?.status, next.job?.error).toBe('completed');
    expect(next.job!.counts.unchanged).toBe(all.length);
    expect(await deletesSeen()).toBe(0);
  });

  it('(b) a source that suddenly returns 5% of its records: the ratio guard refuses the sweep and says why', async () => {
    rest.records = all.slice(0, 2);
    const { job } = await stack.crawl({ mode: 'full' });
    expect(job?.status, job?.error).toBe('completed');
    expect(job!.counts.deleted).toBe(0);
    expect(job?.error).toMatch(/SWEEP_MAX_DELETE_RATIO/);
    expect(job?.error).toMatch(/force/);
    expect(job?.error).toMatch(/38 of 40/);
    expect(await deletesSeen()).toBe(0);
    expect(await ledgerStates()).toEqual(ids.map(() => 'settled'));
    expect((await emulatorItems(stack)).length).toBe(all.length);
  });

  it('(c) the same read with force=true deletes the missing items', async () => {
    const { job } = await stack.crawl({ mode: 'full', force: true });
    expect(job?.status, job?.error).toBe('completed');
    expect(job!.counts.deleted).toBe(38);
    expect(await deletesSeen()).toBe(38);
    const left = (await emulatorItems(stack)).map((i) => i.id).sort();
    expect(left).toEqual(ids.slice(0, 2));
    expect((await ledgerStates()).filter((s) => s === 'deleted')).toHaveLength(38);
  });
});
