/**
 * The crawl lease: one crawl per connection (and job kind) at a time, across processes and instances.
 *
 * A row in `${prefix}leases` (partition = connectionId, row key = lease name, default `crawl`), written only with
 * ETag conditions: insert-if-absent, or replace-if-expired. An expired lease can be taken over, so a crashed crawler
 * blocks the connection for at most its TTL. The holder renews well before expiry (e.g. every TTL/3) and releases
 * at the end; a renew that finds another holder throws {@link LeaseLostError}: stop the crawl.
 */
import type { TableClient, TableEntity } from '@azure/data-tables';
import type { OperationOptions } from '../core/async.js';
import { ConnectorError } from '../core/errors.js';
import { silentLogger, type Logger } from '../log.js';
import { StateConfigError } from './cursors.js';
import { CONNECTION_ID } from './keys.js';
import { isConflict, isNotFound, randomId } from './util.js';

export interface Lease {
  connectionId: string;
  name: string;
  holder: string;
  crawlId?: string;
  /** Random per acquisition: distinguishes two acquisitions by the same holder name. */
  token: string;
  since: string;
  expiresAt: string;
  etag: string;
}

export interface LeaseHolder {
  holder: string;
  crawlId?: string;
  since: string;
  expiresAt: string;
}

export type AcquireResult = { ok: true; lease: Lease } | { ok: false; heldBy: LeaseHolder };

export class LeaseLostError extends ConnectorError {
  override name = 'LeaseLostError';
  constructor(
    readonly connectionId: string,
    readonly heldBy?: LeaseHolder,
  ) {
    super(
      `the crawl lease of connection ${connectionId} was lost` +
        (heldBy ? ` to ${heldBy.holder}${heldBy.crawlId ? ` (crawl ${heldBy.crawlId})` : ''}` : '') +
        '; stop this crawl (another one owns the connection now)',
      { code: 'LeaseLost' },
    );
  }
}

export interface LeaseStoreOptions {
  table: TableClient;
  logger?: Logger;
  now?: () => number;
}

export interface AcquireOptions {
  /** Who asks (e.g. `host/pid/instance`); shown to the loser. */
  holder: string;
  ttlMs: number;
  crawlId?: string;
  /** Lease name per job kind (default `crawl`). */
  name?: string;
  abortSignal?: AbortSignal;
}

type Row = TableEntity<Record<string, unknown>> & { etag?: string };

export class LeaseStore {
  readonly table: TableClient;
  private readonly log: Logger;
  private readonly now: () => number;

  constructor(options: LeaseStoreOptions) {
    this.table = options.table;
    this.log = options.logger ?? silentLogger;
    this.now = options.now ?? Date.now;
  }

  async ensure(options: OperationOptions = {}): Promise<void> {
    await this.table.createTable(options);
  }

  private entity(connectionId: string, name: string, opts: AcquireOptions, token: string, since: string): Row {
    const e: Row = {
      partitionKey: connectionId,
      rowKey: name,
      holder: opts.holder,
      token,
      since,
      expiresAt: new Date(this.now() + opts.ttlMs).toISOString(),
    };
    if (opts.crawlId) e.crawlId = opts.crawlId;
    return e;
  }

  /** Take the lease if it is free or expired. Exactly one of several concurrent callers wins. */
  async acquire(connectionId: string, opts: AcquireOptions): Promise<AcquireResult> {
    if (!CONNECTION_ID.test(connectionId))
      throw new StateConfigError(`connectionId "${connectionId}" is not 3–32 alphanumerics`);
    if (!(opts.ttlMs > 0)) throw new StateConfigError('lease ttlMs must be positive');
    const name = opts.name ?? 'crawl';
    const token = randomId(8);
    const since = new Date(this.now()).toISOString();
    const entity = this.entity(connectionId, name, opts, token, since);
    try {
      const r = await this.table.createEntity(entity, { abortSignal: opts.abortSignal });
      this.log.info('lease acquired', { connectionId, name, holder: opts.holder, crawlId: opts.crawlId });
      return { ok: true, lease: toLease(entity, r.etag ?? '') };
    } catch (err) {
      if (!isConflict(err)) throw err;
    }
    const current = await this.read(connectionId, name, opts.abortSignal);
    if (!current) return this.acquire(connectionId, opts); // released in between: try again
    const expired = Date.parse(String(current.expiresAt)) <= this.now();
    if (!expired) return { ok: false, heldBy: holderOf(current) };
    try {
      const r = await this.table.updateEntity(entity, 'Replace', { etag: current.etag, abortSignal: opts.abortSignal });
      this.log.warn('lease taken over after expiry', {
        connectionId,
        name,
        holder: opts.holder,
        previousHolder: current.holder,
        expiredAt: current.expiresAt,
      });
      return { ok: true, lease: toLease(entity, r.etag ?? '') };
    } catch (err) {
      if (!isConflict(err) && !isNotFound(err)) throw err;
      const winner = await this.read(connectionId, name, opts.abortSignal);
      if (!winner) return this.acquire(connectionId, opts);
      return { ok: false, heldBy: holderOf(winner) };
    }
  }

