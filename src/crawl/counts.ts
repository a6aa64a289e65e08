/**
 * A crawl's counts: the enumeration's (records read, unchanged, rejected, moved) are exact at every committed page
 * of the checkpoint; the operations' (enqueued, ingested, deleted, dead-lettered, superseded, still pending) are
 * exact in the ledger's touch rows. A finished job has both folded into its row.
 *
 * For every finished crawl:
 *   enumerated = (enqueued − sweep deletes) + unchanged + rejected        each record in exactly one bucket
 *   enqueued   = ingested + deleted + deadLettered + superseded           each operation settled once
 */
import type { OperationOptions } from '../core/async.js';
import type { StateLayer } from '../state/index.js';
import { zeroTouchCounts } from '../state/items.js';
import { zeroCounts, type CrawlCounts, type CrawlJob } from '../state/jobs.js';

export async function liveCounts(
  state: StateLayer,
  job: CrawlJob,
  options: OperationOptions = {},
): Promise<CrawlCounts> {
  if (job.countsFinal) return job.counts;
  const t = sentNothing(job) ? zeroTouchCounts() : await state.items.counts(job.connectionId, job.crawlId, options);
  const cp = job.checkpoint;
  return {
    ...zeroCounts(),
    enumerated: cp.enumerated,
    unchanged: cp.unchanged,
    rejected: cp.rejected,
    moved: cp.moved,
    enqueued: t.enqueued,
    pending: t.pending,
    ingested: t.ingested,
    deleted: t.deleted,
    deadLettered: t.deadLettered,
    superseded: t.superseded,
  };
}

/**
 * The crawl read its source to the end and sent no operation (a recrawl with no change), and never resumed from an
 * interruption (which could have left an operation of a page read twice): it has no touch rows to count or fold.
 */
export function sentNothing(job: CrawlJob): boolean {
  const cp = job.checkpoint;
  return job.status === 'enumerated' && cp.done && cp.enqueued === 0 && cp.resumed === 0;
}

/** Operations of the crawl not settled yet. */
export function outstandingOf(c: CrawlCounts): number {
  return c.pending;
}

/** A job with live counts (finished jobs carry their own). */
export async function withLiveCounts(
  state: StateLayer,
  job: CrawlJob,
  options: OperationOptions = {},
): Promise<CrawlJob> {
  return job.countsFinal ? job : { ...job, counts: await liveCounts(state, job, options) };
}
