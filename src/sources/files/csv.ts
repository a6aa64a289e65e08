/**
 * CSV with a header row (csv-parse). Rows with the wrong number of fields or bad quoting become error records.
 * csv-parse reports the byte offset right after each record it emits (`info.bytes`, line break included): that is
 * a record boundary even when quoted fields hold line breaks, so a resumed read starts a fresh parser there, with
 * the header's columns given and the line count carried on.
 */
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { CsvError, Info } from 'csv-parse';
import { parse } from 'csv-parse';
import type { Entry } from '../position.js';
import { keyOf } from '../shared/records.js';
import type { SourceRecord } from '../types.js';
import { SourceError } from '../types.js';
import type { FileEncoding } from './definition.js';
import type { FileState } from './state.js';
import { MAX_RECORD_BYTES } from './state.js';

export interface CsvOptions {
  encoding: FileEncoding;
  keyField: string | undefined;
  delimiter: string;
  quote: string;
  where: string;
}

type ParsedRow = { record: Record<string, string>; info: Info & { columns?: unknown } };
/** A row csv-parse skipped, pushed into its output where it was found (so rows stay in file order). */
type SkippedRow = { skipped: (CsvError & { bytes?: unknown; columns?: unknown }) | undefined };

/** Errors csv-parse raises at the end of a row (its `bytes` is then a row boundary); others come mid-row. */
const AT_ROW_END = new Set(['CSV_RECORD_INCONSISTENT_FIELDS_LENGTH', 'CSV_RECORD_INCONSISTENT_COLUMNS']);

export async function* csvEntries(
  chunks: AsyncIterable<Buffer>,
  start: FileState,
  options: CsvOptions,
): AsyncGenerator<Entry<FileState>> {
  const resumed = start.header !== undefined;
  let header = start.header;
  const lineBase = start.line;
  // csv-parse counts lines from the parser's first byte: shift its numbers by the lines before the resume point.
  const absolute = (message: string) =>
    message.replace(/\b(on|at) line (\d+)/g, (_, w: string, n: string) => `${w} line ${lineBase + Number(n)}`);
  const parser = parse({
    columns: resumed ? header : true,
    bom: !resumed,
    delimiter: options.delimiter,
    quote: options.quote,
    encoding: options.encoding,
    skip_empty_lines: true,
    skip_records_with_error: true,
    max_record_size: MAX_RECORD_BYTES,
    info: true,
    on_skip: (err: CsvError | undefined) => {
      // Called while csv-parse transforms a chunk, between the pushes of the rows around it.
      parser.push({ skipped: err } satisfies SkippedRow);
      return undefined;
    },
  });
  const feeding = pipeline(Readable.from(chunks, { objectMode: false }), parser).catch(() => {
    // The parser's iteration below reports the failure (pipeline destroys it with the same error).
  });
  try {
    for await (const row of parser as AsyncIterable<ParsedRow | SkippedRow>) {
      if ('skipped' in row) {
        const err = row.skipped;
        const rel = typeof err?.lines === 'number' ? err.lines : undefined;
        const line = rel !== undefined ? lineBase + rel : undefined;
        const position = line !== undefined ? `line ${line}` : `record after line ${lineBase}`;
        const why = err?.message ? absolute(err.message) : 'malformed CSV record';
        const record: SourceRecord = { key: position, position, error: `${position}: ${why}` };
        header ??= err?.columns !== undefined ? columnNames(err.columns) : undefined;
        const end = err && AT_ROW_END.has(err.code) && typeof err.bytes === 'number' ? err.bytes : undefined;
        if (end !== undefined && line !== undefined && header) {
          yield { record, after: { offset: start.offset + end, line, header } };
        } else {
          yield { record };
        }
        continue;
      }
      header ??= columnNames(row.info.columns);
      const line = lineBase + row.info.lines;
      const position = `line ${line}`;
      yield {
        record: { key: keyOf(row.record, options.keyField, position), data: row.record, position },
        after: { offset: start.offset + row.info.bytes, line, header },
      };
    }
    await feeding;
  } catch (e) {
    if (e instanceof SourceError) throw e;
    const err = e as { code?: string; message?: string };
    if (typeof err?.code === 'string' && err.code.startsWith('CSV_')) {
      throw new SourceError(
        'SourceParse',
        `${options.where}: ${absolute(err.message ?? err.code)} (fix the CSV header or source.delimiter)`,
        { cause: e },
      );
    }
    throw e;
  } finally {
    parser.destroy();
  }
}

function columnNames(columns: unknown): string[] {
  if (!Array.isArray(columns)) return [];
  return columns.map((c: unknown) => {
    const name = typeof c === 'string' ? c : (c as { name?: unknown } | null)?.name;
    return typeof name === 'string' ? name : '';
  });
}
