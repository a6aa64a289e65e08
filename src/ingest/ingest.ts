/**
 * Ingest: one item operation from the queue → the item's fence → PUT or DELETE on Graph → settle it in the ledger.
 *
 * - **The fence** (ItemStore.fence) is taken right before the write, after any slow work (claim, attachments): an
 *   operation that a newer crawl replaced, or that this crawl already settled, never reaches Graph; and while one
 *   version's write is in flight no other version's write starts. So whatever order messages arrive in — a stalled
 *   attachment, a redelivery, two instances, a failed crawl's leftovers, a replayed dead letter — Graph ends with
 *   the newest version, and the ledger never claims a hash Graph does not hold. The write is bounded by the fence's
 *   lifetime; if a stall outlives it anyway, the settle marks the item suspect and the next crawl re-sends it.
 * - Throttling (429/503/504 with Retry-After) gives the fence back and re-enqueues the operation with a visibility
 *   delay of Retry-After plus jitter; it never sleeps inside an invocation and never retries before Retry-After.
 * - Other transient failures (5xx, network, 401/403 right after consent) are thrown, so the queue redelivers;
 *   after the host's maxDequeueCount the message lands in the poison queue, which {@link ingestPoison} turns into a
 *   dead letter.
 * - Permanent failures (4xx) are dead-lettered at once with Graph's error code and request id.
 * - User activities the operation carries (mapping.activities: only those the ledger has not recorded) are sent
 *   with addActivities right after the PUT, 20 to a call, each call retried a few times; what Graph still refuses
 *   is dead-lettered on its own (`activities~<item>`), never failing the item. The settle records them as handled
 *   (the row's `activityMark`), in the same transaction, so an unchanged recrawl sends none and costs nothing.
 *   They are sent before the settle, so a crash in between sends them again rather than losing them.
 *
 * Storage calls of one operation: the fence (one conditional write, with the ETag the message carries), the settle
 * (one transaction), and the queue's receive and delete.
 */
import { createHash, randomUUID } from 'node:crypto';
import { anySignal, retryAfterWithJitter, type OperationOptions } from '../core/async.js';
import { messageOf } from '../core/errors.js';
import type { ExternalItem } from '../config/model.js';
import type { PipelineDeps } from '../crawl/deps.js';
import { MAX_ACTIVITIES_PER_CALL } from '../graph/client.js';
import { METRICS } from '../core/telemetry.js';
import { telemetryOf } from '../crawl/telemetry.js';
import { GraphError } from '../graph/errors.js';
import type { ExternalActivity } from '../graph/types.js';
import { stripAttachmentQueries, type AttachmentReport } from '../attachments/index.js';
import { isNewerCrawl, type FenceResult } from '../state/items.js';
import {
  ClaimMissingError,
  parseItemMessage,
  type ItemMessage,
  type ItemMessageError,
  type MessageActivity,
} from '../state/queues/items.js';

/** What the ingest did with an item's attachments (absent when it had none). */
export interface AttachmentsOutcome {
  extracted: number;
  failed: number;
  files: AttachmentReport[];
}

/** What the ingest did with an operation's activities (absent when it carried none). */
export interface ActivitiesOutcome {
  sent: number;
  /** Activities Graph did not take (dead-lettered). */
  failed: number;
  /** addActivities calls made. */
  calls: number;
}

export type IngestOutcome =
  | {
      outcome: 'ingested' | 'deleted';
      itemId: string;
      attachments?: AttachmentsOutcome;
      activities?: ActivitiesOutcome;
      suspect?: boolean;
    }
  | { outcome: 'throttled'; itemId: string; retryInMs: number; attempt: number }
  | { outcome: 'deferred'; itemId: string; retryInMs: number; reason: string }
  | { outcome: 'superseded' | 'duplicate'; itemId: string; reason: string }
  | { outcome: 'deadLettered'; itemId: string; reason: string; attachments?: AttachmentsOutcome };

