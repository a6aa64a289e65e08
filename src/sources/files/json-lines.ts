/**
 * JSON lines: one JSON object per line; blank lines skipped; a bad line becomes an error record. Lines are split
 * on the bytes (`\n`, or `\n\0` in UTF-16LE), so the offset after every line is exact and a read resumes there.
 */
import type { Entry } from '../position.js';
import { recordFromJson } from '../shared/records.js';
import { SourceError } from '../types.js';
import type { FileEncoding } from './definition.js';
import type { FileState } from './state.js';
import { MAX_RECORD_BYTES } from './state.js';

/** Index of the next line feed at or after `from`; in UTF-16LE a `0A 00` unit at an even index. */
function nextLineFeed(chunk: Buffer, from: number, wide: boolean): number {
  if (!wide) return chunk.indexOf(0x0a, from);
  for (let i = chunk.indexOf(0x0a, from); i >= 0; i = chunk.indexOf(0x0a, i + 1)) {
    if ((i & 1) === 0 && chunk[i + 1] === 0) return i;
  }
  return -1;
}

export async function* jsonLinesEntries(
  chunks: AsyncIterable<Buffer>,
  start: FileState,
  options: { encoding: FileEncoding; keyField: string | undefined; where: string },
): AsyncGenerator<Entry<FileState>> {
  const wide = options.encoding === 'utf16le';
  const lf = wide ? 2 : 1;
  const fromFileStart = start.offset === 0;
  let offset = start.offset;
  let line = start.line;
  let pending: Buffer[] = [];
  let pendingLength = 0;
  let odd: Buffer | undefined;

  const entry = (bytes: Buffer): Entry<FileState> | undefined => {
    let text = bytes.toString(options.encoding);
    if (text.endsWith('\r')) text = text.slice(0, -1);
    if (line === 1 && fromFileStart && text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    if (text.trim() === '') return undefined;
    return { record: recordFromJson(text, `line ${line}`, options.keyField), after: { offset, line } };
  };

  for await (let chunk of chunks) {
    if (wide) {
      // Keep chunks a whole number of UTF-16 units, so a line feed is always at an even index.
      if (odd) {
        chunk = Buffer.concat([odd, chunk]);
        odd = undefined;
      }
      if (chunk.length & 1) {
        odd = chunk.subarray(chunk.length - 1);
        chunk = chunk.subarray(0, chunk.length - 1);
      }
    }
    let from = 0;
    for (let i = nextLineFeed(chunk, from, wide); i >= 0; i = nextLineFeed(chunk, from, wide)) {
      const piece = chunk.subarray(from, i);
      const bytes = pendingLength ? Buffer.concat([...pending, piece]) : piece;
      pending = [];
      pendingLength = 0;
      offset += bytes.length + lf;
      line++;
      from = i + lf;
      const e = entry(bytes);
      if (e) yield e;
    }
    if (from < chunk.length) {
      pending.push(chunk.subarray(from));
      pendingLength += chunk.length - from;
      if (pendingLength > MAX_RECORD_BYTES) {
        throw new SourceError(
          'SourceParse',
          `${options.where}: line ${line + 1} is longer than ${MAX_RECORD_BYTES} bytes (is this a JSON lines file?)`,
        );
      }
    }
  }
  if (odd) {
    pending.push(odd);
    pendingLength += odd.length;
  }
  if (pendingLength) {
    // The last line has no line feed.
    const bytes = Buffer.concat(pending);
    offset += bytes.length;
    line++;
    const e = entry(bytes);
    if (e) yield e;
  }
}
