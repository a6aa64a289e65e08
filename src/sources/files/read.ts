/**
 * The paged, resumable read of one file, URL or blob, shared by the file sources and groups files. A position is
 * the byte offset after the page's last complete record, with the line number, the CSV header or the JSON array's
 * element count, and the input's identity.
 */
import type { Entry, PositionStamp } from '../position.js';
import { checkPosition, DEFAULT_PAGE_SIZE, makePosition, pagesOf, positionInt } from '../position.js';
import type { PagedReadOptions, SourceDeps, SourcePage, SourcePosition, SourceRecord } from '../types.js';
import { abortSignalOf, SourceError } from '../types.js';
import { csvEntries } from './csv.js';
import type { FileEncoding, FileSourceType } from './definition.js';
import type { InputIdentity, InputRef, OpenedInput } from './inputs.js';
import { describeInput, openInput } from './inputs.js';
import { jsonArrayEntries } from './json-array.js';
import { jsonLinesEntries } from './json-lines.js';
import type { FileState } from './state.js';

/** What to read and how: the input and the format's settings. */
export interface FileReadSpec extends InputRef {
  format: FileSourceType;
  encoding?: FileEncoding;
  keyField?: string;
  delimiter?: string;
  quote?: string;
}

function isIdentity(v: unknown): v is InputIdentity {
  const o = v as Record<string, unknown> | null;
  return !!o && typeof o === 'object' && (o.kind === 'path' || o.kind === 'url' || o.kind === 'blob');
}

/** The state and identity stored in a position (already checked to be this source's). */
function stateOf(p: SourcePosition, format: FileSourceType, where: string): { state: FileState; file: InputIdentity } {
  const state: FileState = { offset: positionInt(p, 'offset', where), line: 0 };
  if (format !== 'jsonArray') state.line = positionInt(p, 'line', where);
  if (format === 'csv') {
    if (!Array.isArray(p.header) || !p.header.every((h) => typeof h === 'string')) {
      throw new SourceError('SourcePosition', `${where}: the saved position has no CSV header; start a new crawl`);
    }
    state.header = p.header;
  }
  if (format === 'jsonArray') {
    state.count = positionInt(p, 'count', where);
    if (p.array !== 'before' && p.array !== 'after') {
      throw new SourceError('SourcePosition', `${where}: the saved position has no array state; start a new crawl`);
    }
    state.array = p.array;
  }
  if (!isIdentity(p.file)) {
    throw new SourceError(
      'SourcePosition',
      `${where}: the saved position does not identify the file; start a new crawl`,
    );
  }
  return { state, file: p.file };
}

/** Open the input at the position (checked to be this source's) and parse it into entries. */
async function open(
  spec: FileReadSpec,
  stamp: PositionStamp,
  deps: SourceDeps,
  options: PagedReadOptions,
): Promise<{ input: OpenedInput; entries: AsyncIterable<Entry<FileState>> }> {
  const where = describeInput(spec, deps);
  let start: FileState = { offset: 0, line: 0 };
  let expected: InputIdentity | undefined;
  if (options.position) {
    const saved = stateOf(checkPosition(options.position, stamp, where), spec.format, where);
    start = saved.state;
    expected = saved.file;
  }
  const abortSignal = abortSignalOf(options);
  const input = await openInput(spec, deps, { start: start.offset, ...(expected ? { expected } : {}), abortSignal });
  const format = { encoding: spec.encoding ?? 'utf8', keyField: spec.keyField, where: input.where } as const;
  const entries: AsyncIterable<Entry<FileState>> =
    spec.format === 'csv'
      ? csvEntries(input.chunks, start, { ...format, delimiter: spec.delimiter ?? ',', quote: spec.quote ?? '"' })
      : spec.format === 'jsonArray'
        ? jsonArrayEntries(input.chunks, start, format)
        : jsonLinesEntries(input.chunks, start, format);
  return { input, entries };
}

/**
 * The paged read of one file, URL or blob. `stamp` marks its positions (the source type and its definition's
 * fingerprint); a position from elsewhere is refused.
 */
export async function* readFilePages(
  spec: FileReadSpec,
  stamp: PositionStamp,
  deps: SourceDeps,
  options: PagedReadOptions = {},
): AsyncGenerator<SourcePage> {
  const { input, entries } = await open(spec, stamp, deps, options);
  try {
    const total = input.size;
    yield* pagesOf(entries, {
      pageSize: options.pageSize ?? DEFAULT_PAGE_SIZE,
      abortSignal: abortSignalOf(options),
      position: (s) => makePosition(stamp, { ...s, file: input.identity }),
      progress: (s) => ({
        done: s ? s.offset : (total ?? input.reached),
        ...(total !== undefined ? { total } : {}),
        unit: 'bytes',
      }),
    });
  } finally {
    input.close();
  }
}

/** The records of {@link readFilePages}, each as soon as it is parsed (a failure comes after the good records). */
export async function* readFileRecords(
  spec: FileReadSpec,
  stamp: PositionStamp,
  deps: SourceDeps,
  options: PagedReadOptions = {},
): AsyncGenerator<SourceRecord> {
  const { input, entries } = await open(spec, stamp, deps, options);
  try {
    for await (const entry of entries) yield entry.record;
  } finally {
    input.close();
  }
}
