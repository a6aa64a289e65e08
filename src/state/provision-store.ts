/**
 * Provision state: one row per connection in the Azure Table `${prefix}provision`
 * (PartitionKey 'provision', RowKey = connection id), with ETag optimistic concurrency so two
 * workers driving the same provisioning never overwrite each other's progress.
 */
import { TableClient, RestError, type TableEntity } from '@azure/data-tables';
import { ConnectorError } from '../core/errors.js';

/**
 * `deleting` and `disabled` follow an admin turning the connector off in the Microsoft 365 admin center
 * (docs/deploy.md): the connection is deleted and crawls stop until it is turned on (or provisioned) again.
 */
export type ProvisionPhase =
  | 'connection'
  | 'schema'
  | 'polling'
  | 'groups'
  | 'ready'
  | 'failed'
  | 'deleting'
  | 'disabled';

/** What was synced of one external group (groups cannot be listed on Graph, so this is our memory). */
export interface SyncedGroup {
  displayName?: string;
  description?: string;
  /** `${type}:${id}` of each member added. */
  members: string[];
}

export interface ProvisionState {
  connectionId: string;
  phase: ProvisionPhase;
  /** The schema operation being polled. */
  operationUrl?: string;
  /** ISO time after which polling gives up. */
  deadline?: string;
  /** ISO time until which 401/403 are retried (admin consent propagating). */
  consentDeadline?: string;
  /** A create answered 503: a later 409 means it was created. */
  createPending?: boolean;
  lastError?: string;
  /** The phase that failed (when phase is 'failed'). */
  failedPhase?: ProvisionPhase;
  /** Graph error details of the last failure (no secrets). */
  lastErrorCode?: string;
  /** The app package id the connection is created with (`connectorId`), from the admin center's notification. */
  connectorId?: string;
  /**
   * The admin center's `connectorsTicket`, sent as the `GraphConnectors-Ticket` header on the connection create (or
   * delete) and dropped once used. Opaque; never shown by the status API nor logged.
   */
  ticket?: string;
  /** The last enablement notification: `enabled`/`disabled` and when it came. */
  enablement?: 'enabled' | 'disabled';
  enablementAt?: string;
  /** Consecutive attempts of the current phase. */
  attempts: number;
  progress: string;
  startedAt: string;
  updatedAt: string;
  groups?: Record<string, SyncedGroup>;
}

export interface StoredProvisionState {
  state: ProvisionState;
  etag: string;
}

/** Another worker saved the state first (ETag mismatch): reload it and retry. Code `ProvisionConflict`, retryable. */
export class ProvisionConflictError extends ConnectorError {
  override name = 'ProvisionConflictError';
  readonly connectionId: string;
  constructor(connectionId: string) {
    super(
      `the provision state of connection '${connectionId}' was changed by another worker; ` +
        'reload it and retry (two provisionings of one connection must not run at once)',
      { code: 'ProvisionConflict', retryable: true },
    );
    this.connectionId = connectionId;
  }
}

export interface ProvisionStore {
  get(connectionId: string): Promise<StoredProvisionState | null>;
  /** Writes the state; `etag` undefined = create (fails if it exists). Returns the new etag. */
  save(state: ProvisionState, etag: string | undefined): Promise<string>;
  delete(connectionId: string): Promise<void>;
}

const PARTITION = 'provision';
/** Table string properties hold at most 32K UTF-16 characters; the group map is split across columns. */
const CHUNK = 30_000;

type Row = TableEntity<Record<string, unknown>>;

function toEntity(state: ProvisionState): Row {
  const { groups, ...rest } = state;
  const entity: Row = { partitionKey: PARTITION, rowKey: state.connectionId };
  for (const [k, v] of Object.entries(rest)) if (v !== undefined) entity[k] = v;
  const json = JSON.stringify(groups ?? null);
  const chunks = Math.ceil(json.length / CHUNK) || 1;
  entity.groupsChunks = chunks;
  for (let i = 0; i < chunks; i++) entity[`groups${i}`] = json.slice(i * CHUNK, (i + 1) * CHUNK);
  return entity;
}

