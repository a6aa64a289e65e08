/**
 * Invariant 10: a crawl interrupted at any moment resumes where it was — nothing lost, nothing counted twice.
 * Bug class prevented: an enumeration that restarts from record one (or fails) when its invocation dies, and a
 * resumed page that is counted, enqueued or written twice.
 *
 * The enumeration runs in slices of a few pages; each slice is crashed at a random storage call (the call throws, as
 * a killed process would leave it) and its message delivered again, many times over. Then every operation settles.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runSlice } from '../../src/crawl/enumerate.js';
import { finalizeCrawl } from '../../src/crawl/finalize.js';
import { startCrawl } from '../../src/crawl/start.js';
import { drainCrawl } from '../../src/local/crawl-locally.js';
import { itemKeyOf } from '../../src/state/keys.js';
import { startStack, type Stack } from '../support/stack.js';
import { jsonl, rec, sleep } from './helpers.js';

const N = 600;
const PAGE = 40;
let stack: Stack;
/** When set, the storage call with this number throws (a crash at that point). */
let crashAt: number | undefined;
let calls = 0;
const records = Array.from({ length: N }, (_, i) => rec(i, { allowedUsers: ['adele@contoso.com'] }, 'KIL'));

beforeAll(async () => {
  stack = await startStack({
    records: jsonl(records),
    settings: { pageSize: PAGE, slicePages: 3, finalizeDelayMs: 50, maxFinalizeDelayMs: 200 },
    onStorageRequest: () => {
      calls++;
      if (crashAt !== undefined && calls >= crashAt) {
        crashAt = undefined;
        throw new Error('simulated crash: the process died here');
      }
    },
  });
}, 90_000);
afterAll(async () => stack?.close());

/** Drive the crawl's control messages by hand, crashing every slice once at a random storage call. */
async function enumerateWithCrashes(crawlId: string): Promise<{ crashes: number; pagesRead: number; slices: number }> {
  const { pipeline } = stack.rt;
  let crashes = 0;
  let pagesRead = 0;
  let slices = 0;
  // Count the pages the source hands out (a page read twice counts twice).
  const source = pipeline.source;
  pipeline.source = () => {
    const s = source();
    const readPages = s.readPages.bind(s);
    s.readPages = async function* (o) {
      for await (const p of readPages(o)) {
        pagesRead++;
        yield p;
      }
    };
    return s;
  };
  const crashedSlices = new Set<number>();
  const outcomes: string[] = [];
  try {
    for (let guard = 0; guard < 500; guard++) {
      const [m] = await pipeline.control.receive(1, 5_000);
      if (!m) {
        await sleep(50);
        continue;
      }
      if (!m.message || m.message.kind !== 'crawl') {
        // A finalize message: leave it to the worker that drains the items.
        await pipeline.control.extend(m, 0);
        return { crashes, pagesRead, slices };
      }
      const slice = m.message.slice;
      if (!crashedSlices.has(slice)) {
        crashedSlices.add(slice);
        calls = 0;
        crashAt = 3 + Math.floor(Math.random() * 25);
      }
      try {
        const r = await runSlice(pipeline, crawlId, { slice, dequeueCount: m.dequeueCount });
        outcomes.push(`${slice}:${r.status}${'reason' in r && r.reason ? ` (${r.reason})` : ''}`);
        crashAt = undefined; // this slice got through before its crash point
        slices++;
        await pipeline.control.delete(m);
        if (r.status === 'enumerated') return { crashes, pagesRead, slices };
      } catch (err) {
        outcomes.push(`${slice}:crashed (${err instanceof Error ? err.message : String(err)})`);
        crashes++;
        crashAt = undefined;
        // The invocation died: the message comes back (at once here, instead of after its visibility timeout).
        await pipeline.control.extend(m, 0);
      }
    }
  } finally {
    pipeline.source = source;
  }
  const job = await pipeline.state.jobs.get(pipeline.connectionId, crawlId);
  throw new Error(
    `the enumeration did not finish: job ${job?.status}${job?.error ? ` (${job.error})` : ''}, slice ${job?.checkpoint.slice}; slices run: ${outcomes.slice(-12).join(', ')}`,
  );
}

