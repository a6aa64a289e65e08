/**
 * A killed worker loses nothing and applies nothing out of order. The ingest worker runs as a real child
 * process (`graph-connector worker`, from the build), is SIGKILLed in the middle of a crawl's ingest, and is
 * started again: the crawl completes with every item in Graph exactly once as the source has it; a second
 * crawl with changed records survives the same; and an older crawl's message delivered late (what a killed
 * worker's message is) never overwrites the newer version.
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCrawl, withLiveCounts } from '../../src/crawl/index.js';
import { itemHash } from '../../src/crawl/hash.js';
import { runWorker } from '../../src/local/worker.js';
import type { ExternalItem } from '../../src/config/model.js';
import {
  ROOT,
  expectNoSecrets,
  jsonl,
  killChild,
  reportFigures,
  sized,
  sourceGroupIds,
  startReliabilityStack,
  startWorkerProcess,
  ticket,
  waitFor,
  type RStack,
} from './support.js';

const N = sized(1200, 200);
let stack: RStack;
const childLines: string[] = [];
const children = new Set<ChildProcess>();

function startWorker(): ChildProcess {
  return startWorkerProcess(
    stack,
    ['--concurrency', '5', '--visibility-ms', '3000', '--poll-ms', '50', '--max-finalize-delay-ms', '1000'],
    { env: { LOG_LEVEL: 'debug' }, lines: childLines, children },
  );
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function job(crawlId: string) {
  const j = await stack.rt.pipeline.state.jobs.get(stack.connectionId, crawlId);
  return j ? withLiveCounts(stack.rt.pipeline.state, j) : undefined;
}

/** Run a crawl with the worker killed once mid-ingest and started again; returns the finished job. */
async function crawlWithKill(records: Record<string, unknown>[], changed: number) {
  await stack.writeRecords(jsonl(records));
  const start = await startCrawl(stack.rt.pipeline, { mode: 'full', trigger: 'cli' });
  if (start.status !== 'started') throw new Error(`crawl did not start: ${JSON.stringify(start)}`);
  const w1 = startWorker();
  // Kill once the enumeration is done and a quarter of the changed items reached Graph.
  await waitFor('the ingest to be under way', async () => {
    const j = await job(start.crawlId);
    if (!j) return undefined;
    if (j.status === 'completed') throw new Error('the crawl completed before the worker could be killed');
    return j.status !== 'running' && j.counts.ingested >= changed / 4 ? j : undefined;
  });
  await killChild(w1, 'SIGKILL');
  const atKill = (await job(start.crawlId))!;
  expect(atKill.status).not.toBe('completed');
  const w2 = startWorker();
  const done = await waitFor('the crawl to finish', async () => {
    const j = await job(start.crawlId);
    return j && (j.status === 'completed' || j.status === 'failed') ? j : undefined;
  });
  expect(await killChild(w2, 'SIGTERM')).toBe(0);
  return { crawlId: start.crawlId, done, ingestedAtKill: atKill.counts.ingested };
}

beforeAll(async () => {
  if (!existsSync(join(ROOT, 'dist', 'src', 'cli', 'commands', 'worker.js'))) {
    throw new Error('the worker runs from the build: run `npm run build` first (npm run test:reliability does)');
  }
  stack = await startReliabilityStack({ emulator: { latencyMs: 40 } });
});
afterAll(async () => {
  for (const c of children) await killChild(c, 'SIGKILL');
  await stack?.close();
});

let externalGroups: Set<string> | undefined;

async function mapAll(records: Record<string, unknown>[]): Promise<Map<string, ExternalItem>> {
  externalGroups ??= await sourceGroupIds(stack);
  const out = new Map<string, ExternalItem>();
  for (const data of records) {
    const m = stack.rt.pipeline.mapper.map({ key: String(data.ticketId), data }, { externalGroups });
    if (!m.ok) throw new Error(`test data rejected: ${m.reason.message}`);
    out.set(m.item.id, m.item);
  }
  return out;
}

