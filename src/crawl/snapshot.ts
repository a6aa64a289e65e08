/**
 * Keeping the snapshot in step with the ledger:
 *
 * - {@link foldTouches}: when a crawl finishes, every touch row of the connection (this crawl's and any left by
 *   earlier crawls that failed with operations still in flight) is folded into a new snapshot, bucket by bucket in
 *   key order — a streaming merge with the previous snapshot, so memory is bounded by the snapshot itself — and the
 *   folded touch rows are deleted. An item whose newest operation is still in flight is kept as "unknown".
 * - {@link rebuildSnapshot}: builds a snapshot from the item rows alone (the first crawl after an upgrade from the
 *   ledger without snapshots, or a lost snapshot blob).
 */
import type { OperationOptions } from '../core/async.js';
import type { LedgerItem, TouchRow } from '../state/items.js';
import { isNewerCrawl } from '../state/items.js';
import { ALL_BUCKETS, hashKeyOf, itemKeyOf } from '../state/keys.js';
import type { Snapshot, SnapshotRef, SnapshotWriter } from '../state/snapshot.js';
import type { PipelineDeps } from './deps.js';

const UNKNOWN: [number, number] = [0, 0];

interface Entry {
  hi: number;
  lo: number;
  hash: readonly [number, number];
  itemId: string;
}

function compare(a: { hi: number; lo: number }, b: { hi: number; lo: number }): number {
  return a.hi !== b.hi ? (a.hi < b.hi ? -1 : 1) : a.lo !== b.lo ? (a.lo < b.lo ? -1 : 1) : 0;
}

/**
 * The snapshot a new crawl should diff against, brought up to date first: touch rows left since the last fold
 * (operations of a failed crawl that settled later, replayed dead letters) are folded in, so the crawl's diff and its
 * sweep see them. Never undefined: an empty snapshot is a ref with no blob. When no snapshot was ever written but the ledger has item rows (an upgrade from the ledger
 * without snapshots), or the current one's blob is gone, it is rebuilt from the ledger. Undefined = empty.
 */
export async function ensureSnapshot(
  deps: PipelineDeps,
  crawlId: string,
  options: OperationOptions = {},
): Promise<SnapshotRef> {
  const { state, connectionId, logger } = deps;
  let current = await state.snapshots.current(connectionId, options);
  if (!current || !(await state.snapshots.exists(current.ref, options))) {
    if (current)
      logger.warn('the snapshot blob is missing; rebuilding it from the ledger', {
        connectionId,
        blob: current.ref.blob,
      });
    await rebuildSnapshot(deps, options);
    current = await state.snapshots.current(connectionId, options);
  }
  const base = await state.snapshots.load(connectionId, current?.ref, options);
  const fold = await foldTouches(deps, base, current, { crawlId, ...options });
  const ref = fold?.ref ?? current?.ref;
  // An empty snapshot is pinned too (a ref with no blob): a crawl must fold once, at its first page. Folding again
  // at a later slice would fold this crawl's own settled operations, delete their touch rows (its counts) and move
  // the positions its seen bitmap refers to.
  return ref && ref.count > 0
    ? ref
    : { version: ref?.version ?? 0, blob: '', idsBlob: '', count: 0, createdAt: new Date(deps.now()).toISOString() };
}

/** What Graph holds for one item row, as a snapshot entry (undefined: nothing). */
function entryOfRow(row: LedgerItem): Entry | undefined {
  const k = itemKeyOf(row.itemId);
  const clean = !row.suspect && !row.fence && row.pendingCrawlId === undefined;
  if (row.state === 'deleted' && clean) return undefined;
  if (row.state === 'settled' && clean && row.hash)
    return { hi: k.hi, lo: k.lo, hash: hashKeyOf(row.hash), itemId: row.itemId };
  if (row.state === 'deadLettered' && clean) {
    // The failed write changed nothing: Graph holds what it held before (or nothing).
    return row.hash ? { hi: k.hi, lo: k.lo, hash: hashKeyOf(row.hash), itemId: row.itemId } : undefined;
  }
  // An operation in flight (or a suspect row): Graph may hold something; the crawl must ask the ledger.
  return { hi: k.hi, lo: k.lo, hash: UNKNOWN, itemId: row.itemId };
}

/** Build a snapshot from the ledger's item rows and make it current. */
export async function rebuildSnapshot(deps: PipelineDeps, options: OperationOptions = {}): Promise<SnapshotRef> {
  const { state, connectionId, logger } = deps;
  const pointer = await state.snapshots.current(connectionId, options);
  const writer = state.snapshots.writer(connectionId, (pointer?.ref.version ?? 0) + 1, options);
  // Rows of ledgers written before snapshots (v1) sit in other buckets than their keys' digests: gather those
  // whole; v2 rows stream bucket by bucket (a bucket's keys all share the digest's first byte).
  const legacy = new Map<string, { row: LedgerItem; entry: Entry | undefined }>();
  const current: Entry[][] = ALL_BUCKETS.map(() => []);
  let rows = 0;
  for await (const row of state.items.scanItems(connectionId, options)) {
    rows++;
    const entry = entryOfRow(row);
    if (row.version < 2) {
      legacy.set(itemKeyOf(row.itemId).key, { row, entry });
      continue;
    }
    if (entry) current[entry.hi >>> 24]!.push(entry);
  }
  // A v2 row wins over a v1 row of the same key.
  for (const list of current) for (const e of list) legacy.delete(itemKeyOf(e.itemId).key);
  for (const { entry } of legacy.values()) if (entry) current[entry.hi >>> 24]!.push(entry);
  for (const list of current) {
    list.sort(compare);
    for (const e of list) await writer.add(e.hi, e.lo, e.hash[0], e.hash[1], e.itemId);
  }
  const ref = await writer.finish();
  await state.snapshots.commit(connectionId, ref, pointer, options);
  logger.info('snapshot rebuilt from the ledger', { connectionId, items: ref.count, rows });
  return ref;
}

