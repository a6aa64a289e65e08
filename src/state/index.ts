/**
 * The state layer in one place: storage clients, item queue, ledger, dead letters, crawl lease.
 * Pipeline code takes these as parameters; this factory is for the Functions entry points and the CLI.
 */
import { silentLogger, type Logger } from '../log.js';
import { DeadLetterStore } from './dead-letters.js';
import { ItemQueue } from './item-queue.js';
import { Ledger } from './ledger.js';
import { LeaseStore } from './lease.js';
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
  ledger: Ledger;
  deadLetters: DeadLetterStore;
  leases: LeaseStore;
  /** Create every queue, table and container if missing (idempotent; run at start-up or by `provision`). */
  ensure(abortSignal?: AbortSignal): Promise<void>;
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
  const tables = (n: string) => storage.table(n);
  const claims = storage.container(names.claimsContainer);
  const queue = new ItemQueue({
    queue: storage.queue(names.itemsQueue),
    poisonQueue: storage.queue(`${names.itemsQueue}-poison`),
    claims,
    logger: logger.child({ component: 'item-queue' }),
    ...(options.maxInlineBytes ? { maxInlineBytes: options.maxInlineBytes } : {}),
  });
  const common = { logger, ...(options.now ? { now: options.now } : {}) };
  const ledger = new Ledger({
    tables,
    prefix: names.tablePrefix,
    ...common,
    logger: logger.child({ component: 'ledger' }),
  });
  const deadLetters = new DeadLetterStore({
    table: tables(`${names.tablePrefix}deadletters`),
    container: claims,
    ...common,
  });
  const leases = new LeaseStore({ table: tables(`${names.tablePrefix}leases`), ...common });
  return {
    storage,
    names,
    queue,
    ledger,
    deadLetters,
    leases,
    async ensure(abortSignal) {
      await Promise.all([queue.ensure(abortSignal), ledger.ensure(abortSignal), leases.ensure(abortSignal)]);
      await deadLetters.ensure(abortSignal);
    },
  };
}

export * from './storage.js';
export * from './item-queue.js';
export * from './ledger.js';
export * from './lease.js';
export * from './dead-letters.js';
