/**
 * Starting and stopping a crawl: the connection's lease (one crawl per connection, on one machine or many), the
 * generation of a full crawl, the job row, the first slice's message; and failing a crawl (nothing deleted, the
 * watermark kept, the lease freed, the counts as far as it got).
 */
import type { OperationOptions } from '../core/async.js';
import { ConnectorError, messageOf } from '../core/errors.js';
import type { CrawlMode, CrawlTrigger } from '../state/jobs.js';
import { newCrawlId } from '../state/jobs.js';
import type { Lease, LeaseHolder } from '../state/lease.js';
import { liveCounts } from './counts.js';
import type { PipelineDeps } from './deps.js';
import { recordCrawlEnd } from './telemetry.js';

export interface StartCrawlRequest {
  mode: CrawlMode;
  trigger: CrawlTrigger;
  /** Mode `items`: only records whose item id (or source key) is listed. */
  itemIds?: string[];
  /** Re-PUT items even when their hash is unchanged; let the sweep pass the ratio guard. */
  force?: boolean;
}

export type StartCrawlResult =
  | { status: 'started'; crawlId: string; generation: number }
  | { status: 'busy'; crawlId?: string; holder: string; since: string; expiresAt: string };

export const GENERATION_CURSOR = 'generation';
export const WATERMARK_CURSOR = 'default';
const LEASE_NAME = 'crawl';

/** Crawl options that travel with the job (the job row keeps mode/trigger; these ride in a small cursor row). */
export interface CrawlRequestOptions {
  force: boolean;
  itemIds?: string[];
}

export function requestKey(crawlId: string): string {
  return `request-${crawlId}`;
}

export class CrawlError extends ConnectorError {
  override name = 'CrawlError';
  constructor(message: string, code = 'CrawlFailed') {
    super(message, { code });
  }
}

/**
 * Start a crawl: take the connection's lease (or report who holds it), allocate the generation, record the job,
 * and enqueue the first enumeration slice. Returns at once.
 */
export async function startCrawl(
  deps: PipelineDeps,
  request: StartCrawlRequest,
  options: OperationOptions = {},
): Promise<StartCrawlResult> {
  const { connectionId, state } = deps;
  const crawlId = newCrawlId(deps.now());
  const acquired = await state.leases.acquire(connectionId, {
    holder: deps.settings.holder,
    ttlMs: deps.settings.leaseTtlMs,
    crawlId,
    name: LEASE_NAME,
    ...options,
  });
  if (!acquired.ok) return busy(acquired.heldBy);
  const lease = acquired.lease;
  try {
    // Holding the lease means no other crawl of this connection is alive: a job still marked active was
    // orphaned (its worker died and its lease expired). Close it, so status never shows a ghost crawl.
    for (const orphan of await state.jobs.listStale(connectionId, 0, options)) {
      await closeJob(deps, orphan.crawlId, 'failed', {
        error: `abandoned: its worker stopped and its lease expired (taken over by crawl ${crawlId}); nothing was deleted and the watermark was not moved`,
      });
      deps.logger.warn('orphaned crawl closed', { connectionId, crawlId: orphan.crawlId, takenOverBy: crawlId });
    }
    const previous = await state.cursors.get(connectionId, GENERATION_CURSOR, options);
    const previousGeneration = previous ? Number(previous.value) || 0 : 0;
    // A full crawl gets a new generation number (shown on jobs), allocated up front.
    const generation = request.mode === 'full' ? previousGeneration + 1 : previousGeneration;
    if (request.mode === 'full')
      await state.cursors.commit(connectionId, String(generation), previous?.etag, {
        name: GENERATION_CURSOR,
        crawlId,
        ...options,
      });
    const watermark =
      request.mode === 'incremental' ? await state.cursors.get(connectionId, WATERMARK_CURSOR, options) : undefined;
    const requestOptions: CrawlRequestOptions = {
      force: request.force ?? false,
      ...(request.itemIds ? { itemIds: request.itemIds } : {}),
    };
    await state.cursors.commit(connectionId, JSON.stringify(requestOptions), undefined, {
      name: requestKey(crawlId),
      crawlId,
      ...options,
    });
    await state.jobs.create(
      {
        connectionId,
        crawlId,
        mode: request.mode,
        trigger: request.trigger,
        generation,
        ...(watermark ? { cursorBefore: watermark.value } : {}),
      },
      options,
    );
    await deps.control.send({ v: 1, kind: 'crawl', connectionId, crawlId, slice: 0 }, options);
    deps.logger.info('crawl started', {
      connectionId,
      crawlId,
      mode: request.mode,
      trigger: request.trigger,
      generation,
    });
    return { status: 'started', crawlId, generation };
  } catch (err) {
    await state.leases.release(lease).catch(() => undefined);
    throw err;
  }
}

