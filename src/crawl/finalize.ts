/**
 * Finishing a crawl (the `finalize` control message): wait — by re-enqueueing itself with a growing delay, never by
 * sleeping — until every operation the crawl sent has settled; then, for a full crawl that read its source to the
 * end, sweep (delete what the crawl did not see, under the ratio guard) and wait again; commit the watermark of an
 * incremental crawl; fold the crawl's outcome into the next snapshot; finish the job and free the connection.
 */
import type { OperationOptions } from '../core/async.js';
import type { CrawlCounts, CrawlJob } from '../state/jobs.js';
import { getBit, type Snapshot } from '../state/snapshot.js';
import { liveCounts, sentNothing } from './counts.js';
import { sendDeletes } from './deletes.js';
import type { PipelineDeps } from './deps.js';
import { restoreSeen } from './seen.js';
import { foldTouches } from './snapshot.js';
import { failCrawl, readRequestOptions, releaseLease, renewLease, requestKey, WATERMARK_CURSOR } from './start.js';
import { decideSweep } from './sweep-guard.js';
import { observeQueueDepth, recordCrawlEnd } from './telemetry.js';

export interface FinalizeResult {
  status: 'waiting' | 'sweeping' | 'completed' | 'skipped' | 'failed';
  outstanding?: number;
  sweep?: { allowed: boolean; reason: string; deletes: number };
  job?: CrawlJob;
}

/** Operations sent by a sweep go out in batches of this many. */
const SWEEP_BATCH = 500;

