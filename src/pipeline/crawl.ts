/**
 * A crawl: start (lease + job record), enumerate (source → map → diff against the ledger → enqueue), and
 * finalize (wait until every operation settled; then sweep, commit the watermark, finish). Each step is one
 * short call, moved along by control-queue messages, so no invocation ever blocks for long.
 *
 * Invariants kept here (DESIGN.md): every record ends in exactly one bucket (enumerated = enqueued +
 * unchanged + rejected); a failed, partial or cancelled crawl never deletes; the watermark is committed only
 * when every operation of the crawl settled; two crawls of one connection never run at once (the lease).
 */
import type { ExternalGroup } from '../config/model.js';
import type { ItemMessage } from '../state/item-queue.js';
import type { CrawlJob, CrawlMode, CrawlTrigger, LedgerItem, PendingEntry } from '../state/ledger.js';
import { Ledger, newCrawlId, outstandingOf } from '../state/ledger.js';
import type { Lease, LeaseHolder } from '../state/lease.js';
import type { SourceRecord } from '../sources/types.js';
import type { CrawlProgress, PipelineDeps } from './deps.js';
import { attachmentHashExtra, fingerprintAttachments } from './attachments.js';
import { itemHash } from './hash.js';
import { decideSweep } from './sweep-guard.js';

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

const GENERATION_CURSOR = 'generation';
const LEASE_NAME = 'crawl';

/** Crawl options that travel with the job (the job row keeps mode/trigger; these ride in a small side row). */
interface CrawlRequestOptions {
  force: boolean;
  itemIds?: string[];
}

function requestKey(crawlId: string): string {
  return `request-${crawlId}`;
}

/**
 * Start a crawl: take the connection's lease (or report who holds it), allocate the generation, record the job,
 * and enqueue the enumeration. Returns at once; the enumeration runs from the control queue.
 */
