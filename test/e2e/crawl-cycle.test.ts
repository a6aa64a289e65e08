/**
 * The product, end to end: the sample source crawled into the emulator through Azurite queues and the
 * ledger, exactly as under the Functions host (same handlers), then recrawled unchanged, then with edits.
 */
import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStack, type Stack } from '../support/stack.js';

let stack: Stack;
let lines: string[];

beforeAll(async () => {
  stack = await startStack();
  lines = (await readFile(stack.recordsPath, 'utf8')).split('\n').filter((l) => l.trim());
}, 120_000);
afterAll(async () => stack?.close());

describe('crawl → queue → ingest → Graph, and back again', () => {
  it('a first full crawl ingests every good record and the counts add up', async () => {
    const { start, job, stats } = await stack.crawl({ mode: 'full' });
    expect(start.status).toBe('started');
    expect(job?.status, job?.error).toBe('completed');
    const c = job!.counts;
    expect(c.enumerated).toBe(lines.length);
    expect(c.enumerated).toBe(c.enqueued + c.unchanged + c.rejected);
    expect(c.enqueued).toBe(c.ingested + c.deadLettered + c.superseded);
    expect(c.ingested).toBeGreaterThan(lines.length * 0.9);
    const writes = await stack.takeWrites();
    expect(writes.puts).toBe(c.ingested);
    const { value } = await stack.admin<{ value: unknown[] }>(`connections/${stack.rt.definition.connection.id}/items`);
    expect(value.length).toBe(c.ingested);
    expect(stats!.ingested).toBe(c.ingested);
  }, 120_000);

  it('a recrawl with no change sends no write to Graph', async () => {
    const { job } = await stack.crawl({ mode: 'full' });
    expect(job?.status, job?.error).toBe('completed');
    expect(job!.counts.enqueued).toBe(0);
    expect(job!.counts.unchanged + job!.counts.rejected).toBe(job!.counts.enumerated);
    expect(await stack.takeWrites()).toEqual({ puts: 0, deletes: 0, throttled: 0 });
  }, 120_000);

  it('3 edited and 2 removed records give exactly 3 PUTs and 2 DELETEs', async () => {
    const records = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    for (const r of records.slice(0, 3)) r.title = `${String(r.title)} (edited)`;
    const removed = records.slice(3, 5).map((r) => String(r.ticketId));
    const kept = records.filter((r) => !removed.includes(String(r.ticketId)));
    await stack.writeRecords(kept.map((r) => JSON.stringify(r)).join('\n') + '\n');
    const { job } = await stack.crawl({ mode: 'full' });
    expect(job?.status, job?.error).toBe('completed');
    expect(job!.counts.deleted).toBe(2);
    expect(await stack.takeWrites()).toEqual({ puts: 3, deletes: 2, throttled: 0 });
    for (const id of removed) {
      await expect(stack.admin(`connections/${stack.rt.definition.connection.id}/items/${id}`)).rejects.toThrow(/404/);
    }
  }, 120_000);
});
