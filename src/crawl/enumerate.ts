/**
 * The enumeration, in resumable slices. One `crawl` control message = one slice = one bounded invocation: it picks
 * the crawl up at its checkpoint (the job row), reads pages from the source's saved position, and after **every
 * page** commits the checkpoint (position, counts, seen items) with the job's ETag. When its time (or page) budget
 * is spent it hands over to the next slice; when the source ends the crawl is enumerated. A slice killed at any
 * moment is redelivered and resumes after its last committed page: it reads at most that one page again, and
 * everything that page did is idempotent (pending marks are keyed by crawl and item, a message sent twice is a
 * no-op at the fence, rejections are entries keyed by record), so no record is counted twice.
 *
 * The diff costs no storage call for an unchanged record: each record's item is hashed and looked up in the
 * snapshot (about 16 bytes an item, in memory); a seen bitmap over the snapshot marks what this crawl read (the
 * sweep deletes what it did not). Only changed records touch storage (a pending mark, a message).
 */
import type { OperationOptions } from '../core/async.js';
import { isAbortError, messageOf } from '../core/errors.js';
import type { ExternalGroup } from '../config/model.js';
import { duplicateItemIdReason, type MappedRecordRef } from '../mapping/duplicate-id.js';
import { activitiesDigest, newActivities, type ItemActivity } from '../mapping/activities.js';
import { itemIdMigration } from '../mapping/item-id.js';
import type { SourcePage } from '../sources/types.js';
import { ConcurrencyError } from '../state/cursors.js';
import type { PendingEntry } from '../state/items.js';
import type { Checkpoint, CrawlJob } from '../state/jobs.js';
import { itemKeyOf } from '../state/keys.js';
import type { ItemMessage } from '../state/queues/items.js';
import { getBit, setBit, type Snapshot } from '../state/snapshot.js';
import { sendDeletes } from './deletes.js';
import type { PipelineDeps } from './deps.js';
import { itemDigest } from './hash.js';
import { persistSeen, restoreSeen } from './seen.js';
import { ensureSnapshot } from './snapshot.js';
import { METRICS } from '../core/telemetry.js';
import { observeQueueDepth, telemetryOf } from './telemetry.js';
import { CrawlError, failCrawl, readRequestOptions, renewLease, type CrawlRequestOptions } from './start.js';

export interface SliceResult {
  status: 'continued' | 'enumerated' | 'failed' | 'interrupted' | 'skipped';
  reason?: string;
  /** The crawl's enumeration counts after this slice. */
  counts?: { enumerated: number; enqueued: number; unchanged: number; rejected: number };
  /** Pages this slice committed. */
  pages?: number;
}

/**
 * Run one slice of crawl `crawlId` (the `crawl` control message with its `slice` number). Never throws for a source
 * failure (the crawl fails, with its counts as far as it got); a storage failure throws, so the message comes back.
 */
