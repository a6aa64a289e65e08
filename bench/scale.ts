/**
 * The scale figures of the benchmark: a first enumeration whose worker is SIGKILLed at random and started again
 * (pages re-read, lost, duplicated, counts), and the storage calls one item operation costs end to end.
 */
import { spawn } from 'node:child_process';
import { AsyncLocalStorage } from 'node:async_hooks';
import { readFileSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runSlice } from '../src/crawl/enumerate.js';
import { startCrawl } from '../src/crawl/start.js';
import { ingestItem } from '../src/ingest/ingest.js';
import { itemKeyOf } from '../src/state/keys.js';
import { ROOT, writeTickets, type World } from './world.js';

/** The item queue's batch size under the host (host.json), which sets the receive's share per item. */
function hostBatchSize(): number {
  const host = JSON.parse(readFileSync(join(ROOT, 'host.json'), 'utf8')) as {
    extensions?: { queues?: { batchSize?: number } };
  };
  return host.extensions?.queues?.batchSize ?? 16;
}

export interface ResumeFigures {
  records: number;
  kills: number;
  completed: boolean;
  seconds: number;
  pagesRead: number;
  pagesCommitted: number;
  pagesReRead: number;
  enumerated: number;
  /** Operations in the ledger (touch rows): one per item. */
  enqueued: number;
  /** Records whose item has no operation. */
  lost: number;
  /** Items with more than one operation of the crawl. */
  duplicated: number;
  /** Queue messages beyond one per item: sent twice around a kill; the fence drops the second (no write). */
  extraMessages: number;
  countsExact: boolean;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * A first enumeration of `n` records (items only enqueued; no Graph side) whose enumerating process is SIGKILLed
 * `kills` times at random moments, each time started again, until the crawl is enumerated.
 */
export async function resumeScenario(
  world: World,
  n: number,
  kills: number,
  log: (m: string) => void,
): Promise<ResumeFigures> {
  const path = join(world.dir, `RES${n}.jsonl`);
  await writeTickets(path, 'RES', n);
  const env = await world.envFor(path);
  const rt = await world.runtime(env);
  const { pipeline } = rt;
  const started = await startCrawl(pipeline, { mode: 'full', trigger: 'cli' });
  if (started.status !== 'started') throw new Error('the resume crawl did not start');
  const pagesLog = join(world.dir, `pages-${started.crawlId}.log`);
  await writeFile(pagesLog, '');
  const t0 = performance.now();
  let killed = 0;
  for (let run = 0; ; run++) {
    const child = spawn(process.execPath, [join(import.meta.dirname, 'child.js'), 'enumerate', pagesLog], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    if (killed < kills) {
      // Somewhere in the next 3–25 s: early pages, mid-page sends, checkpoint writes alike.
      const at = 3_000 + Math.random() * 22_000;
      const outcome = await Promise.race([exited.then(() => 'exited' as const), sleep(at).then(() => 'due' as const)]);
      if (outcome === 'due') {
        child.kill('SIGKILL');
        await exited;
        killed++;
        log(`  resume: enumerating worker SIGKILLed after ${(at / 1000).toFixed(1)} s (kill ${killed} of ${kills})`);
        continue;
      }
    }
    const code = await exited;
    if (code !== 0) throw new Error(`the enumerating worker exited ${code}: ${err.slice(-2000)}`);
    break;
  }
  const seconds = (performance.now() - t0) / 1000;
  const job = (await pipeline.state.jobs.get(pipeline.connectionId, started.crawlId))!;
  const pagesRead = (await readFile(pagesLog, 'utf8')).split('\n').filter(Boolean).length;
  // Every record's item must have exactly one operation of this crawl.
  const keys = new Map<string, number>();
  for await (const t of pipeline.state.items.touches(pipeline.connectionId, { crawlId: started.crawlId }))
    keys.set(t.key, (keys.get(t.key) ?? 0) + 1);
  let lost = 0;
  for (let i = 0; i < n; i++) if (!keys.has(itemKeyOf(`RES${String(i).padStart(7, '0')}`).key)) lost++;
  const duplicated = [...keys.values()].filter((c) => c > 1).length;
  const counts = await pipeline.state.items.counts(pipeline.connectionId, started.crawlId);
  const messages = await pipeline.state.queue.approximateCount();
  const cp = job.checkpoint;
  return {
    records: n,
    kills: killed,
    completed: job.status === 'enumerated' && cp.done,
    seconds,
    pagesRead,
    pagesCommitted: cp.pages,
    pagesReRead: pagesRead - cp.pages,
    enumerated: cp.enumerated,
    enqueued: counts.enqueued,
    lost,
    duplicated,
    extraMessages: messages - n,
    countsExact: cp.enumerated === n && cp.unchanged === 0 && cp.rejected === 0 && counts.enqueued === n && lost === 0,
  };
}

export interface IngestCallsFigures {
  items: number;
  storageCalls: number;
  perItem: number;
  byKind: Record<string, number>;
}

/**
 * Storage calls per item operation, end to end, as the Functions host spends them: the queue receive (a batch of
 * host.json's `batchSize`), the operation itself (fence, settle, claim), the message delete. The enumeration is run
 * first and not counted; Graph (the emulator) answers at once.
 */
export async function ingestCallsScenario(world: World, n: number): Promise<IngestCallsFigures> {
  const path = join(world.dir, `CALLS${n}.jsonl`);
  await writeTickets(path, 'CALLS', n);
  const env = await world.envFor(path);
  const counting = new AsyncLocalStorage<boolean>();
  let calls = 0;
  const byKind: Record<string, number> = {};
  const rt = await world.runtime(env, {
    onStorageRequest: (service, method, url) => {
      if (!counting.getStore()) return;
      calls++;
      const what =
        `${service} ${method} ${/\/messages/.test(url) ? 'message' : /\$batch/.test(url) ? 'transaction' : ''}`.trim();
      byKind[what] = (byKind[what] ?? 0) + 1;
    },
  });
  await world.admin('settings', {
    method: 'PATCH',
    body: { latencyMs: 0, rateLimit: 0, maxConcurrency: 25, faultRate: 0 },
  });
  const { pipeline } = rt;
  const started = await startCrawl(pipeline, { mode: 'full', trigger: 'cli' });
  if (started.status !== 'started') throw new Error('the calls crawl did not start');
  for (;;) {
    const [m] = await pipeline.control.receive(1, 60_000);
    if (!m?.message) continue;
    if (m.message.kind !== 'crawl') break;
    const r = await runSlice(pipeline, started.crawlId, { slice: m.message.slice });
    await pipeline.control.delete(m);
    if (r.status === 'enumerated') break;
  }
  await world.takeItemRequests();
  let done = 0;
  await counting.run(true, async () => {
    while (done < n) {
      const batch = await pipeline.state.queue.receive(hostBatchSize(), 60_000);
      if (!batch.length) {
        await sleep(20);
        continue;
      }
      await Promise.all(
        batch.map(async (m) => {
          await ingestItem(pipeline, {
            payload: m.message ?? m.text,
            messageId: m.messageId,
            dequeueCount: m.dequeueCount,
          });
          await pipeline.state.queue.delete(m);
          done++;
        }),
      );
    }
  });
  // Empty polls at the end are not an item's cost.
  return { items: n, storageCalls: calls, perItem: calls / n, byKind };
}