export async function startCrawl(
  deps: PipelineDeps,
  request: StartCrawlRequest,
  signal?: AbortSignal,
): Promise<StartCrawlResult> {
  const { connectionId, state } = deps;
  const crawlId = newCrawlId(deps.now());
  const acquired = await state.leases.acquire(connectionId, {
    holder: deps.settings.holder,
    ttlMs: deps.settings.leaseTtlMs,
    crawlId,
    name: LEASE_NAME,
    ...(signal ? { abortSignal: signal } : {}),
  });
  if (!acquired.ok) return busy(acquired.heldBy);
  const lease = acquired.lease;
  try {
    // Holding the lease means no other crawl of this connection is alive: a job still marked active was
    // orphaned (its worker died and its lease expired). Close it, so status never shows a ghost crawl.
    for (const orphan of await state.ledger.listStaleJobs(connectionId, 0, signal)) {
      await state.ledger.finishJob(connectionId, orphan.crawlId, 'failed', {
        error: `abandoned: its worker stopped and its lease expired (taken over by crawl ${crawlId}); nothing was deleted and the watermark was not moved`,
      });
      deps.logger.warn('orphaned crawl closed', { connectionId, crawlId: orphan.crawlId, takenOverBy: crawlId });
    }
    const previous = await state.ledger.getCursor(connectionId, GENERATION_CURSOR, signal);
    const previousGeneration = previous ? Number(previous.value) || 0 : 0;
    // A full crawl gets a new generation, allocated up front so that even a failed full crawl's marks are
    // never mistaken for the next one's.
    const generation = request.mode === 'full' ? previousGeneration + 1 : previousGeneration;
    if (request.mode === 'full') {
      await state.ledger.commitCursor(connectionId, String(generation), previous?.etag, {
        name: GENERATION_CURSOR,
        crawlId,
        ...(signal ? { abortSignal: signal } : {}),
      });
    }
    const watermark =
      request.mode === 'incremental' ? await state.ledger.getCursor(connectionId, 'default', signal) : undefined;
    await state.ledger.createJob(
      {
        connectionId,
        crawlId,
        mode: request.mode,
        trigger: request.trigger,
        generation,
        ...(watermark ? { cursorBefore: watermark.value } : {}),
      },
      signal,
    );
    const options: CrawlRequestOptions = {
      force: request.force ?? false,
      ...(request.itemIds ? { itemIds: request.itemIds } : {}),
    };
    await state.ledger.commitCursor(connectionId, JSON.stringify(options), undefined, {
      name: requestKey(crawlId),
      crawlId,
      ...(signal ? { abortSignal: signal } : {}),
    });
    await deps.control.send({ v: 1, kind: 'crawl', connectionId, crawlId }, signal ? { abortSignal: signal } : {});
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
async function leaseOf(deps: PipelineDeps, crawlId: string, signal?: AbortSignal): Promise<Lease | undefined> {
  const lease = await deps.state.leases.get(deps.connectionId, LEASE_NAME, signal);
  return lease?.crawlId === crawlId ? lease : undefined;
}

async function renewLease(deps: PipelineDeps, crawlId: string, signal?: AbortSignal): Promise<void> {
  const lease = await leaseOf(deps, crawlId, signal);
  if (!lease) throw new Error(`crawl ${crawlId} no longer holds the lease of connection ${deps.connectionId}`);
  await deps.state.leases.renew(lease, deps.settings.leaseTtlMs, signal);
}

async function releaseLease(deps: PipelineDeps, crawlId: string): Promise<void> {
  const lease = await leaseOf(deps, crawlId).catch(() => undefined);
  if (lease) await deps.state.leases.release(lease).catch(() => undefined);
}

async function readRequestOptions(
  deps: PipelineDeps,
  crawlId: string,
  signal?: AbortSignal,
): Promise<CrawlRequestOptions> {
  // A storage failure must not turn an `items` or `force` crawl into a plain one: only "absent" defaults.
  const row = await deps.state.ledger.getCursor(deps.connectionId, requestKey(crawlId), signal);
  return row ? (JSON.parse(row.value) as CrawlRequestOptions) : { force: false };
}

/** Fail a crawl: record why, keep everything Graph holds (no sweep, no watermark), free the connection. */
export async function failCrawl(
  deps: PipelineDeps,
  crawlId: string,
  reason: string,
  status: 'failed' | 'cancelled' = 'failed',
): Promise<void> {
  deps.logger.error(`crawl ${status}`, { connectionId: deps.connectionId, crawlId, reason });
  await deps.state.ledger.finishJob(deps.connectionId, crawlId, status, {
    error: `${reason}; nothing was deleted and the watermark was not moved`,
  });
  await releaseLease(deps, crawlId);
}

export interface EnumerateResult {
  status: 'enumerated' | 'failed' | 'cancelled' | 'skipped';
  counts?: { enumerated: number; enqueued: number; unchanged: number; rejected: number };
  reason?: string;
}

/**
 * Enumerate the source for a started crawl (the `crawl` control message). Idempotence: a redelivered message
 * (the previous attempt died mid-way) fails the crawl rather than resuming it blind — a failed crawl deletes
 * nothing, and the next one starts afresh.
 */
export async function enumerateCrawl(
  deps: PipelineDeps,
  crawlId: string,
  options: { dequeueCount?: number; signal?: AbortSignal } = {},
): Promise<EnumerateResult> {
  const { connectionId, state, logger } = deps;
  const signal = options.signal;
  const job = await state.ledger.getJob(connectionId, crawlId, signal ? { abortSignal: signal } : {});
  if (!job || job.status !== 'running')
    return { status: 'skipped', reason: job ? `job is ${job.status}` : 'no such job' };
  if ((options.dequeueCount ?? 1) > 1) {
    const reason = 'the enumeration was interrupted (its worker stopped before reading the source to the end)';
    await failCrawl(deps, crawlId, reason);
    return { status: 'failed', reason };
  }
  const request = await readRequestOptions(deps, crawlId, signal);
  const source = deps.source();
  const progress: CrawlProgress = {
    crawlId,
    phase: 'enumerating',
    enumerated: 0,
    enqueued: 0,
    unchanged: 0,
    rejected: 0,
  };
  try {
    // The watermark is taken BEFORE enumerating, so a record changed during the crawl is read again next time.
    let cursorAfter: string | undefined;
    if (job.mode === 'incremental') {
      if (!source.capabilities.incremental || !source.readCursor) {
        throw new CrawlError(`source "${source.kind}" cannot read incrementally; use a full crawl`);
      }
      cursorAfter = await source.readCursor(signal ? { signal } : {});
      await state.ledger.updateJob(connectionId, crawlId, () => ({ cursorAfter }), signal);
    }
    if (source.capabilities.groups && source.groups && deps.syncGroups && job.mode !== 'items') {
      deps.onProgress?.({ ...progress, phase: 'groups' });
      const groups: ExternalGroup[] = [];
      for await (const g of source.groups(signal ? { signal } : {})) groups.push(g);
      await deps.syncGroups(groups, signal);
      logger.info('external groups synced', { connectionId, crawlId, groups: groups.length });
    }
    const wanted = request.itemIds ? new Set(request.itemIds) : undefined;
    const seen = new Map<string, string>();
    const unchangedByBucket = new Map<string, UnchangedEntry[]>();
    let batch: SourceRecord[] = [];
    let lastRenew = deps.now();
    const ctx: BatchContext = {
      force: request.force,
      wanted,
      seen,
      unchangedByBucket,
      unchangedBuffered: 0,
      progress,
      signal,
    };
    const flush = async () => {
      const b = batch;
      batch = [];
      await processBatch(deps, job, b, ctx);
      deps.onProgress?.({ ...progress });
      if (deps.now() - lastRenew > Math.min(60_000, deps.settings.leaseTtlMs / 3)) {
        await renewLease(deps, crawlId, signal);
        await state.ledger.heartbeat(connectionId, crawlId, signal);
        lastRenew = deps.now();
      }
    };
    const read = source.read({
      ...(signal ? { signal } : {}),
      ...(job.mode === 'incremental' && job.cursorBefore ? { cursor: job.cursorBefore } : {}),
    });
    for await (const record of read) {
      signal?.throwIfAborted();
      batch.push(record);
      if (batch.length >= deps.settings.batchSize) await flush();
    }
    if (batch.length) await flush();
    // Unchanged items still buffered (buckets that never filled a transaction) are marked seen now, before the
    // crawl counts as enumerated; any the ledger refuses are sent after all.
    await flushUnchanged(deps, job, ctx, [...unchangedByBucket.keys()]);
    await state.ledger.updateJob(
      connectionId,
      crawlId,
      () => ({ status: 'enumerated', enumeratedAt: new Date(deps.now()).toISOString() }),
      signal,
    );
    deps.onProgress?.({ ...progress, phase: 'enumerated' });
    logger.info('crawl enumerated', { connectionId, ...progress });
    await deps.control.send({ v: 1, kind: 'finalize', connectionId, crawlId, checks: 0 });
    return { status: 'enumerated', counts: { ...progress } };
  } catch (err) {
    const aborted = signal?.aborted === true;
    const reason = aborted ? 'the crawl was cancelled' : `the source failed: ${(err as Error)?.message ?? String(err)}`;
    await failCrawl(deps, crawlId, reason, aborted ? 'cancelled' : 'failed');
    return { status: aborted ? 'cancelled' : 'failed', reason, counts: { ...progress } };
  }
}

export class CrawlError extends Error {
  override name = 'CrawlError';
}

interface BatchContext {
  force: boolean;
  wanted: Set<string> | undefined;
  /** itemId → record key that produced it in this crawl (duplicate detection). */
  seen: Map<string, string>;
  /**
   * Unchanged items waiting to be marked seen, per ledger bucket. A bucket is written once it fills one table
   * transaction ({@link SEEN_TRANSACTION} rows); the rest at the end of the enumeration. With pages of a few
   * hundred records most buckets get one row per page, so marking each page on its own costs one transaction
   * per row (what bounded a no-change recrawl to a few hundred records/s on Azurite). The candidate is kept so
   * an item the ledger refuses (its row moved on meanwhile) is still sent.
   */
  unchangedByBucket: Map<string, UnchangedEntry[]>;
  /** How many entries unchangedByBucket holds. */
  unchangedBuffered: number;
  progress: CrawlProgress;
  signal: AbortSignal | undefined;
}

interface Candidate {
  itemId: string;
  hash: string;
  message: ItemMessage;
  /** The ledger refused it as unchanged: its row moved on, so read it again before marking it pending. */
  reread?: boolean;
}

interface UnchangedEntry {
  row: LedgerItem;
  candidate: Candidate;
}

/** Rows per markSeen transaction of one bucket (Ledger.markSeen writes up to 99 items plus a counter row). */
const SEEN_TRANSACTION = 99;
/**
 * The most unchanged items held back at once (each with its item, in case the ledger refuses it). 8,192 over
 * 256 buckets still writes about 32 rows per transaction, and keeps a 100,000-record recrawl's memory flat.
 */
const UNCHANGED_BUFFER_LIMIT = 8192;

/** Mark the buffered unchanged items of these buckets seen; returns the candidates the ledger refused. */
async function flushUnchanged(
  deps: PipelineDeps,
  job: CrawlJob,
  ctx: BatchContext,
  buckets: string[],
  refusedOut?: Candidate[],
): Promise<void> {
  const entries: UnchangedEntry[] = [];
  for (const pk of buckets) {
    const list = ctx.unchangedByBucket.get(pk);
    if (list) entries.push(...list);
    ctx.unchangedByBucket.delete(pk);
  }
  ctx.unchangedBuffered -= entries.length;
  if (!entries.length) return;
  const { connectionId, state } = deps;
  const r = await state.ledger.markSeen(
    connectionId,
    job.crawlId,
    job.generation,
    entries.map((e) => e.row),
    ctx.signal,
  );
  ctx.progress.unchanged += entries.length - r.refused.length;
  if (!r.refused.length) return;
  // The row moved on since we read it (e.g. an operation of an older crawl is still in flight): send ours.
  const refused = new Set(r.refused);
  const send = entries.filter((e) => refused.has(e.candidate.itemId)).map((e) => ({ ...e.candidate, reread: true }));
  if (refusedOut) {
    refusedOut.push(...send);
    return;
  }
  await state.ledger.markPending(
    connectionId,
    job.crawlId,
    job.generation,
    send.map((c) => ({ itemId: c.itemId, hash: c.hash, op: 'upsert' as const })),
    ctx.signal,
  );
  await state.queue.sendBatch(
    send.map((c) => c.message),
    ctx.signal ? { abortSignal: ctx.signal } : {},
  );
  ctx.progress.enqueued += send.length;
}

async function processBatch(
  deps: PipelineDeps,
  job: CrawlJob,
  records: SourceRecord[],
  ctx: BatchContext,
): Promise<void> {
  const { connectionId, state } = deps;
  const { crawlId, generation } = job;
  const rejections: { recordKey: string; reasons: string[]; position?: string }[] = [];
  const candidates: Candidate[] = [];
  let enumerated = 0;
  for (const record of records) {
    const result = deps.mapper.map(record);
    // Mode `items`: only the listed records count, named by source key, source id or item id.
    const listed = (id: string) => ctx.wanted?.has(id) === true;
    if (ctx.wanted && !listed(record.key) && !(result.ok && (listed(result.item.id) || listed(result.sourceId)))) {
      continue;
    }
    enumerated++;
    if (!result.ok) {
      rejections.push({
        recordKey: record.key,
        reasons: [result.reason.message],
        ...(record.position ? { position: record.position } : {}),
      });
      continue;
    }
    const item = result.item;
    const first = ctx.seen.get(item.id);
    if (first !== undefined) {
      rejections.push({
        recordKey: record.key,
        ...(record.position ? { position: record.position } : {}),
        reasons: [
          `record ${record.key}: field "id": item id ${item.id} was already produced by record ${first} in this crawl (rule: unique-id)`,
        ],
      });
      continue;
    }
    ctx.seen.set(item.id, record.key);
    for (const w of result.warnings)
      deps.logger.warn('mapping warning', { connectionId, crawlId, recordKey: record.key, warning: w });
    // Attachments: fingerprinted (not extracted) here, so an edited file changes the hash; the ingest extracts.
    const settings = deps.mapper.attachments;
    const attachments =
      result.attachments?.length && settings
        ? await fingerprintAttachments(result.attachments, settings, ctx.signal)
        : undefined;
    const hash = attachments ? itemHash(item, attachmentHashExtra(attachments, settings!)) : itemHash(item);
    candidates.push({
      itemId: item.id,
      hash,
      message: {
        v: 1,
        op: 'upsert',
        connectionId,
        itemId: item.id,
        crawlId,
        generation,
        hash,
        attempt: 0,
        item,
        ...(attachments ? { attachments } : {}),
      },
    });
  }

  const rows = candidates.length
    ? await state.ledger.getItems(
        connectionId,
        candidates.map((c) => c.itemId),
        ctx.signal,
      )
    : new Map<string, LedgerItem>();
  const changed: typeof candidates = [];
  const full: string[] = [];
  for (const c of candidates) {
    const row = rows.get(c.itemId);
    if (!ctx.force && row && row.state === 'settled' && row.hash === c.hash) {
      const pk = Ledger.partitionOf(connectionId, c.itemId);
      let list = ctx.unchangedByBucket.get(pk);
      if (!list) ctx.unchangedByBucket.set(pk, (list = []));
      list.push({ row, candidate: c });
      ctx.unchangedBuffered++;
      if (list.length === SEEN_TRANSACTION) full.push(pk);
    } else changed.push(c);
  }
  // Memory stays bounded: past UNCHANGED_BUFFER_LIMIT buffered items every bucket is written, full or not.
  if (ctx.unchangedBuffered >= UNCHANGED_BUFFER_LIMIT)
    await flushUnchanged(deps, job, ctx, [...ctx.unchangedByBucket.keys()], changed);
  else if (full.length) await flushUnchanged(deps, job, ctx, full, changed);
  if (changed.length) {
    const entries: PendingEntry[] = changed.map((c) => ({
      itemId: c.itemId,
      hash: c.hash,
      op: 'upsert',
      ...(c.reread ? {} : { current: rows.get(c.itemId) ?? null }),
    }));
    await state.ledger.markPending(connectionId, crawlId, generation, entries, ctx.signal);
    await state.queue.sendBatch(
      changed.map((c) => c.message),
      ctx.signal ? { abortSignal: ctx.signal } : {},
    );
    ctx.progress.enqueued += changed.length;
  }
  for (const r of rejections)
    await state.deadLetters.addRejection(
      {
        connectionId,
        crawlId,
        recordKey: r.recordKey,
        reasons: r.reasons,
        ...(r.position ? { position: r.position } : {}),
      },
      ctx.signal,
    );
  ctx.progress.rejected += rejections.length;
  ctx.progress.enumerated += enumerated;
  await state.ledger.addCounts(connectionId, crawlId, { enumerated, rejected: rejections.length }, ctx.signal);
}

export interface FinalizeResult {
  status: 'waiting' | 'sweeping' | 'completed' | 'skipped' | 'failed';
  outstanding?: number;
  sweep?: { allowed: boolean; reason: string; deletes: number };
  job?: CrawlJob;
}

/**
 * One finalize check (the `finalize` control message). Waits (re-enqueues itself with a growing delay) while
 * operations are outstanding; then, for a full crawl, sweeps under the guard; then commits the watermark and
 * finishes the job.
 */
export async function finalizeCrawl(
  deps: PipelineDeps,
  crawlId: string,
  checks: number,
  signal?: AbortSignal,
): Promise<FinalizeResult> {
  const { connectionId, state, logger } = deps;
  const job = await state.ledger.getJob(connectionId, crawlId, {
    live: true,
    ...(signal ? { abortSignal: signal } : {}),
  });
  if (!job || (job.status !== 'enumerated' && job.status !== 'settling')) return { status: 'skipped' };
  const outstanding = outstandingOf(job.counts);
  if (outstanding > 0) {
    await state.ledger.heartbeat(connectionId, crawlId, signal).catch(() => undefined);
    await renewLease(deps, crawlId, signal).catch((err: Error) =>
      logger.warn('crawl lease renewal failed', { crawlId, error: err.message }),
    );
    const delay = Math.min(deps.settings.maxFinalizeDelayMs, deps.settings.finalizeDelayMs * 2 ** Math.min(checks, 10));
    await deps.control.send(
      { v: 1, kind: 'finalize', connectionId, crawlId, checks: checks + 1 },
      { visibilityDelayMs: delay },
    );
    deps.onProgress?.({
      crawlId,
      phase: 'settling',
      enumerated: job.counts.enumerated,
      enqueued: job.counts.enqueued,
      unchanged: job.counts.unchanged,
      rejected: job.counts.rejected,
    });
    return { status: 'waiting', outstanding, job };
  }

  if (job.status === 'enumerated' && job.mode === 'full') {
    const sweep = await planSweep(deps, job, signal);
    if (sweep.allowed && sweep.rows.length > 0) {
      deps.onProgress?.({
        crawlId,
        phase: 'sweeping',
        enumerated: job.counts.enumerated,
        enqueued: job.counts.enqueued,
        unchanged: job.counts.unchanged,
        rejected: job.counts.rejected,
      });
      const entries: PendingEntry[] = sweep.rows.map((r) => ({
        itemId: r.itemId,
        hash: r.hash,
        op: 'delete',
        current: r,
      }));
      await state.ledger.markPending(connectionId, crawlId, job.generation, entries, signal);
      await state.queue.sendBatch(
        sweep.rows.map((r) => ({
          v: 1,
          op: 'delete',
          connectionId,
          itemId: r.itemId,
          crawlId,
          generation: job.generation,
          hash: r.hash,
          attempt: 0,
        })),
        signal ? { abortSignal: signal } : {},
      );
      await state.ledger.updateJob(connectionId, crawlId, () => ({ status: 'settling' }), signal);
      await deps.control.send(
        { v: 1, kind: 'finalize', connectionId, crawlId, checks: 0 },
        { visibilityDelayMs: deps.settings.finalizeDelayMs },
      );
      logger.info('sweep: deleting items the crawl did not see', {
        connectionId,
        crawlId,
        deletes: sweep.rows.length,
        reason: sweep.reason,
      });
      return { status: 'sweeping', sweep: { allowed: true, reason: sweep.reason, deletes: sweep.rows.length }, job };
    }
    if (!sweep.allowed) {
      logger.warn('sweep refused', { connectionId, crawlId, reason: sweep.reason });
      await state.ledger.updateJob(connectionId, crawlId, () => ({ error: `sweep skipped: ${sweep.reason}` }), signal);
    }
  }

  let cursorAfter: string | undefined;
  if (job.mode === 'incremental' && job.cursorAfter) {
    const current = await state.ledger.getCursor(connectionId, 'default', signal);
    if ((current?.value ?? undefined) !== job.cursorBefore) {
      await failCrawl(deps, crawlId, 'the watermark changed while this crawl ran (another crawl committed one)');
      return { status: 'failed' };
    }
    await state.ledger.commitCursor(connectionId, job.cursorAfter, current?.etag, {
      crawlId,
      ...(signal ? { abortSignal: signal } : {}),
    });
    cursorAfter = job.cursorAfter;
  }
  const finished = await state.ledger.finishJob(
    connectionId,
    crawlId,
    'completed',
    cursorAfter ? { cursorAfter } : {},
    signal,
  );
  await releaseLease(deps, crawlId);
  await state.ledger.deleteCursor(connectionId, requestKey(crawlId));
  deps.onProgress?.({
    crawlId,
    phase: 'finished',
    enumerated: finished.counts.enumerated,
    enqueued: finished.counts.enqueued,
    unchanged: finished.counts.unchanged,
    rejected: finished.counts.rejected,
  });
  logger.info('crawl completed', { connectionId, crawlId, counts: finished.counts });
  return { status: 'completed', job: finished };
}

async function planSweep(
  deps: PipelineDeps,
  job: CrawlJob,
  signal?: AbortSignal,
): Promise<{ allowed: boolean; reason: string; rows: LedgerItem[] }> {
  const { connectionId, state } = deps;
  const request = await readRequestOptions(deps, job.crawlId, signal);
  const rows: LedgerItem[] = [];
  for await (const row of state.ledger.listUnseen(connectionId, job.generation, signal)) rows.push(row);
  const totals = await state.ledger.countItems(connectionId, signal);
  const live = totals.byState.settled + totals.byState.deadLettered;
  const decision = decideSweep({
    enumerationComplete: job.status === 'enumerated',
    outstanding: outstandingOf(job.counts),
    deadLettered: job.counts.deadLettered,
    ledgerCount: live,
    candidates: rows.length,
    maxDeleteRatio: deps.settings.maxDeleteRatio,
    force: request.force,
  });
  return { allowed: decision.allowed, reason: decision.reason, rows: decision.allowed ? rows : [] };
}
