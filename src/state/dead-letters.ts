/**
 * Dead letters and rejections, in `${prefix}deadletters`.
 *
 * - Partition = connectionId; row key = `${op}~${key}`: **one entry per item (or record) and reason**, not one per
 *   crawl. A failure seen again — the next crawl, a redelivery — updates its entry: the latest crawl, the latest
 *   reason, and `count`, the number of crawls that recorded it. A crawl that finishes removes the rejections it no
 *   longer produced and the dead letters of items that have since settled.
 * - `op` is `upsert` / `delete` for items Graph refused (with Graph's status, code, inner code and request ids),
 *   `activities` for an item's user activities addActivities refused (the item itself was ingested), and
 *   `reject` for records the mapping refused (with the reasons). Rejections live in the same table so that one
 *   listing shows everything of a crawl that did not reach Graph.
 * - The message body (for replay) is stored inline when small; otherwise it goes to a blob
 *   `deadletters/<connectionId>/<rowKey>.json` in the claims container and the record names it (`bodyBlob`).
 */
import { createHash } from 'node:crypto';
import { odata, type TableClient, type TableEntity } from '@azure/data-tables';
import type { ContainerClient } from '@azure/storage-blob';
import { sleep, type OperationOptions } from '../core/async.js';
import { redact, silentLogger, type Logger } from '../log.js';
import { StateConfigError } from './cursors.js';
import { CONNECTION_ID, CRAWL_ID, ITEM_ID } from './keys.js';
import { conflictDelayMs, isConflict, isNotFound } from './util.js';

export type DeadLetterOp = 'upsert' | 'delete' | 'reject' | 'activities' | 'unknown';

export interface DeadLetterInput {
  connectionId: string;
  /** Item id, or for a rejection the record's key (any string; it is hashed when not a valid item id). */
  itemId: string;
  crawlId: string;
  op: DeadLetterOp;
  /** HTTP status from Graph (0 when not an HTTP failure). */
  status?: number;
  code?: string;
  innerCode?: string;
  requestId?: string;
  clientRequestId?: string;
  /** Where the record was found in the source (`line 12`), for rejections; part of the key when set. */
  position?: string;
  /** Human-readable reason (redacted before storing). For rejections: the reasons joined. */
  message: string;
  /** Rejection reasons, one per problem. */
  reasons?: string[];
  attempts?: number;
  /** The queue message (decoded JSON text) for replay; stored inline if small, else as a blob. */
  body?: string;
  /** A claim-check blob name holding the item (kept for replay; not deleted by settle). */
  claim?: string;
}

export interface DeadLetter extends Omit<DeadLetterInput, 'status' | 'attempts'> {
  key: string;
  status: number;
  attempts: number;
  /** When it was last recorded. */
  at: string;
  /** When it was first recorded. */
  firstAt: string;
  /** How many crawls recorded it (a redelivery within one crawl does not count again). */
  count: number;
  bodyBlob?: string;
}

const INLINE_BODY = 30_000;

export interface DeadLetterStoreOptions {
  table: TableClient;
  /** Where large bodies go (the claims container). Without it, large bodies are cut and flagged `bodyTruncated`. */
  container?: ContainerClient;
  logger?: Logger;
  now?: () => number;
}

export class DeadLetterStore {
  readonly table: TableClient;
  private readonly container: ContainerClient | undefined;
  private readonly log: Logger;
  private readonly now: () => number;

  constructor(options: DeadLetterStoreOptions) {
    this.table = options.table;
    this.container = options.container;
    this.log = options.logger ?? silentLogger;
    this.now = options.now ?? Date.now;
  }

  async ensure(options: OperationOptions = {}): Promise<void> {
    await this.table.createTable(options);
    await this.container?.createIfNotExists(options);
  }

  /**
   * The entry of an item operation (`upsert~<item key>`), of a rejected record (`reject~<record key>[~dup]`: a
   * duplicate-id rejection is its own entry, apart from the same key's mapping rejection), or of an unreadable
   * message (`unknown~<hash of its text>`). Keys that are not item ids are hashed.
   */
  static keyOf(input: Pick<DeadLetterInput, 'op' | 'itemId'> & { kind?: string }): string {
    const id =
      input.op !== 'reject' && ITEM_ID.test(input.itemId)
        ? input.itemId.toLowerCase()
        : 'h' + createHash('sha256').update(input.itemId, 'utf8').digest('hex').slice(0, 40);
    return `${input.op}~${id}${input.kind ? `~${input.kind}` : ''}`;
  }

