/**
 * The ledger: our record of what Graph holds (Graph cannot list items), and of every crawl.
 *
 * Tables (prefix = `LEDGER_TABLE_PREFIX`, default `gc`); the full layout is in docs/state.md:
 * - `${prefix}items`: one row per item, partition `${connectionId}-${sha256(itemId)[0..2]}` (256 buckets), row key =
 *   itemId. Each bucket partition also holds up to 4 *bucket counter* rows per crawl (row key `~c~${crawlId}~${shard}`), updated in
 *   the same table transaction as the item rows it accounts for: so `enqueued`, `unchanged`, `ingested`, `deleted`,
 *   `deadLettered` and `superseded` are exact even under at-least-once queue delivery and crashes.
 * - `${prefix}jobs`: crawl job rows (partition = connectionId, row key = crawlId, newest first) and sharded counter
 *   rows for the crawler-side counts (partition `${connectionId}~counts`).
 * - `${prefix}cursors`: one row per connection (and cursor name), committed with ETag concurrency.
 * - `${prefix}deadletters`: see dead-letters.ts.
 */
import {
  odata,
  type TableClient,
  type TableEntity,
  type TableEntityResult,
  type TransactionAction,
} from '@azure/data-tables';
import { silentLogger, type Logger } from '../log.js';
import type { ItemOp } from './item-queue.js';
import {
  ALL_BUCKETS,
  CONNECTION_ID,
  ITEM_ID,
  bucketOf,
  chunk,
  conflictDelayMs,
  isConflict,
  isNotFound,
  mapLimit,
  randomId,
  sleep,
} from './util.js';

export type ItemState = 'pending' | 'settled' | 'deadLettered' | 'deleting' | 'deleted';

/** Row schema version of item rows. */
export const ITEM_ROW_VERSION = 1;

export interface LedgerItem {
  connectionId: string;
  itemId: string;
  /** Hash of the final item (properties + content + ACL) that Graph holds; '' when Graph holds nothing. */
  hash: string;
  /** Last full-crawl generation that saw the item. */
  generation: number;
  /** Last crawl that saw (enumerated) the item. */
  lastCrawlId: string;
  /** Crawl whose message last settled the item. */
  settledCrawlId?: string;
  state: ItemState;
  /** While pending/deleting: the crawl whose message will settle it, the hash and the operation in flight. */
  pendingCrawlId?: string;
  pendingHash?: string;
  pendingOp?: ItemOp;
  /** When dead-lettered: the hash that failed (a crawl may treat an identical hash as unchanged). */
  failedHash?: string;
  lastError?: string;
  updatedAt: string;
  version: number;
  /** The row's ETag, for conditional writes. */
  etag: string;
}

export interface CrawlCounts {
  enumerated: number;
  enqueued: number;
  unchanged: number;
  rejected: number;
  ingested: number;
  deleted: number;
  deadLettered: number;
  failed: number;
  /** Pending operations of this crawl taken over by a later crawl before they settled (they will not settle here). */
  superseded: number;
}

export const COUNT_KEYS = [
  'enumerated',
  'enqueued',
  'unchanged',
  'rejected',
  'ingested',
  'deleted',
  'deadLettered',
  'failed',
  'superseded',
] as const satisfies readonly (keyof CrawlCounts)[];

export function zeroCounts(): CrawlCounts {
  return {
    enumerated: 0,
    enqueued: 0,
    unchanged: 0,
    rejected: 0,
    ingested: 0,
    deleted: 0,
    deadLettered: 0,
    failed: 0,
    superseded: 0,
  };
}

export type CrawlMode = 'full' | 'incremental' | 'acl' | 'items';
export type CrawlTrigger = 'timer' | 'http' | 'cli';
export type CrawlStatus = 'running' | 'enumerated' | 'settling' | 'completed' | 'failed' | 'cancelled';

export interface CrawlJob {
  crawlId: string;
  connectionId: string;
  mode: CrawlMode;
  trigger: CrawlTrigger;
  status: CrawlStatus;
  generation: number;
  cursorBefore?: string;
  cursorAfter?: string;
  counts: CrawlCounts;
  /** True once the counts were folded into the job row (finished jobs); false while they are read live. */
  countsFinal: boolean;
  startedAt: string;
  enumeratedAt?: string;
  finishedAt?: string;
  heartbeatAt: string;
  error?: string;
  etag: string;
}

export interface Cursor {
  value: string;
  etag: string;
  updatedAt: string;
  crawlId?: string;
}

/** An optimistic-concurrency write lost (the row changed since it was read). */
export class ConcurrencyError extends Error {
  override name = 'ConcurrencyError';
}

export interface LedgerOptions {
  /** Returns a TableClient for a table name (e.g. `storage.table`). */
  tables: (name: string) => TableClient;
  /** `LEDGER_TABLE_PREFIX` (default `gc`). */
  prefix?: string;
  logger?: Logger;
  /** Concurrency of point reads and partition operations. Default 16. */
  concurrency?: number;
  now?: () => number;
  /** Shards of the job counters written by {@link Ledger.addCounts}. Default 8. */
  counterShards?: number;
}

const COUNTER_PREFIX = '~c~';
/** Item ids are alphanumeric, so every item row key sorts below `~`; counter rows sort above. */
const ITEM_ROWS = "RowKey lt '~'";
const MAX_ATTEMPTS = 12;
/** Above this many ids in one bucket, getItems scans the bucket instead of querying by id. */
const SCAN_THRESHOLD = 56;
const JOB_COUNTER_SHARDS = 8;
/** Counter rows per crawl per bucket (settles in one bucket spread over them). */
const BUCKET_COUNTER_SHARDS = 4;
const MAX_CRAWL_MS = 9_999_999_999_999;

