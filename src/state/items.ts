/**
 * The item store (`${prefix}items`): the ledger's per-item memory of what Graph holds, and of every operation in
 * flight. Graph cannot list items, so this is the connector's truth; the snapshot (snapshot.ts) is a compact cache
 * of it that crawls diff against.
 *
 * Partition `${connectionId}-${bucket}` (256 buckets, see keys.ts); two kinds of rows in each:
 *
 * - **item rows**, row key = the item's key (lower-cased id): what Graph holds (`hash`, '' when nothing or not
 *   known), the operation pending for it (`pending*`: crawl, hash, op), the **fence** of the operation whose PUT or
 *   DELETE is in flight (`fence*`: token, until, crawl, hash), and whether Graph may hold another version than
 *   `hash` (`suspect`: an expired fence was taken over while its holder might still land a write).
 * - **touch rows**, row key `~t~${crawlId}~${key}`: one per (crawl, item) the crawl enqueued — `pending` until the
 *   operation settles, then `ingested`, `deleted`, `deadLettered` or `superseded`. A touch row is written in the same
 *   table transaction as the item row it describes, so a crawl's counts are exact under redelivery and crashes
 *   without a counter to read, and a finished crawl folds its touch rows into the next snapshot (then deletes them).
 *
 * One item operation costs two writes here: the fence (an ETag-conditional merge; the message carries the ETag the
 * enumeration got back, so no read first) and the settle (one transaction: item row + touch row).
 */
import { odata, type TableClient, type TableEntity, type TransactionAction } from '@azure/data-tables';
import { mapLimit, sleep, type OperationOptions } from '../core/async.js';
import { ConnectorError } from '../core/errors.js';
import { silentLogger, type Logger } from '../log.js';
import { assertConnection, StateConfigError } from './cursors.js';
import { ALL_BUCKETS, CRAWL_ID, ITEM_ID, itemKeyOf } from './keys.js';
import { chunk, conflictDelayMs, isConflict, isNotFound } from './util.js';

export type ItemOp = 'upsert' | 'delete';
export type ItemState = 'pending' | 'settled' | 'deadLettered' | 'deleted';
export type TouchState = 'pending' | 'ingested' | 'deleted' | 'deadLettered' | 'superseded';

/** Row schema version of item rows (1 = the ledger before snapshots; its rows are read by the rebuild only). */
export const ITEM_ROW_VERSION = 2;

export interface Fence {
  token: string;
  /** Epoch ms after which the fence may be taken over. */
  until: number;
  crawlId: string;
  hash: string;
  op: ItemOp;
}

export interface LedgerItem {
  connectionId: string;
  /** The lower-cased item id (row key). */
  key: string;
  /** The item id as Graph knows it (or as the pending operation names it). */
  itemId: string;
  /** Hash of the item Graph holds; '' when it holds nothing (never ingested, deleted). */
  hash: string;
  state: ItemState;
  /** Graph may hold another version than `hash` (a fence was taken over): the next crawl re-sends. */
  suspect: boolean;
  pendingCrawlId?: string;
  pendingHash?: string;
  pendingOp?: ItemOp;
  /** The id the pending operation names (its case may differ from `itemId`). */
  pendingItemId?: string;
  /** `${crawlId}@${position}` of the record that produced the latest operation (duplicate detection). */
  crawlPos?: string;
  /** That record's source key and position (JSON), for the duplicate's reason. */
  crawlRecord?: string;
  settledCrawlId?: string;
  fence?: Fence;
  /** When dead-lettered: the hash that failed and why. */
  failedHash?: string;
  lastError?: string;
  /** What was sent of the item's user activities (src/mapping/activities.ts, `ActivityMark`). */
  activityMark?: string;
  updatedAt: string;
  version: number;
  etag: string;
}

export interface TouchRow {
  partitionKey: string;
  rowKey: string;
  crawlId: string;
  key: string;
  itemId: string;
  op: ItemOp;
  state: TouchState;
  hash: string;
  /** The enumeration (or sweep) enqueued it: it counts as `enqueued` for the crawl. A replay's touch row does not. */
  enqueued: boolean;
  suspect: boolean;
  etag: string;
}

export class LedgerConflictError extends ConnectorError {
  override name = 'LedgerConflictError';
  constructor(message: string) {
    super(message, { code: 'LedgerConflict', retryable: true });
  }
}

const TOUCH = '~t~';
/** Item keys are [a-z0-9_-]: every item row key sorts below `~`, touch rows above. */
const ITEM_ROWS = "RowKey lt '~'";
const MAX_ATTEMPTS = 12;
/** Entries per markPending transaction (each may write an item row and up to two touch rows; the limit is 100). */
const PENDING_CHUNK = 32;