async function expectGraphEquals(expected: Map<string, ExternalItem>) {
  const actual = await stack.emulatorItems();
  const missing = [...expected.keys()].filter((id) => !actual.has(id));
  const extra = [...actual.keys()].filter((id) => !expected.has(id));
  const stale = [...expected].filter(
    ([id, item]) =>
      actual.has(id) &&
      (JSON.stringify(actual.get(id)!.properties) !== JSON.stringify(item.properties) ||
        JSON.stringify(actual.get(id)!.acl) !== JSON.stringify(item.acl)),
  );
  expect(missing, 'missing from Graph').toEqual([]);
  expect(extra, 'extra in Graph').toEqual([]);
  expect(
    stale.map(([id]) => id),
    'items whose Graph version is not the source version',
  ).toEqual([]);
  return missing.length;
}

describe('the ingest worker killed mid-run (SIGKILL) and restarted', () => {
  let firstCrawlId = '';
  const v1 = Array.from({ length: N }, (_, i) => ticket(i, 0));

  it(`completes a ${N}-item crawl with nothing lost`, async () => {
    await stack.takeItemRequests();
    const r = await crawlWithKill(v1, N);
    firstCrawlId = r.crawlId;
    expect(r.done.status, r.done.error).toBe('completed');
    expect(r.done.counts.ingested).toBe(N);
    expect(r.done.counts.deadLettered).toBe(0);
    const lost = await expectGraphEquals(await mapAll(v1));
    const log = await stack.takeItemRequests();
    await reportFigures('worker SIGKILL, first crawl', {
      items: N,
      faultsInjected: 1,
      retries: log.filter((q) => q.method === 'PUT').length - N,
      deadLetters: r.done.counts.deadLettered,
      lost,
      note: `killed after ${r.ingestedAtKill} of ${N} settled; re-sent after the kill: ${log.filter((q) => q.method === 'PUT').length - N}`,
    });
  });

  it('a second crawl with a third of the records changed, killed again, ends with every newer version', async () => {
    const v2 = v1.map((r, i) => (i % 3 === 0 ? ticket(i, 1) : r));
    const changed = Math.ceil(N / 3);
    await stack.takeItemRequests();
    const r = await crawlWithKill(v2, changed);
    expect(r.done.status, r.done.error).toBe('completed');
    expect(r.done.counts.ingested).toBe(changed);
    expect(r.done.counts.unchanged).toBe(N - changed);
    const lost = await expectGraphEquals(await mapAll(v2));
    const log = await stack.takeItemRequests();
    await reportFigures('worker SIGKILL, changed records', {
      items: N,
      faultsInjected: 1,
      retries: log.filter((q) => q.method === 'PUT').length - changed,
      deadLetters: r.done.counts.deadLettered,
      lost,
      note: `killed after ${r.ingestedAtKill} of ${changed} changed items settled`,
    });

    // An older crawl's message for a changed item, delivered late (a killed worker's message reappearing):
    // it must not reach Graph, and Graph keeps the newer version.
    const old = (await mapAll([v1[0]!])).values().next().value!;
    const deps = stack.rt.pipeline;
    await deps.state.queue.send({
      v: 1,
      op: 'upsert',
      connectionId: stack.connectionId,
      itemId: old.id,
      crawlId: firstCrawlId,
      generation: 1,
      hash: itemHash(old),
      attempt: 0,
      item: old,
    });
    const outcomes: string[] = [];
    await runWorker(deps, {
      concurrency: 1,
      pollMs: 20,
      stopWhen: async () => Promise.resolve(true),
      onOutcome: (o) => outcomes.push(o.outcome),
    });
    expect(outcomes).toEqual(['superseded']);
    expect((await stack.takeItemRequests()).filter((q) => q.method === 'PUT')).toEqual([]);
    await expectGraphEquals(await mapAll(v2));
  });

  it('a stop signal during a queue poll is a clean stop (regression: SIGTERM made the worker exit 1)', async () => {
    // pollMs 1 on empty queues: the loop spends nearly all its time inside a storage receive when the abort lands.
    for (let i = 0; i < 5; i++) {
      const ac = new AbortController();
      const run = runWorker(stack.rt.pipeline, {
        concurrency: 5,
        pollMs: 1,
        abortSignal: ac.signal,
        stopWhen: () => Promise.resolve(false),
      });
      await sleep(150 + i * 37);
      ac.abort(new Error('interrupted'));
      await expect(run).resolves.toMatchObject({ operations: 0 });
    }
  });

  it('logged no secret value (the worker processes and this one)', () => {
    expect(childLines.length).toBeGreaterThan(0);
    expectNoSecrets([...childLines, ...stack.logger.lines], stack.secrets());
  });
});
