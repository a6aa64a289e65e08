/**
 * The state layer in one place: storage clients, the typed queues, the item store, jobs, cursors, snapshots, dead
 * letters and leases. Pipeline code takes these as parameters; this factory is for the composition root and tests.
 */
import type { OperationOptions } from '../core/async.js';
import { silentLogger, type Logger } from '../log.js';
import { CursorStore } from './cursors.js';
import { DeadLetterStore } from './dead-letters.js';
import { ItemStore } from './items.js';
import { JobStore } from './jobs.js';
import { LeaseStore } from './lease.js';
import { ItemQueue } from './queues/items.js';
import { SnapshotStore } from './snapshot.js';
import {
  createStorage,
  stateNamesFromEnv,
  type StateNames,
  type StorageClients,
  type StorageOptions,
} from './storage.js';

export interface StateLayer {
  storage: StorageClients;
  names: StateNames;
  queue: ItemQueue;
  items: ItemStore;
  jobs: JobStore;
  cursors: CursorStore;
  snapshots: SnapshotStore;
  deadLetters: DeadLetterStore;
  leases: LeaseStore;
  /** Create every queue, table and container if missing (idempotent; run at start-up or by `provision`). */
  ensure(options?: OperationOptions): Promise<void>;
}

export interface StateLayerOptions extends StorageOptions {
  env?: NodeJS.ProcessEnv;
  /** Use these clients instead of building them from the environment. */
  storage?: StorageClients;
  /** Override names (tests use unique ones). */
  names?: Partial<StateNames>;
  logger?: Logger;
  now?: () => number;
  /** Largest inline queue message (tests only). */
  maxInlineBytes?: number;
}

export function createStateLayer(options: StateLayerOptions = {}): StateLayer {
  const env = options.env ?? process.env;
  const logger = options.logger ?? silentLogger;
  const storage = options.storage ?? createStorage(env, options);
  const names: StateNames = { ...stateNamesFromEnv(env), ...options.names };
  const table = (suffix: string) => storage.table(`${names.tablePrefix}${suffix}`);
  const claims = storage.container(names.claimsContainer);
  const now = options.now ?? Date.now;
  const queue = new ItemQueue({
    queue: storage.queue(names.itemsQueue),
    poisonQueue: storage.queue(`${names.itemsQueue}-poison`),
    claims,
    logger: logger.child({ component: 'item-queue' }),
    ...(options.maxInlineBytes ? { maxInlineBytes: options.maxInlineBytes } : {}),
  });
  const cursors = new CursorStore(table('cursors'), now);
  const items = new ItemStore({ table: table('items'), logger: logger.child({ component: 'ledger' }), now });
  const jobs = new JobStore(table('jobs'), now);
  const snapshots = new SnapshotStore({
    container: storage.container(names.stateContainer),
    cursors,
    logger: logger.child({ component: 'snapshot' }),
    now,
  });
  const deadLetters = new DeadLetterStore({ table: table('deadletters'), container: claims, logger, now });
  const leases = new LeaseStore({ table: table('leases'), logger, now });
  return {
    storage,
    names,
    queue,
    items,
    jobs,
    cursors,
    snapshots,
    deadLetters,
    leases,
    async ensure(opts = {}) {
      await Promise.all([
        queue.ensure(opts),
        items.ensure(opts),
        jobs.ensure(opts),
        cursors.ensure(opts),
        snapshots.ensure(opts),
        leases.ensure(opts),
      ]);
      await deadLetters.ensure(opts);
    },
  };
}

export * from './storage.js';
export * from './keys.js';
export * from './cursors.js';
export * from './items.js';
export * from './jobs.js';
export * from './snapshot.js';
export * from './lease.js';
export * from './dead-letters.js';
export * from './queues/items.js';
export * from './queues/control.js';