  /** Record a dead letter, or update its entry (latest crawl and reason; `count` grows once per crawl). */
  async add(input: DeadLetterInput & { kind?: string }, options: OperationOptions = {}): Promise<string> {
    if (!CONNECTION_ID.test(input.connectionId))
      throw new StateConfigError(`connectionId "${input.connectionId}" is not 3–32 alphanumerics`);
    if (!CRAWL_ID.test(input.crawlId) && input.crawlId !== 'unknown')
      throw new StateConfigError(`crawlId "${input.crawlId}" must be 1–64 alphanumerics`);
    const abortSignal = options.abortSignal;
    const key = DeadLetterStore.keyOf(input);
    const at = new Date(this.now()).toISOString();
    const e: TableEntity<Record<string, unknown>> = {
      partitionKey: input.connectionId,
      rowKey: key,
      itemId: input.itemId.slice(0, 1024),
      crawlId: input.crawlId,
      op: input.op,
      status: input.status ?? 0,
      message: redact(input.message).slice(0, 8000),
      attempts: input.attempts ?? 0,
      at,
    };
    if (input.position) e.position = input.position.slice(0, 200);
    for (const k of ['code', 'innerCode', 'requestId', 'clientRequestId', 'claim'] as const) {
      if (input[k]) e[k] = String(input[k]).slice(0, 1024);
    }
    if (input.reasons?.length) e.reasons = JSON.stringify(input.reasons.map(redact)).slice(0, 30_000);
    if (input.body !== undefined) {
      if (input.body.length <= INLINE_BODY) e.body = input.body;
      else if (this.container) {
        const blob = `deadletters/${input.connectionId}/${key}.json`;
        await this.container.getBlockBlobClient(blob).uploadData(Buffer.from(input.body, 'utf8'), { abortSignal });
        e.bodyBlob = blob;
      } else {
        e.body = input.body.slice(0, INLINE_BODY);
        e.bodyTruncated = true;
      }
    }
    for (let attempt = 0; ; attempt++) {
      const prev = await this.get(input.connectionId, key, options);
      e.firstAt = prev?.firstAt || at;
      e.count = !prev ? 1 : prev.crawlId === input.crawlId ? prev.count : prev.count + 1;
      try {
        if (prev) await this.table.updateEntity(e, 'Replace', { etag: prev.etag, abortSignal });
        else await this.table.createEntity(e, { abortSignal });
        break;
      } catch (err) {
        if (!isConflict(err) || attempt >= 12) throw err;
        await sleep(conflictDelayMs(attempt), options);
      }
    }
    this.log.warn(input.op === 'reject' ? 'record rejected' : 'dead letter recorded', {
      connectionId: input.connectionId,
      ...(input.op === 'reject' ? { recordKey: input.itemId } : { itemId: input.itemId }),
      ...(input.position ? { position: input.position } : {}),
      crawlId: input.crawlId,
      op: input.op,
      ...(input.status ? { status: input.status } : {}),
      ...(input.code ? { code: input.code } : {}),
      ...(input.requestId ? { requestId: input.requestId } : {}),
    });
    return key;
  }

  /** Record a rejected source record (mapping refused it) with its reasons. */
  async addRejection(
    input: {
      connectionId: string;
      crawlId: string;
      recordKey: string;
      reasons: string[];
      position?: string;
      /** `dup` for a duplicate item id (its own entry beside the key's mapping rejection). */
      kind?: string;
    },
    options: OperationOptions = {},
  ): Promise<string> {
    // One entry per record key and reason: two records sharing a key stay apart when their reasons differ, and a
    // record's entry does not move when lines shift (the position is left out of the reason's fingerprint).
    const reason = input.position ? input.reasons.join('\n').split(input.position).join('') : input.reasons.join('\n');
    const kind = input.kind ?? createHash('sha256').update(reason, 'utf8').digest('hex').slice(0, 10);
    return this.add(
      {
        connectionId: input.connectionId,
        crawlId: input.crawlId,
        itemId: input.recordKey,
        ...(input.position ? { position: input.position } : {}),
        kind,
        op: 'reject',
        message: input.reasons.join('; '),
        reasons: input.reasons,
      },
      options,
    );
  }