describe('a crawl killed at any moment resumes where it was', () => {
  it('a first crawl crashed once in every slice: every record counted once, every item enqueued once, none lost', async () => {
    const { pipeline } = stack.rt;
    const started = await startCrawl(pipeline, { mode: 'full', trigger: 'cli' });
    expect(started.status).toBe('started');
    const crawlId = (started as { crawlId: string }).crawlId;
    const run = await enumerateWithCrashes(crawlId);
    expect(run.crashes).toBeGreaterThanOrEqual(N / PAGE / 3 - 1);
    const job = (await pipeline.state.jobs.get(pipeline.connectionId, crawlId))!;
    expect(job.status).toBe('enumerated');
    expect(job.checkpoint).toMatchObject({ enumerated: N, rejected: 0, unchanged: 0 });
    expect(job.checkpoint.pages).toBeGreaterThanOrEqual(N / PAGE);
    // Each crash re-reads at most the page it was on.
    expect(run.pagesRead - job.checkpoint.pages).toBeLessThanOrEqual(run.crashes);
    // Exactly one operation per item in the ledger (a message sent twice is one operation).
    const touches = await pipeline.state.items.counts(pipeline.connectionId, crawlId);
    expect(touches.enqueued).toBe(N);
    // Messages on the queue: one per item at least; a crash between a send and its checkpoint may send one twice.
    const { job: done } = await drainCrawl(pipeline, crawlId, {
      concurrency: 8,
      pollMs: 50,
      visibilityTimeoutMs: 10_000,
    });
    expect(done?.status, done?.error).toBe('completed');
    expect(done!.counts).toMatchObject({ enumerated: N, enqueued: N, ingested: N, pending: 0, rejected: 0 });
    const writes = await stack.takeWrites();
    expect(writes.deletes).toBe(0);
    // Every item reached Graph, and a duplicated message never wrote twice.
    expect(writes.puts).toBe(N);
    const stored = await stack.admin<{ value: { id: string }[] }>(
      `connections/${stack.rt.definition.connection.id}/items`,
    );
    expect(new Set(stored.value.map((i) => i.id))).toEqual(new Set(records.map((r) => String(r.ticketId))));
  }, 240_000);

  it('a recrawl crashed in every slice: unchanged records cost no operation and the sweep deletes exactly the missing', async () => {
    const { pipeline } = stack.rt;
    const kept = records.filter((_, i) => i % 50 !== 7); // 12 records leave the source (2 %, under the guard)
    await stack.writeRecords(jsonl(kept));
    const started = await startCrawl(pipeline, { mode: 'full', trigger: 'cli' });
    const crawlId = (started as { crawlId: string }).crawlId;
    await enumerateWithCrashes(crawlId);
    const job = (await pipeline.state.jobs.get(pipeline.connectionId, crawlId))!;
    expect(job.checkpoint).toMatchObject({ enumerated: kept.length, unchanged: kept.length, enqueued: 0 });
    const { job: done } = await drainCrawl(pipeline, crawlId, {
      concurrency: 8,
      pollMs: 50,
      visibilityTimeoutMs: 10_000,
    });
    expect(done?.status, done?.error).toBe('completed');
    expect(done!.counts).toMatchObject({ enumerated: kept.length, unchanged: kept.length, deleted: N - kept.length });
    expect(await stack.takeWrites()).toEqual({ puts: 0, deletes: N - kept.length, throttled: 0 });
    const gone = records.filter((_, i) => i % 50 === 7).map((r) => String(r.ticketId));
    for (const id of gone)
      expect((await pipeline.state.items.getItem(pipeline.connectionId, id))?.state).toBe('deleted');
    expect(itemKeyOf(gone[0]!).key).toBe(gone[0]!.toLowerCase());
    // A finalize delivered again after the crawl finished changes nothing.
    expect((await finalizeCrawl(pipeline, crawlId, 0)).status).toBe('skipped');
  }, 240_000);
});
