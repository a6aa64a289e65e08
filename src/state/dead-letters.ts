/**
 * Dead letters and rejections, in `${prefix}deadletters`.
 *
 * - Partition = connectionId; row key = `${crawlId}~${op}~${key}` (so a crawl's records list together, newest crawl
 *   first, and a redelivered failure overwrites its own record instead of duplicating it).
 * - `op` is `upsert` / `delete` for items Graph refused (with Graph's status, code, inner code and request ids) and
 *   `reject` for records the mapping refused (with the reasons). Rejections live in the same table so that one
 *   listing shows everything of a crawl that did not reach Graph.
 * - The message body (for replay) is stored inline when small; otherwise it goes to a blob
 *   `deadletters/<connectionId>/<rowKey>.json` in the claims container and the record names it (`bodyBlob`).
 */
import { createHash } from 'node:crypto';
import { odata, type TableClient, type TableEntity } from '@azure/data-tables';
import type { ContainerClient } from '@azure/storage-blob';
import { redact, silentLogger, type Logger } from '../log.js';
import { CONNECTION_ID, ITEM_ID, isNotFound } from './util.js';

export type DeadLetterOp = 'upsert' | 'delete' | 'reject' | 'unknown';

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
  at: string;
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

  async ensure(abortSignal?: AbortSignal): Promise<void> {
    await this.table.createTable({ abortSignal });
    await this.container?.createIfNotExists({ abortSignal });
  }

  static keyOf(input: Pick<DeadLetterInput, 'crawlId' | 'op' | 'itemId' | 'position'>): string {
    const id = ITEM_ID.test(input.itemId)
      ? input.itemId
      : 'h' + createHash('sha256').update(input.itemId, 'utf8').digest('hex').slice(0, 40);
    // Two rejected records may share a key (a duplicate id in the source): their positions keep them apart.
    const at = input.position
      ? '~' + createHash('sha256').update(input.position, 'utf8').digest('hex').slice(0, 12)
      : '';
    return `${input.crawlId}~${input.op}~${id}${at}`;
  }

  /** Record (or overwrite) a dead letter. Returns its key. */
  async add(input: DeadLetterInput, abortSignal?: AbortSignal): Promise<string> {
    if (!CONNECTION_ID.test(input.connectionId))
      throw new Error(`connectionId "${input.connectionId}" is not 3–32 alphanumerics`);
    if (!/^[A-Za-z0-9]{1,64}$/.test(input.crawlId))
      throw new Error(`crawlId "${input.crawlId}" must be 1–64 alphanumerics`);
    const key = DeadLetterStore.keyOf(input);
    const e: TableEntity<Record<string, unknown>> = {
      partitionKey: input.connectionId,
      rowKey: key,
      itemId: input.itemId.slice(0, 1024),
      crawlId: input.crawlId,
      op: input.op,
      status: input.status ?? 0,
      message: redact(input.message).slice(0, 8000),
      attempts: input.attempts ?? 0,
      at: new Date(this.now()).toISOString(),
    };
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
    await this.table.upsertEntity(e, 'Replace', { abortSignal });
    this.log.warn('dead letter recorded', {
      connectionId: input.connectionId,
      itemId: input.itemId,
      crawlId: input.crawlId,
      op: input.op,
      status: input.status,
      code: input.code,
      requestId: input.requestId,
    });
    return key;
  }

  /** Record a rejected source record (mapping refused it) with its reasons. */
  async addRejection(
    input: { connectionId: string; crawlId: string; recordKey: string; reasons: string[]; position?: string },
    abortSignal?: AbortSignal,
  ): Promise<string> {
    return this.add(
      {
        connectionId: input.connectionId,
        crawlId: input.crawlId,
        itemId: input.recordKey,
        ...(input.position ? { position: input.position } : {}),
        op: 'reject',
        message: input.reasons.join('; '),
        reasons: input.reasons,
      },
      abortSignal,
    );
  }

  /** Dead letters of a connection (optionally one crawl, optionally one op), newest crawl first. */
  async *list(
    connectionId: string,
    options: { crawlId?: string; op?: DeadLetterOp; abortSignal?: AbortSignal } = {},
  ): AsyncIterableIterator<DeadLetter> {
    let filter = odata`PartitionKey eq ${connectionId}`;
    if (options.crawlId) {
      filter += ' and ' + odata`RowKey ge ${`${options.crawlId}~`} and RowKey lt ${`${options.crawlId}~~~`}`;
    }
    if (options.op) filter += ' and ' + odata`op eq ${options.op}`;
    for await (const e of this.table.listEntities<Record<string, unknown>>({
      queryOptions: { filter },
      abortSignal: options.abortSignal,
    })) {
      yield toDeadLetter(e);
    }
  }

  async get(connectionId: string, key: string, abortSignal?: AbortSignal): Promise<DeadLetter | undefined> {
    try {
      return toDeadLetter(await this.table.getEntity<Record<string, unknown>>(connectionId, key, { abortSignal }));
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  /** The stored body of a dead letter (inline or from its blob). */
  async body(dl: DeadLetter, abortSignal?: AbortSignal): Promise<string | undefined> {
    if (dl.body !== undefined) return dl.body;
    if (dl.bodyBlob && this.container) {
      const buf = await this.container
        .getBlobClient(dl.bodyBlob)
        .downloadToBuffer(undefined, undefined, { abortSignal });
      return buf.toString('utf8');
    }
    return undefined;
  }

  /** Remove a dead letter (after a successful replay), with its body blob. The item's claim is not touched. */
  async remove(connectionId: string, key: string, abortSignal?: AbortSignal): Promise<boolean> {
    const dl = await this.get(connectionId, key, abortSignal);
    if (!dl) return false;
    if (dl.bodyBlob && this.container) await this.container.getBlobClient(dl.bodyBlob).deleteIfExists({ abortSignal });
    try {
      await this.table.deleteEntity(connectionId, key, { abortSignal });
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
  };
  for (const k of ['code', 'innerCode', 'requestId', 'clientRequestId', 'claim', 'body', 'bodyBlob'] as const) {
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