export async function runSlice(
  deps: PipelineDeps,
  crawlId: string,
  options: { slice: number; dequeueCount?: number } & OperationOptions,
): Promise<SliceResult> {
  const { connectionId, state, logger } = deps;
  const abortSignal = options.abortSignal;
  let job = await state.jobs.get(connectionId, crawlId, options);
  if (!job || job.status !== 'running')
    return { status: 'skipped', reason: job ? `job is ${job.status}` : 'no such job' };
  if (options.slice !== job.checkpoint.slice) {
    // A leftover message. If it is the slice just before the current one, the hand-over message may have been lost
    // with its sender: send it again (a duplicate runner loses the checkpoint's ETag race and stops).
    if (options.slice === job.checkpoint.slice - 1)
      await deps.control.send({ v: 1, kind: 'crawl', connectionId, crawlId, slice: job.checkpoint.slice }, options);
    return { status: 'skipped', reason: `slice ${options.slice} was superseded by slice ${job.checkpoint.slice}` };
  }
  if ((options.dequeueCount ?? 1) > 1) {
    const stalls = job.checkpoint.stalls + 1;
    if (stalls > deps.settings.maxSliceStalls) {
      const reason = `enumeration slice ${options.slice} was interrupted ${stalls} times without committing a page (its worker keeps stopping)`;
      await failCrawl(deps, crawlId, reason);
      return { status: 'failed', reason };
    }
    try {
      job = await state.jobs.replace(
        { ...job, checkpoint: { ...job.checkpoint, stalls, resumed: job.checkpoint.resumed + 1 } },
        options,
      );
    } catch (err) {
      if (err instanceof ConcurrencyError) return { status: 'skipped', reason: 'another runner owns this slice' };
      throw err;
    }
    logger.warn('crawl: resuming an interrupted slice from its checkpoint', {
      connectionId,
      crawlId,
      slice: options.slice,
      pages: job.checkpoint.pages,
    });
  }

  const request = await readRequestOptions(deps, crawlId, options);
  const source = deps.source();
  const started = deps.now();
  let pagesThisSlice = 0;
  try {
    const first = job.checkpoint.pages === 0 && job.checkpoint.slice === 0;
    // The watermark is taken BEFORE enumerating, so a record changed during the crawl is read again next time.
    if (job.mode === 'incremental' && job.cursorAfter === undefined) {
      if (!source.capabilities.incremental || !source.readCursor)
        throw new CrawlError(`source "${source.kind}" cannot read incrementally; use a full crawl`, 'NotIncremental');
      const cursorAfter = await source.readCursor({ abortSignal });
      job = await state.jobs.replace({ ...job, cursorAfter }, options);
    }
    if (first && source.capabilities.groups && source.groups && deps.syncGroups && job.mode !== 'items') {
      deps.onProgress?.({ ...progressOf(job), phase: 'groups' });
      const groups: ExternalGroup[] = [];
      for await (const g of source.groups({ abortSignal })) groups.push(g);
      await deps.syncGroups(groups, options);
      await state.snapshots.saveGroupIds(
        connectionId,
        groups.map((g) => g.id),
        options,
      );
      logger.info('external groups synced', { connectionId, crawlId, groups: groups.length });
      deps.onProgress?.({ ...progressOf(job), phase: 'groups', groups: groups.length });
    }
    // The mapping checks externalGroup ACL values against the groups the connector synced (fail closed).
    const groupIds = source.capabilities.groups ? await state.snapshots.loadGroupIds(connectionId, options) : undefined;
    // The snapshot this crawl diffs against is pinned at its first page, so every slice sees the same one.
    let pinned = job.checkpoint.snapshot;
    if (!pinned) {
      pinned = await ensureSnapshot(deps, crawlId, options);
      job = await state.jobs.replace({ ...job, checkpoint: { ...job.checkpoint, snapshot: pinned } }, options);
    }
    const snapshot = await state.snapshots.load(connectionId, pinned, options);
    const seen = await restoreSeen(deps, snapshot, job.checkpoint, options);
    const ctx: PageContext = {
      deps,
      job,
      request,
      wanted: request.itemIds ? new Set(request.itemIds) : undefined,
      snapshot,
      seen,
      ...(groupIds ? { externalGroups: new Set(groupIds) } : {}),
    };

    const pages = source.readPages({
      abortSignal,
      pageSize: deps.settings.pageSize,
      ...(job.checkpoint.position !== undefined ? { position: job.checkpoint.position } : {}),
      ...(job.mode === 'incremental' && job.cursorBefore ? { cursor: job.cursorBefore } : {}),
    });
    let lastRenew = deps.now();
    let pageStart = deps.now();
    for await (const page of pages) {
      abortSignal?.throwIfAborted();
      const done = page.next === undefined;
      const outcome = await processPage(ctx, page, options);
      const now = deps.now();
      pagesThisSlice++;
      const budgetSpent =
        !done &&
        (now - started >= deps.settings.sliceMs ||
          (deps.settings.slicePages > 0 && pagesThisSlice >= deps.settings.slicePages));
      const cp = ctx.job.checkpoint;
      const next: Checkpoint = {
        ...cp,
        slice: budgetSpent ? cp.slice + 1 : cp.slice,
        pages: cp.pages + 1,
        done,
        enumerated: cp.enumerated + outcome.enumerated,
        unchanged: cp.unchanged + outcome.unchanged,
        rejected: cp.rejected + outcome.rejected,
        enqueued: cp.enqueued + outcome.enqueued,
        moved: cp.moved + outcome.moved,
        enumMs: cp.enumMs + (now - pageStart),
        stalls: 0,
        ...(page.progress ? { progress: page.progress } : {}),
      };
      if (page.next !== undefined) next.position = page.next;
      await persistSeen(deps, ctx.job.crawlId, ctx.seen, next, outcome.seenPositions, options);
      const at = new Date(now).toISOString();
      try {
        ctx.job = await state.jobs.replace(
          {
            ...ctx.job,
            checkpoint: next,
            heartbeatAt: at,
            ...(done ? { status: 'enumerated' as const, enumeratedAt: at } : {}),
          },
          options,
        );
      } catch (err) {
        if (err instanceof ConcurrencyError) {
          logger.warn('crawl: another runner committed this crawl meanwhile; this slice stops', { crawlId });
          return { status: 'skipped', reason: 'another runner owns this crawl' };
        }
        throw err;
      }
      telemetryOf(deps).count(METRICS.itemsUnchanged, outcome.unchanged);
      telemetryOf(deps).count(METRICS.itemsRejected, outcome.rejected);
      pageStart = deps.now();
      deps.onProgress?.(progressOf(ctx.job));
      if (now - lastRenew > Math.min(60_000, deps.settings.leaseTtlMs / 3)) {
        await renewLease(deps, crawlId, options);
        lastRenew = now;
      }
      if (done) break;
      if (budgetSpent) {
        await deps.control.send({ v: 1, kind: 'crawl', connectionId, crawlId, slice: next.slice }, options);
        logger.info('crawl: slice handed over', {
          connectionId,
          crawlId,
          slice: cp.slice,
          pages: next.pages,
          enumerated: next.enumerated,
        });
        await observeQueueDepth(deps, options);
        return { status: 'continued', counts: countsOf(next), pages: pagesThisSlice };
      }
    }
    if (!ctx.job.checkpoint.done) {
      // A source that yields no page at all (nothing to read) still ends its enumeration.
      const at = new Date(deps.now()).toISOString();
      ctx.job = await state.jobs.replace(
        {
          ...ctx.job,
          status: 'enumerated',
          enumeratedAt: at,
          heartbeatAt: at,
          checkpoint: { ...ctx.job.checkpoint, done: true },
        },
        options,
      );
    }
    const counts = countsOf(ctx.job.checkpoint);
    deps.onProgress?.({ ...progressOf(ctx.job), phase: 'enumerated' });
    logger.info('crawl enumerated', { connectionId, crawlId, ...counts, pages: ctx.job.checkpoint.pages });
    await deps.control.send({ v: 1, kind: 'finalize', connectionId, crawlId, checks: 0 }, options);
    await observeQueueDepth(deps, options);
    return { status: 'enumerated', counts, pages: pagesThisSlice };
  } catch (err) {
    if (abortSignal?.aborted || isAbortError(err)) {
      // Stopped from outside (the host shutting down, Ctrl-C): the checkpoint stands; the message comes back and
      // the next slice resumes after the last committed page.
      logger.warn('crawl: slice interrupted; it resumes from its checkpoint', { connectionId, crawlId });
      return { status: 'interrupted', reason: 'the slice was stopped; it resumes from its last committed page' };
    }
    if (err instanceof ConcurrencyError) return { status: 'skipped', reason: 'another runner owns this crawl' };
    if (!isSourceFailure(err)) throw err;
    const reason = `the source failed: ${messageOf(err)}`;
    await failCrawl(deps, crawlId, reason);
    const after = await state.jobs.get(connectionId, crawlId).catch(() => undefined);
    return { status: 'failed', reason, ...(after ? { counts: countsOf(after.checkpoint) } : {}) };
  }
}