/** A crawl id that sorts newest first: inverted epoch ms (13 digits) + 4 random hex chars. */
export function newCrawlId(now: number = Date.now()): string {
  return String(MAX_CRAWL_MS - now).padStart(13, '0') + randomId(2);
}

/** True when crawl id `a` is from a later crawl than `b` (ids from {@link newCrawlId} sort newest first). */
export function isNewerCrawl(a: string, b: string): boolean {
  return a < b;
}

type Entity = TableEntityResult<Record<string, unknown>>;

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined;
}
function num(v: unknown): number {
  return typeof v === 'number' && Number.isFinite(v) ? v : 0;
}

function assertConnection(connectionId: string): void {
  if (!CONNECTION_ID.test(connectionId)) {
    throw new Error(
      `connectionId "${connectionId}" is not 3–32 alphanumerics; fix the connection id in the connector definition`,
    );
  }
}
function assertItemId(itemId: string): void {
  if (!ITEM_ID.test(itemId)) {
    throw new Error(
      `itemId "${itemId.slice(0, 140)}" is not 1–128 alphanumerics (Graph's rule); map the source key to a valid id`,
    );
  }
}

interface BucketCounter {
  rowKey: string;
  crawlId: string;
  etag?: string;
  values: Partial<Record<keyof CrawlCounts, number>>;
  delta: Partial<Record<keyof CrawlCounts, number>>;
}

export interface PendingEntry {
  itemId: string;
  /** Hash of the item to PUT; for a delete, the hash being deleted (or ''). */
  hash: string;
  op: ItemOp;
  /** The row as read by getItems (saves a read); `null` when known to be absent; omitted = read it. */
  current?: LedgerItem | null;
}

export interface SettleInput {
  crawlId: string;
  hash: string;
  /** settled (PUT done), deleted (DELETE done), deadLettered (permanent error). */
  state: 'settled' | 'deleted' | 'deadLettered';
  /** Generation of the message's crawl; the row keeps the max. */
  generation?: number;
  /** Error text for a dead letter (never item content, never a secret). */
  error?: string;
}

export interface SettleResult {
  /** applied: the row now holds this outcome; duplicate: already settled by this crawl; stale: an older/other crawl. */
  outcome: 'applied' | 'duplicate' | 'stale';
  /** Whether a counter of `crawlId` was incremented (only when the settle consumed that crawl's pending mark). */
  counted: boolean;
  item?: LedgerItem;
}

/** See {@link Ledger.seenWriter}. */
export interface SeenWriter {
  /** Buffer unchanged rows; writes the buckets that filled up. Returns the ids refused by those writes. */
  add(rows: readonly LedgerItem[]): Promise<string[]>;
  /** Write everything still buffered; returns the totals of this writer. */
  flush(): Promise<{ seen: number; already: number; refused: string[] }>;
  readonly buffered: number;
}

export class Ledger {
  readonly items: TableClient;
  readonly jobs: TableClient;
  readonly cursors: TableClient;
  readonly prefix: string;
  private readonly log: Logger;
  private readonly concurrency: number;
  private readonly now: () => number;
  private readonly shards: number;

  constructor(options: LedgerOptions) {
    this.prefix = options.prefix ?? 'gc';
    if (!/^[A-Za-z][A-Za-z0-9]{0,40}$/.test(this.prefix)) {
      throw new Error(
        `LEDGER_TABLE_PREFIX "${this.prefix}" is not valid: table names are alphanumeric and start with a letter; use e.g. "gc"`,
      );
    }
    this.items = options.tables(`${this.prefix}items`);
    this.jobs = options.tables(`${this.prefix}jobs`);
    this.cursors = options.tables(`${this.prefix}cursors`);
    this.log = options.logger ?? silentLogger;
    this.concurrency = options.concurrency ?? 16;
    this.now = options.now ?? Date.now;
    this.shards = Math.max(1, Math.min(64, options.counterShards ?? JOB_COUNTER_SHARDS));
  }

  /** Create the ledger tables if missing. */
  async ensure(abortSignal?: AbortSignal): Promise<void> {
    await Promise.all([this.items, this.jobs, this.cursors].map((t) => t.createTable({ abortSignal })));
  }

  private iso(): string {
    return new Date(this.now()).toISOString();
  }

  static partitionOf(connectionId: string, itemId: string): string {
    return `${connectionId}-${bucketOf(itemId)}`;
  }

  // ---------------------------------------------------------------- items

  /** Point-read (or, for dense buckets, partition-scan) the rows of these items. Absent items are not in the map. */
  async getItems(
    connectionId: string,
    ids: Iterable<string>,
    abortSignal?: AbortSignal,
  ): Promise<Map<string, LedgerItem>> {
    assertConnection(connectionId);
    const byBucket = new Map<string, Set<string>>();
    for (const id of ids) {
      assertItemId(id);
      const b = bucketOf(id);
      let s = byBucket.get(b);
      if (!s) byBucket.set(b, (s = new Set()));
      s.add(id);
    }
    const out = new Map<string, LedgerItem>();
    await mapLimit(
      [...byBucket],
      this.concurrency,
      async ([bucket, set]) => {
        const pk = `${connectionId}-${bucket}`;
        if (set.size > SCAN_THRESHOLD) {
          // Cheaper to read the whole bucket in pages of 1000 than to do many point reads.
          for await (const e of this.items.listEntities({
            queryOptions: { filter: `${odata`PartitionKey eq ${pk}`} and ${ITEM_ROWS}` },
            abortSignal,
          })) {
            const row = e as Entity;
            if (row.rowKey && set.has(row.rowKey)) out.set(row.rowKey, toItem(connectionId, row));
          }
        } else if (set.size > 1) {
          // One query per up to 14 ids (the service allows 15 comparisons per filter), within one partition.
          await mapLimit(chunk([...set], 14), 4, async (group) => {
            const keys = group.map((id) => odata`RowKey eq ${id}`).join(' or ');
            const filter = `${odata`PartitionKey eq ${pk}`} and (${keys})`;
            for await (const e of this.items.listEntities({ queryOptions: { filter }, abortSignal })) {
              const row = e as Entity;
              if (row.rowKey && set.has(row.rowKey)) out.set(row.rowKey, toItem(connectionId, row));
            }
          });
        } else {
          const got = await mapLimit([...set], 4, (id) => this.readItem(pk, id, connectionId, abortSignal));
          for (const r of got) if (r) out.set(r.itemId, r);
        }
      },
      abortSignal,
    );
    return out;
  }

