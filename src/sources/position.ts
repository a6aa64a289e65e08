/**
 * What every source does with positions: stamp them (format version, source type, a fingerprint of the definition
 * that wrote them), check a position handed back before resuming from it, and cut a stream of records into pages
 * that end only where a resume can start.
 */
import { createHash } from 'node:crypto';
import type { SourcePage, SourcePosition, SourceProgress, SourceRecord } from './types.js';
import { MAX_POSITION_BYTES, SourceError } from './types.js';

export const DEFAULT_PAGE_SIZE = 1000;
/** The position format written by this version. A change that old positions cannot follow bumps it. */
export const POSITION_VERSION = 1;

/** Object keys sorted at every level, so equal definitions give equal fingerprints. */
function canonical(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(canonical);
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(
      Object.keys(value)
        .sort()
        .map((k) => [k, canonical((value as Record<string, unknown>)[k])]),
    );
  }
  return value;
}

/**
 * A short fingerprint of the definition fields that decide which records a read yields, where, and under which
 * keys (each source picks them; settings such as retries or timeouts stay out, so changing them does not throw a
 * crawl's progress away): a position written under another definition is refused instead of being applied to the
 * wrong data.
 */
export function definitionFingerprint(fields: Record<string, unknown>): string {
  return createHash('sha256')
    .update(JSON.stringify(canonical(fields)))
    .digest('base64url')
    .slice(0, 16);
}

export interface PositionStamp {
  /** The source type (`csv`, `rest`, ...). */
  source: string;
  /** {@link definitionFingerprint} of the definition. */
  def: string;
}

/** A position: the stamp plus the source's own state. Fails when it would not fit the store. */
export function makePosition(stamp: PositionStamp, state: Record<string, unknown>): SourcePosition {
  const position = { v: POSITION_VERSION, source: stamp.source, def: stamp.def, ...state };
  const size = Buffer.byteLength(JSON.stringify(position));
  if (size > MAX_POSITION_BYTES) {
    throw new SourceError(
      'SourcePosition',
      `the ${stamp.source} source's position is ${size} bytes, above the ${MAX_POSITION_BYTES}-byte limit ` +
        '(a very long next-page link?); page with page numbers or offsets instead (source.paging)',
    );
  }
  return position;
}

/**
 * Check that a position handed back was written by this source and definition; returns it for the source to read
 * its own fields. `what` names the source in the error (`source data.csv`).
 */
export function checkPosition(position: SourcePosition, stamp: PositionStamp, what: string): SourcePosition {
  if (position === null || typeof position !== 'object' || Array.isArray(position)) {
    throw new SourceError('SourcePosition', `${what}: the saved position is not an object; start a new crawl`);
  }
  if (position.v !== POSITION_VERSION) {
    throw new SourceError(
      'SourcePosition',
      `${what}: the saved position has format ${JSON.stringify(position.v)}, this version reads ${POSITION_VERSION}; start a new crawl`,
    );
  }
  if (position.source !== stamp.source) {
    throw new SourceError(
      'SourcePosition',
      `${what}: the saved position belongs to a ${JSON.stringify(position.source)} source, not ${stamp.source}; start a new crawl`,
    );
  }
  if (position.def !== stamp.def) {
    throw new SourceError(
      'SourcePosition',
      `${what}: the source definition changed since the crawl saved its position; start a new crawl`,
    );
  }
  return position;
}

/** A field of a position that must be a non-negative integer. */
export function positionInt(position: SourcePosition, key: string, what: string): number {
  const v = position[key];
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
    throw new SourceError('SourcePosition', `${what}: the saved position has no valid "${key}"; start a new crawl`);
  }
  return v;
}

/** One record from a reader, with the state to resume after it when a page may end there. */
export interface Entry<S> {
  record: SourceRecord;
  /** Undefined when no resume can start right after this record (a malformed CSV row). */
  after?: S;
}

export interface PagerOptions<S> {
  pageSize: number;
  /** Checked before each page: a cancelled read stops at a page boundary even when the next page is buffered. */
  abortSignal?: AbortSignal;
  position: (state: S) => SourcePosition;
  /** Progress after `state`; `undefined` = at the end of the read. */
  progress: (state: S | undefined) => SourceProgress | undefined;
}

/**
 * Cut entries into pages of `pageSize` records, each ending after an entry that can be resumed from (so a page may
 * run past `pageSize` while no such entry comes). The last page (possibly empty) has `next: undefined`.
 */
export async function* pagesOf<S>(
  entries: AsyncIterable<Entry<S>>,
  options: PagerOptions<S>,
): AsyncGenerator<SourcePage> {
  const size = Math.max(1, Math.floor(options.pageSize));
  let records: SourceRecord[] = [];
  for await (const entry of entries) {
    records.push(entry.record);
    if (records.length >= size && entry.after !== undefined) {
      if (options.abortSignal?.aborted)
        throw new SourceError('SourceAborted', 'read aborted', { cause: options.abortSignal.reason });
      const page: SourcePage = { records, next: options.position(entry.after) };
      const progress = options.progress(entry.after);
      if (progress) page.progress = progress;
      records = [];
      yield page;
    }
  }
  const last: SourcePage = { records, next: undefined };
  const progress = options.progress(undefined);
  if (progress) last.progress = progress;
  yield last;
}

/** Every record of a paged read, in order. */
export async function* recordsOf(pages: AsyncIterable<SourcePage>): AsyncGenerator<SourceRecord> {
  for await (const page of pages) yield* page.records;
}
