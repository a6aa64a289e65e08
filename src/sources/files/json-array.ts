/**
 * JSON array files, streamed element by element: a small splitter tracks strings, escapes and nesting on the
 * bytes (the structural characters are ASCII, so UTF-8 and Latin-1 are scanned byte by byte and UTF-16LE unit by
 * unit), and never passes the whole document to JSON.parse. Between two elements its whole state is "before the
 * next element, n read" (or "after the closing bracket"), which is what a position stores.
 */
import type { Entry } from '../position.js';
import { recordFromJson } from '../shared/records.js';
import { SourceError } from '../types.js';
import type { FileEncoding } from './definition.js';
import type { FileState } from './state.js';
import { MAX_RECORD_BYTES } from './state.js';

/** Raised by the splitter on a structural problem (not an array, truncated, trailing garbage). */
export class SplitError extends Error {
  override name = 'SplitError';
}

export interface SplitState {
  state: 'start' | 'before' | 'after';
  /** Elements read so far. */
  count: number;
  /** Absolute byte offset of the first chunk. */
  offset: number;
}

export interface SplitElement {
  bytes: Buffer;
  /** 1-based element number. */
  count: number;
  /** Absolute byte offset right after the comma or bracket that ended the element. */
  end: number;
  /** Where the splitter is after it. */
  state: 'before' | 'after';
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const BOM_UNIT = 0xfeff;
const UTF8_BOM = new Set([0xef, 0xbb, 0xbf]);

const isSpace = (c: number) => c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
const shown = (c: number) => (c < 0x80 ? String.fromCharCode(c) : `\\u${c.toString(16).padStart(4, '0')}`);

/**
 * Split a streamed top-level JSON array into its elements' bytes. Throws {@link SplitError} when the document is
 * not a complete array.
 */
export async function* splitJsonArrayBytes(
  chunks: AsyncIterable<Buffer>,
  init: SplitState = { state: 'start', count: 0, offset: 0 },
  options: { wide?: boolean; maxElementBytes?: number } = {},
): AsyncGenerator<SplitElement> {
  const wide = options.wide === true;
  const step = wide ? 2 : 1;
  const max = options.maxElementBytes ?? MAX_RECORD_BYTES;
  let state: SplitState['state'] | 'in' = init.state;
  let count = init.count;
  let base = init.offset;
  let carry: Buffer[] = [];
  let carryLength = 0;
  let depth = 0;
  let inString = false;
  let escaped = false;
  let odd: Buffer | undefined;
  for await (let chunk of chunks) {
    if (wide) {
      if (odd) {
        chunk = Buffer.concat([odd, chunk]);
        odd = undefined;
      }
      if (chunk.length & 1) {
        odd = chunk.subarray(chunk.length - 1);
        chunk = chunk.subarray(0, chunk.length - 1);
      }
    }
    let start = state === 'in' ? 0 : -1;
    for (let i = 0; i < chunk.length; i += step) {
      const c = wide ? chunk[i]! | (chunk[i + 1]! << 8) : chunk[i]!;
      if (state === 'in') {
        if (inString) {
          if (escaped) escaped = false;
          else if (c === BACKSLASH) escaped = true;
          else if (c === QUOTE) inString = false;
          continue;
        }
        if (c === QUOTE) inString = true;
        else if (c === OPEN_BRACE || c === OPEN_BRACKET) depth++;
        else if ((c === CLOSE_BRACE || c === CLOSE_BRACKET) && depth > 0) depth--;
        else if (depth === 0 && (c === COMMA || c === CLOSE_BRACKET)) {
          const piece = chunk.subarray(start, i);
          const bytes = carryLength ? Buffer.concat([...carry, piece]) : piece;
          carry = [];
          carryLength = 0;
          count++;
          state = c === COMMA ? 'before' : 'after';
          start = -1;
          yield { bytes, count, end: base + i + step, state };
        }
        continue;
      }
      if (isSpace(c)) continue;
      if (state === 'start') {
        if (wide ? c === BOM_UNIT : UTF8_BOM.has(c)) continue;
        if (c !== OPEN_BRACKET)
          throw new SplitError(`expected "[" at the start of a JSON array file, found "${shown(c)}"`);
        state = 'before';
      } else if (state === 'before') {
        if (c === CLOSE_BRACKET && count === 0) {
          state = 'after';
          continue;
        }
        state = 'in';
        depth = 0;
        inString = false;
        escaped = false;
        start = i;
        i -= step; // scan this character again in the element state
      } else {
        throw new SplitError(`unexpected "${shown(c)}" after the end of the JSON array`);
      }
    }
    if (state === 'in') {
      carry.push(chunk.subarray(start));
      carryLength += chunk.length - start;
      if (carryLength > max) throw new SplitError(`element ${count + 1} is larger than ${max} bytes`);
    }
    base += chunk.length;
  }
  if (state !== 'after') {
    throw new SplitError(
      state === 'start'
        ? 'the file is empty (expected a JSON array)'
        : `the JSON array ends early after ${count} elements (truncated file?)`,
    );
  }
}

/** The elements of a streamed JSON array as text (UTF-8 bytes or strings in). */
export async function* splitJsonArray(chunks: AsyncIterable<Buffer | string>): AsyncGenerator<string> {
  async function* bytes() {
    for await (const c of chunks) yield typeof c === 'string' ? Buffer.from(c) : c;
  }
  for await (const e of splitJsonArrayBytes(bytes())) yield e.bytes.toString('utf8');
}

export async function* jsonArrayEntries(
  chunks: AsyncIterable<Buffer>,
  start: FileState,
  options: { encoding: FileEncoding; keyField: string | undefined; where: string },
): AsyncGenerator<Entry<FileState>> {
  const init: SplitState = { state: start.array ?? 'start', count: start.count ?? 0, offset: start.offset };
  try {
    for await (const e of splitJsonArrayBytes(chunks, init, { wide: options.encoding === 'utf16le' })) {
      const position = `element ${e.count}`;
      const text = e.bytes.toString(options.encoding);
      const record =
        text.trim() === ''
          ? { key: position, position, error: `${position}: empty array element` }
          : recordFromJson(text, position, options.keyField);
      yield { record, after: { offset: e.end, line: 0, count: e.count, array: e.state } };
    }
  } catch (e) {
    if (e instanceof SplitError)
      throw new SourceError('SourceTruncated', `${options.where}: ${e.message}`, { cause: e });
    throw e;
  }
}
