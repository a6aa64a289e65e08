/** What `GET /api/status`, `GET /api/jobs/{id}` and `graph-connector status` show, and dead-letter replay. */
import type { OperationOptions } from '../core/async.js';
import { messageOf } from '../core/errors.js';
import { withLiveCounts } from '../crawl/counts.js';
import { MAX_ACTIVITIES_PER_CALL } from '../graph/client.js';
import { toGraphActivity } from '../ingest/ingest.js';
import type { DeadLetter } from '../state/dead-letters.js';
import type { StateLayer } from '../state/index.js';
import type { CrawlJob } from '../state/jobs.js';
import { parseItemMessage, parseMessageActivities, type MessageActivity } from '../state/queues/items.js';
import type { ReplayRequest } from './http.js';
import type { Runtime } from './runtime.js';

/** A crawl job as the status API shows it: live counts, and the enumeration's progress. */
export interface JobView extends Omit<CrawlJob, 'etag' | 'checkpoint'> {
  progress: {
    /** Enumeration slices started and pages committed. */
    slices: number;
    pages: number;
    /** The source was read to the end. */
    enumerated: boolean;
    /** Where the source is, when it can tell (bytes of a file, pages of a REST source). */
    source?: { done: number; total?: number; unit: string; percent?: number };
    /** Records read per second of enumeration time. */
    recordsPerSecond?: number;
    /** Seconds of enumeration left, when the source knows its size. */
    etaSeconds?: number;
    /** The snapshot the crawl diffs against. */
    snapshot?: { version: number; items: number };
  };
}

export async function jobView(state: StateLayer, job: CrawlJob, options: OperationOptions = {}): Promise<JobView> {
  const live = await withLiveCounts(state, job, options);
  const { etag: _etag, checkpoint: cp, ...rest } = live;
  const rate = cp.enumMs > 0 ? (cp.enumerated * 1000) / cp.enumMs : undefined;
  const p = cp.progress;
  const percent = p?.total ? Math.min(100, (100 * p.done) / p.total) : undefined;
  // ETA: the share of the source still to read, at the rate the enumeration has gone so far.
  const eta =
    !cp.done && p?.total && p.done > 0 && cp.enumMs > 0 ? ((p.total - p.done) * cp.enumMs) / p.done / 1000 : undefined;
  return {
    ...rest,
    progress: {
      slices: cp.slice + 1,
      pages: cp.pages,
      enumerated: cp.done,
      ...(p ? { source: { ...p, ...(percent !== undefined ? { percent: Math.round(percent * 10) / 10 } : {}) } } : {}),
      ...(rate !== undefined ? { recordsPerSecond: Math.round(rate) } : {}),
      ...(eta !== undefined ? { etaSeconds: Math.round(eta) } : {}),
      ...(cp.snapshot ? { snapshot: { version: cp.snapshot.version, items: cp.snapshot.count } } : {}),
    },
  };
}

export interface StatusReport {
  connectionId: string;
  provisioning: { phase: string; progress: string; lastError?: string; updatedAt: string } | null;
  runningCrawl: { crawlId?: string; holder: string; since: string; expiresAt: string; expired: boolean } | null;
  jobs: JobView[];
  /** Items Graph holds, as the current snapshot says (null before the first finished crawl). */
  items: { count: number; snapshotVersion: number; updatedAt: string } | null;
  itemsQueueDepth: number;
  deadLetters: { count: number; capped: boolean };
}

export async function statusReport(rt: Runtime, options: { jobs?: number } = {}): Promise<StatusReport> {
  const { pipeline } = rt;
  const cid = pipeline.connectionId;
  const [prov, holder, jobs, depth, snapshot] = await Promise.all([
    rt.provisionStore.get(cid),
    pipeline.state.leases.holder(cid),
    pipeline.state.jobs.list(cid, options.jobs ?? 5),
    pipeline.state.queue.approximateCount().catch(() => -1),
    pipeline.state.snapshots.current(cid).catch(() => undefined),
  ]);
  const views = await Promise.all(jobs.map((j) => jobView(pipeline.state, j)));
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
    jobs: views,
    items: snapshot
      ? { count: snapshot.ref.count, snapshotVersion: snapshot.ref.version, updatedAt: snapshot.ref.createdAt }
      : null,
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
 * the normal ingest path; a newer version settled meanwhile makes it a no-op. Dead-lettered activities are sent
 * to Graph again directly (their item is already there). Rejected records are not replayable: fix them at the
 * source, the next crawl reads them again.
 */
export async function replayDeadLetters(
  rt: Runtime,
  request: ReplayRequest,
  options: OperationOptions & {
    /** Narrow the dead letters the request selects further (the CLI's --code and --op). */
    where?: (dl: DeadLetter) => boolean;
  } = {},
): Promise<ReplayResult> {
  const { where, ...opts } = options;
  const { state, connectionId } = rt.pipeline;
  const wanted = request.itemIds ? new Set(request.itemIds) : undefined;
  const result: ReplayResult = { replayed: 0, skipped: [] };
  const matches = [];
  for await (const dl of state.deadLetters.list(connectionId, {
    ...(request.crawlId ? { crawlId: request.crawlId } : {}),
    ...opts,
  })) {
    if (wanted && !wanted.has(dl.itemId)) continue;
    if (where && !where(dl)) continue;
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
    if (dl.op === 'activities') {
      const why = await replayActivities(rt, dl, opts);
      if (why) result.skipped.push({ key: dl.key, itemId: dl.itemId, reason: why });
      else result.replayed++;
      continue;
    }
    const body = await state.deadLetters.body(dl, opts);
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
    const { etag: _etag, ...fresh } = rest;
    await state.queue.send({ ...fresh, attempt: 0 }, opts);
    await state.deadLetters.remove(connectionId, dl.key, opts);
    result.replayed++;
  }
  return result;
}

/**
 * Send a dead letter's activities again (straight to Graph: the item is already there); remove it when Graph took
 * them all. Returns why not, or undefined.
 */
async function replayActivities(rt: Runtime, dl: DeadLetter, options: OperationOptions): Promise<string | undefined> {
  const { state, connectionId } = rt.pipeline;
  const text = await state.deadLetters.body(dl, options);
  let activities: MessageActivity[];
  try {
    const body = JSON.parse(text ?? 'null') as { activities?: unknown };
    activities = parseMessageActivities(body?.activities);
  } catch (err) {
    return `the stored activities are unreadable (${(err as Error).message})`;
  }
  let failed = 0;
  let first: string | undefined;
  for (let i = 0; i < activities.length; i += MAX_ACTIVITIES_PER_CALL) {
    const chunk = activities.slice(i, i + MAX_ACTIVITIES_PER_CALL);
    try {
      const results = await rt.graph.addActivities(connectionId, dl.itemId, chunk.map(toGraphActivity), options);
      for (const r of results)
        if (r.error) {
          failed++;
          first ??= `${r.error.code ?? 'error'}: ${r.error.message ?? ''}`;
        }
    } catch (err) {
      failed += chunk.length;
      first ??= messageOf(err);
    }
  }
  if (failed)
    return `${failed} of ${activities.length} activities were refused again (${first}); the dead letter stays`;
  await state.deadLetters.remove(connectionId, dl.key, options);
  return undefined;
}
