/** What `GET /api/status` and `graph-connector status` show, and dead-letter replay. */
import { parseItemMessage } from '../state/item-queue.js';
import type { CrawlJob } from '../state/ledger.js';
import type { ReplayRequest } from './http/requests.js';
import type { Runtime } from './runtime.js';

export interface StatusReport {
  connectionId: string;
  provisioning: { phase: string; progress: string; lastError?: string; updatedAt: string } | null;
  runningCrawl: { crawlId?: string; holder: string; since: string; expiresAt: string; expired: boolean } | null;
  jobs: Omit<CrawlJob, 'etag'>[];
  itemsQueueDepth: number;
  deadLetters: { count: number; capped: boolean };
}

export async function statusReport(rt: Runtime, options: { jobs?: number } = {}): Promise<StatusReport> {
  const { pipeline } = rt;
  const cid = pipeline.connectionId;
  const [prov, holder, jobs, depth] = await Promise.all([
    rt.provisionStore.get(cid),
    pipeline.state.leases.holder(cid),
    pipeline.state.ledger.listJobs(cid, options.jobs ?? 5),
    pipeline.state.queue.approximateCount().catch(() => -1),
  ]);
  let count = 0;
  const cap = 1000;
  for await (const _ of pipeline.state.deadLetters.list(cid)) {
    if (++count >= cap) break;
  }
  return {
    connectionId: cid,
    provisioning: prov
      ? {
          phase: prov.state.phase,
          progress: prov.state.progress,
          updatedAt: prov.state.updatedAt,
          ...(prov.state.lastError ? { lastError: prov.state.lastError } : {}),
        }
      : null,
    runningCrawl: holder ?? null,
    jobs: jobs.map(({ etag: _etag, ...j }) => j),
    itemsQueueDepth: depth,
    deadLetters: { count, capped: count >= cap },
  };
}

export interface ReplayResult {
  replayed: number;
  skipped: { key: string; itemId: string; reason: string }[];
}

/**
 * Re-enqueue dead-lettered item operations (by crawl, by item id, or all). The replayed operation goes through
 * the normal ingest path; a newer version settled meanwhile makes it a no-op. Rejected records are not
 * replayable: fix them at the source, the next crawl reads them again.
 */
export async function replayDeadLetters(
  rt: Runtime,
  request: ReplayRequest,
  signal?: AbortSignal,
): Promise<ReplayResult> {
  const { state, connectionId } = rt.pipeline;
  const wanted = request.itemIds ? new Set(request.itemIds) : undefined;
  const result: ReplayResult = { replayed: 0, skipped: [] };
  const matches = [];
  for await (const dl of state.deadLetters.list(connectionId, {
    ...(request.crawlId ? { crawlId: request.crawlId } : {}),
    ...(signal ? { abortSignal: signal } : {}),
  })) {
    if (wanted && !wanted.has(dl.itemId)) continue;
    matches.push(dl);
  }
  for (const dl of matches) {
    if (dl.op === 'reject') {
      result.skipped.push({
        key: dl.key,
        itemId: dl.itemId,
        reason: 'a rejected source record: fix it at the source; the next crawl reads it again',
      });
      continue;
    }
    const body = await state.deadLetters.body(dl, signal);
    if (!body) {
      result.skipped.push({
        key: dl.key,
        itemId: dl.itemId,
        reason: 'the dead letter kept no message body to replay; run a resync of this item',
      });
      continue;
    }
    let msg;
    try {
      msg = parseItemMessage(body);
    } catch (err) {
      result.skipped.push({
        key: dl.key,
        itemId: dl.itemId,
        reason: `the stored message is unreadable (${(err as Error).message})`,
      });
      continue;
    }
    const { notBefore: _nb, ...rest } = msg;
    await state.queue.send({ ...rest, attempt: 0 }, signal ? { abortSignal: signal } : {});
    await state.deadLetters.remove(connectionId, dl.key, signal);
    result.replayed++;
  }
  return result;
}