export interface PendingEntry {
  itemId: string;
  /** Hash of the item to PUT; for a delete, the hash being deleted ('' allowed). */
  hash: string;
  op: ItemOp;
  /** Where the record was read (`${page}:${index}`): tells a re-read page apart from a duplicate id. */
  pos?: string;
  /** The record that produced it (its source key and position), named when a later record duplicates its id. */
  record?: { key: string; position?: string };
  /** The snapshot knows the item (its row most likely exists): read before writing instead of inserting. */
  known?: boolean;
  /** Re-send even when the ledger says Graph already holds this hash. */
  force?: boolean;
}

export type PendingStatus =
  /** Marked pending for this crawl: send its message (with `etag`). */
  | 'marked'
  /** Already pending for this crawl with this hash (a re-read page): send its message again. */
  | 'again'
  /** This crawl already settled it with this hash (a re-read page): nothing to send. */
  | 'settled'
  /** The ledger says Graph holds exactly this hash: nothing to send (counts as unchanged). */
  | 'unchanged'
  /** Another record of this crawl produced the same item (`firstPos` says where). */
  | 'duplicate';

export interface PendingResult {
  status: PendingStatus;
  /** The item row's ETag after the write (for the message, so the ingest's fence needs no read). */
  etag?: string;
  firstPos?: string;
  /** For a duplicate: the record that produced the id first in this crawl. */
  first?: { key: string; position?: string; itemId: string };
  /** Graph holds the item under an id that differs in case: delete that id before writing the new one. */
  previousItemId?: string;
  /** For `marked` / `again`: the row's record of the activities already sent (absent: none yet). */
  activityMark?: string;
}

export type FenceResult =
  | { outcome: 'fenced'; etag: string; takeover: boolean }
  | { outcome: 'superseded'; reason: string; byCrawlId?: string }
  | { outcome: 'duplicate'; reason: string }
  | { outcome: 'busy'; retryInMs: number; reason: string };

export interface FenceInput {
  itemId: string;
  crawlId: string;
  hash: string;
  op: ItemOp;
  /** The row ETag the message carries (from the enumeration's write). */
  etag?: string;
  /** Identifies this operation's delivery (the queue message id survives redelivery). */
  token: string;
  ttlMs: number;
}

export interface SettleInput {
  itemId: string;
  crawlId: string;
  hash: string;
  op: ItemOp;
  result: 'ok' | 'deadLettered';
  /** The ETag the fence returned. */
  etag: string;
  token: string;
  /** The fence took over an expired fence of another version. */
  takeover: boolean;
  /** For a dead letter: why (never item content, never a secret). */
  error?: string;
  /** On success: the new record of the activities sent (written in the same transaction). */
  activityMark?: string;
}

export interface SettleResult {
  /** applied: the row says what this operation did; raced: another operation moved the row meanwhile (handled). */
  outcome: 'applied' | 'raced';
  suspect: boolean;
}

export interface ItemStoreOptions {
  table: TableClient;
  logger?: Logger;
  now?: () => number;
  /** Concurrency of bucket operations. Default 16. */
  concurrency?: number;
}

type Entity = TableEntity<Record<string, unknown>> & { etag?: string };

export class ItemStore {
  readonly table: TableClient;
  private readonly log: Logger;
  private readonly now: () => number;
  private readonly concurrency: number;

  constructor(options: ItemStoreOptions) {
    this.table = options.table;
    this.log = options.logger ?? silentLogger;
    this.now = options.now ?? Date.now;
    this.concurrency = options.concurrency ?? 16;
  }

  async ensure(options: OperationOptions = {}): Promise<void> {
    await this.table.createTable({ abortSignal: options.abortSignal });
  }

  private iso(): string {
    return new Date(this.now()).toISOString();
  }

  // ------------------------------------------------------------------ reads

  async getItem(connectionId: string, itemId: string, options: OperationOptions = {}): Promise<LedgerItem | undefined> {
    assertConnection(connectionId);
    assertItemId(itemId);
    const k = itemKeyOf(itemId);
    return this.read(connectionId, `${connectionId}-${k.bucket}`, k.key, options);
  }

