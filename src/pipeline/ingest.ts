/**
 * Ingest: one item operation from the queue → PUT or DELETE on Graph → settle it in the ledger.
 *
 * - Throttling (429/503/504 with Retry-After) re-enqueues the operation with a visibility delay of
 *   Retry-After plus jitter; it never sleeps inside an invocation and never retries before Retry-After.
 * - Other transient failures (5xx, network, 401/403 right after consent) are thrown, so the queue redelivers;
 *   after the host's maxDequeueCount the message lands in the poison queue, which {@link ingestPoison} turns
 *   into a dead letter.
 * - Permanent failures (4xx) are dead-lettered at once with Graph's error code and request id.
 * - An operation superseded by a newer crawl is dropped before it reaches Graph: an older version never
 *   overwrites a newer one.
 */
import { GraphError } from '../graph/errors.js';
import { ClaimMissingError, parseItemMessage, type ItemMessage, type ItemMessageError } from '../state/item-queue.js';
import { isNewerCrawl } from '../state/ledger.js';
import { applyAttachments, type AttachmentReport } from './attachments.js';
import { retryAfterWithJitter } from './concurrency.js';
import type { PipelineDeps } from './deps.js';

/** What the ingest did with an item's attachments (absent when it had none). */
export interface AttachmentsOutcome {
  extracted: number;
  failed: number;
  files: AttachmentReport[];
}

export type IngestOutcome =
  | { outcome: 'ingested' | 'deleted'; itemId: string; counted: boolean; attachments?: AttachmentsOutcome }
  | { outcome: 'throttled'; itemId: string; retryInMs: number; attempt: number }
  | { outcome: 'deferred'; itemId: string; retryInMs: number }
  | { outcome: 'superseded'; itemId: string; reason: string }
  | { outcome: 'deadLettered'; itemId: string; reason: string; attachments?: AttachmentsOutcome };

export interface IngestInput {
  /** The message as delivered (an object from the Functions trigger, or text from the local worker). */
  payload: unknown;
  dequeueCount?: number;
  signal?: AbortSignal;
}

/** Graph's opinion of a failure, for dead-letter records. */
function errorFields(err: unknown): {
  status: number;
  code: string;
  innerCode?: string;
  requestId?: string;
  clientRequestId?: string;
  message: string;
} {
  if (err instanceof GraphError) {
    return {
      status: err.status,
      code: err.code,
      ...(err.innerCode ? { innerCode: err.innerCode } : {}),
      ...(err.requestId ? { requestId: err.requestId } : {}),
      ...(err.clientRequestId ? { clientRequestId: err.clientRequestId } : {}),
      message: err.message,
    };
  }
  return { status: 0, code: (err as Error)?.name ?? 'Error', message: (err as Error)?.message ?? String(err) };
}

