/**
 * A crawl can be killed at any moment, also while it reads the source. `graph-connector worker` (from the build)
 * runs as a child process and is SIGKILLed three times while it enumerates a first crawl (after a fifth, about
 * half and four fifths of the pages), each time started again: the enumeration resumes from its last
 * checkpoint, re-reading at most the page it was on, and the crawl completes with every count exact and Graph
 * holding exactly the source.
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCrawl, withLiveCounts } from '../../src/crawl/index.js';
import {
  ROOT,
  expectNoSecrets,
  jsonl,
  killChild,
  reportFigures,
  sized,
  startReliabilityStack,
  startWorkerProcess,
  ticket,
  waitFor,
  type RStack,
} from './support.js';

// Not a multiple of the page size: the last page is short, so the reader knows it is the last.
const N = sized(20_010, 510);
const PAGE = sized(100, 25);
const PAGES = Math.ceil(N / PAGE);
const KILL_AT_PAGES = [Math.round(PAGES / 5), Math.round(PAGES / 2), Math.round((PAGES * 4) / 5)];
let stack: RStack;
const childLines: string[] = [];
const children = new Set<ChildProcess>();

function startWorker(): ChildProcess {
  return startWorkerProcess(
    stack,
    [
      '--concurrency',
      '25',
      '--visibility-ms',
      '3000',
      '--control-visibility-ms',
      '4000',
      '--poll-ms',
      '20',
      '--max-finalize-delay-ms',
      '500',
    ],
    {
      env: { CRAWL_PAGE_SIZE: String(PAGE), CRAWL_SLICE_PAGES: '7', LOG_LEVEL: 'info' },
      lines: childLines,
      children,
    },
  );
}

async function job(crawlId: string) {
  const j = await stack.rt.pipeline.state.jobs.get(stack.connectionId, crawlId);
  return j ? withLiveCounts(stack.rt.pipeline.state, j) : undefined;
}

beforeAll(async () => {
  if (!existsSync(join(ROOT, 'dist', 'src', 'cli', 'commands', 'worker.js'))) {
    throw new Error('the worker runs from the build: run `npm run build` first (npm run test:reliability does)');
  }
  stack = await startReliabilityStack({ emulator: { latencyMs: 0 } });
  // Public tickets only: no group sync needed, every record maps.
  await stack.writeRecords(jsonl(Array.from({ length: N }, (_, i) => ({ ...ticket(i), visibility: 'public' }))));
});
afterAll(async () => {
  for (const c of children) await killChild(c, 'SIGKILL');
  await stack?.close();
});

describe('the enumerating worker SIGKILLed three times, restarted each time', () => {
  it(`completes a ${N}-record first crawl with every count exact and nothing lost or doubled`, async () => {
    await stack.takeItemRequests();
    const start = await startCrawl(stack.rt.pipeline, { mode: 'full', trigger: 'cli' });
    if (start.status !== 'started') throw new Error(`crawl did not start: ${JSON.stringify(start)}`);
    const killedAt: number[] = [];
    for (const pages of KILL_AT_PAGES) {
      const w = startWorker();
      const at = await waitFor(
        `the enumeration to pass page ${pages}`,
        async () => {
          const j = await job(start.crawlId);
          if (j && j.status !== 'running') throw new Error(`the enumeration ended before the kill (${j.status})`);
          return j && j.checkpoint.pages >= pages ? j.checkpoint.pages : undefined;
        },
        { everyMs: 25 },
      );
      await killChild(w, 'SIGKILL');
      killedAt.push(at);
    }
    const last = startWorker();
    const done = await waitFor('the crawl to finish', async () => {
      const j = await job(start.crawlId);
      return j && (j.status === 'completed' || j.status === 'failed') ? j : undefined;
    });
    expect(await killChild(last, 'SIGTERM')).toBe(0);

    expect(done.status, done.error).toBe('completed');
    const cp = done.checkpoint;
    expect(cp.done).toBe(true);
    expect(cp.pages).toBe(PAGES);
    const held = await stack.emulatorItems();
    const expected = new Set(Array.from({ length: N }, (_, i) => String(ticket(i).ticketId)));
    const lost = [...expected].filter((id) => !held.has(id)).length;
    const extra = [...held.keys()].filter((id) => !expected.has(id));
    // Exact: every record counted once, every item enqueued and ingested once, none rejected.
    expect({ ...done.counts, resumed: cp.resumed, pages: cp.pages, inGraph: held.size }).toMatchObject({
      inGraph: N,
      enumerated: N,
      enqueued: N,
      ingested: N,
      rejected: 0,
      unchanged: 0,
      deadLettered: 0,
      superseded: 0,
      pending: 0,
    });
    // Slices picked up again after a kill resumed from their checkpoint (a slow renewal of the message under load
    // can add a redelivery: it resumes the same way).
    expect(cp.resumed).toBeGreaterThanOrEqual(1);

    expect(lost).toBe(0);
    expect(extra).toEqual([]);

    const puts = (await stack.takeItemRequests()).filter((q) => q.method === 'PUT' && q.status < 300).length;
    await reportFigures('enumeration SIGKILLed ×3', {
      items: N,
      faultsInjected: KILL_AT_PAGES.length,
      retries: puts - N,
      deadLetters: done.counts.deadLettered,
      lost,
      note: `killed at pages ${killedAt.join(', ')} of ${PAGES}; slices resumed from a checkpoint: ${cp.resumed}; items re-sent after a kill: ${puts - N}`,
    });
    expectNoSecrets(childLines, stack.secrets());
  });
});