  /** Extend the lease; throws {@link LeaseLostError} if someone else holds it now. */
  async renew(lease: Lease, ttlMs: number, options: OperationOptions = {}): Promise<Lease> {
    const abortSignal = options.abortSignal;
    const entity: Row = {
      partitionKey: lease.connectionId,
      rowKey: lease.name,
      holder: lease.holder,
      token: lease.token,
      since: lease.since,
      expiresAt: new Date(this.now() + ttlMs).toISOString(),
      ...(lease.crawlId ? { crawlId: lease.crawlId } : {}),
    };
    try {
      const r = await this.table.updateEntity(entity, 'Replace', { etag: lease.etag, abortSignal });
      return { ...lease, expiresAt: String(entity.expiresAt), etag: r.etag ?? '' };
    } catch (err) {
      if (!isConflict(err) && !isNotFound(err)) throw err;
      const now = await this.read(lease.connectionId, lease.name, abortSignal);
      throw new LeaseLostError(lease.connectionId, now ? holderOf(now) : undefined);
    }
  }

  /** Give the lease up. A lease already lost (taken over, or gone) is left alone. Returns whether it was released. */
  async release(lease: Lease, options: OperationOptions = {}): Promise<boolean> {
    const abortSignal = options.abortSignal;
    try {
      await this.table.deleteEntity(lease.connectionId, lease.name, { etag: lease.etag, abortSignal });
      this.log.info('lease released', { connectionId: lease.connectionId, name: lease.name, holder: lease.holder });
      return true;
    } catch (err) {
      if (isConflict(err) || isNotFound(err)) return false;
      throw err;
    }
  }

  /**
   * The current lease as a handle to renew or release (undefined when free). A later invocation of the same
   * crawl uses this to pick its lease up again; check `crawlId` before using it.
   */
  async get(connectionId: string, name = 'crawl', options: OperationOptions = {}): Promise<Lease | undefined> {
    const abortSignal = options.abortSignal;
    const row = await this.read(connectionId, name, abortSignal);
    return row ? toLease(row, String(row.etag ?? '')) : undefined;
  }

  /** Who holds the lease now (undefined when free); `expired` when it may be taken over. */
  async holder(
    connectionId: string,
    name = 'crawl',
    options: OperationOptions = {},
  ): Promise<(LeaseHolder & { expired: boolean }) | undefined> {
    const row = await this.read(connectionId, name, options.abortSignal);
    if (!row) return undefined;
    const h = holderOf(row);
    return { ...h, expired: Date.parse(h.expiresAt) <= this.now() };
  }

  private async read(connectionId: string, name: string, abortSignal?: AbortSignal): Promise<Row | undefined> {
    try {
      const e = await this.table.getEntity<Record<string, unknown>>(connectionId, name, { abortSignal });
      return { ...e, partitionKey: connectionId, rowKey: name };
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }
}

function text(v: unknown): string {
  return typeof v === 'string' ? v : '';
}

function holderOf(row: Row): LeaseHolder {
  const h: LeaseHolder = {
    holder: text(row.holder),
    since: text(row.since),
    expiresAt: text(row.expiresAt),
  };
  if (typeof row.crawlId === 'string') h.crawlId = row.crawlId;
  return h;
}

function toLease(row: Row, etag: string): Lease {
  const l: Lease = {
    connectionId: row.partitionKey,
    name: row.rowKey,
    holder: String(row.holder),
    token: String(row.token),
    since: String(row.since),
    expiresAt: String(row.expiresAt),
    etag,
  };
  if (typeof row.crawlId === 'string') l.crawlId = row.crawlId;
  return l;
}

/** The lease store over `${prefix}leases`. */
export function createLeaseStore(
  tables: (name: string) => TableClient,
  prefix = 'gc',
  options: Omit<LeaseStoreOptions, 'table'> = {},
): LeaseStore {
  return new LeaseStore({ ...options, table: tables(`${prefix}leases`) });
}