export async function ingestItem(deps: PipelineDeps, input: IngestInput): Promise<IngestOutcome> {
  const { state, logger } = deps;
  let msg: ItemMessage;
  try {
    msg = parseItemMessage(input.payload);
  } catch (err) {
    const e = err as ItemMessageError;
    const body = typeof input.payload === 'string' ? input.payload : JSON.stringify(input.payload ?? null);
    await state.deadLetters.add({
      connectionId: deps.connectionId,
      itemId: 'unknown',
      crawlId: 'unknown',
      op: 'unknown',
      message: `the queue message could not be read: ${e.message}`,
      body: body.slice(0, 30_000),
    });
    logger.error('ingest: unreadable queue message dead-lettered', { error: e.message });
    return { outcome: 'deadLettered', itemId: 'unknown', reason: e.message };
  }
  const log = logger.child({ connectionId: msg.connectionId, itemId: msg.itemId, crawlId: msg.crawlId, op: msg.op });
  const now = deps.now();
  if (msg.notBefore !== undefined && msg.notBefore > now + 250) {
    // Delivered early (a queue that ignores visibility delays, or a clock skew): put it back, never call Graph early.
    const wait = msg.notBefore - now;
    await state.queue.send(msg, { visibilityDelayMs: wait });
    return { outcome: 'deferred', itemId: msg.itemId, retryInMs: wait };
  }

  // An operation that a newer crawl already replaced must not reach Graph.
  const row = await state.ledger.getItem(msg.connectionId, msg.itemId, input.signal);
  if (row) {
    if (row.pendingCrawlId && row.pendingCrawlId !== msg.crawlId && isNewerCrawl(row.pendingCrawlId, msg.crawlId)) {
      log.info('ingest: superseded by a newer crawl; skipped', { newerCrawlId: row.pendingCrawlId });
      await state.queue.deleteClaim(msg).catch(() => undefined);
      return {
        outcome: 'superseded',
        itemId: msg.itemId,
        reason: `crawl ${row.pendingCrawlId} holds a newer operation`,
      };
    }
    if (!row.pendingCrawlId && row.settledCrawlId && isNewerCrawl(row.settledCrawlId, msg.crawlId)) {
      log.info('ingest: a newer crawl already settled this item; skipped', { newerCrawlId: row.settledCrawlId });
      await state.queue.deleteClaim(msg).catch(() => undefined);
      return {
        outcome: 'superseded',
        itemId: msg.itemId,
        reason: `crawl ${row.settledCrawlId} settled a newer version`,
      };
    }
  }

  let attachments: AttachmentsOutcome | undefined;
  try {
    if (msg.op === 'upsert') {
      let item = await state.queue.resolve(msg, input.signal);
      if (!item) throw new ClaimMissingError(msg.claim ?? '(none)');
      if (msg.attachments?.length) {
        // Extract here, not in the crawl: a slow file (OCR) holds up this one operation, never the enumeration.
        const settings = deps.mapper.attachments;
        if (!settings) {
          log.warn(
            'ingest: the operation carries attachments but mapping.attachments is not configured; sent without them',
            {},
          );
        } else {
          const r = await applyAttachments(item, msg.attachments, settings, input.signal);
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
          if (!r.ok) {
            const dl = await deadLetter(
              deps,
              msg,
              { status: 0, code: r.code, message: r.reason },
              input.dequeueCount ?? 1,
            );
            return { ...dl, attachments } as IngestOutcome;
          }
          for (const w of r.warnings) log.warn('ingest: attachment warning', { warning: w });
          item = r.item;
        }
      }
      await deps.graph.putItem(msg.connectionId, item, {
        retry: { maxRetries: 0 },
        ...(input.signal ? { abortSignal: input.signal } : {}),
      });
    } else {
      await deps.graph.deleteItem(msg.connectionId, msg.itemId, {
        retry: { maxRetries: 0 },
        ...(input.signal ? { abortSignal: input.signal } : {}),
      });
    }
  } catch (err) {
    if (err instanceof ClaimMissingError) {
      return deadLetter(deps, msg, { status: 0, code: 'ClaimMissing', message: err.message }, input.dequeueCount);
    }
    if (err instanceof GraphError && err.retryable && err.retryAfterMs !== undefined) {
      const attempt = msg.attempt + 1;
      if (attempt > deps.settings.maxThrottleAttempts) {
        return deadLetter(
          deps,
          msg,
          { ...errorFields(err), message: `throttled ${attempt} times in a row; last: ${err.message}` },
          attempt,
        );
      }
      const delay = retryAfterWithJitter(err.retryAfterMs, deps.random);
      await state.queue.send({ ...msg, attempt, notBefore: now + err.retryAfterMs }, { visibilityDelayMs: delay });
      log.info('ingest: throttled; re-enqueued after Retry-After', {
        status: err.status,
        retryAfterMs: err.retryAfterMs,
        delayMs: delay,
        attempt,
      });
      return { outcome: 'throttled', itemId: msg.itemId, retryInMs: delay, attempt };
    }
    if (err instanceof GraphError && !err.retryable && err.status !== 401 && err.status !== 403) {
      return deadLetter(deps, msg, errorFields(err), input.dequeueCount ?? 1);
    }
    // Transient without Retry-After (5xx, network), or auth that may still be settling: let the queue redeliver.
    log.warn('ingest: transient failure; the queue will redeliver', {
      ...errorFields(err),
      dequeueCount: input.dequeueCount,
    });
    throw err;
  }

  const settled = await state.ledger.settle(
    msg.connectionId,
    msg.itemId,
    {
      crawlId: msg.crawlId,
      hash: msg.hash,
      state: msg.op === 'upsert' ? 'settled' : 'deleted',
      generation: msg.generation,
    },
    input.signal,
  );
  await state.queue.deleteClaim(msg).catch(() => undefined);
  if (settled.outcome === 'stale') log.warn('ingest: settled by another crawl meanwhile', {});
  return {
    outcome: msg.op === 'upsert' ? 'ingested' : 'deleted',
    itemId: msg.itemId,
    counted: settled.counted,
    ...(attachments ? { attachments } : {}),
  };
}

async function deadLetter(
  deps: PipelineDeps,
  msg: ItemMessage,
  fields: ReturnType<typeof errorFields>,
  attempts: number | undefined,
): Promise<IngestOutcome> {
  const { state, logger } = deps;
  const { item: _item, ...envelope } = msg;
  await state.deadLetters.add({
    connectionId: msg.connectionId,
    itemId: msg.itemId,
    crawlId: msg.crawlId,
    op: msg.op,
    ...fields,
    attempts: attempts ?? msg.attempt + 1,
    body: JSON.stringify(msg.item ? msg : envelope),
    ...(msg.claim ? { claim: msg.claim } : {}),
  });
  await state.ledger.settle(msg.connectionId, msg.itemId, {
    crawlId: msg.crawlId,
    hash: msg.hash,
    state: 'deadLettered',
    generation: msg.generation,
    error: `${fields.status} ${fields.code}${fields.innerCode ? `/${fields.innerCode}` : ''}: ${fields.message}`.slice(
      0,
      1000,
    ),
  });
  logger.error('ingest: dead-lettered', {
    connectionId: msg.connectionId,
    itemId: msg.itemId,
    crawlId: msg.crawlId,
    op: msg.op,
    status: fields.status,
    code: fields.code,
    innerCode: fields.innerCode,
    requestId: fields.requestId,
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
  dequeueCount?: number,
): Promise<IngestOutcome> {
  let msg: ItemMessage;
  try {
    msg = parseItemMessage(payload);
  } catch {
    return ingestItem(deps, { payload }); // dead-letters the unreadable message
  }
  return deadLetter(
    deps,
    msg,
    {
      status: 0,
      code: 'RetriesExhausted',
      message: 'the operation failed on every delivery (transient errors); see the logs for each attempt',
    },
    dequeueCount,
  );
}
