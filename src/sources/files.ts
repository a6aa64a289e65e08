/**
 * Streaming file readers: JSON lines, JSON array (with a small streaming splitter) and CSV.
 * Input is a local file or an http(s) URL, read chunk by chunk.
 */
import { createReadStream } from 'node:fs';
import { resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { Readable } from 'node:stream';
import { parse } from 'csv-parse';
import type { FileSourceDefinition } from '../config/source-definition.js';
import { requestWithRetry } from './http.js';
import type { ReadOptions, SourceDeps, SourceRecord } from './types.js';
import { displayUrl, SourceError } from './types.js';

export interface InputRef {
  path?: string;
  url?: string;
  encoding?: BufferEncoding;
}

/** Open a file or URL as a byte stream. */
export async function openInput(ref: InputRef, deps: SourceDeps, signal?: AbortSignal): Promise<Readable> {
  if (ref.path !== undefined) {
    const file = resolve(deps.baseDir, ref.path);
    const stream = createReadStream(file, { signal });
    // Surface "file not found" as a SourceError before the first read.
    await new Promise<void>((ok, fail) => {
      stream.once('open', () => ok());
      stream.once('error', (e: NodeJS.ErrnoException) =>
        fail(
          new SourceError(
            'config',
            `cannot open source file ${file}: ${e.code ?? e.message}; check source.path (relative to connector.json)`,
            { cause: e },
          ),
        ),
      );
    });
    return stream;
  }
  if (ref.url !== undefined) {
    const res = await requestWithRetry(ref.url, { method: 'GET' }, { deps, signal });
    if (!res.body)
      throw new SourceError('http', `empty response body from ${displayUrl(ref.url)}`, { url: displayUrl(ref.url) });
    return Readable.fromWeb(res.body);
  }
  throw new SourceError('config', 'the source needs a path or a url');
}

function keyOf(data: Record<string, unknown>, keyField: string | undefined, fallback: string): string {
  if (!keyField) return fallback;
  let v: unknown = data;
  if (Object.prototype.hasOwnProperty.call(data, keyField)) v = data[keyField];
  else
    for (const seg of keyField.split('.'))
      v = v && typeof v === 'object' ? (v as Record<string, unknown>)[seg] : undefined;
  return typeof v === 'string' || typeof v === 'number' ? String(v) : fallback;
}

const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

function wrapStreamError(e: unknown, what: string): never {
  if (e instanceof SourceError) throw e;
  const err = e as NodeJS.ErrnoException;
  if (err?.name === 'AbortError') throw new SourceError('aborted', `${what}: read aborted`, { cause: e });
  throw new SourceError('truncated', `${what}: the stream failed mid-way (${err?.message ?? String(e)})`, { cause: e });
}

/** JSON lines: one JSON object per line; blank lines skipped; a bad line becomes an error record. */
export async function* readJsonLines(
  def: Pick<FileSourceDefinition, 'path' | 'url' | 'encoding' | 'keyField'>,
  deps: SourceDeps,
  options: ReadOptions = {},
): AsyncGenerator<SourceRecord> {
  const input = await openInput(def, deps, options.signal);
  input.setEncoding(def.encoding ?? 'utf8');
  const lines = createInterface({ input, crlfDelay: Infinity });
  let n = 0;
  try {
    for await (let line of lines) {
      n++;
      if (n === 1 && line.charCodeAt(0) === 0xfeff) line = line.slice(1);
      if (line.trim() === '') continue;
      const position = `line ${n}`;
      yield recordFromJson(line, position, def.keyField);
    }
  } catch (e) {
    wrapStreamError(e, `reading ${def.path ?? displayUrl(def.url ?? '')}`);
  } finally {
    lines.close();
    input.destroy();
  }
}

/** Raised by the splitter on a structural problem (not an array, truncated, trailing garbage). */
class SplitError extends Error {}

/**
 * Split a streamed top-level JSON array into the JSON text of its elements, without parsing the whole document.
 * Tracks strings/escapes and nesting depth; throws SplitError when the document is not a complete array.
 */
export async function* splitJsonArray(
  chunks: AsyncIterable<string>,
  maxElementChars = 64 * 1024 * 1024,
): AsyncGenerator<string> {
  let state: 'start' | 'before' | 'in' | 'after' = 'start';
  let carry = '';
  let depth = 0;
  let inString = false;
  let escaped = false;
  let count = 0;
  for await (const chunk of chunks) {
    let start = state === 'in' ? 0 : -1;
    for (let i = 0; i < chunk.length; i++) {
      const c = chunk[i]!;
      if (state === 'in') {
        if (inString) {
          if (escaped) escaped = false;
          else if (c === '\\') escaped = true;
          else if (c === '"') inString = false;
          continue;
        }
        if (c === '"') inString = true;
        else if (c === '{' || c === '[') depth++;
        else if ((c === '}' || c === ']') && depth > 0) depth--;
        else if (depth === 0 && (c === ',' || c === ']')) {
          const text = carry + chunk.slice(start, i);
          carry = '';
          count++;
          yield text;
          state = c === ',' ? 'before' : 'after';
          start = -1;
        }
        continue;
      }
      if (c === ' ' || c === '\n' || c === '\r' || c === '\t' || c === '\ufeff') continue;
      if (state === 'start') {
        if (c !== '[') throw new SplitError(`expected "[" at the start of a JSON array file, found "${c}"`);
        state = 'before';
      } else if (state === 'before') {
        if (c === ']' && count === 0) {
          state = 'after';
          continue;
        }
        state = 'in';
        depth = 0;
        inString = false;
        escaped = false;
        start = i;
        i--; // re-scan this character in the element state
      } else {
        throw new SplitError(`unexpected "${c}" after the end of the JSON array`);
      }
    }
    if (state === 'in') {
      carry += chunk.slice(start);
      if (carry.length > maxElementChars)
        throw new SplitError(`element ${count + 1} is larger than ${maxElementChars} characters`);
    }
  }
  if ((state as string) !== 'after') {
    throw new SplitError(
      state === 'start'
        ? 'the file is empty (expected a JSON array)'
        : `the JSON array ends early after ${count} elements (truncated file?)`,
    );
  }
}

/** JSON array file: streamed element by element. A bad element becomes an error record; a broken array fails. */
export async function* readJsonArray(
  def: Pick<FileSourceDefinition, 'path' | 'url' | 'encoding' | 'keyField'>,
  deps: SourceDeps,
  options: ReadOptions = {},
): AsyncGenerator<SourceRecord> {
  const input = await openInput(def, deps, options.signal);
  input.setEncoding(def.encoding ?? 'utf8');
  const where = def.path ?? displayUrl(def.url ?? '');
  let n = 0;
  try {
    for await (const text of splitJsonArray(input as AsyncIterable<string>)) {
      n++;
      const position = `element ${n}`;
      if (text.trim() === '') {
        yield { key: position, position, error: `${position}: empty array element` };
        continue;
      }
      yield recordFromJson(text, position, def.keyField);
    }
  } catch (e) {
    if (e instanceof SplitError) throw new SourceError('truncated', `${where}: ${e.message}`, { cause: e });
    wrapStreamError(e, `reading ${where}`);
  } finally {
    input.destroy();
  }
}

const lineOf = (r: SourceRecord) => Number(/^line (\d+)$/.exec(r.position ?? '')?.[1] ?? 0);

/** CSV with a header row. Records with the wrong number of fields or bad quoting become error records. */
export async function* readCsv(
  def: FileSourceDefinition,
  deps: SourceDeps,
  options: ReadOptions = {},
): AsyncGenerator<SourceRecord> {
  const input = await openInput(def, deps, options.signal);
  const where = def.path ?? displayUrl(def.url ?? '');
  const skipped: SourceRecord[] = [];
  const parser = parse({
    columns: true,
    bom: true,
    delimiter: def.delimiter ?? ',',
    quote: def.quote ?? '"',
    encoding: def.encoding ?? 'utf8',
    skip_empty_lines: true,
    skip_records_with_error: true,
    info: true,
    on_skip: (err) => {
      const line = typeof err?.lines === 'number' ? err.lines : undefined;
      const position = line !== undefined ? `line ${line}` : `record ${skipped.length + 1}`;
      skipped.push({ key: position, position, error: `${position}: ${err?.message ?? 'malformed CSV record'}` });
      return undefined;
    },
  });
  input.on('error', (e) => parser.destroy(e));
  input.pipe(parser);
  try {
    for await (const entry of parser as AsyncIterable<{ record: Record<string, string>; info: { lines: number } }>) {
      // Keep file order: report skipped rows that came before this record first.
      while (skipped.length && lineOf(skipped[0]!) < entry.info.lines) yield skipped.shift()!;
      const position = `line ${entry.info.lines}`;
      yield { key: keyOf(entry.record, def.keyField, position), data: entry.record, position };
    }
    while (skipped.length) yield skipped.shift()!;
  } catch (e) {
    const err = e as { code?: string; message?: string };
    if (typeof err?.code === 'string' && err.code.startsWith('CSV_')) {
      throw new SourceError('parse', `${where}: ${err.message} (fix the CSV header or delimiter)`, { cause: e });
    }
    wrapStreamError(e, `reading ${where}`);
  } finally {
    input.unpipe(parser);
    input.destroy();
  }
}

/** One JSON text → a record, or a malformed-record entry that names the position and the problem. */
function recordFromJson(text: string, position: string, keyField: string | undefined): SourceRecord {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    return { key: position, position, error: `${position}: invalid JSON (${(e as Error).message})` };
  }
  if (!isPlainObject(value)) {
    return {
      key: position,
      position,
      error: `${position}: expected a JSON object, got ${Array.isArray(value) ? 'an array' : typeof value}`,
    };
  }
  return { key: keyOf(value, keyField, position), data: value, position };
}
