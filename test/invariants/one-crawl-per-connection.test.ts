/**
 * Invariant 7: two crawls of one connection never run at once, on one machine or many.
 * Bug class prevented: two overlapping crawls of one connection (timer + manual resync, or two Function
 * instances) racing on the ledger, the generation and the sweep.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCrawl, type StartCrawlResult } from '../../src/crawl/index.js';
import { drainCrawl } from '../../src/local/crawl-locally.js';
import { graphEnvForEmulator } from '../../src/local/emulator-client.js';
import { startStack, type Stack } from '../support/stack.js';
import { jsonl, recs } from './helpers.js';

let a: Stack;
let b: Stack;
const records = recs(20);
const drainOptions = { concurrency: 8, pollMs: 50, visibilityTimeoutMs: 5_000 };

function split(results: StartCrawlResult[]) {
  const started = results.filter((r) => r.status === 'started');
  const busy = results.filter((r) => r.status === 'busy');
  return { started, busy };
}

beforeAll(async () => {
  const uid = randomBytes(4).toString('hex');
  const storage = {
    ITEMS_QUEUE: `items${uid}`,
    CRAWL_QUEUE: `crawl${uid}`,
    PROVISION_QUEUE: `prov${uid}`,
    LEDGER_TABLE_PREFIX: `t${uid}`,
    CLAIMS_CONTAINER: `claims${uid}`,
    STATE_CONTAINER: `state${uid}`,
  };
  a = await startStack({ records: jsonl(records), env: storage });
  // A second "machine": its own runtime (own holder id, own clients), the same storage and Graph as `a`.
  const info = a.emu.info;
  b = await startStack({
    records: jsonl(records),
    env: {
      ...storage,
      ...graphEnvForEmulator(info),
    },
  });
  expect(b.rt.pipeline.settings.holder).not.toBe(a.rt.pipeline.settings.holder);
}, 90_000);
afterAll(async () => {
  await b?.close();
  await a?.close();
});

describe('one crawl per connection', () => {
  it('two startCrawl calls at once on one machine: one started, the other busy naming the running crawl', async () => {
    const results = await Promise.all([
      startCrawl(a.rt.pipeline, { mode: 'full', trigger: 'cli' }),
      startCrawl(a.rt.pipeline, { mode: 'full', trigger: 'timer' }),
    ]);
    const { started, busy } = split(results);
    expect(started).toHaveLength(1);
    expect(busy).toHaveLength(1);
    const running = started[0] as Extract<StartCrawlResult, { status: 'started' }>;
    expect(busy[0]).toMatchObject({ status: 'busy', crawlId: running.crawlId });

    // Another machine sharing the storage is refused too, while the crawl runs.
    const other = await startCrawl(b.rt.pipeline, { mode: 'full', trigger: 'http' });
    expect(other).toMatchObject({ status: 'busy', crawlId: running.crawlId });

    const { job } = await drainCrawl(a.rt.pipeline, running.crawlId, drainOptions);
    expect(job?.status, job?.error).toBe('completed');
    expect(job!.counts.ingested).toBe(records.length);

    // Finished: a new crawl can start, on the other machine too.
    const next = await b.crawl({ mode: 'full' });
    expect(next.start.status).toBe('started');
    expect(next.job?.status, next.job?.error).toBe('completed');
    expect(next.job!.counts.unchanged).toBe(records.length);
  });

  it('two machines starting at once: exactly one wins; after it finishes the connection is free', async () => {
    const results = await Promise.all([
      startCrawl(a.rt.pipeline, { mode: 'full', trigger: 'timer' }),
      startCrawl(b.rt.pipeline, { mode: 'full', trigger: 'timer' }),
      startCrawl(b.rt.pipeline, { mode: 'full', trigger: 'http' }),
    ]);
    const { started, busy } = split(results);
    expect(started).toHaveLength(1);
    expect(busy).toHaveLength(2);
    const running = started[0] as Extract<StartCrawlResult, { status: 'started' }>;
    for (const r of busy) expect(r).toMatchObject({ crawlId: running.crawlId });
    const winner = results[0].status === 'started' ? a : b;
    const { job } = await drainCrawl(winner.rt.pipeline, running.crawlId, drainOptions);
    expect(job?.status, job?.error).toBe('completed');
    // One job per start that won (three so far), each with its own generation.
    const jobs = await a.rt.pipeline.state.jobs.list(a.rt.pipeline.connectionId, 10);
    expect(jobs.map((j) => j.status)).toEqual(['completed', 'completed', 'completed']);
    expect(new Set(jobs.map((j) => j.generation)).size).toBe(3);
    const again = await startCrawl(a.rt.pipeline, { mode: 'full', trigger: 'cli' });
    expect(again.status).toBe('started');
  });
});