/** What the newest settled operation among an item's touch rows says Graph holds; `keep` = no change. */
function foldRows(rows: TouchRow[]): { update: Entry | 'remove' | 'keep'; inFlight: boolean } {
  rows.sort((a, b) => (a.crawlId === b.crawlId ? 0 : isNewerCrawl(a.crawlId, b.crawlId) ? -1 : 1));
  const newest = rows[0]!;
  const k = itemKeyOf(newest.itemId);
  if (newest.state === 'pending')
    return { update: { hi: k.hi, lo: k.lo, hash: UNKNOWN, itemId: newest.itemId }, inFlight: true };
  // The newest operation that changed Graph decides; dead letters and superseded operations changed nothing.
  for (const r of rows) {
    if (r.state === 'ingested')
      return {
        update: { hi: k.hi, lo: k.lo, hash: r.suspect ? UNKNOWN : hashKeyOf(r.hash), itemId: r.itemId },
        inFlight: false,
      };
    if (r.state === 'deleted') return { update: 'remove', inFlight: false };
    if (r.state === 'pending')
      return { update: { hi: k.hi, lo: k.lo, hash: UNKNOWN, itemId: r.itemId }, inFlight: true };
  }
  return { update: 'keep', inFlight: false };
}

export interface FoldResult {
  ref: SnapshotRef;
  /** Items whose entry changed (added, replaced, removed). */
  changed: number;
  /** Touch rows folded and deleted. */
  folded: number;
}

/**
 * Fold every touch row of the connection into a new snapshot based on `base`, make it current, and delete the folded
 * touch rows (rows of items still in flight stay for the next fold). Returns undefined when there was nothing to
 * fold (the current snapshot stands).
 */
export async function foldTouches(
  deps: PipelineDeps,
  base: Snapshot,
  expected: { ref: SnapshotRef; etag: string } | undefined,
  meta: { crawlId: string } & OperationOptions,
): Promise<FoldResult | undefined> {
  const { state, connectionId } = deps;
  const writer = state.snapshots.writer(connectionId, base.version + 1, meta);
  const baseIds = state.snapshots.ids(base, meta)[Symbol.asyncIterator]();
  let i = 0;
  let changed = 0;
  const foldable: TouchRow[] = [];
  let touched = 0;
  const emitBaseUntil = async (limit: { hi: number; lo: number } | undefined, w: SnapshotWriter) => {
    while (i < base.count && (!limit || compare({ hi: base.hi(i), lo: base.lo(i) }, limit) < 0)) {
      const id = await baseIds.next();
      if (id.done) throw new Error('internal: snapshot ids ended early');
      const h = base.hash(i);
      await w.add(base.hi(i), base.lo(i), h[0], h[1], id.value);
      i++;
    }
  };
  for (const b of ALL_BUCKETS) {
    const byKey = new Map<string, TouchRow[]>();
    for await (const t of state.items.touches(connectionId, {
      bucket: b,
      ...(meta.abortSignal ? { abortSignal: meta.abortSignal } : {}),
    })) {
      touched++;
      let l = byKey.get(t.key);
      if (!l) byKey.set(t.key, (l = []));
      l.push(t);
    }
    const updates: (Entry & { remove?: boolean })[] = [];
    for (const list of byKey.values()) {
      const { update, inFlight } = foldRows(list);
      if (!inFlight) foldable.push(...list);
      if (update === 'keep') continue;
      const k = itemKeyOf(list[0]!.itemId);
      updates.push(update === 'remove' ? { hi: k.hi, lo: k.lo, hash: UNKNOWN, itemId: '', remove: true } : update);
    }
    updates.sort(compare);
    for (const u of updates) {
      await emitBaseUntil(u, writer);
      const same = i < base.count && base.hi(i) === u.hi && base.lo(i) === u.lo;
      if (same) {
        const id = await baseIds.next();
        if (id.done) throw new Error('internal: snapshot ids ended early');
        const h = base.hash(i);
        i++;
        if (u.remove) {
          changed++;
          continue;
        }
        if (h[0] !== u.hash[0] || h[1] !== u.hash[1] || id.value !== u.itemId) changed++;
        await writer.add(u.hi, u.lo, u.hash[0], u.hash[1], u.itemId);
        continue;
      }
      if (u.remove) continue;
      changed++;
      await writer.add(u.hi, u.lo, u.hash[0], u.hash[1], u.itemId);
    }
  }
  if (touched === 0) {
    await baseIds.return?.(undefined);
    return undefined;
  }
  await emitBaseUntil(undefined, writer);
  const ref = await writer.finish();
  await state.snapshots.commit(connectionId, ref, expected, meta);
  const folded = await state.items.deleteTouches(foldable, meta);
  return { ref, changed, folded };
}
