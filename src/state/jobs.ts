/**
 * Crawl jobs (`${prefix}jobs`): one row per crawl (partition = connectionId, row key = crawlId, newest first), which
 * is also the crawl's **checkpoint**: where the enumeration is in the source, what it counted so far, which snapshot
 * it diffs against and which of that snapshot's items it has seen. The enumeration rewrites the row after every page
 * with its ETag, so a killed slice resumes from the last page it committed — and a second runner of the same slice
 * (a redelivered message) loses the ETag race and stops.
 */
import { odata, type TableClient, type TableEntity } from '@azure/data-tables';
import { mapLimit, sleep, type OperationOptions } from '../core/async.js';
import type { SourcePosition, SourceProgress } from '../sources/types.js';
import { assertConnection, ConcurrencyError, StateConfigError } from './cursors.js';
import { CRAWL_ID } from './keys.js';
import type { SnapshotRef } from './snapshot.js';
import { conflictDelayMs, isConflict, isNotFound, randomId } from './util.js';

export type CrawlMode = 'full' | 'incremental' | 'acl' | 'items';
export type CrawlTrigger = 'timer' | 'http' | 'cli';
export type CrawlStatus = 'running' | 'enumerated' | 'settling' | 'completed' | 'failed' | 'cancelled';

export interface CrawlCounts {
  /** Records read from the source. */
  enumerated: number;
  /** Item operations sent (upserts of changed records, and the sweep's deletes). */
  enqueued: number;
  /** Records whose item Graph already holds (no operation). */
  unchanged: number;
  /** Records the mapping refused (each with a reason in the dead letters). */
  rejected: number;
  /** Operations settled: PUT done, DELETE done, refused by Graph. */
  ingested: number;
  deleted: number;
  deadLettered: number;
  /** Operations replaced by a later one before they settled (they will not settle for this crawl). */
  superseded: number;
  /** Operations still in flight (enqueued, not yet settled). */
  pending: number;
  /** Items whose id changed format between connector versions: the old id deleted, the new one written. */
  moved: number;
}

export const COUNT_KEYS = [
  'enumerated',
  'enqueued',
  'unchanged',
  'rejected',
  'ingested',
  'deleted',
  'deadLettered',
  'superseded',
  'pending',
  'moved',
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
    superseded: 0,
    pending: 0,
    moved: 0,
  };
}

/** Where an enumeration is: written after every page. */
export interface Checkpoint {
  /** The slice allowed to run (a message for an older slice is a leftover and is dropped). */
  slice: number;
  /** Pages committed so far. */
  pages: number;
  /** Where the source resumes after the last committed page (undefined: from the beginning). */
  position?: SourcePosition;
  /** The source was read to the end. */
  done: boolean;
  progress?: SourceProgress;
  /** The snapshot this crawl diffs against (pinned at its first slice). */
  snapshot?: SnapshotRef;
  /** The last full seen-bitmap written (a blob in the state container). */
  seenBlob?: string;
  /** Snapshot positions seen since `seenBlob` (uint32 LE). */
  seenDelta?: Uint8Array;
  /** Crawler-side counts, exact at every committed page (`enqueued`: operations this enumeration sent). */
  enumerated: number;
  unchanged: number;
  rejected: number;
  enqueued: number;
  moved: number;
  /** Milliseconds spent enumerating (all slices): records/s and the ETA come from it. */
  enumMs: number;
  /** Deliveries of the current slice that committed no page (a slice that keeps dying fails the crawl). */
  stalls: number;
  /** Slices that resumed after an interruption. */
  resumed: number;
}

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
  /** True once the counts were folded into the row (finished jobs); false while they are read live. */
  countsFinal: boolean;
  checkpoint: Checkpoint;
  startedAt: string;
  enumeratedAt?: string;
  finishedAt?: string;
  heartbeatAt: string;
  error?: string;
  /** Notes for the person reading the job (sweep skipped, ids moved, …). */
  notes?: string[];
  etag: string;
}

const MAX_CRAWL_MS = 9_999_999_999_999;
const MAX_ATTEMPTS = 24;

/** A crawl id that sorts newest first: inverted epoch ms (13 digits) + 4 random hex chars. */
export function newCrawlId(now: number = Date.now()): string {
  return String(MAX_CRAWL_MS - now).padStart(13, '0') + randomId(2);
}

export function emptyCheckpoint(): Checkpoint {
  return {
    slice: 0,
    pages: 0,
    done: false,
    enumerated: 0,
    unchanged: 0,
    rejected: 0,
    enqueued: 0,
    moved: 0,
    enumMs: 0,
    stalls: 0,
    resumed: 0,
  };
}

type Entity = TableEntity<Record<string, unknown>> & { etag?: string };

export class JobStore {
  constructor(
    readonly table: TableClient,
    private readonly now: () => number = Date.now,
  ) {}

  async ensure(options: OperationOptions = {}): Promise<void> {
    await this.table.createTable({ abortSignal: options.abortSignal });
  }

  private iso(): string {
    return new Date(this.now()).toISOString();
  }