function fromEntity(e: Record<string, unknown>): ProvisionState {
  const chunks = typeof e.groupsChunks === 'number' ? e.groupsChunks : 0;
  let json = '';
  for (let i = 0; i < chunks; i++) json += (e[`groups${i}`] as string | undefined) ?? '';
  const groups = json ? (JSON.parse(json) as Record<string, SyncedGroup> | null) : null;
  const s: ProvisionState = {
    connectionId: e.rowKey as string,
    phase: e.phase as ProvisionPhase,
    attempts: Number(e.attempts ?? 0),
    progress: (e.progress as string | undefined) ?? '',
    startedAt: e.startedAt as string,
    updatedAt: e.updatedAt as string,
  };
  for (const k of [
    'operationUrl',
    'deadline',
    'consentDeadline',
    'lastError',
    'lastErrorCode',
    'connectorId',
    'ticket',
    'enablementAt',
  ] as const) {
    if (typeof e[k] === 'string') s[k] = e[k];
  }
  if (typeof e.failedPhase === 'string') s.failedPhase = e.failedPhase as ProvisionPhase;
  if (e.createPending === true) s.createPending = true;
  if (e.enablement === 'enabled' || e.enablement === 'disabled') s.enablement = e.enablement;
  if (groups) s.groups = groups;
  return s;
}

export class TableProvisionStore implements ProvisionStore {
  private ready?: Promise<void>;
  constructor(readonly table: TableClient) {}

  /** `${prefix}provision` from a connection string. */
  static fromConnectionString(connectionString: string, prefix: string): TableProvisionStore {
    return new TableProvisionStore(
      TableClient.fromConnectionString(connectionString, `${prefix}provision`, { allowInsecureConnection: true }),
    );
  }

  private ensure(): Promise<void> {
    this.ready ??= this.table.createTable().catch((e: unknown) => {
      this.ready = undefined;
      throw e;
    });
    return this.ready;
  }

  async get(connectionId: string): Promise<StoredProvisionState | null> {
    await this.ensure();
    try {
      const e = await this.table.getEntity<Record<string, unknown>>(PARTITION, connectionId);
      return { state: fromEntity(e), etag: e.etag };
    } catch (err) {
      if (err instanceof RestError && err.statusCode === 404) return null;
      throw err;
    }
  }

  async save(state: ProvisionState, etag: string | undefined): Promise<string> {
    await this.ensure();
    const entity = toEntity(state);
    try {
      const res = etag
        ? await this.table.updateEntity(entity, 'Replace', { etag })
        : await this.table.createEntity(entity);
      return res.etag!;
    } catch (err) {
      if (err instanceof RestError && (err.statusCode === 412 || err.statusCode === 409)) {
        throw new ProvisionConflictError(state.connectionId);
      }
      throw err;
    }
  }

  async delete(connectionId: string): Promise<void> {
    await this.ensure();
    await this.table.deleteEntity(PARTITION, connectionId).catch((err: unknown) => {
      if (!(err instanceof RestError && err.statusCode === 404)) throw err;
    });
  }
}

/** In-process store (tests, and CLI runs without storage: group sync state is then not remembered). */
export class MemoryProvisionStore implements ProvisionStore {
  private rows = new Map<string, { json: string; etag: string }>();
  private n = 0;
  async get(connectionId: string): Promise<StoredProvisionState | null> {
    const r = this.rows.get(connectionId);
    return r ? { state: JSON.parse(r.json) as ProvisionState, etag: r.etag } : null;
  }
  async save(state: ProvisionState, etag: string | undefined): Promise<string> {
    const r = this.rows.get(state.connectionId);
    if ((r && r.etag !== etag) || (!r && etag)) throw new ProvisionConflictError(state.connectionId);
    const next = `W/"${++this.n}"`;
    this.rows.set(state.connectionId, { json: JSON.stringify(state), etag: next });
    return next;
  }
  async delete(connectionId: string): Promise<void> {
    this.rows.delete(connectionId);
  }
}