/** A failure of the source (or of reading it), as opposed to our own storage: the crawl fails. */
function isSourceFailure(err: unknown): boolean {
  const name = (err as { name?: unknown } | null)?.name;
  return name === 'SourceError' || name === 'CrawlError' || name === 'SplitError';
}

function countsOf(cp: Checkpoint): NonNullable<SliceResult['counts']> {
  return { enumerated: cp.enumerated, enqueued: cp.enqueued, unchanged: cp.unchanged, rejected: cp.rejected };
}

function progressOf(job: CrawlJob) {
  const cp = job.checkpoint;
  return {
    crawlId: job.crawlId,
    phase: 'enumerating' as const,
    ...countsOf(cp),
    pages: cp.pages,
    ...(cp.progress ? { progress: cp.progress } : {}),
  };
}

interface PageContext {
  deps: PipelineDeps;
  job: CrawlJob;
  request: CrawlRequestOptions;
  wanted: Set<string> | undefined;
  snapshot: Snapshot;
  /** One bit per snapshot entry: this crawl read a record of that item. */
  seen: Uint8Array;
  /** The external group ids synced last (for the mapping's ACL check). */
  externalGroups?: ReadonlySet<string>;
}

interface PageOutcome {
  enumerated: number;
  unchanged: number;
  rejected: number;
  enqueued: number;
  /** Snapshot positions this page marked seen. */
  seenPositions: number[];
  /** Items moved to a new id format (their old id is deleted by this crawl). */
  moved: number;
}

