/**
 * Where a file source stands after a record: what a position stores besides the input's identity.
 */

/** The reader's state right after a record: a resume starts reading at `offset` with the rest of it restored. */
export interface FileState {
  /** Byte offset right after the record (and its line break or comma). */
  offset: number;
  /** Lines consumed up to `offset` (JSON lines, CSV): the next line is `line + 1`. */
  line: number;
  /** CSV: the header's column names (a resumed read does not see the header row). */
  header?: string[];
  /** JSON array: elements consumed so far. */
  count?: number;
  /** JSON array: `before` another element (after a comma), or `after` the closing bracket. */
  array?: 'before' | 'after';
}

/** Records longer than this fail the read rather than the process (a missing line break or quote). */
export const MAX_RECORD_BYTES = 64 * 1024 * 1024;
