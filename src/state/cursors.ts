/**
 * Cursors (`${prefix}cursors`): small named values per connection, committed with optimistic concurrency — the
 * incremental watermark (`default`), the full-crawl generation, a crawl's request options, the snapshot pointer.
 * Partition = connectionId, row key = the cursor's name.
 */
import type { TableClient, TableEntity } from '@azure/data-tables';
import type { OperationOptions } from '../core/async.js';
import { ConnectorError } from '../core/errors.js';
import { CONNECTION_ID } from './keys.js';
import { isConflict, isNotFound } from './util.js';

export interface Cursor {
  value: string;
  etag: string;
  updatedAt: string;
  crawlId?: string;
}

/** An optimistic-concurrency write lost (the row changed since it was read). */
export class ConcurrencyError extends ConnectorError {
  override name = 'ConcurrencyError';
  constructor(message: string) {
    super(message, { code: 'ConcurrencyConflict', retryable: false });
  }
}

export class StateConfigError extends ConnectorError {
  override name = 'StateConfigError';
  constructor(message: string) {
    super(message, { code: 'InvalidStateArgument' });
  }
}

export function assertConnection(connectionId: string): void {
  if (!CONNECTION_ID.test(connectionId))
    throw new StateConfigError(
      `connectionId "${connectionId.slice(0, 40)}" is not 3–32 alphanumerics; fix connection.id in the connector definition`,
    );
}

/** The largest cursor value (opaque delta tokens and source positions fit). */
export const MAX_CURSOR_CHARS = 30_000;

export class CursorStore {
  constructor(
    readonly table: TableClient,
    private readonly now: () => number = Date.now,
  ) {}

  async ensure(options: OperationOptions = {}): Promise<void> {
    await this.table.createTable({ abortSignal: options.abortSignal });
  }

  async get(connectionId: string, name = 'default', options: OperationOptions = {}): Promise<Cursor | undefined> {
    assertConnection(connectionId);
    try {
      const e = await this.table.getEntity<Record<string, unknown>>(connectionId, name, options);
      const c: Cursor = {
        value: typeof e.value === 'string' ? e.value : '',
        etag: e.etag,
        updatedAt: typeof e.updatedAt === 'string' ? e.updatedAt : '',
      };
      if (typeof e.crawlId === 'string' && e.crawlId) c.crawlId = e.crawlId;
      return c;
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  /**
   * Commit a value. `etag` is the ETag read before (undefined = there was none: insert only). If the cursor changed
   * meanwhile, throws {@link ConcurrencyError} and writes nothing.
   */
  async commit(
    connectionId: string,
    value: string,
    etag: string | undefined,
    options: { name?: string; crawlId?: string } & OperationOptions = {},
  ): Promise<Cursor> {
    assertConnection(connectionId);
    if (value.length > MAX_CURSOR_CHARS)
      throw new StateConfigError(
        `cursor "${options.name ?? 'default'}" of ${connectionId} is ${value.length} characters; the limit is ${MAX_CURSOR_CHARS}`,
      );
    const updatedAt = new Date(this.now()).toISOString();
    const entity: TableEntity<Record<string, unknown>> = {
      partitionKey: connectionId,
      rowKey: options.name ?? 'default',
      value,
      updatedAt,
      ...(options.crawlId ? { crawlId: options.crawlId } : {}),
    };
    try {
      const r = etag
        ? await this.table.updateEntity(entity, 'Replace', { etag, abortSignal: options.abortSignal })
        : await this.table.createEntity(entity, { abortSignal: options.abortSignal });
      return { value, etag: r.etag ?? '', updatedAt, ...(options.crawlId ? { crawlId: options.crawlId } : {}) };
    } catch (err) {
      if (isConflict(err) || (etag && isNotFound(err)))
        throw new ConcurrencyError(
          `cursor "${options.name ?? 'default'}" of connection ${connectionId} changed since it was read (another crawl committed); not committing`,
        );
      throw err;
    }
  }

  /** Remove a named cursor (no error when it is absent). */
  async delete(connectionId: string, name: string, options: OperationOptions = {}): Promise<void> {
    assertConnection(connectionId);
    try {
      await this.table.deleteEntity(connectionId, name, options);
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }
}