interface Candidate {
  itemId: string;
  key: string;
  hash: string;
  pos: string;
  known: boolean;
  position?: string;
  recordKey: string;
  /** The record's activities (mapping.activities); the message carries those the ledger has not recorded. */
  activities?: ItemActivity[];
  message: ItemMessage;
}

interface Rejection {
  recordKey: string;
  reasons: string[];
  position?: string;
  kind?: string;
}

async function processPage(ctx: PageContext, page: SourcePage, options: OperationOptions): Promise<PageOutcome> {
  const { deps, job, snapshot, seen } = ctx;
  const { connectionId, state } = deps;
  const { crawlId } = job;
  const pageNo = job.checkpoint.pages;
  const out: PageOutcome = { enumerated: 0, unchanged: 0, rejected: 0, enqueued: 0, seenPositions: [], moved: 0 };
  /** Old ids of items whose id format changed between connector versions: deleted as part of this crawl. */
  const moves: string[] = [];
  const rejections: Rejection[] = [];
  const candidates: Candidate[] = [];
  /** Items of this page, by key: the record that produced each (duplicates within the page). */
  const inPage = new Map<string, MappedRecordRef>();
  const force = ctx.request.force;
  for (let index = 0; index < page.records.length; index++) {
    const record = page.records[index]!;
    if (record.error !== undefined) {
      if (ctx.wanted && !ctx.wanted.has(record.key)) continue;
      out.enumerated++;
      rejections.push({
        recordKey: record.key,
        reasons: [record.error],
        ...(record.position ? { position: record.position } : {}),
      });
      continue;
    }
    const result = deps.mapper.map(record, ctx.externalGroups ? { externalGroups: ctx.externalGroups } : undefined);
    // Mode `items`: only the listed records count, named by source key, source id or item id.
    if (ctx.wanted) {
      const w = ctx.wanted;
      if (!w.has(record.key) && !(result.ok && (w.has(result.item.id) || w.has(result.sourceId)))) continue;
    }
    out.enumerated++;
    if (!result.ok) {
      rejections.push({
        recordKey: record.key,
        reasons: [result.reason.message],
        ...(record.position ? { position: record.position } : {}),
      });
      continue;
    }
    const item = result.item;
    const k = itemKeyOf(item.id);
    const self: MappedRecordRef = {
      key: record.key,
      itemId: item.id,
      ...(record.position ? { position: record.position } : {}),
    };
    const dupOf = inPage.get(k.key);
    if (dupOf !== undefined) {
      rejections.push(duplicate(self, dupOf));
      continue;
    }
    const i = snapshot.indexOf(k.hi, k.lo);
    if (i >= 0 && getBit(seen, i)) {
      // The first record was unchanged (it left no trace but the seen bit): say where it was, as far as known.
      rejections.push(
        duplicate(self, { key: `read earlier in this crawl (before page ${pageNo + 1})`, itemId: item.id }),
      );
      continue;
    }
    inPage.set(k.key, self);
    // An id whose format changed since an earlier connector version (`TSP-1` was `b32krjvaljr`): the old id is
    // deleted by this crawl — a planned move, not a sweep candidate, so the ratio guard never mistakes a format
    // change for a source that lost its records.
    const migration = itemIdMigration(result.sourceId);
    if (migration && migration.currentId === item.id) {
      const old = itemKeyOf(migration.previousId);
      const j = old.key !== k.key ? snapshot.indexOf(old.hi, old.lo) : -1;
      if (j >= 0 && !getBit(seen, j)) {
        setBit(seen, j);
        out.seenPositions.push(j);
        moves.push(migration.previousId);
      }
    }
    for (const w of result.warnings)
      deps.logger.warn('mapping warning', { connectionId, crawlId, recordKey: record.key, warning: w });
    // Attachments: fingerprinted (not extracted) here, so an edited file changes the hash; the ingest extracts.
    const files = deps.attachments;
    const attachments =
      result.attachments?.length && files
        ? await files.fingerprint(result.attachments, { abortSignal: options.abortSignal })
        : undefined;
    // Activities are part of the hash too, so a new comment makes the item changed (and only then is anything sent).
    const activities = result.activities;
    const extra = {
      ...(attachments ? files!.hashExtra(attachments) : {}),
      ...(activities?.length ? { activities: activitiesDigest(activities) } : {}),
    };
    const { hash, reduced } = Object.keys(extra).length ? itemDigest(item, extra) : itemDigest(item);
    if (i >= 0) {
      setBit(seen, i);
      out.seenPositions.push(i);
      if (!force && snapshot.holds(i, reduced)) {
        out.unchanged++;
        continue;
      }
    }
    candidates.push({
      itemId: item.id,
      key: k.key,
      hash,
      pos: `${pageNo}:${index}`,
      known: i >= 0,
      ...(record.position ? { position: record.position } : {}),
      recordKey: record.key,
      ...(activities?.length ? { activities } : {}),
      message: {
        v: 1,
        op: 'upsert',
        connectionId,
        itemId: item.id,
        crawlId,
        generation: job.generation,
        hash,
        attempt: 0,
        item,
        ...(attachments ? { attachments } : {}),
      },
    });
  }

  if (candidates.length) {
    const entries: PendingEntry[] = candidates.map((c) => ({
      itemId: c.itemId,
      hash: c.hash,
      op: 'upsert',
      pos: c.pos,
      known: c.known,
      force,
      record: { key: c.recordKey, ...(c.position ? { position: c.position } : {}) },
    }));
    const marks = await state.items.markPending(connectionId, crawlId, entries, options);
    const send: ItemMessage[] = [];
    for (const c of candidates) {
      const m = marks.get(c.key);
      if (!m) continue;
      if (m.status === 'marked' || m.status === 'again') {
        const sent = c.activities ? newActivities(c.activities, m.activityMark) : undefined;
        send.push({
          ...c.message,
          ...(m.etag ? { etag: m.etag } : {}),
          ...(m.previousItemId ? { replaces: m.previousItemId } : {}),
          ...(sent?.fresh.length ? { activities: sent.fresh, activityMark: sent.mark! } : {}),
        });
      } else if (m.status === 'settled') {
        out.enqueued++; // sent by an earlier attempt of this page, and already settled
      } else if (m.status === 'unchanged') {
        out.unchanged++;
      } else {
        const first = m.firstPos
          ? `an earlier record of this crawl (at ${describePos(m.firstPos)})`
          : 'an earlier record of this crawl';
        rejections.push({
          recordKey: c.recordKey,
          kind: 'dup',
          ...(c.position ? { position: c.position } : {}),
          reasons: [
            `record ${c.recordKey}${c.position ? ` (${c.position})` : ''}: field "id": item id ${c.itemId} was already produced by ${first} (rule: unique-id; item ids are compared without regard to case)`,
          ],
        });
      }
    }
    if (send.length) {
      await state.queue.sendBatch(send, options);
      out.enqueued += send.length;
    }
  }
  if (moves.length) out.moved += await sendMoves(deps, job, moves, options);
  out.enqueued += moves.length;
  for (const r of rejections)
    await state.deadLetters.addRejection(
      {
        connectionId,
        crawlId,
        recordKey: r.recordKey,
        reasons: r.reasons,
        ...(r.position ? { position: r.position } : {}),
        ...(r.kind ? { kind: r.kind } : {}),
      },
      options,
    );
  out.rejected += rejections.length;
  return out;
}

function describePos(pos: string): string {
  const [page, index] = pos.split(':');
  return page !== undefined && index !== undefined ? `page ${Number(page) + 1}, record ${Number(index) + 1}` : pos;
}

/** A second record of this crawl with an item id (compared ignoring case) some record already produced. */
function duplicate(second: MappedRecordRef, first: MappedRecordRef): Rejection {
  return {
    recordKey: second.key,
    kind: 'dup',
    ...(second.position ? { position: second.position } : {}),
    reasons: [duplicateItemIdReason(first, second).message],
  };
}

/** Delete the old ids of moved items (their new ids are being written by this crawl). Returns how many. */
async function sendMoves(
  deps: PipelineDeps,
  job: CrawlJob,
  oldIds: string[],
  options: OperationOptions,
): Promise<number> {
  await sendDeletes(deps, job, oldIds, options);
  return oldIds.length;
}