function busy(h: LeaseHolder): StartCrawlResult {
  return {
    status: 'busy',
    holder: h.holder,
    since: h.since,
    expiresAt: h.expiresAt,
    ...(h.crawlId ? { crawlId: h.crawlId } : {}),
  };
}

/** The lease this crawl holds, read back (a later invocation has no in-memory handle). */
async function leaseOf(
  deps: PipelineDeps,
  crawlId: string,
  options: OperationOptions = {},
): Promise<Lease | undefined> {
  const lease = await deps.state.leases.get(deps.connectionId, LEASE_NAME, options);
  return lease?.crawlId === crawlId ? lease : undefined;
}

export async function renewLease(deps: PipelineDeps, crawlId: string, options: OperationOptions = {}): Promise<void> {
  const lease = await leaseOf(deps, crawlId, options);
  if (!lease)
    throw new CrawlError(`crawl ${crawlId} no longer holds the lease of connection ${deps.connectionId}`, 'LeaseLost');
  await deps.state.leases.renew(lease, deps.settings.leaseTtlMs, options);
}

export async function releaseLease(deps: PipelineDeps, crawlId: string): Promise<void> {
  const lease = await leaseOf(deps, crawlId).catch(() => undefined);
  if (lease) await deps.state.leases.release(lease).catch(() => undefined);
}

export async function readRequestOptions(
  deps: PipelineDeps,
  crawlId: string,
  options: OperationOptions = {},
): Promise<CrawlRequestOptions> {
  // A storage failure must not turn an `items` or `force` crawl into a plain one: only "absent" defaults.
  const row = await deps.state.cursors.get(deps.connectionId, requestKey(crawlId), options);
  return row ? (JSON.parse(row.value) as CrawlRequestOptions) : { force: false };
}

/** Finish a job with its live counts folded in. */
export async function closeJob(
  deps: PipelineDeps,
  crawlId: string,
  status: 'completed' | 'failed' | 'cancelled',
  extra: { error?: string; cursorAfter?: string } = {},
): Promise<void> {
  const job = await deps.state.jobs.get(deps.connectionId, crawlId);
  if (!job) return;
  const counts = await liveCounts(deps.state, job);
  recordCrawlEnd(deps, await deps.state.jobs.finish(deps.connectionId, crawlId, status, counts, extra));
}

/**
 * Fail a crawl: record why, keep everything Graph holds (no sweep, no watermark), free the connection. The counts
 * are what happened up to the failure (every committed page). Operations already sent still settle; the next
 * finished crawl folds them into the snapshot.
 */
export async function failCrawl(
  deps: PipelineDeps,
  crawlId: string,
  reason: string,
  status: 'failed' | 'cancelled' = 'failed',
): Promise<void> {
  deps.logger.error(`crawl ${status}`, { connectionId: deps.connectionId, crawlId, reason });
  try {
    await closeJob(deps, crawlId, status, { error: `${reason}; nothing was deleted and the watermark was not moved` });
  } catch (err) {
    deps.logger.error('crawl: could not record the failure on the job', { crawlId, error: messageOf(err) });
  }
  await releaseLease(deps, crawlId);
  await deps.state.snapshots.deleteCrawlBlobs(deps.connectionId, crawlId).catch(() => undefined);
}