  /**
   * After a crawl that read the whole source: remove the rejections it did not produce again (the record was fixed
   * or is gone). Returns how many were removed.
   */
  async pruneRejections(connectionId: string, crawlId: string, options: OperationOptions = {}): Promise<number> {
    let removed = 0;
    for await (const dl of this.list(connectionId, { op: 'reject', ...options })) {
      if (dl.crawlId === crawlId) continue;
      if (await this.remove(connectionId, dl.key, options)) removed++;
    }
    return removed;
  }

  /** Dead letters of a connection (optionally one crawl, optionally one op), newest crawl first. */
  async *list(
    connectionId: string,
    options: { crawlId?: string; op?: DeadLetterOp } & OperationOptions = {},
  ): AsyncIterableIterator<DeadLetter> {
    let filter = odata`PartitionKey eq ${connectionId}`;
    if (options.op) filter += ' and ' + odata`RowKey ge ${`${options.op}~`} and RowKey lt ${`${options.op}~~`}`;
    if (options.crawlId) filter += ' and ' + odata`crawlId eq ${options.crawlId}`;
    for await (const e of this.table.listEntities<Record<string, unknown>>({
      queryOptions: { filter },
      abortSignal: options.abortSignal,
    })) {
      yield toDeadLetter(e);
    }
  }

  async get(
    connectionId: string,
    key: string,
    options: OperationOptions = {},
  ): Promise<(DeadLetter & { etag: string }) | undefined> {
    try {
      const e = await this.table.getEntity<Record<string, unknown>>(connectionId, key, options);
      return { ...toDeadLetter(e), etag: e.etag };
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  /** The stored body of a dead letter (inline or from its blob). */
  async body(dl: DeadLetter, options: OperationOptions = {}): Promise<string | undefined> {
    if (dl.body !== undefined) return dl.body;
    if (dl.bodyBlob && this.container) {
      const buf = await this.container.getBlobClient(dl.bodyBlob).downloadToBuffer(undefined, undefined, options);
      return buf.toString('utf8');
    }
    return undefined;
  }

  /** Remove a dead letter (after a successful replay), with its body blob. The item's claim is not touched. */
  async remove(connectionId: string, key: string, options: OperationOptions = {}): Promise<boolean> {
    const dl = await this.get(connectionId, key, options);
    if (!dl) return false;
    if (dl.bodyBlob && this.container) await this.container.getBlobClient(dl.bodyBlob).deleteIfExists(options);
    try {
      await this.table.deleteEntity(connectionId, key, options);
      return true;
    } catch (err) {
      if (isNotFound(err)) return false;
      throw err;
    }
  }
}

function toDeadLetter(e: Record<string, unknown> & { partitionKey?: string; rowKey?: string }): DeadLetter {
  const s = (k: string) => (typeof e[k] === 'string' ? e[k] : undefined);
  const dl: DeadLetter = {
    connectionId: e.partitionKey ?? '',
    key: e.rowKey ?? '',
    itemId: s('itemId') ?? '',
    crawlId: s('crawlId') ?? '',
    op: (s('op') ?? 'unknown') as DeadLetterOp,
    status: typeof e.status === 'number' ? e.status : 0,
    message: s('message') ?? '',
    attempts: typeof e.attempts === 'number' ? e.attempts : 0,
    at: s('at') ?? '',
    firstAt: s('firstAt') ?? s('at') ?? '',
    count: typeof e.count === 'number' ? e.count : 1,
  };
  for (const k of [
    'code',
    'innerCode',
    'requestId',
    'clientRequestId',
    'claim',
    'body',
    'bodyBlob',
    'position',
  ] as const) {
    const v = s(k);
    if (v !== undefined) dl[k] = v;
  }
  const reasons = s('reasons');
  if (reasons) {
    try {
      dl.reasons = JSON.parse(reasons) as string[];
    } catch {
      dl.reasons = [reasons];
    }
  }
  return dl;
}

/** The dead-letter store over `${prefix}deadletters`, with large bodies in `container`. */
export function createDeadLetterStore(
  tables: (name: string) => TableClient,
  prefix = 'gc',
  options: Omit<DeadLetterStoreOptions, 'table'> = {},
): DeadLetterStore {
  return new DeadLetterStore({ ...options, table: tables(`${prefix}deadletters`) });
}