  async getItem(connectionId: string, itemId: string, abortSignal?: AbortSignal): Promise<LedgerItem | undefined> {
    assertConnection(connectionId);
    assertItemId(itemId);
    return this.readItem(Ledger.partitionOf(connectionId, itemId), itemId, connectionId, abortSignal);
  }

  private async readItem(
    pk: string,
    id: string,
    connectionId: string,
    abortSignal?: AbortSignal,
  ): Promise<LedgerItem | undefined> {
    try {
      const e = await this.items.getEntity<Record<string, unknown>>(pk, id, { abortSignal });
      return toItem(connectionId, e);
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  private async readCounter(
    pk: string,
    crawlId: string,
    shard: number,
    abortSignal?: AbortSignal,
  ): Promise<BucketCounter> {
    const rowKey = `${COUNTER_PREFIX}${crawlId}~${shard}`;
    try {
      const e = await this.items.getEntity<Record<string, unknown>>(pk, rowKey, { abortSignal });
      const values: BucketCounter['values'] = {};
      for (const k of COUNT_KEYS) values[k] = num(e[k]);
      return { rowKey, crawlId, etag: e.etag, values, delta: {} };
    } catch (err) {
      if (isNotFound(err)) return { rowKey, crawlId, values: {}, delta: {} };
      throw err;
    }
  }

  private counterAction(pk: string, c: BucketCounter): TransactionAction | undefined {
    const keys = Object.keys(c.delta) as (keyof CrawlCounts)[];
    if (keys.every((k) => !c.delta[k])) return undefined;
    const entity: TableEntity<Record<string, unknown>> = { partitionKey: pk, rowKey: c.rowKey, crawlId: c.crawlId };
    for (const k of COUNT_KEYS) {
      const v = (c.values[k] ?? 0) + (c.delta[k] ?? 0);
      if (v) entity[k] = v;
    }
    return c.etag ? ['update', entity, 'Replace', { etag: c.etag }] : ['create', entity];
  }

  /**
   * Run a read-compute-write transaction on one bucket partition, retrying on ETag conflicts (412/409) with fresh
   * reads. `compute` gets the current rows and a counter accessor and returns the item actions.
   */
  private async bucketTransaction<R>(
    connectionId: string,
    pk: string,
    ids: string[],
    initial: Map<string, LedgerItem | null> | undefined,
    compute: (
      rows: Map<string, LedgerItem | undefined>,
      counter: (crawlId: string) => BucketCounter,
    ) => { actions: TransactionAction[]; result: R },
    abortSignal?: AbortSignal,
  ): Promise<R> {
    let known = initial;
    for (let attempt = 0; ; attempt++) {
      const rows = new Map<string, LedgerItem | undefined>();
      const missing: string[] = [];
      for (const id of ids) {
        const k = known?.get(id);
        if (k === undefined) missing.push(id);
        else rows.set(id, k ?? undefined);
      }
      const read = await mapLimit(missing, 8, (id) => this.readItem(pk, id, connectionId, abortSignal));
      missing.forEach((id, i) => rows.set(id, read[i]));
      // Counters are read lazily but must be read before computing: collect the crawl ids compute asks for.
      const counters = new Map<string, BucketCounter>();
      const wanted = new Set<string>();
      compute(rows, (crawlId) => {
        wanted.add(crawlId);
        return { rowKey: '', crawlId, values: {}, delta: {} };
      });
      // Each attempt writes to a random counter shard of the bucket, so concurrent settles in one bucket rarely
      // collide, and a retry after a collision most likely moves to another shard.
      const shard = Math.floor(Math.random() * BUCKET_COUNTER_SHARDS);
      for (const c of await mapLimit([...wanted], 4, (cid) => this.readCounter(pk, cid, shard, abortSignal))) {
        counters.set(c.crawlId, c);
      }
      const { actions, result } = compute(rows, (crawlId) => {
        const c = counters.get(crawlId);
        if (!c) throw new Error(`internal: counter for ${crawlId} was not read`);
        return c;
      });
      for (const c of counters.values()) {
        const a = this.counterAction(pk, c);
        if (a) actions.push(a);
      }
      if (actions.length === 0) return result;
      if (actions.length > 100) throw new Error(`internal: ${actions.length} actions in one table transaction`);
      try {
        await this.items.submitTransaction(actions, { abortSignal });
        return result;
      } catch (err) {
        if (!isConflict(err)) throw err;
        if (attempt >= MAX_ATTEMPTS) {
          this.log.warn('ledger: gave up after repeated write conflicts in one bucket', {
            partition: pk,
            attempts: attempt + 1,
          });
          throw err;
        }
        this.log.debug('ledger: write conflict, re-reading', { partition: pk, attempt: attempt + 1 });
        known = undefined; // re-read everything
        await sleep(conflictDelayMs(attempt), abortSignal);
      }
    }
  }

  /** Run `fn` over each bucket's chunks: buckets concurrently, chunks of one bucket in order. */
  private async perBucket<T>(
    groups: readonly (readonly [string, T[][]])[],
    abortSignal: AbortSignal | undefined,
    fn: (pk: string, list: T[]) => Promise<void>,
  ): Promise<void> {
    await mapLimit(
      groups,
      this.concurrency,
      async ([pk, chunks]) => {
        for (const list of chunks) await fn(pk, list);
      },
      abortSignal,
    );
  }

  private groupByBucket<T extends { itemId: string }>(connectionId: string, entries: readonly T[]): Map<string, T[]> {
    assertConnection(connectionId);
    const m = new Map<string, T[]>();
    for (const e of entries) {
      assertItemId(e.itemId);
      const pk = Ledger.partitionOf(connectionId, e.itemId);
      let l = m.get(pk);
      if (!l) m.set(pk, (l = []));
      l.push(e);
    }
    return m;
  }

  /**
   * Mark items as about to be enqueued by `crawlId` (before sending their messages). Idempotent per (crawl, item):
   * `enqueued` counts each item once. A pending operation of another crawl is taken over and counted as `superseded`
   * for that crawl. Returns how many were newly marked.
   */
  async markPending(
    connectionId: string,
    crawlId: string,
    generation: number,
    entries: readonly PendingEntry[],
    abortSignal?: AbortSignal,
  ): Promise<{ marked: number; already: number }> {
    // Buckets run concurrently; the chunks of one bucket run one after the other (they share its counter row).
    const groups = [...this.groupByBucket(connectionId, entries)].map(
      ([pk, list]) => [pk, chunk(dedupe(list), 48)] as const,
    );
    let marked = 0;
    let already = 0;
    await this.perBucket(groups, abortSignal, async (pk, list) => {
      const initial = initialRows(list);
      const r = await this.bucketTransaction(
        connectionId,
        pk,
        list.map((e) => e.itemId),
        initial,
        (rows, counter) => {
          const actions: TransactionAction[] = [];
          let m = 0;
          let a = 0;
          const at = this.iso();
          for (const e of list) {
            const row = rows.get(e.itemId);
            const inFlight =
              row && (row.state === 'pending' || row.state === 'deleting') ? row.pendingCrawlId : undefined;
            if (inFlight === crawlId && row?.pendingHash === e.hash && row.pendingOp === e.op) {
              a++;
              continue;
            }
            if (inFlight !== crawlId) add(counter(crawlId), 'enqueued', 1);
            if (inFlight && inFlight !== crawlId) add(counter(inFlight), 'superseded', 1);
            const next: Omit<LedgerItem, 'etag'> = {
              connectionId,
              itemId: e.itemId,
              hash: row?.hash ?? '',
              generation: Math.max(row?.generation ?? 0, generation),
              lastCrawlId: crawlId,
              state: e.op === 'delete' ? 'deleting' : 'pending',
              pendingCrawlId: crawlId,
              pendingHash: e.hash,
              pendingOp: e.op,
              updatedAt: at,
              version: ITEM_ROW_VERSION,
            };
            if (row?.settledCrawlId) next.settledCrawlId = row.settledCrawlId;
            if (row?.failedHash) next.failedHash = row.failedHash;
            if (row?.lastError) next.lastError = row.lastError;
            actions.push(itemAction(pk, next, row?.etag));
            m++;
          }
          return { actions, result: { m, a } };
        },
        abortSignal,
      );
      marked += r.m;
      already += r.a;
    });
    return { marked, already };
  }

  /**
   * Record that `crawlId` saw these items unchanged (hash equal to the ledger's): bumps their generation so the sweep
   * keeps them, and counts `unchanged` once per (crawl, item). Pass the rows from {@link getItems} (their ETags save a
   * read). Rows in a state that cannot be "unchanged" (pending, deleting, deleted) are refused: enqueue those instead.
   * Batches up to 99 items per bucket per transaction; buckets run concurrently.
   */
  async markSeen(
    connectionId: string,
    crawlId: string,
    generation: number,
    rows: readonly LedgerItem[],
    abortSignal?: AbortSignal,
  ): Promise<{ seen: number; already: number; refused: string[] }> {
    // Buckets run concurrently; the chunks of one bucket run one after the other (they share its counter row).
    const groups = [...this.groupByBucket(connectionId, rows)].map(
      ([pk, list]) => [pk, chunk(dedupe(list), 99)] as const,
    );
    let seen = 0;
    let already = 0;
    const refused: string[] = [];
    await this.perBucket(groups, abortSignal, async (pk, list) => {
      const initial = new Map<string, LedgerItem | null>(list.map((r) => [r.itemId, r]));
      const r = await this.bucketTransaction(
        connectionId,
        pk,
        list.map((e) => e.itemId),
        initial,
        (current, counter) => {
          const actions: TransactionAction[] = [];
          const res = { s: 0, a: 0, refused: [] as string[] };
          const at = this.iso();
          for (const given of list) {
            const row = current.get(given.itemId);
            if (!row || (row.state !== 'settled' && row.state !== 'deadLettered')) {
              res.refused.push(given.itemId);
              continue;
            }
            if (row.lastCrawlId === crawlId && row.generation >= generation) {
              res.a++;
              continue;
            }
            add(counter(crawlId), 'unchanged', 1);
            actions.push([
              'update',
              {
                partitionKey: pk,
                rowKey: row.itemId,
                generation: Math.max(row.generation, generation),
                lastCrawlId: crawlId,
                updatedAt: at,
              },
              'Merge',
              { etag: row.etag },
            ]);
            res.s++;
          }
          return { actions, result: res };
        },
        abortSignal,
      );
      seen += r.s;
      already += r.a;
      refused.push(...r.refused);
    });
    return { seen, already, refused };
  }

  /**
   * A buffer for {@link markSeen} across crawl pages: unchanged rows accumulate per bucket and a bucket is written as
   * soon as it holds 99 rows (one full transaction), the rest on {@link SeenWriter.flush}. With crawler pages of a
   * few hundred records most buckets get one row per page, so without this buffer each row costs one transaction.
   * Call `flush()` before the crawl counts as enumerated: buffered rows are neither marked nor counted until then.
   */
  seenWriter(connectionId: string, crawlId: string, generation: number, abortSignal?: AbortSignal): SeenWriter {
    assertConnection(connectionId);
    const buffers = new Map<string, LedgerItem[]>();
    const total = { seen: 0, already: 0, refused: [] as string[] };
    const write = async (rows: LedgerItem[]) => {
      const r = await this.markSeen(connectionId, crawlId, generation, rows, abortSignal);
      total.seen += r.seen;
      total.already += r.already;
      total.refused.push(...r.refused);
      return r;
    };
    return {
      add: async (rows) => {
        const full: LedgerItem[] = [];
        for (const row of rows) {
          const pk = Ledger.partitionOf(connectionId, row.itemId);
          let b = buffers.get(pk);
          if (!b) buffers.set(pk, (b = []));
          b.push(row);
          if (b.length >= 99) {
            full.push(...b);
            buffers.delete(pk);
          }
        }
        if (full.length) return (await write(full)).refused;
        return [];
      },
      flush: async () => {
        const rest = [...buffers.values()].flat();
        buffers.clear();
        if (rest.length) await write(rest);
        return { ...total, refused: [...total.refused] };
      },
      get buffered() {
        let n = 0;
        for (const b of buffers.values()) n += b.length;
        return n;
      },
    };
  }

  /**
   * Settle an item after its queue message was processed. Never lets an older write overwrite a newer one:
   * - the item is pending for this crawl → applied, and counted for the crawl (exactly once, atomically);
   * - the item is pending for another crawl (it was superseded) → stale, ignored;
   * - the item was already settled by this crawl → duplicate (a redelivery), ignored;
   * - the item was settled by a newer crawl → stale, ignored;
   * - otherwise (no pending mark, e.g. a replay) → applied, not counted.
   * All writes are ETag-conditional; a concurrent writer makes this re-read and decide again.
   */
  async settle(
    connectionId: string,
    itemId: string,
    input: SettleInput,
    abortSignal?: AbortSignal,
  ): Promise<SettleResult> {
    assertConnection(connectionId);
    assertItemId(itemId);
    const pk = Ledger.partitionOf(connectionId, itemId);
    return this.bucketTransaction(
      connectionId,
      pk,
      [itemId],
      undefined,
      (rows, counter) => {
        const row = rows.get(itemId);
        const pendingFor =
          row && (row.state === 'pending' || row.state === 'deleting') ? row.pendingCrawlId : undefined;
        let counted = false;
        if (pendingFor && pendingFor !== input.crawlId) return { actions: [], result: stale(row) };
        if (pendingFor === input.crawlId) {
          if (row?.pendingHash !== undefined && row.pendingHash !== input.hash) {
            // The same crawl re-marked the item with another hash; that later message settles it.
            return { actions: [], result: stale(row) };
          }
          counted = true;
        } else if (row?.settledCrawlId) {
          // A redelivery is a duplicate — except a replayed dead letter that now succeeded: the row must say
          // what Graph holds (or the sweep would never see the item).
          const replayed = row.state === 'deadLettered' && input.state !== 'deadLettered';
          if (row.settledCrawlId === input.crawlId && !replayed)
            return { actions: [], result: { outcome: 'duplicate', counted: false, item: row } };
          if (isNewerCrawl(row.settledCrawlId, input.crawlId)) return { actions: [], result: stale(row) };
        }
        const next: Omit<LedgerItem, 'etag'> = {
          connectionId,
          itemId,
          hash: input.state === 'settled' ? input.hash : input.state === 'deleted' ? '' : (row?.hash ?? ''),
          generation: Math.max(row?.generation ?? 0, input.generation ?? 0),
          lastCrawlId: row?.lastCrawlId ?? input.crawlId,
          settledCrawlId: input.crawlId,
          state: input.state,
          updatedAt: this.iso(),
          version: ITEM_ROW_VERSION,
        };
        if (input.state === 'deadLettered') {
          next.failedHash = input.hash;
          if (input.error) next.lastError = input.error.slice(0, 4000);
        }
        if (counted) {
          add(counter(input.crawlId), input.state === 'settled' ? 'ingested' : input.state, 1);
        }
        return {
          actions: [itemAction(pk, next, row?.etag)],
          result: { outcome: 'applied', counted, item: { ...next, etag: '' } },
        };
      },
      abortSignal,
    );
  }

  /**
   * Sweep candidates: settled items whose generation is older than `generation` (no full crawl since saw them).
   * Streams bucket by bucket; never holds the whole ledger in memory.
   */
  async *listUnseen(
    connectionId: string,
    generation: number,
    abortSignal?: AbortSignal,
  ): AsyncIterableIterator<LedgerItem> {
    assertConnection(connectionId);
    for (const b of ALL_BUCKETS) {
      const pk = `${connectionId}-${b}`;
      const filter = `${odata`PartitionKey eq ${pk} and generation lt ${generation} and state eq ${'settled'}`} and ${ITEM_ROWS}`;
      for await (const e of this.items.listEntities({ queryOptions: { filter }, abortSignal })) {
        yield toItem(connectionId, e);
      }
    }
  }

  /** Count the connection's item rows by state (one scan of its 256 partitions, state column only). */
  async countItems(
    connectionId: string,
    abortSignal?: AbortSignal,
  ): Promise<{ total: number; byState: Record<ItemState, number> }> {
    assertConnection(connectionId);
    const byState: Record<ItemState, number> = { pending: 0, settled: 0, deadLettered: 0, deleting: 0, deleted: 0 };
    await mapLimit(
      ALL_BUCKETS,
      this.concurrency,
      async (b) => {
        const filter = `${odata`PartitionKey eq ${`${connectionId}-${b}`}`} and ${ITEM_ROWS}`;
        for await (const e of this.items.listEntities({ queryOptions: { filter, select: ['state'] }, abortSignal })) {
          const s = (e as Entity).state as ItemState;
          if (s in byState) byState[s]++;
        }
      },
      abortSignal,
    );
    const total = byState.pending + byState.settled + byState.deadLettered + byState.deleting;
    return { total, byState };
  }

  // ---------------------------------------------------------------- jobs

  /** Start a crawl job (status `running`). The crawl id defaults to a new, newest-first sortable id. */
  async createJob(
    input: {
      connectionId: string;
      mode: CrawlMode;
      trigger: CrawlTrigger;
      generation: number;
      crawlId?: string;
      cursorBefore?: string;
    },
    abortSignal?: AbortSignal,
  ): Promise<CrawlJob> {
    assertConnection(input.connectionId);
    const at = this.iso();
    const job: Omit<CrawlJob, 'etag'> = {
      crawlId: input.crawlId ?? newCrawlId(this.now()),
      connectionId: input.connectionId,
      mode: input.mode,
      trigger: input.trigger,
      status: 'running',
      generation: input.generation,
      counts: zeroCounts(),
      countsFinal: false,
      startedAt: at,
      heartbeatAt: at,
    };
    if (input.cursorBefore !== undefined) job.cursorBefore = input.cursorBefore;
    if (!/^[A-Za-z0-9]{1,64}$/.test(job.crawlId))
      throw new Error(`crawlId "${job.crawlId}" must be 1–64 alphanumerics`);
    const r = await this.jobs.createEntity(jobEntity(job), { abortSignal });
    return { ...job, etag: r.etag ?? '' };
  }

  /** A job with live counts (unless `live: false`, or the job is finished and its counts were folded in). */
  async getJob(
    connectionId: string,
    crawlId: string,
    options: { live?: boolean; abortSignal?: AbortSignal } = {},
  ): Promise<CrawlJob | undefined> {
    assertConnection(connectionId);
    let job: CrawlJob;
    try {
      job = toJob(
        await this.jobs.getEntity<Record<string, unknown>>(connectionId, crawlId, { abortSignal: options.abortSignal }),
      );
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
    if (options.live !== false && !job.countsFinal)
      job.counts = await this.counts(connectionId, crawlId, options.abortSignal);
    return job;
  }

  /** The newest `limit` jobs of a connection, newest first. Unfinished jobs get live counts. */
  async listJobs(connectionId: string, limit = 50, abortSignal?: AbortSignal): Promise<CrawlJob[]> {
    assertConnection(connectionId);
    const out: CrawlJob[] = [];
    const pages = this.jobs
      .listEntities<
        Record<string, unknown>
      >({ queryOptions: { filter: odata`PartitionKey eq ${connectionId}` }, abortSignal })
      .byPage({ maxPageSize: Math.min(1000, limit) });
    for await (const page of pages) {
      for (const e of page) {
        out.push(toJob(e));
        if (out.length >= limit) break;
      }
      if (out.length >= limit) break;
    }
    await mapLimit(
      out.filter((j) => !j.countsFinal),
      4,
      async (j) => {
        j.counts = await this.counts(connectionId, j.crawlId, abortSignal);
      },
    );
    return out;
  }

  /**
   * Unfinished jobs (running, enumerated, settling) whose heartbeat is older than `staleAfterMs`: for a cleanup timer
   * that marks them failed (their crawler died). Counts are not loaded.
   */
  async listStaleJobs(connectionId: string, staleAfterMs: number, abortSignal?: AbortSignal): Promise<CrawlJob[]> {
    assertConnection(connectionId);
    const before = new Date(this.now() - staleAfterMs).toISOString();
    const filter =
      odata`PartitionKey eq ${connectionId} and heartbeatAt lt ${before}` +
      ` and (status eq 'running' or status eq 'enumerated' or status eq 'settling')`;
    const out: CrawlJob[] = [];
    for await (const e of this.jobs.listEntities<Record<string, unknown>>({ queryOptions: { filter }, abortSignal })) {
      out.push(toJob(e));
    }
    return out;
  }

  /**
   * Update a job with an ETag retry loop: `mutate` gets the fresh job and returns the fields to change (or undefined
   * to leave it). `counts` cannot be changed here: use {@link addCounts}.
   */
  async updateJob(
    connectionId: string,
    crawlId: string,
    mutate: (job: CrawlJob) => Partial<Omit<CrawlJob, 'crawlId' | 'connectionId' | 'etag' | 'counts'>> | undefined,
    abortSignal?: AbortSignal,
  ): Promise<CrawlJob> {
    for (let attempt = 0; ; attempt++) {
      const job = toJob(await this.jobs.getEntity<Record<string, unknown>>(connectionId, crawlId, { abortSignal }));
      const patch = mutate(job);
      if (!patch) return job;
      const next: CrawlJob = { ...job, ...patch };
      try {
        const r = await this.jobs.updateEntity(jobEntity(next), 'Replace', { etag: job.etag, abortSignal });
        return { ...next, etag: r.etag ?? '' };
      } catch (err) {
        if (!isConflict(err) || attempt >= MAX_ATTEMPTS * 2) throw err;
        await sleep(conflictDelayMs(attempt), abortSignal);
      }
    }
  }

  async heartbeat(connectionId: string, crawlId: string, abortSignal?: AbortSignal): Promise<CrawlJob> {
    return this.updateJob(connectionId, crawlId, () => ({ heartbeatAt: this.iso() }), abortSignal);
  }

  /**
   * Finish a job: set its final status, fold the live counts into the row (so listing old jobs is cheap).
   */
  async finishJob(
    connectionId: string,
    crawlId: string,
    status: 'completed' | 'failed' | 'cancelled',
    extra: { error?: string; cursorAfter?: string } = {},
    abortSignal?: AbortSignal,
  ): Promise<CrawlJob> {
    const counts = await this.counts(connectionId, crawlId, abortSignal);
    for (let attempt = 0; ; attempt++) {
      const job = toJob(await this.jobs.getEntity<Record<string, unknown>>(connectionId, crawlId, { abortSignal }));
      const at = this.iso();
      const next: CrawlJob = { ...job, status, counts, countsFinal: true, finishedAt: at, heartbeatAt: at };
      if (extra.error !== undefined) next.error = extra.error.slice(0, 8000);
      if (extra.cursorAfter !== undefined) next.cursorAfter = extra.cursorAfter;
      try {
        const r = await this.jobs.updateEntity(jobEntity(next), 'Replace', { etag: job.etag, abortSignal });
        return { ...next, etag: r.etag ?? '' };
      } catch (err) {
        if (!isConflict(err) || attempt >= MAX_ATTEMPTS) throw err;
        await sleep(conflictDelayMs(attempt), abortSignal);
      }
    }
  }

  /**
   * Add to a job's counters (e.g. `enumerated`, `rejected`, `failed` from the crawler). Exact under concurrency:
   * the delta goes into one of 8 counter shards with an ETag retry loop; reads merge the shards.
   * (Item-state counts — enqueued, unchanged, ingested, deleted, deadLettered, superseded — are kept by the item
   * transitions themselves; adding to them here is allowed but is then not tied to an item.)
   */
  async addCounts(
    connectionId: string,
    crawlId: string,
    delta: Partial<CrawlCounts>,
    abortSignal?: AbortSignal,
  ): Promise<void> {
    assertConnection(connectionId);
    if (COUNT_KEYS.every((k) => !delta[k])) return;
    const pk = `${connectionId}~counts`;
    let shard = Math.floor(Math.random() * this.shards);
    for (let attempt = 0; ; attempt++) {
      const rowKey = `${crawlId}-${shard}`;
      try {
        let e: Entity | undefined;
        try {
          e = await this.jobs.getEntity<Record<string, unknown>>(pk, rowKey, { abortSignal });
        } catch (err) {
          if (!isNotFound(err)) throw err;
        }
        const entity: TableEntity<Record<string, unknown>> = { partitionKey: pk, rowKey, crawlId };
        for (const k of COUNT_KEYS) entity[k] = num(e?.[k]) + (delta[k] ?? 0);
        if (e) await this.jobs.updateEntity(entity, 'Replace', { etag: e.etag, abortSignal });
        else await this.jobs.createEntity(entity, { abortSignal });
        return;
      } catch (err) {
        if (!isConflict(err) || attempt >= MAX_ATTEMPTS * 4) throw err;
        shard = this.shards === 1 ? 0 : (shard + 1 + Math.floor(Math.random() * (this.shards - 1))) % this.shards;
        await sleep(conflictDelayMs(Math.min(attempt, 3)), abortSignal);
      }
    }
  }

  /** Live counts of a crawl: job counter shards + the per-bucket counters of its item transitions (one range query per bucket). */
  async counts(connectionId: string, crawlId: string, abortSignal?: AbortSignal): Promise<CrawlCounts> {
    assertConnection(connectionId);
    const total = zeroCounts();
    const addRow = (e: Record<string, unknown>) => {
      for (const k of COUNT_KEYS) total[k] += num(e[k]);
    };
    const pk = `${connectionId}~counts`;
    const filter = odata`PartitionKey eq ${pk} and RowKey ge ${`${crawlId}-`} and RowKey lt ${`${crawlId}.`}`;
    for await (const e of this.jobs.listEntities<Record<string, unknown>>({ queryOptions: { filter }, abortSignal }))
      addRow(e);
    const from = `${COUNTER_PREFIX}${crawlId}~`;
    const to = `${COUNTER_PREFIX}${crawlId}~~`;
    await mapLimit(
      ALL_BUCKETS,
      32,
      async (b) => {
        const f = odata`PartitionKey eq ${`${connectionId}-${b}`} and RowKey ge ${from} and RowKey lt ${to}`;
        for await (const e of this.items.listEntities<Record<string, unknown>>({
          queryOptions: { filter: f },
          abortSignal,
        })) {
          addRow(e);
        }
      },
      abortSignal,
    );
    return total;
  }

  /**
   * Item operations of a crawl not yet settled: enqueued − (ingested + deleted + deadLettered + superseded).
   * Zero means every message the crawl sent reached a final state (the watermark and sweep rule).
   */
  async outstanding(connectionId: string, crawlId: string, abortSignal?: AbortSignal): Promise<number> {
    const c = await this.counts(connectionId, crawlId, abortSignal);
    return outstandingOf(c);
  }

  // ---------------------------------------------------------------- cursors

  async getCursor(connectionId: string, name = 'default', abortSignal?: AbortSignal): Promise<Cursor | undefined> {
    assertConnection(connectionId);
    try {
      const e = await this.cursors.getEntity<Record<string, unknown>>(connectionId, name, { abortSignal });
      const c: Cursor = {
        value: typeof e.value === 'string' ? e.value : '',
        etag: e.etag,
        updatedAt: str(e.updatedAt) ?? '',
      };
      const crawlId = str(e.crawlId);
      if (crawlId) c.crawlId = crawlId;
      return c;
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  /**
   * Commit a cursor value. `etag` is the ETag of the cursor read before the crawl (undefined = there was none):
   * if it changed meanwhile, throws {@link ConcurrencyError} and nothing is written. Returns the new cursor.
   */
  async commitCursor(
    connectionId: string,
    value: string,
    etag: string | undefined,
    options: { name?: string; crawlId?: string; abortSignal?: AbortSignal } = {},
  ): Promise<Cursor> {
    assertConnection(connectionId);
    if (value.length > 30_000)
      throw new Error(`cursor for ${connectionId} is ${value.length} characters; the limit is 30000`);
    const updatedAt = this.iso();
    const entity: TableEntity<Record<string, unknown>> = {
      partitionKey: connectionId,
      rowKey: options.name ?? 'default',
      value,
      updatedAt,
      ...(options.crawlId ? { crawlId: options.crawlId } : {}),
    };
    try {
      const r = etag
        ? await this.cursors.updateEntity(entity, 'Replace', { etag, abortSignal: options.abortSignal })
        : await this.cursors.createEntity(entity, { abortSignal: options.abortSignal });
      return { value, etag: r.etag ?? '', updatedAt, ...(options.crawlId ? { crawlId: options.crawlId } : {}) };
    } catch (err) {
      if (isConflict(err) || (etag && isNotFound(err))) {
        throw new ConcurrencyError(
          `cursor of connection ${connectionId} changed since it was read (another crawl committed); not committing`,
        );
      }
      throw err;
    }
  }

  /** Remove a named cursor (no error when it is absent). */
  async deleteCursor(connectionId: string, name: string, abortSignal?: AbortSignal): Promise<void> {
    assertConnection(connectionId);
    try {
      await this.cursors.deleteEntity(connectionId, name, { abortSignal });
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }
}

export function outstandingOf(c: CrawlCounts): number {
  return c.enqueued - (c.ingested + c.deleted + c.deadLettered + c.superseded);
}

function stale(row: LedgerItem | undefined): SettleResult {
  return row ? { outcome: 'stale', counted: false, item: row } : { outcome: 'stale', counted: false };
}

function add(c: BucketCounter, key: keyof CrawlCounts, n: number): void {
  c.delta[key] = (c.delta[key] ?? 0) + n;
}

function dedupe<T extends { itemId: string }>(list: T[]): T[] {
  const m = new Map<string, T>();
  for (const e of list) m.set(e.itemId, e); // the last entry for an id wins
  return [...m.values()];
}

function initialRows(list: readonly PendingEntry[]): Map<string, LedgerItem | null> | undefined {
  const m = new Map<string, LedgerItem | null>();
  for (const e of list) if (e.current !== undefined) m.set(e.itemId, e.current);
  return m.size ? m : undefined;
}

function itemAction(pk: string, item: Omit<LedgerItem, 'etag'>, etag: string | undefined): TransactionAction {
  const entity: TableEntity<Record<string, unknown>> = { partitionKey: pk, rowKey: item.itemId };
  for (const [k, v] of Object.entries(item)) {
    if (k === 'connectionId' || k === 'itemId' || v === undefined) continue;
    entity[k] = v;
  }
  return etag ? ['update', entity, 'Replace', { etag }] : ['create', entity];
}

function toItem(connectionId: string, e: Entity): LedgerItem {
  const item: LedgerItem = {
    connectionId,
    itemId: e.rowKey ?? '',
    hash: typeof e.hash === 'string' ? e.hash : '',
    generation: num(e.generation),
    lastCrawlId: str(e.lastCrawlId) ?? '',
    state: (str(e.state) ?? 'pending') as ItemState,
    updatedAt: str(e.updatedAt) ?? '',
    version: num(e.version) || ITEM_ROW_VERSION,
    etag: e.etag,
  };
  for (const k of ['settledCrawlId', 'pendingCrawlId', 'pendingHash', 'failedHash', 'lastError'] as const) {
    const v = str(e[k]);
    if (v !== undefined) item[k] = v;
  }
  if (typeof e.pendingHash === 'string') item.pendingHash = e.pendingHash;
  const op = str(e.pendingOp);
  if (op === 'upsert' || op === 'delete') item.pendingOp = op;
  return item;
}

function jobEntity(job: Omit<CrawlJob, 'etag'>): TableEntity<Record<string, unknown>> {
  const e: TableEntity<Record<string, unknown>> = {
    partitionKey: job.connectionId,
    rowKey: job.crawlId,
    mode: job.mode,
    trigger: job.trigger,
    status: job.status,
    generation: job.generation,
    countsFinal: job.countsFinal,
    startedAt: job.startedAt,
    heartbeatAt: job.heartbeatAt,
  };
  for (const k of ['cursorBefore', 'cursorAfter', 'enumeratedAt', 'finishedAt', 'error'] as const) {
    if (job[k] !== undefined) e[k] = job[k];
  }
  for (const k of COUNT_KEYS) e[`c_${k}`] = job.counts[k];
  return e;
}

function toJob(e: Entity): CrawlJob {
  const counts = zeroCounts();
  for (const k of COUNT_KEYS) counts[k] = num(e[`c_${k}`]);
  const job: CrawlJob = {
    crawlId: e.rowKey ?? '',
    connectionId: e.partitionKey ?? '',
    mode: e.mode as CrawlMode,
    trigger: e.trigger as CrawlTrigger,
    status: e.status as CrawlStatus,
    generation: num(e.generation),
    counts,
    countsFinal: e.countsFinal === true,
    startedAt: str(e.startedAt) ?? '',
    heartbeatAt: str(e.heartbeatAt) ?? '',
    etag: e.etag,
  };
  for (const k of ['cursorBefore', 'cursorAfter', 'enumeratedAt', 'finishedAt', 'error'] as const) {
    if (typeof e[k] === 'string') job[k] = e[k];
  }
  return job;
}