  private async read(
    connectionId: string,
    pk: string,
    key: string,
    options: OperationOptions,
  ): Promise<LedgerItem | undefined> {
    try {
      const e = await this.table.getEntity<Record<string, unknown>>(pk, key, options);
      return toItem(connectionId, e as Entity);
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  /** Rows of these keys in one partition: point reads for one or two, else queries of up to 14 keys. */
  private async readMany(
    connectionId: string,
    pk: string,
    keys: readonly string[],
    options: OperationOptions,
  ): Promise<Map<string, LedgerItem>> {
    const out = new Map<string, LedgerItem>();
    if (keys.length <= 2) {
      for (const r of await Promise.all(keys.map((k) => this.read(connectionId, pk, k, options))))
        if (r) out.set(r.key, r);
      return out;
    }
    await mapLimit(chunk([...keys], 14), 4, async (group) => {
      const filter = `${odata`PartitionKey eq ${pk}`} and (${group.map((k) => odata`RowKey eq ${k}`).join(' or ')})`;
      for await (const e of this.table.listEntities<Record<string, unknown>>({
        queryOptions: { filter },
        abortSignal: options.abortSignal,
      }))
        out.set(e.rowKey!, toItem(connectionId, e as Entity));
    });
    return out;
  }

  /** Every item row of a connection (bucket by bucket; for a snapshot rebuild). Reads v1 rows too. */
  async *scanItems(connectionId: string, options: OperationOptions = {}): AsyncGenerator<LedgerItem> {
    assertConnection(connectionId);
    for (const b of ALL_BUCKETS) {
      const filter = `${odata`PartitionKey eq ${`${connectionId}-${b}`}`} and ${ITEM_ROWS}`;
      for await (const e of this.table.listEntities<Record<string, unknown>>({
        queryOptions: { filter },
        abortSignal: options.abortSignal,
      }))
        yield toItem(connectionId, e as Entity);
    }
  }

  // ------------------------------------------------------------------ enumeration: pending marks

  /**
   * Mark items as about to be sent by `crawlId` (before their messages go out). One transaction per bucket chunk:
   * items the snapshot does not know are inserted without a read (a first crawl costs one write per chunk); the
   * rest are read and written conditionally. Idempotent per (crawl, item): a page read again after a crash finds
   * its marks and re-sends (`again`) or skips what already settled (`settled`). A pending operation of an older
   * crawl is taken over (its touch row becomes `superseded`). Results are keyed by item key.
   */
  async markPending(
    connectionId: string,
    crawlId: string,
    entries: readonly PendingEntry[],
    options: OperationOptions = {},
  ): Promise<Map<string, PendingResult>> {
    assertConnection(connectionId);
    assertCrawlId(crawlId);
    const byBucket = new Map<string, (PendingEntry & { key: string })[]>();
    for (const e of entries) {
      assertItemId(e.itemId);
      const k = itemKeyOf(e.itemId);
      let list = byBucket.get(k.bucket);
      if (!list) byBucket.set(k.bucket, (list = []));
      list.push({ ...e, key: k.key });
    }
    const out = new Map<string, PendingResult>();
    await mapLimit(
      [...byBucket],
      this.concurrency,
      async ([bucket, list]) => {
        const pk = `${connectionId}-${bucket}`;
        // One entry per key and call (a page's in-page duplicates are the crawl's to reject before this).
        const seen = new Set<string>();
        const unique = list.filter((e) => (seen.has(e.key) ? false : (seen.add(e.key), true)));
        for (const part of chunk(unique, PENDING_CHUNK)) {
          for (const [k, r] of await this.markChunk(connectionId, crawlId, pk, part, options)) out.set(k, r);
        }
      },
      options,
    );
    return out;
  }

  private async markChunk(
    connectionId: string,
    crawlId: string,
    pk: string,
    list: (PendingEntry & { key: string })[],
    options: OperationOptions,
  ): Promise<Map<string, PendingResult>> {
    const at = this.iso();
    // Optimistic: nothing known → insert all (a first crawl). A conflict (a row exists) falls back to read + write.
    if (list.every((e) => !e.known)) {
      const actions: TransactionAction[] = [];
      for (const e of list) {
        actions.push(['create', newItemRow(pk, e, crawlId, at)]);
        actions.push(['upsert', touchEntity(pk, crawlId, e, 'pending', true, at), 'Replace']);
      }
      try {
        const r = await this.table.submitTransaction(actions, options);
        return new Map(list.map((e) => [e.key, { status: 'marked', etag: r.getResponseForEntity(e.key)?.etag ?? '' }]));
      } catch (err) {
        if (!isConflict(err)) throw err;
      }
    }
    for (let attempt = 0; ; attempt++) {
      const rows = await this.readMany(
        connectionId,
        pk,
        list.map((e) => e.key),
        options,
      );
      const actions: TransactionAction[] = [];
      const results = new Map<string, PendingResult>();
      const written: string[] = [];
      for (const e of list) {
        const row = rows.get(e.key);
        const decision = decidePending(row, e, crawlId);
        const mark = row?.activityMark ? { activityMark: row.activityMark } : {};
        if (decision.status !== 'marked') {
          results.set(e.key, {
            ...decision,
            ...(row && decision.status === 'again' ? { etag: row.etag, ...mark } : {}),
          });
          continue;
        }
        if (!row) actions.push(['create', newItemRow(pk, e, crawlId, at)]);
        else {
          const patch: Entity = {
            partitionKey: pk,
            rowKey: e.key,
            state: 'pending',
            pendingCrawlId: crawlId,
            pendingHash: e.hash,
            pendingOp: e.op,
            pendingItemId: e.itemId,
            crawlPos: e.pos ? `${crawlId}@${e.pos}` : `${crawlId}@`,
            crawlRecord: e.record ? JSON.stringify(e.record).slice(0, 2000) : '',
            updatedAt: at,
          };
          actions.push(['update', patch, 'Merge', { etag: row.etag }]);
          // The older crawl's operation will not settle for it any more.
          if (row.pendingCrawlId && row.pendingCrawlId !== crawlId)
            actions.push([
              'upsert',
              {
                partitionKey: pk,
                rowKey: touchKey(row.pendingCrawlId, e.key),
                crawlId: row.pendingCrawlId,
                key: e.key,
                itemId: row.itemId,
                state: 'superseded',
                updatedAt: at,
              },
              'Merge',
            ]);
        }
        actions.push(['upsert', touchEntity(pk, crawlId, e, 'pending', true, at), 'Replace']);
        written.push(e.key);
        results.set(e.key, {
          status: 'marked',
          ...(row && row.hash !== '' && row.itemId !== e.itemId ? { previousItemId: row.itemId } : {}),
          ...mark,
        });
      }
      if (!actions.length) return results;
      try {
        const r = await this.table.submitTransaction(actions, options);
        for (const k of written)
          results.set(k, { ...results.get(k)!, status: 'marked', etag: r.getResponseForEntity(k)?.etag ?? '' });
        return results;
      } catch (err) {
        if (!isConflict(err) || attempt >= MAX_ATTEMPTS) throw err;
        await sleep(conflictDelayMs(attempt), options);
      }
    }
  }

  // ------------------------------------------------------------------ ingest: fence, settle, release

  /**
   * Take the item's fence for one operation, right before its PUT/DELETE: decides whether the operation may reach
   * Graph at all (a newer crawl's operation, or this crawl's later hash, supersedes it; a redelivery of a settled
   * operation is a duplicate) and makes sure no other version's write is in flight (`busy` until that fence is
   * settled or expires). Uses the message's ETag first, so the usual case costs one conditional write.
   */
  async fence(connectionId: string, input: FenceInput, options: OperationOptions = {}): Promise<FenceResult> {
    assertConnection(connectionId);
    assertItemId(input.itemId);
    const k = itemKeyOf(input.itemId);
    const pk = `${connectionId}-${k.bucket}`;
    const fence: Fence = {
      token: input.token,
      until: this.now() + input.ttlMs,
      crawlId: input.crawlId,
      hash: input.hash,
      op: input.op,
    };
    if (input.etag) {
      try {
        const r = await this.table.updateEntity({ partitionKey: pk, rowKey: k.key, ...fenceFields(fence) }, 'Merge', {
          etag: input.etag,
          ...options,
        });
        return { outcome: 'fenced', etag: r.etag ?? '', takeover: false };
      } catch (err) {
        if (!isConflict(err) && !isNotFound(err)) throw err;
      }
    }
    for (let attempt = 0; ; attempt++) {
      const row = await this.read(connectionId, pk, k.key, options);
      const now = this.now();
      const verdict = decideFence(row, input, now);
      if (verdict.outcome !== 'proceed') return verdict;
      fence.until = now + input.ttlMs;
      try {
        const r = row
          ? await this.table.updateEntity({ partitionKey: pk, rowKey: k.key, ...fenceFields(fence) }, 'Merge', {
              etag: row.etag,
              ...options,
            })
          : await this.table.createEntity(
              {
                ...newItemRow(
                  pk,
                  { key: k.key, itemId: input.itemId, hash: input.hash, op: input.op },
                  input.crawlId,
                  this.iso(),
                ),
                ...fenceFields(fence),
              },
              options,
            );
        return { outcome: 'fenced', etag: r.etag ?? '', takeover: verdict.takeover };
      } catch (err) {
        if (!isConflict(err) || attempt >= MAX_ATTEMPTS) throw err;
        await sleep(conflictDelayMs(attempt), options);
      }
    }
  }

  /**
   * Record what an operation did, in one transaction: the item row (what Graph now holds) and the crawl's touch row
   * (counted). When the row moved since the fence (a newer crawl marked it, or — after a stall past the fence's
   * expiry — another version's operation took the fence over), the settle still records the truth: Graph holds
   * this write, and if another version's write may have landed around it the row is marked `suspect`, so the next
   * crawl re-sends the newest version.
   */
  async settle(connectionId: string, input: SettleInput, options: OperationOptions = {}): Promise<SettleResult> {
    assertConnection(connectionId);
    assertItemId(input.itemId);
    const k = itemKeyOf(input.itemId);
    const pk = `${connectionId}-${k.bucket}`;
    let etag: string | undefined = input.etag;
    let row: LedgerItem | undefined;
    for (let attempt = 0; ; attempt++) {
      const at = this.iso();
      const lostFence = row !== undefined && row.fence?.token !== input.token;
      const suspect = input.takeover || lostFence || (row?.suspect ?? false);
      const patch: Entity = { partitionKey: pk, rowKey: k.key, updatedAt: at, ...clearFence() };
      const stillPending =
        row?.pendingCrawlId !== undefined &&
        !(row.pendingCrawlId === input.crawlId && row.pendingHash === input.hash && row.pendingOp === input.op);
      if (lostFence) {
        // Another operation holds (or held) the fence now: leave the row to it, but flag that Graph may hold ours.
        Object.assign(patch, { suspect: true });
        for (const f of Object.keys(clearFence())) delete patch[f];
      } else if (input.result === 'ok') {
        Object.assign(patch, {
          hash: input.op === 'upsert' ? input.hash : '',
          itemId: input.itemId,
          settledCrawlId: input.crawlId,
          suspect,
          failedHash: null,
          lastError: null,
          // A deleted item's activities go with it: a re-created item gets them again.
          ...(input.op === 'delete'
            ? { activityMark: null }
            : input.activityMark
              ? { activityMark: input.activityMark }
              : {}),
          ...(stillPending ? {} : { state: input.op === 'upsert' ? 'settled' : 'deleted', ...clearPending() }),
        });
      } else {
        Object.assign(patch, {
          failedHash: input.hash,
          lastError: (input.error ?? '').slice(0, 4000),
          settledCrawlId: input.crawlId,
          ...(stillPending ? {} : { state: 'deadLettered', ...clearPending() }),
        });
      }
      const touch: TouchState =
        input.result === 'deadLettered' ? 'deadLettered' : input.op === 'upsert' ? 'ingested' : 'deleted';
      const actions: TransactionAction[] = [
        ['update', stripNulls(patch), 'Merge', { etag: etag ?? '*' }],
        [
          'upsert',
          {
            partitionKey: pk,
            rowKey: touchKey(input.crawlId, k.key),
            crawlId: input.crawlId,
            key: k.key,
            itemId: input.itemId,
            op: input.op,
            hash: input.hash,
            state: touch,
            suspect: input.result === 'ok' && suspect,
            updatedAt: at,
          },
          'Merge',
        ],
      ];
      try {
        await this.table.submitTransaction(actions, options);
        if (suspect && input.result === 'ok')
          this.log.warn('ledger: another version may have been written around this one; the next crawl re-sends it', {
            connectionId,
            itemId: input.itemId,
            crawlId: input.crawlId,
          });
        return { outcome: row ? 'raced' : 'applied', suspect: suspect && input.result === 'ok' };
      } catch (err) {
        if (!isConflict(err) && !isNotFound(err)) throw err;
        if (attempt >= MAX_ATTEMPTS) throw new LedgerConflictError(`settle of ${input.itemId} kept conflicting`);
        row = await this.read(connectionId, pk, k.key, options);
        if (!row) throw new LedgerConflictError(`the ledger row of ${input.itemId} vanished during its operation`);
        etag = row.etag;
        await sleep(conflictDelayMs(attempt), options);
      }
    }
  }

  /** Give a fence back without settling (the write did not happen: throttled, refused before reaching Graph). */
  async release(
    connectionId: string,
    input: { itemId: string; etag: string },
    options: OperationOptions = {},
  ): Promise<void> {
    const k = itemKeyOf(input.itemId);
    try {
      await this.table.updateEntity(
        stripNulls({ partitionKey: `${connectionId}-${k.bucket}`, rowKey: k.key, ...clearFence() }),
        'Merge',
        { etag: input.etag, ...options },
      );
    } catch (err) {
      if (!isConflict(err) && !isNotFound(err)) throw err;
    }
  }

  /** A dropped operation of `crawlId` (superseded at the fence) counts as superseded for its crawl. */
  async markSuperseded(
    connectionId: string,
    crawlId: string,
    itemId: string,
    options: OperationOptions = {},
  ): Promise<void> {
    const k = itemKeyOf(itemId);
    const pk = `${connectionId}-${k.bucket}`;
    try {
      const e = await this.table.getEntity<Record<string, unknown>>(pk, touchKey(crawlId, k.key), options);
      if (e.state !== 'pending') return;
      await this.table.updateEntity(
        { partitionKey: pk, rowKey: touchKey(crawlId, k.key), state: 'superseded', updatedAt: this.iso() },
        'Merge',
        { etag: e.etag, ...options },
      );
    } catch (err) {
      if (!isConflict(err) && !isNotFound(err)) throw err;
    }
  }

  // ------------------------------------------------------------------ touch rows

  /** Touch rows of one crawl, or of every crawl (for the snapshot fold), bucket by bucket (or of one bucket). */
  async *touches(
    connectionId: string,
    options: { crawlId?: string; bucket?: string; select?: string[] } & OperationOptions = {},
  ): AsyncGenerator<TouchRow> {
    assertConnection(connectionId);
    const from = options.crawlId ? `${TOUCH}${options.crawlId}~` : TOUCH;
    const to = options.crawlId ? `${TOUCH}${options.crawlId}~~` : `${TOUCH}~`;
    for (const b of options.bucket !== undefined ? [options.bucket] : ALL_BUCKETS) {
      const filter = odata`PartitionKey eq ${`${connectionId}-${b}`} and RowKey ge ${from} and RowKey lt ${to}`;
      for await (const e of this.table.listEntities<Record<string, unknown>>({
        queryOptions: { filter, ...(options.select ? { select: options.select } : {}) },
        abortSignal: options.abortSignal,
      }))
        yield toTouch(e as Entity);
    }
  }

  /** A crawl's item-side counts from its touch rows (256 range queries, run concurrently). */
  async counts(connectionId: string, crawlId: string, options: OperationOptions = {}): Promise<TouchCounts> {
    assertConnection(connectionId);
    const c = zeroTouchCounts();
    const from = `${TOUCH}${crawlId}~`;
    const to = `${TOUCH}${crawlId}~~`;
    await mapLimit(
      ALL_BUCKETS,
      32,
      async (b) => {
        const filter = odata`PartitionKey eq ${`${connectionId}-${b}`} and RowKey ge ${from} and RowKey lt ${to}`;
        for await (const e of this.table.listEntities<Record<string, unknown>>({
          queryOptions: { filter, select: ['state', 'enqueued'] },
          abortSignal: options.abortSignal,
        })) {
          if (e.enqueued !== true) continue;
          c.enqueued++;
          const s = e.state as TouchState;
          if (s === 'pending') c.pending++;
          else c[s]++;
        }
      },
      options,
    );
    return c;
  }

  /**
   * Delete touch rows that a snapshot now holds, 100 to a transaction. (Table transactions cannot delete on an ETag:
   * a final row that changes after the merge read it — a replay settling — may go with it; the next crawl's diff then
   * asks the ledger about that item, which still says the truth.)
   */
  async deleteTouches(rows: readonly TouchRow[], options: OperationOptions = {}): Promise<number> {
    const byPk = new Map<string, TouchRow[]>();
    for (const r of rows) {
      let l = byPk.get(r.partitionKey);
      if (!l) byPk.set(r.partitionKey, (l = []));
      l.push(r);
    }
    let deleted = 0;
    await mapLimit(
      [...byPk.values()],
      this.concurrency,
      async (list) => {
        for (const part of chunk(list, 100)) {
          try {
            await this.table.submitTransaction(
              part.map((r) => ['delete', { partitionKey: r.partitionKey, rowKey: r.rowKey }] as TransactionAction),
              options,
            );
            deleted += part.length;
          } catch (err) {
            if (!isConflict(err) && !isNotFound(err)) throw err;
            // Some row is already gone: delete the others one by one.
            for (const r of part) {
              try {
                await this.table.deleteEntity(r.partitionKey, r.rowKey, options);
                deleted++;
              } catch (e) {
                if (!isConflict(e) && !isNotFound(e)) throw e;
              }
            }
          }
        }
      },
      options,
    );
    return deleted;
  }
}

export interface TouchCounts {
  enqueued: number;
  pending: number;
  ingested: number;
  deleted: number;
  deadLettered: number;
  superseded: number;
}

export function zeroTouchCounts(): TouchCounts {
  return { enqueued: 0, pending: 0, ingested: 0, deleted: 0, deadLettered: 0, superseded: 0 };
}

/** True when crawl id `a` is from a later crawl than `b` (crawl ids sort newest first). */
export function isNewerCrawl(a: string, b: string): boolean {
  return a < b;
}

function assertItemId(itemId: string): void {
  if (!ITEM_ID.test(itemId))
    throw new StateConfigError(
      `item id "${itemId.slice(0, 140)}" is not 1–128 letters, digits, "-" or "_"; map the source key to a valid id`,
    );
}

function assertCrawlId(crawlId: string): void {
  if (!CRAWL_ID.test(crawlId))
    throw new StateConfigError(`crawl id "${crawlId.slice(0, 70)}" is not 1–64 alphanumerics`);
}

function touchKey(crawlId: string, key: string): string {
  return `${TOUCH}${crawlId}~${key}`;
}

function newItemRow(
  pk: string,
  e: {
    key: string;
    itemId: string;
    hash: string;
    op: ItemOp;
    pos?: string;
    record?: { key: string; position?: string };
  },
  crawlId: string,
  at: string,
): Entity {
  return {
    ...(e.record ? { crawlRecord: JSON.stringify(e.record).slice(0, 2000) } : {}),
    partitionKey: pk,
    rowKey: e.key,
    itemId: e.itemId,
    hash: '',
    state: 'pending',
    pendingCrawlId: crawlId,
    pendingHash: e.hash,
    pendingOp: e.op,
    pendingItemId: e.itemId,
    crawlPos: e.pos ? `${crawlId}@${e.pos}` : `${crawlId}@`,
    updatedAt: at,
    version: ITEM_ROW_VERSION,
  };
}

function touchEntity(
  pk: string,
  crawlId: string,
  e: { key: string; itemId: string; hash: string; op: ItemOp },
  state: TouchState,
  enqueued: boolean,
  at: string,
): Entity {
  return {
    partitionKey: pk,
    rowKey: touchKey(crawlId, e.key),
    crawlId,
    key: e.key,
    itemId: e.itemId,
    op: e.op,
    hash: e.hash,
    state,
    enqueued,
    updatedAt: at,
  };
}

function fenceFields(f: Fence): Record<string, unknown> {
  return { fenceToken: f.token, fenceUntil: f.until, fenceCrawlId: f.crawlId, fenceHash: f.hash, fenceOp: f.op };
}

function clearFence(): Record<string, null> {
  return { fenceToken: null, fenceUntil: null, fenceCrawlId: null, fenceHash: null, fenceOp: null };
}

function clearPending(): Record<string, null> {
  return { pendingCrawlId: null, pendingHash: null, pendingOp: null, pendingItemId: null };
}

/**
 * A Merge cannot remove a property; a property set to '' (or, for numbers, absent) reads as "not set". Nulls in a
 * patch become ''.
 */
function stripNulls(e: Entity): Entity {
  const out: Entity = { partitionKey: e.partitionKey, rowKey: e.rowKey };
  for (const [k, v] of Object.entries(e)) {
    if (k === 'partitionKey' || k === 'rowKey' || v === undefined) continue;
    out[k] = v === null ? (k === 'fenceUntil' ? 0 : '') : v;
  }
  return out;
}

/** What markPending does with one entry, given the item's row. */
function decidePending(
  row: LedgerItem | undefined,
  e: PendingEntry,
  crawlId: string,
): { status: PendingStatus; firstPos?: string; first?: PendingResult['first'] } {
  if (!row) return { status: 'marked' };
  const mine = row.crawlPos?.startsWith(`${crawlId}@`) === true;
  if (mine && e.pos !== undefined) {
    const first = row.crawlPos!.slice(crawlId.length + 1);
    if (first !== '' && first !== e.pos) {
      let rec: { key?: unknown; position?: unknown } = {};
      try {
        rec = row.crawlRecord ? (JSON.parse(row.crawlRecord) as typeof rec) : {};
      } catch {
        /* an unreadable note names no record */
      }
      const itemId = row.pendingCrawlId === crawlId ? (row.pendingItemId ?? row.itemId) : row.itemId;
      return {
        status: 'duplicate',
        firstPos: first,
        ...(typeof rec.key === 'string'
          ? { first: { key: rec.key, itemId, ...(typeof rec.position === 'string' ? { position: rec.position } : {}) } }
          : {}),
      };
    }
  }
  if (row.pendingCrawlId === crawlId) {
    if (row.pendingHash === e.hash && row.pendingOp === e.op) return { status: 'again' };
    return { status: 'marked' };
  }
  if (!row.pendingCrawlId) {
    const heldClean = !row.suspect && !row.fence;
    if (row.settledCrawlId === crawlId && heldClean) {
      if (e.op === 'upsert' && row.state === 'settled' && row.hash === e.hash) return { status: 'settled' };
      if (e.op === 'delete' && row.state === 'deleted') return { status: 'settled' };
    }
    if (!e.force && heldClean && e.op === 'upsert' && row.state === 'settled' && row.hash === e.hash)
      return { status: 'unchanged' };
  }
  return { status: 'marked' };
}

/** Whether an operation may go ahead at the fence. */
function decideFence(
  row: LedgerItem | undefined,
  m: FenceInput,
  now: number,
): FenceResult | { outcome: 'proceed'; takeover: boolean } {
  if (row) {
    const p = row.pendingCrawlId;
    if (p && p !== m.crawlId && isNewerCrawl(p, m.crawlId))
      return { outcome: 'superseded', reason: `crawl ${p} holds a newer operation`, byCrawlId: p };
    if (p === m.crawlId && (row.pendingHash !== m.hash || row.pendingOp !== m.op))
      return { outcome: 'superseded', reason: 'this crawl marked a newer version of the item', byCrawlId: p };
    if (!p && row.settledCrawlId) {
      if (row.settledCrawlId === m.crawlId) {
        const done =
          (m.op === 'upsert' && row.state === 'settled' && row.hash === m.hash) ||
          (m.op === 'delete' && row.state === 'deleted');
        if (done && !row.fence) return { outcome: 'duplicate', reason: 'this crawl already settled the operation' };
      } else if (isNewerCrawl(row.settledCrawlId, m.crawlId))
        return {
          outcome: 'superseded',
          reason: `crawl ${row.settledCrawlId} settled a newer version`,
          byCrawlId: row.settledCrawlId,
        };
    }
    const f = row.fence;
    if (f && f.token !== m.token) {
      const sameVersion = f.crawlId === m.crawlId && f.hash === m.hash && f.op === m.op;
      if (!sameVersion) {
        if (f.until > now)
          return {
            outcome: 'busy',
            retryInMs: f.until - now,
            reason: `another version's write (crawl ${f.crawlId}) is in flight`,
          };
        return { outcome: 'proceed', takeover: true };
      }
    }
  }
  return { outcome: 'proceed', takeover: false };
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined;
}

function toItem(connectionId: string, e: Entity): LedgerItem {
  const version = typeof e.version === 'number' ? e.version : 1;
  const key = e.rowKey ?? '';
  const legacyState = str(e.state);
  const state: ItemState =
    legacyState === 'deleting' ? 'pending' : ((legacyState as ItemState | undefined) ?? 'pending');
  const item: LedgerItem = {
    connectionId,
    key: version >= 2 ? key : key.toLowerCase(),
    itemId: str(e.itemId) ?? key,
    hash: typeof e.hash === 'string' ? e.hash : '',
    state,
    suspect: e.suspect === true,
    updatedAt: str(e.updatedAt) ?? '',
    version,
    etag: e.etag ?? '',
  };
  for (const k of [
    'pendingCrawlId',
    'pendingHash',
    'crawlPos',
    'crawlRecord',
    'pendingItemId',
    'settledCrawlId',
    'failedHash',
    'lastError',
    'activityMark',
  ] as const) {
    const v = str(e[k]);
    if (v !== undefined) item[k] = v;
  }
  if (typeof e.pendingHash === 'string' && item.pendingCrawlId) item.pendingHash = e.pendingHash;
  const op = str(e.pendingOp);
  if (op === 'upsert' || op === 'delete') item.pendingOp = op;
  const token = str(e.fenceToken);
  if (token && typeof e.fenceUntil === 'number' && e.fenceUntil > 0) {
    item.fence = {
      token,
      until: e.fenceUntil,
      crawlId: str(e.fenceCrawlId) ?? '',
      hash: typeof e.fenceHash === 'string' ? e.fenceHash : '',
      op: e.fenceOp === 'delete' ? 'delete' : 'upsert',
    };
  }
  return item;
}

function toTouch(e: Entity): TouchRow {
  const rk = e.rowKey ?? '';
  const rest = rk.slice(TOUCH.length);
  const i = rest.indexOf('~');
  return {
    partitionKey: e.partitionKey ?? '',
    rowKey: rk,
    crawlId: str(e.crawlId) ?? rest.slice(0, i),
    key: str(e.key) ?? rest.slice(i + 1),
    itemId: str(e.itemId) ?? rest.slice(i + 1),
    op: e.op === 'delete' ? 'delete' : 'upsert',
    state: (str(e.state) as TouchState | undefined) ?? 'pending',
    hash: typeof e.hash === 'string' ? e.hash : '',
    enqueued: e.enqueued === true,
    suspect: e.suspect === true,
    etag: e.etag ?? '',
  };
}
