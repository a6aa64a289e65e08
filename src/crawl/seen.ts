/**
 * A crawl's seen bitmap: one bit per snapshot entry, set when the crawl read a record of that item. The checkpoint
 * carries the positions set since the last full bitmap (a blob); past a few thousand, the whole bitmap is written.
 */
import type { OperationOptions } from '../core/async.js';
import type { Checkpoint } from '../state/jobs.js';
import { setBit, type Snapshot } from '../state/snapshot.js';
import type { PipelineDeps } from './deps.js';

/** Snapshot positions a checkpoint row carries before the whole bitmap is written to a blob. */
const MAX_DELTA_POSITIONS = 15_000;

/** The seen bitmap as of the checkpoint: the last full bitmap, plus the positions committed since. */
export async function restoreSeen(
  deps: PipelineDeps,
  snapshot: Snapshot,
  cp: Checkpoint,
  options: OperationOptions,
): Promise<Uint8Array> {
  const size = Math.ceil(snapshot.count / 8);
  const bits = cp.seenBlob ? await deps.state.snapshots.loadSeen(cp.seenBlob, size, options) : new Uint8Array(size);
  if (cp.seenDelta) {
    const d = cp.seenDelta;
    const view = new DataView(d.buffer, d.byteOffset, d.byteLength);
    for (let o = 0; o + 4 <= d.byteLength; o += 4) setBit(bits, view.getUint32(o, true));
  }
  return bits;
}

/** Put this page's seen positions into the checkpoint: as a delta, or (when the delta is full) as a new bitmap. */
export async function persistSeen(
  deps: PipelineDeps,
  crawlId: string,
  seen: Uint8Array,
  next: Checkpoint,
  positions: number[],
  options: OperationOptions,
): Promise<void> {
  if (!positions.length) return;
  const had = next.seenDelta ? next.seenDelta.byteLength / 4 : 0;
  if (had + positions.length > MAX_DELTA_POSITIONS) {
    const name = deps.state.snapshots.seenBlob(deps.connectionId, crawlId, next.pages);
    await deps.state.snapshots.saveSeen(name, seen, options);
    next.seenBlob = name;
    delete next.seenDelta;
    return;
  }
  const buf = new Uint8Array((had + positions.length) * 4);
  if (next.seenDelta) buf.set(next.seenDelta, 0);
  const view = new DataView(buf.buffer);
  positions.forEach((p, j) => view.setUint32((had + j) * 4, p, true));
  next.seenDelta = buf;
}
