/**
 * Deletes a crawl sends on its own account (not for a record it read): the sweep's (snapshot items the crawl did
 * not see) and the old ids of items whose id format changed. Each is fenced like any operation: marked pending
 * for this crawl in the ledger first, so an older operation still in flight for the same item is superseded.
 */
import type { OperationOptions } from '../core/async.js';
import type { CrawlJob } from '../state/jobs.js';
import { itemKeyOf } from '../state/keys.js';
import type { ItemMessage } from '../state/queues/items.js';
import type { PipelineDeps } from './deps.js';

/** Mark `itemIds` pending deletion by `job` and send the deletes the ledger let through. Returns how many were sent. */
export async function sendDeletes(
  deps: PipelineDeps,
  job: CrawlJob,
  itemIds: readonly string[],
  options: OperationOptions = {},
): Promise<number> {
  if (!itemIds.length) return 0;
  const { state, connectionId } = deps;
  const marks = await state.items.markPending(
    connectionId,
    job.crawlId,
    itemIds.map((itemId) => ({ itemId, hash: '', op: 'delete' as const, known: true })),
    options,
  );
  const msgs: ItemMessage[] = [];
  for (const itemId of itemIds) {
    const m = marks.get(itemKeyOf(itemId).key);
    if (!m || (m.status !== 'marked' && m.status !== 'again')) continue;
    msgs.push({
      v: 1,
      op: 'delete',
      connectionId,
      itemId,
      crawlId: job.crawlId,
      generation: job.generation,
      hash: '',
      attempt: 0,
      ...(m.etag ? { etag: m.etag } : {}),
    });
  }
  if (msgs.length) await state.queue.sendBatch(msgs, options);
  return msgs.length;
}
