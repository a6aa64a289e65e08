/**
 * The storage resources the connector needs (queues, ledger tables, claims container): which exist, and
 * creating the missing ones on request. Existence is probed with the same clients the connector uses.
 */
import type { OperationOptions } from '../core/async.js';
import { statusOf } from '../core/errors.js';
import type { StorageClients } from '../state/storage.js';

export type StorageKind = 'queue' | 'table' | 'container';

export interface StorageResource {
  kind: StorageKind;
  name: string;
  /** The setting it comes from, e.g. `ITEMS_QUEUE` or `LEDGER_TABLE_PREFIX`. */
  setting: string;
}

export interface StorageNames {
  itemsQueue: string;
  crawlQueue: string;
  provisionQueue: string;
  tablePrefix: string;
  claimsContainer: string;
}

export const LEDGER_TABLES = ['items', 'jobs', 'cursors', 'deadletters', 'leases', 'provision'] as const;

/** Every queue, table and container the connector's functions and CLI use. */
export function requiredStorage(names: StorageNames): StorageResource[] {
  return [
    { kind: 'queue', name: names.itemsQueue, setting: 'ITEMS_QUEUE' },
    { kind: 'queue', name: `${names.itemsQueue}-poison`, setting: 'ITEMS_QUEUE, its poison queue' },
    { kind: 'queue', name: names.crawlQueue, setting: 'CRAWL_QUEUE' },
    { kind: 'queue', name: names.provisionQueue, setting: 'PROVISION_QUEUE' },
    ...LEDGER_TABLES.map((t) => ({
      kind: 'table' as const,
      name: `${names.tablePrefix}${t}`,
      setting: 'LEDGER_TABLE_PREFIX',
    })),
    { kind: 'container', name: names.claimsContainer, setting: 'CLAIMS_CONTAINER' },
  ];
}

/** True when the resource exists; throws on anything but "not found" (auth, network, ...). */
export async function storageResourceExists(
  storage: StorageClients,
  r: StorageResource,
  { abortSignal }: OperationOptions = {},
): Promise<boolean> {
  switch (r.kind) {
    case 'queue':
      return storage.queue(r.name).exists({ abortSignal });
    case 'container':
      return storage.container(r.name).exists({ abortSignal });
    case 'table': {
      // TableClient has no exists(): read at most one key; a missing table answers 404 TableNotFound.
      try {
        const pages = storage
          .table(r.name)
          .listEntities({ abortSignal, queryOptions: { select: ['PartitionKey'] } })
          .byPage({ maxPageSize: 1 });
        await pages.next();
        return true;
      } catch (err) {
        // RestError from whichever copy of @azure/core-rest-pipeline the SDK bundles: read the status by shape.
        if (statusOf(err) === 404) return false;
        throw err;
      }
    }
  }
}

/** Create one resource (idempotent). */
export async function createStorageResource(
  storage: StorageClients,
  r: StorageResource,
  { abortSignal }: OperationOptions = {},
): Promise<void> {
  switch (r.kind) {
    case 'queue':
      await storage.queue(r.name).createIfNotExists({ abortSignal });
      return;
    case 'container':
      await storage.container(r.name).createIfNotExists({ abortSignal });
      return;
    case 'table':
      await storage.table(r.name).createTable({ abortSignal });
      return;
  }
}

/** A storage error in one line: status, code and the first line of the message (no keys or SAS). */
export function describeStorageError(err: unknown): string {
  const e = err as { statusCode?: number; code?: string; message?: string; name?: string };
  const first = (e?.message ?? String(err)).split('\n')[0]!.slice(0, 300);
  const parts = [e?.statusCode ? `HTTP ${e.statusCode}` : undefined, e?.code, first].filter(Boolean);
  return parts.join(' ');
}