  async create(
    input: Pick<CrawlJob, 'connectionId' | 'crawlId' | 'mode' | 'trigger' | 'generation'> & { cursorBefore?: string },
    options: OperationOptions = {},
  ): Promise<CrawlJob> {
    assertConnection(input.connectionId);
    if (!CRAWL_ID.test(input.crawlId))
      throw new StateConfigError(`crawlId "${input.crawlId}" must be 1–64 alphanumerics`);
    const at = this.iso();
    const job: Omit<CrawlJob, 'etag'> = {
      crawlId: input.crawlId,
      connectionId: input.connectionId,
      mode: input.mode,
      trigger: input.trigger,
      status: 'running',
      generation: input.generation,
      counts: zeroCounts(),
      countsFinal: false,
      checkpoint: emptyCheckpoint(),
      startedAt: at,
      heartbeatAt: at,
      ...(input.cursorBefore !== undefined ? { cursorBefore: input.cursorBefore } : {}),
    };
    const r = await this.table.createEntity(toEntity(job), options);
    return { ...job, etag: r.etag ?? '' };
  }

  async get(connectionId: string, crawlId: string, options: OperationOptions = {}): Promise<CrawlJob | undefined> {
    assertConnection(connectionId);
    try {
      return toJob((await this.table.getEntity<Record<string, unknown>>(connectionId, crawlId, options)) as Entity);
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  /** The newest `limit` jobs of a connection, newest first. */
  async list(connectionId: string, limit = 50, options: OperationOptions = {}): Promise<CrawlJob[]> {
    assertConnection(connectionId);
    const out: CrawlJob[] = [];
    const pages = this.table
      .listEntities<Record<string, unknown>>({
        queryOptions: { filter: odata`PartitionKey eq ${connectionId}` },
        abortSignal: options.abortSignal,
      })
      .byPage({ maxPageSize: Math.min(1000, limit) });
    for await (const page of pages) {
      for (const e of page) {
        out.push(toJob(e as Entity));
        if (out.length >= limit) return out;
      }
    }
    return out;
  }

  /** Unfinished jobs (running, enumerated, settling) whose heartbeat is older than `staleAfterMs`. */
  async listStale(connectionId: string, staleAfterMs: number, options: OperationOptions = {}): Promise<CrawlJob[]> {
    assertConnection(connectionId);
    const before = new Date(this.now() - staleAfterMs).toISOString();
    const filter =
      odata`PartitionKey eq ${connectionId} and heartbeatAt lt ${before}` +
      ` and (status eq 'running' or status eq 'enumerated' or status eq 'settling')`;
    const out: CrawlJob[] = [];
    for await (const e of this.table.listEntities<Record<string, unknown>>({
      queryOptions: { filter },
      abortSignal: options.abortSignal,
    }))
      out.push(toJob(e as Entity));
    return out;
  }

  /**
   * Write the job exactly as given, if it is unchanged since it was read (its ETag). Throws ConcurrencyError when
   * another writer got there first — for the enumeration this means another runner owns the crawl: stop.
   */
  async replace(job: CrawlJob, options: OperationOptions = {}): Promise<CrawlJob> {
    try {
      const r = await this.table.updateEntity(toEntity(job), 'Replace', { etag: job.etag, ...options });
      return { ...job, etag: r.etag ?? '' };
    } catch (err) {
      if (isConflict(err) || isNotFound(err))
        throw new ConcurrencyError(`crawl ${job.crawlId} changed since it was read (another runner wrote it)`);
      throw err;
    }
  }

  /**
   * Update a job with an ETag retry loop: `mutate` gets the fresh job and returns the fields to change (or undefined
   * to leave it).
   */
  async update(
    connectionId: string,
    crawlId: string,
    mutate: (job: CrawlJob) => Partial<Omit<CrawlJob, 'crawlId' | 'connectionId' | 'etag'>> | undefined,
    options: OperationOptions = {},
  ): Promise<CrawlJob> {
    for (let attempt = 0; ; attempt++) {
      const job = await this.get(connectionId, crawlId, options);
      if (!job) throw new StateConfigError(`no crawl ${crawlId} for connection ${connectionId}`);
      const patch = mutate(job);
      if (!patch) return job;
      try {
        return await this.replace({ ...job, ...patch }, options);
      } catch (err) {
        if (!(err instanceof ConcurrencyError) || attempt >= MAX_ATTEMPTS) throw err;
        await sleep(conflictDelayMs(attempt), options);
      }
    }
  }

  async heartbeat(connectionId: string, crawlId: string, options: OperationOptions = {}): Promise<CrawlJob> {
    return this.update(connectionId, crawlId, () => ({ heartbeatAt: this.iso() }), options);
  }

  /** Finish a job: its final status and counts (so listing old jobs is cheap). */
  async finish(
    connectionId: string,
    crawlId: string,
    status: 'completed' | 'failed' | 'cancelled',
    counts: CrawlCounts,
    extra: { error?: string; cursorAfter?: string } & OperationOptions = {},
  ): Promise<CrawlJob> {
    const at = this.iso();
    return this.update(
      connectionId,
      crawlId,
      (job) => ({
        status,
        counts,
        countsFinal: true,
        finishedAt: at,
        heartbeatAt: at,
        ...(extra.error !== undefined ? { error: extra.error.slice(0, 8000) } : {}),
        ...(extra.cursorAfter !== undefined ? { cursorAfter: extra.cursorAfter } : {}),
        checkpoint: { ...job.checkpoint, seenDelta: undefined },
      }),
      extra,
    );
  }

  /** Remove jobs (tests, resets). */
  async deleteAll(connectionId: string, options: OperationOptions = {}): Promise<void> {
    const jobs = await this.list(connectionId, 1000, options);
    await mapLimit(jobs, 8, (j) =>
      this.table.deleteEntity(connectionId, j.crawlId, options).catch((err: unknown) => {
        if (!isNotFound(err)) throw err;
      }),
    );
  }
}

function toEntity(job: Omit<CrawlJob, 'etag'>): Entity {
  const cp = job.checkpoint;
  const e: Entity = {
    partitionKey: job.connectionId,
    rowKey: job.crawlId,
    mode: job.mode,
    trigger: job.trigger,
    status: job.status,
    generation: job.generation,
    countsFinal: job.countsFinal,
    startedAt: job.startedAt,
    heartbeatAt: job.heartbeatAt,
    cp_slice: cp.slice,
    cp_pages: cp.pages,
    cp_done: cp.done,
    cp_enumerated: cp.enumerated,
    cp_unchanged: cp.unchanged,
    cp_rejected: cp.rejected,
    cp_enqueued: cp.enqueued,
    cp_moved: cp.moved,
    cp_enumMs: cp.enumMs,
    cp_stalls: cp.stalls,
    cp_resumed: cp.resumed,
  };
  if (cp.position !== undefined) e.cp_position = JSON.stringify(cp.position);
  if (cp.progress !== undefined) e.cp_progress = JSON.stringify(cp.progress);
  if (cp.snapshot !== undefined) e.cp_snapshot = JSON.stringify(cp.snapshot);
  if (cp.seenBlob !== undefined) e.cp_seenBlob = cp.seenBlob;
  if (cp.seenDelta !== undefined && cp.seenDelta.length > 0) e.cp_seenDelta = cp.seenDelta;
  for (const k of ['cursorBefore', 'cursorAfter', 'enumeratedAt', 'finishedAt', 'error'] as const) {
    if (job[k] !== undefined) e[k] = job[k];
  }
  if (job.notes?.length) e.notes = JSON.stringify(job.notes).slice(0, 30_000);
  for (const k of COUNT_KEYS) e[`c_${k}`] = job.counts[k];
  return e;
}

function num(v: unknown): number {
  return typeof v === 'number' && Number.isFinite(v) ? v : 0;
}

function json<T>(v: unknown): T | undefined {
  if (typeof v !== 'string' || v === '') return undefined;
  try {
    return JSON.parse(v) as T;
  } catch {
    return undefined;
  }
}

function toJob(e: Entity): CrawlJob {
  const counts = zeroCounts();
  for (const k of COUNT_KEYS) counts[k] = num(e[`c_${k}`]);
  const delta = e.cp_seenDelta;
  const checkpoint: Checkpoint = {
    slice: num(e.cp_slice),
    pages: num(e.cp_pages),
    done: e.cp_done === true,
    enumerated: num(e.cp_enumerated),
    unchanged: num(e.cp_unchanged),
    rejected: num(e.cp_rejected),
    enqueued: num(e.cp_enqueued),
    moved: num(e.cp_moved),
    enumMs: num(e.cp_enumMs),
    stalls: num(e.cp_stalls),
    resumed: num(e.cp_resumed),
  };
  const position = json<SourcePosition>(e.cp_position);
  if (position !== undefined) checkpoint.position = position;
  const progress = json<SourceProgress>(e.cp_progress);
  if (progress !== undefined) checkpoint.progress = progress;
  const snapshot = json<SnapshotRef>(e.cp_snapshot);
  if (snapshot !== undefined) checkpoint.snapshot = snapshot;
  if (typeof e.cp_seenBlob === 'string' && e.cp_seenBlob) checkpoint.seenBlob = e.cp_seenBlob;
  if (delta instanceof Uint8Array && delta.length) checkpoint.seenDelta = delta;
  const job: CrawlJob = {
    crawlId: e.rowKey ?? '',
    connectionId: e.partitionKey ?? '',
    mode: e.mode as CrawlMode,
    trigger: e.trigger as CrawlTrigger,
    status: e.status as CrawlStatus,
    generation: num(e.generation),
    counts,
    countsFinal: e.countsFinal === true,
    checkpoint,
    startedAt: typeof e.startedAt === 'string' ? e.startedAt : '',
    heartbeatAt: typeof e.heartbeatAt === 'string' ? e.heartbeatAt : '',
    etag: e.etag ?? '',
  };
  for (const k of ['cursorBefore', 'cursorAfter', 'enumeratedAt', 'finishedAt', 'error'] as const) {
    if (typeof e[k] === 'string') job[k] = e[k];
  }
  const notes = json<string[]>(e.notes);
  if (notes?.length) job.notes = notes;
  return job;
}