export interface IngestInput extends OperationOptions {
  /** The message as delivered (an object from the Functions trigger, or text from the local worker). */
  payload: unknown;
  dequeueCount?: number;
  /** The queue message id (it survives redelivery: a redelivered operation recognises its own fence). */
  messageId?: string;
}

interface FailureFields {
  status: number;
  code: string;
  innerCode?: string;
  requestId?: string;
  clientRequestId?: string;
  message: string;
}

/** A URL with its query string removed (SAS tokens and other secrets travel in queries). */
function withoutQueries(text: string): string {
  return text.replace(/(https?:\/\/[^\s?#"']+)\?[^\s#"']*/gi, '$1');
}

/** Graph's opinion of a failure, for dead-letter records. */
function errorFields(err: unknown): FailureFields {
  if (err instanceof GraphError) {
    return {
      status: err.status,
      code: err.code,
      ...(err.innerCode ? { innerCode: err.innerCode } : {}),
      ...(err.requestId ? { requestId: err.requestId } : {}),
      ...(err.clientRequestId ? { clientRequestId: err.clientRequestId } : {}),
      message: withoutQueries(err.message),
    };
  }
  return { status: 0, code: (err as Error)?.name ?? 'Error', message: withoutQueries(messageOf(err)) };
}

/** Time a write may take: its fence's lifetime minus a margin for the settle. */
function writeBudgetMs(deps: PipelineDeps): number {
  return Math.max(5_000, deps.settings.fenceTtlMs - 30_000);
}

export async function ingestItem(deps: PipelineDeps, input: IngestInput): Promise<IngestOutcome> {
  return counted(deps, await ingestOnce(deps, input));
}

/** The outcome in the item metrics (docs/operations.md). */
function counted(deps: PipelineDeps, outcome: IngestOutcome): IngestOutcome {
  const telemetry = telemetryOf(deps);
  if (outcome.outcome === 'ingested') telemetry.count(METRICS.itemsIngested, 1);
  else if (outcome.outcome === 'deleted') telemetry.count(METRICS.itemsDeleted, 1);
  else if (outcome.outcome === 'deadLettered') telemetry.count(METRICS.itemsDeadLettered, 1);
  return outcome;
}

async function ingestOnce(deps: PipelineDeps, input: IngestInput): Promise<IngestOutcome> {
  const { state, logger } = deps;
  const options: OperationOptions = input.abortSignal ? { abortSignal: input.abortSignal } : {};
  let msg: ItemMessage;
  try {
    msg = parseItemMessage(input.payload);
  } catch (err) {
    const e = err as ItemMessageError;
    const body = typeof input.payload === 'string' ? input.payload : JSON.stringify(input.payload ?? null);
    await state.deadLetters.add(
      {
        connectionId: deps.connectionId,
        itemId: `unreadable ${createHash('sha256').update(body).digest('hex').slice(0, 16)}`,
        crawlId: 'unknown',
        op: 'unknown',
        message: `the queue message could not be read: ${e.message}`,
        body: body.slice(0, 30_000),
      },
      options,
    );
    logger.error('ingest: unreadable queue message dead-lettered', { error: e.message });
    return { outcome: 'deadLettered', itemId: 'unknown', reason: e.message };
  }
  const log = logger.child({ connectionId: msg.connectionId, itemId: msg.itemId, crawlId: msg.crawlId, op: msg.op });
  const now = deps.now();
  if (msg.notBefore !== undefined && msg.notBefore > now + 250) {
    // Delivered early (a queue that ignores visibility delays, or a clock skew): put it back, never call Graph early.
    const wait = msg.notBefore - now;
    await state.queue.send(msg, { visibilityDelayMs: wait, ...options });
    return { outcome: 'deferred', itemId: msg.itemId, retryInMs: wait, reason: 'not before its Retry-After' };
  }
  const token = input.messageId ?? randomUUID();

  // Slow work first (the claim, the attachments), so it never holds the fence. With attachments to extract, a cheap
  // look at the row first spares the work for an operation that is already superseded.
  let attachments: AttachmentsOutcome | undefined;
  let item: ExternalItem | undefined;
  let failure: FailureFields | undefined;
  if (msg.attachments?.length) {
    const row = await state.items.getItem(msg.connectionId, msg.itemId, options);
    const newer = row?.pendingCrawlId ?? row?.settledCrawlId;
    if (newer && newer !== msg.crawlId && isNewerCrawl(newer, msg.crawlId)) {
      await state.items.markSuperseded(msg.connectionId, msg.crawlId, msg.itemId, options);
      await state.queue.deleteClaim(msg, options).catch(() => undefined);
      return { outcome: 'superseded', itemId: msg.itemId, reason: `crawl ${newer} holds a newer version` };
    }
  }
  if (msg.op === 'upsert') {
    try {
      item = await state.queue.resolve(msg, options);
      if (!item) throw new ClaimMissingError(msg.claim ?? '(none)');
    } catch (err) {
      if (!(err instanceof ClaimMissingError)) throw err;
      failure = { status: 0, code: 'ClaimMissing', message: err.message };
    }
    if (item && msg.attachments?.length) {
      const files = deps.attachments;
      if (!files) {
        log.warn(
          'ingest: the operation carries attachments but mapping.attachments is not configured; sent without them',
        );
      } else {
        const r = await files.apply(item, msg.attachments, { abortSignal: input.abortSignal });
        attachments = {
          extracted: r.files.filter((f) => f.ok).length,
          failed: r.files.filter((f) => !f.ok).length,
          files: r.files,
        };
        for (const f of r.files.filter((x) => x.ok))
          log.debug('ingest: attachment extracted', {
            file: f.name,
            format: f.format,
            pageCount: f.pageCount,
            textBytes: f.textBytes,
            ocrUsed: f.ocrUsed,
          });
        if (!r.ok) failure = { status: 0, code: r.code, message: withoutQueries(r.reason) };
        else {
          for (const w of r.warnings) log.warn('ingest: attachment warning', { warning: withoutQueries(w) });
          item = r.item;
        }
      }
    }
  }

  const fence = await state.items.fence(
    msg.connectionId,
    {
      itemId: msg.itemId,
      crawlId: msg.crawlId,
      hash: msg.hash,
      op: msg.op,
      token,
      ttlMs: deps.settings.fenceTtlMs,
      ...(msg.etag ? { etag: msg.etag } : {}),
    },
    options,
  );
  const stop = await notFenced(deps, msg, fence, options);
  if (stop) return stop;
  const fenced = fence as Extract<FenceResult, { outcome: 'fenced' }>;

  if (failure) {
    const dl = await deadLetter(deps, msg, failure, input.dequeueCount ?? 1, fenced, token, options);
    return attachments && dl.outcome === 'deadLettered' ? { ...dl, attachments } : dl;
  }

  const budget = AbortSignal.timeout(writeBudgetMs(deps));
  const signal = anySignal(input.abortSignal, budget)!;
  try {
    if (msg.replaces && msg.replaces !== msg.itemId) {
      // Graph holds the item under an id that differs in case: remove it first, whichever way Graph compares ids.
      await deps.graph.deleteItem(msg.connectionId, msg.replaces, { retry: { maxRetries: 0 }, abortSignal: signal });
    }
    if (msg.op === 'upsert') {
      await deps.graph.putItem(msg.connectionId, item!, { retry: { maxRetries: 0 }, abortSignal: signal });
    } else {
      await deps.graph.deleteItem(msg.connectionId, msg.itemId, { retry: { maxRetries: 0 }, abortSignal: signal });
    }
  } catch (err) {
    if (err instanceof GraphError && err.retryable && err.retryAfterMs !== undefined) {
      // Graph did not apply it: give the fence back and come back after Retry-After.
      await state.items.release(msg.connectionId, { itemId: msg.itemId, etag: fenced.etag }, options);
      const attempt = msg.attempt + 1;
      if (attempt > deps.settings.maxThrottleAttempts) {
        const refenced = await state.items.fence(
          msg.connectionId,
          {
            itemId: msg.itemId,
            crawlId: msg.crawlId,
            hash: msg.hash,
            op: msg.op,
            token,
            ttlMs: deps.settings.fenceTtlMs,
          },
          options,
        );
        const again = await notFenced(deps, msg, refenced, options);
        if (again) return again;
        return deadLetter(
          deps,
          msg,
          { ...errorFields(err), message: `throttled ${attempt} times in a row; last: ${withoutQueries(err.message)}` },
          attempt,
          refenced as Extract<FenceResult, { outcome: 'fenced' }>,
          token,
          options,
        );
      }
      const delay = retryAfterWithJitter(err.retryAfterMs, deps.random);
      const { etag: _etag, ...rest } = msg;
      await state.queue.send(
        { ...rest, attempt, notBefore: now + err.retryAfterMs },
        { visibilityDelayMs: delay, ...options },
      );
      log.info('ingest: throttled; re-enqueued after Retry-After', {
        status: err.status,
        retryAfterMs: err.retryAfterMs,
        delayMs: delay,
        attempt,
      });
      return { outcome: 'throttled', itemId: msg.itemId, retryInMs: delay, attempt };
    }
    if (err instanceof GraphError && !err.retryable && err.status !== 401 && err.status !== 403) {
      return deadLetter(deps, msg, errorFields(err), input.dequeueCount ?? 1, fenced, token, options);
    }
    // Graph answered (5xx, 401/403): nothing was written, the fence goes back. No answer (network, timeout): the
    // write may still land, so the fence stays until it expires and the redelivery (same message) takes it again.
    if (err instanceof GraphError && err.status > 0)
      await state.items
        .release(msg.connectionId, { itemId: msg.itemId, etag: fenced.etag }, options)
        .catch(() => undefined);
    log.warn('ingest: transient failure; the queue will redeliver', {
      ...errorFields(err),
      dequeueCount: input.dequeueCount,
    });
    throw err;
  }

  const activities =
    msg.op === 'upsert' && msg.activities?.length
      ? await sendActivities(deps, msg, msg.activities, { abortSignal: signal, stop: input.abortSignal })
      : undefined;

  const settled = await state.items.settle(
    msg.connectionId,
    {
      itemId: msg.itemId,
      crawlId: msg.crawlId,
      hash: msg.hash,
      op: msg.op,
      result: 'ok',
      etag: fenced.etag,
      token,
      takeover: fenced.takeover,
      ...(activities && msg.activityMark ? { activityMark: msg.activityMark } : {}),
    },
    options,
  );
  await state.queue.deleteClaim(msg, options).catch(() => undefined);
  return {
    outcome: msg.op === 'upsert' ? 'ingested' : 'deleted',
    itemId: msg.itemId,
    ...(attachments ? { attachments } : {}),
    ...(activities ? { activities } : {}),
    ...(settled.suspect ? { suspect: true } : {}),
  };
}

/** Retries of one addActivities call (Retry-After honoured, backoff otherwise), within the write's budget. */
const ACTIVITY_RETRY = { maxRetries: 3, maxDelayMs: 30_000 };

/** The body of an activities dead letter: what a replay sends again. */
export interface ActivitiesDeadLetterBody {
  v: 1;
  kind: 'activities';
  connectionId: string;
  itemId: string;
  crawlId: string;
  activities: MessageActivity[];
}

/**
 * Send an item's new activities, {@link MAX_ACTIVITIES_PER_CALL} to a call. Activities Graph refuses (a failed call
 * after its retries, or an entry of a 207 with an error) are dead-lettered together, with the first reason; the
 * item is not affected. Only `stop` (the invocation ending) throws: the redelivery sends them again.
 */
async function sendActivities(
  deps: PipelineDeps,
  msg: ItemMessage,
  list: readonly MessageActivity[],
  options: { abortSignal: AbortSignal; stop: AbortSignal | undefined },
): Promise<ActivitiesOutcome> {
  const failed: MessageActivity[] = [];
  let reason: FailureFields | undefined;
  let calls = 0;
  for (let i = 0; i < list.length; i += MAX_ACTIVITIES_PER_CALL) {
    const chunk = list.slice(i, i + MAX_ACTIVITIES_PER_CALL);
    try {
      calls++;
      const results = await deps.graph.addActivities(msg.connectionId, msg.itemId, chunk.map(toGraphActivity), {
        retry: ACTIVITY_RETRY,
        abortSignal: options.abortSignal,
      });
      results.forEach((r, j) => {
        if (!r.error) return;
        failed.push(chunk[j]!);
        reason ??= {
          status: 207,
          code: r.error.code ?? 'ActivityFailed',
          message: withoutQueries(r.error.message ?? 'Graph did not add the activity'),
        };
      });
    } catch (err) {
      if (options.stop?.aborted) throw err;
      failed.push(...chunk);
      reason ??= errorFields(err);
    }
  }
  if (failed.length) {
    const body: ActivitiesDeadLetterBody = {
      v: 1,
      kind: 'activities',
      connectionId: msg.connectionId,
      itemId: msg.itemId,
      crawlId: msg.crawlId,
      activities: failed,
    };
    const r = reason!;
    await deps.state.deadLetters.add(
      {
        connectionId: msg.connectionId,
        itemId: msg.itemId,
        crawlId: msg.crawlId,
        op: 'activities',
        ...r,
        message: `${failed.length} of ${list.length} activities were not added (the item itself is ingested): ${r.message}`,
        attempts: ACTIVITY_RETRY.maxRetries + 1,
        body: JSON.stringify(body),
      },
      { abortSignal: options.stop },
    );
    deps.logger.error('ingest: activities dead-lettered', {
      connectionId: msg.connectionId,
      itemId: msg.itemId,
      crawlId: msg.crawlId,
      failed: failed.length,
      of: list.length,
      status: r.status,
      code: r.code,
    });
  }
  return { sent: list.length - failed.length, failed: failed.length, calls };
}

/** A queued activity as addActivities takes it. */
export function toGraphActivity(a: MessageActivity): ExternalActivity {
  return {
    '@odata.type': '#microsoft.graph.externalConnectors.externalActivity',
    type: a.type,
    startDateTime: a.startDateTime,
    performedBy: { type: 'user', id: a.userId },
  };
}

/** The fence said no: drop (superseded, duplicate) or come back later (another version's write in flight). */
async function notFenced(
  deps: PipelineDeps,
  msg: ItemMessage,
  fence: FenceResult,
  options: OperationOptions,
): Promise<IngestOutcome | undefined> {
  const { state, logger } = deps;
  if (fence.outcome === 'fenced') return undefined;
  if (fence.outcome === 'busy') {
    // Look again soon (the write in flight usually settles long before its fence would expire), never later than
    // the fence's expiry.
    const delay = retryAfterWithJitter(Math.min(fence.retryInMs, 5_000), deps.random);
    const { etag: _etag, ...rest } = msg;
    await state.queue.send(rest, { visibilityDelayMs: delay, ...options });
    logger.info('ingest: another version of the item is being written; retrying after it', {
      itemId: msg.itemId,
      crawlId: msg.crawlId,
      delayMs: delay,
    });
    return { outcome: 'deferred', itemId: msg.itemId, retryInMs: delay, reason: fence.reason };
  }
  if (fence.outcome === 'superseded') {
    await state.items.markSuperseded(msg.connectionId, msg.crawlId, msg.itemId, options);
    logger.info('ingest: superseded; skipped', { itemId: msg.itemId, crawlId: msg.crawlId, reason: fence.reason });
  }
  await state.queue.deleteClaim(msg, options).catch(() => undefined);
  return { outcome: fence.outcome, itemId: msg.itemId, reason: fence.reason };
}

async function deadLetter(
  deps: PipelineDeps,
  msg: ItemMessage,
  fields: FailureFields,
  attempts: number | undefined,
  fenced: Extract<FenceResult, { outcome: 'fenced' }>,
  token: string,
  options: OperationOptions,
): Promise<IngestOutcome> {
  const { state, logger } = deps;
  // Attachment URLs lose their query strings (SAS tokens) here: dead letters are listed over HTTP.
  const stored = msg.attachments ? { ...msg, attachments: stripAttachmentQueries(msg.attachments) } : msg;
  const { item: _item, etag: _etag, ...envelope } = stored;
  await state.deadLetters.add(
    {
      connectionId: msg.connectionId,
      itemId: msg.itemId,
      crawlId: msg.crawlId,
      op: msg.op,
      ...fields,
      attempts: attempts ?? msg.attempt + 1,
      body: JSON.stringify(msg.item ? { ...envelope, item: msg.item } : envelope),
      ...(msg.claim ? { claim: msg.claim } : {}),
    },
    options,
  );
  await state.items.settle(
    msg.connectionId,
    {
      itemId: msg.itemId,
      crawlId: msg.crawlId,
      hash: msg.hash,
      op: msg.op,
      result: 'deadLettered',
      etag: fenced.etag,
      token,
      takeover: fenced.takeover,
      error:
        `${fields.status} ${fields.code}${fields.innerCode ? `/${fields.innerCode}` : ''}: ${fields.message}`.slice(
          0,
          1000,
        ),
    },
    options,
  );
  logger.error('ingest: dead-lettered', {
    connectionId: msg.connectionId,
    itemId: msg.itemId,
    crawlId: msg.crawlId,
    op: msg.op,
    status: fields.status,
    code: fields.code,
    ...(fields.innerCode ? { innerCode: fields.innerCode } : {}),
    ...(fields.requestId ? { requestId: fields.requestId } : {}),
  });
  return { outcome: 'deadLettered', itemId: msg.itemId, reason: `${fields.status} ${fields.code}: ${fields.message}` };
}

/**
 * A message that exhausted the queue's redeliveries (the `-poison` queue): dead-letter it and settle it, so the
 * crawl it belongs to can finish (its sweep and watermark wait for every operation to settle).
 */
export async function ingestPoison(
  deps: PipelineDeps,
  payload: unknown,
  options: { dequeueCount?: number; messageId?: string } & OperationOptions = {},
): Promise<IngestOutcome> {
  let msg: ItemMessage;
  try {
    msg = parseItemMessage(payload);
  } catch {
    return ingestItem(deps, { payload, ...options }); // dead-letters (and counts) the unreadable message
  }
  const token = options.messageId ?? randomUUID();
  const fence = await deps.state.items.fence(
    msg.connectionId,
    { itemId: msg.itemId, crawlId: msg.crawlId, hash: msg.hash, op: msg.op, token, ttlMs: deps.settings.fenceTtlMs },
    options,
  );
  const stop = await notFenced(deps, msg, fence, options);
  if (stop) return stop;
  const outcome = await deadLetter(
    deps,
    msg,
    {
      status: 0,
      code: 'RetriesExhausted',
      message: 'the operation failed on every delivery (transient errors); see the logs for each attempt',
    },
    options.dequeueCount,
    fence as Extract<FenceResult, { outcome: 'fenced' }>,
    token,
    options,
  );
  return counted(deps, outcome);
}