export async function finalizeCrawl(
  deps: PipelineDeps,
  crawlId: string,
  checks: number,
  options: OperationOptions = {},
): Promise<FinalizeResult> {
  const { connectionId, state, logger } = deps;
  const job = await state.jobs.get(connectionId, crawlId, options);
  if (!job || (job.status !== 'enumerated' && job.status !== 'settling')) return { status: 'skipped' };
  const counts = await liveCounts(state, job, options);
  if (counts.pending > 0) {
    await state.jobs.heartbeat(connectionId, crawlId, options).catch(() => undefined);
    await renewLease(deps, crawlId, options).catch((err: Error) =>
      logger.warn('crawl lease renewal failed', { crawlId, error: err.message }),
    );
    const delay = Math.min(deps.settings.maxFinalizeDelayMs, deps.settings.finalizeDelayMs * 2 ** Math.min(checks, 10));
    await deps.control.send(
      { v: 1, kind: 'finalize', connectionId, crawlId, checks: checks + 1 },
      { visibilityDelayMs: delay, ...options },
    );
    deps.onProgress?.({ ...progress(job, counts), phase: 'settling' });
    await observeQueueDepth(deps, options);
    return { status: 'waiting', outstanding: counts.pending, job: { ...job, counts } };
  }

  const request = await readRequestOptions(deps, crawlId, options);
  let notes = job.notes ?? [];
  if (job.status === 'enumerated' && job.mode === 'full') {
    const snapshot = await state.snapshots.load(connectionId, job.checkpoint.snapshot, options);
    const seen = await restoreSeen(deps, snapshot, job.checkpoint, options);
    let unseen = 0;
    for (let i = 0; i < snapshot.count; i++) if (!getBit(seen, i)) unseen++;
    const decision = decideSweep({
      enumerationComplete: job.checkpoint.done,
      outstanding: 0,
      deadLettered: counts.deadLettered,
      ledgerCount: snapshot.count,
      candidates: unseen,
      maxDeleteRatio: deps.settings.maxDeleteRatio,
      force: request.force,
    });
    if (decision.allowed && unseen > 0) {
      deps.onProgress?.({ ...progress(job, counts), phase: 'sweeping' });
      const deletes = await sendSweep(deps, job, snapshot, seen, options);
      await state.jobs.update(connectionId, crawlId, () => ({ status: 'settling' }), options);
      await deps.control.send(
        { v: 1, kind: 'finalize', connectionId, crawlId, checks: 0 },
        { visibilityDelayMs: deps.settings.finalizeDelayMs, ...options },
      );
      logger.info('sweep: deleting items the crawl did not see', {
        connectionId,
        crawlId,
        deletes,
        reason: decision.reason,
      });
      return { status: 'sweeping', sweep: { allowed: true, reason: decision.reason, deletes }, job };
    }
    if (!decision.allowed) {
      logger.warn('sweep refused', { connectionId, crawlId, reason: decision.reason });
      notes = [...notes, `sweep skipped: ${decision.reason}`];
      await state.jobs.update(
        connectionId,
        crawlId,
        () => ({ error: `sweep skipped: ${decision.reason}`, notes }),
        options,
      );
    }
  }

  let cursorAfter: string | undefined;
  if (job.mode === 'incremental' && job.cursorAfter) {
    const current = await state.cursors.get(connectionId, WATERMARK_CURSOR, options);
    if ((current?.value ?? undefined) !== job.cursorBefore) {
      await failCrawl(deps, crawlId, 'the watermark changed while this crawl ran (another crawl committed one)');
      return { status: 'failed' };
    }
    await state.cursors.commit(connectionId, job.cursorAfter, current?.etag, { crawlId, ...options });
    cursorAfter = job.cursorAfter;
  }

  // The counts go into the job before the touch rows they come from are folded away.
  const final = await liveCounts(state, job, options);
  await state.jobs.update(connectionId, crawlId, () => ({ counts: final, countsFinal: true }), options);
  // A crawl that sent nothing has nothing to fold (what settled before it was folded when it started).
  let fold: Awaited<ReturnType<typeof foldTouches>>;
  if (!sentNothing(job)) {
    const pointer = await state.snapshots.current(connectionId, options);
    const base = await state.snapshots.load(connectionId, pointer?.ref, options);
    fold = await foldTouches(deps, base, pointer, { crawlId, ...options });
  }
  if (fold)
    logger.info('snapshot updated', {
      connectionId,
      crawlId,
      version: fold.ref.version,
      items: fold.ref.count,
      changed: fold.changed,
    });
  const finished = await state.jobs.finish(connectionId, crawlId, 'completed', final, {
    ...(cursorAfter ? { cursorAfter } : {}),
    ...options,
  });
  if (job.mode === 'full' && job.checkpoint.done && !request.itemIds) {
    const pruned = await state.deadLetters.pruneRejections(connectionId, crawlId, options).catch(() => 0);
    if (pruned) logger.info('rejections of records since fixed or gone removed', { connectionId, removed: pruned });
  }
  await releaseLease(deps, crawlId);
  await state.cursors.delete(connectionId, requestKey(crawlId)).catch(() => undefined);
  await state.snapshots.deleteCrawlBlobs(connectionId, crawlId).catch(() => undefined);
  deps.onProgress?.({ ...progress(finished, final), phase: 'finished' });
  recordCrawlEnd(deps, finished);
  await observeQueueDepth(deps, options);
  logger.info('crawl completed', { connectionId, crawlId, counts: final });
  return { status: 'completed', job: finished };
}

function progress(job: CrawlJob, c: CrawlCounts) {
  return {
    crawlId: job.crawlId,
    enumerated: c.enumerated,
    enqueued: c.enqueued,
    unchanged: c.unchanged,
    rejected: c.rejected,
    pages: job.checkpoint.pages,
  };
}

/** Mark the unseen snapshot items pending deletion by this crawl and send their deletes. */
async function sendSweep(
  deps: PipelineDeps,
  job: CrawlJob,
  snapshot: Snapshot,
  seen: Uint8Array,
  options: OperationOptions,
): Promise<number> {
  const { state } = deps;
  let batch: string[] = [];
  let sent = 0;
  const flush = async () => {
    if (!batch.length) return;
    sent += await sendDeletes(deps, job, batch, options);
    batch = [];
  };
  let i = 0;
  for await (const id of state.snapshots.ids(snapshot, options)) {
    if (!getBit(seen, i)) {
      batch.push(id);
      if (batch.length >= SWEEP_BATCH) await flush();
    }
    i++;
  }
  await flush();
  return sent;
}
