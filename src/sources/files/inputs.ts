/**
 * The byte inputs of file sources: a local file, an http(s) URL or a blob of the connector's own storage account,
 * opened at a byte offset. The first open records the input's identity (size and mtime; ETag and Last-Modified;
 * the blob's ETag); a resumed open checks it, so a read never continues into another version of the data.
 *
 * - Local file: `createReadStream({ start })` on the same file; identity = size + mtime.
 * - URL: `Range: bytes=N-`; a 206 must start at N and carry the first read's ETag / Last-Modified. A server that
 *   ignores Range (200) is read from the start and its first N bytes skipped. `Accept-Encoding: identity` keeps byte
 *   offsets those of the file; a server that compresses anyway is always re-read from the start and skipped.
 * - Blob: a ranged download with `If-Match: <ETag of the first read>`.
 */
import { Readable } from 'node:stream';
import type { FileHandle } from 'node:fs/promises';
import { open } from 'node:fs/promises';
import { resolve } from 'node:path';
import { isTransientStatus, statusOf } from '../../core/errors.js';
import { noTelemetry } from '../../core/telemetry.js';
import { requestWithRetry } from '../http.js';
import type { SourceDeps } from '../types.js';
import { displayUrl, SourceError } from '../types.js';
import type { BlobInputDefinition } from './definition.js';
import { reservedContainerReason } from './definition.js';

export interface InputRef {
  path?: string;
  url?: string;
  blob?: BlobInputDefinition;
}

/** What a position stores about the input, to tell that it is still the same data. */
export type InputIdentity =
  | { kind: 'path'; size: number; mtimeMs: number; regular: boolean }
  | { kind: 'url'; etag?: string; lastModified?: string; size?: number; encoded?: boolean }
  | { kind: 'blob'; etag: string; size: number };

export interface OpenedInput {
  /** The bytes from the requested offset on. */
  chunks: AsyncIterable<Buffer>;
  identity: InputIdentity;
  /** Total bytes, when known. */
  size: number | undefined;
  /** The input in messages: a file path, a URL without its query, `blob <container>/<name>`. */
  where: string;
  /** The absolute offset the bytes delivered so far reach. */
  readonly reached: number;
  close(): void;
}

export interface OpenOptions {
  /** Byte offset to start at (a record boundary from a position). */
  start: number;
  /** The identity recorded by the read this one resumes; undefined for a fresh read. */
  expected?: InputIdentity;
  abortSignal?: AbortSignal;
}

/** The input in messages (never a query string). */
export function describeInput(ref: InputRef, deps: Pick<SourceDeps, 'baseDir'>): string {
  if (ref.path !== undefined) return resolve(deps.baseDir, ref.path);
  if (ref.url !== undefined) return displayUrl(ref.url);
  if (ref.blob) return `blob ${ref.blob.container}/${ref.blob.name}`;
  return '(no input)';
}

export async function openInput(ref: InputRef, deps: SourceDeps, options: OpenOptions): Promise<OpenedInput> {
  options.abortSignal?.throwIfAborted();
  if (ref.path !== undefined) return openFile(resolve(deps.baseDir, ref.path), options);
  if (ref.url !== undefined) return openUrl(ref.url, deps, options);
  if (ref.blob !== undefined) return openBlob(ref.blob, deps, options);
  throw new SourceError('SourceConfig', 'the source needs a path, a url or a blob');
}

function changed(where: string, what: string): SourceError {
  return new SourceError(
    'SourceChanged',
    `${where} changed since this crawl began reading it (${what}); the saved position does not fit the new content: start a new crawl`,
  );
}

function wrongKind(where: string, expected: InputIdentity, kind: InputIdentity['kind']): void {
  if (expected.kind !== kind) {
    throw new SourceError(
      'SourcePosition',
      `${where}: the saved position was written for a ${expected.kind} input, not a ${kind}; start a new crawl`,
    );
  }
}

/**
 * The stream's chunks as Buffers, counting how far they reach; an abort destroys the stream, and a stream failure
 * becomes a SourceError (`retryable` when the bytes came over the network).
 */
function guardedChunks(
  stream: Readable,
  where: string,
  start: number,
  abortSignal: AbortSignal | undefined,
  network: boolean,
  counter: { reached: number },
): AsyncIterable<Buffer> {
  return {
    async *[Symbol.asyncIterator]() {
      const onAbort = () =>
        stream.destroy(
          new SourceError('SourceAborted', `reading ${where}: read aborted`, { cause: abortSignal?.reason }),
        );
      abortSignal?.addEventListener('abort', onAbort, { once: true });
      if (abortSignal?.aborted) onAbort();
      counter.reached = start;
      try {
        for await (const chunk of stream) {
          const buf = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer);
          counter.reached += buf.length;
          yield buf;
        }
      } catch (e) {
        if (e instanceof SourceError) throw e;
        const err = e as NodeJS.ErrnoException;
        if (abortSignal?.aborted || err?.name === 'AbortError') {
          throw new SourceError('SourceAborted', `reading ${where}: read aborted`, { cause: e });
        }
        throw new SourceError(
          'SourceTruncated',
          `reading ${where}: the stream failed after ${counter.reached} bytes (${err?.message ?? String(e)})`,
          { cause: e, retryable: network },
        );
      } finally {
        abortSignal?.removeEventListener('abort', onAbort);
        stream.destroy();
      }
    },
  };
}

/** Drop the first `n` bytes of a byte stream (a server that ignored the Range request). */
async function* skipBytes(chunks: AsyncIterable<Buffer>, n: number, where: string): AsyncGenerator<Buffer> {
  let left = n;
  for await (const chunk of chunks) {
    if (left >= chunk.length) {
      left -= chunk.length;
      continue;
    }
    yield left > 0 ? chunk.subarray(left) : chunk;
    left = 0;
  }
  if (left > 0) throw changed(where, `it is ${n - left} bytes long, shorter than the saved position ${n}`);
}

const empty: AsyncIterable<Buffer> = { [Symbol.asyncIterator]: async function* () {} };

// --- local files --------------------------------------------------------------------------------------------

async function openFile(file: string, options: OpenOptions): Promise<OpenedInput> {
  const { start, expected } = options;
  if (expected?.kind === 'path' && !expected.regular) {
    // Opening a pipe again would wait for a writer; it cannot be positioned anyway.
    throw new SourceError(
      'SourcePosition',
      `${file} is not a regular file (a pipe?), so a read of it cannot resume; start a new crawl`,
    );
  }
  let fh: FileHandle;
  try {
    fh = await open(file, 'r');
  } catch (e) {
    throw new SourceError(
      'SourceConfig',
      `cannot open source file ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}; check source.path (relative to connector.json)`,
      { cause: e },
    );
  }
  try {
    const st = await fh.stat();
    const identity: InputIdentity = { kind: 'path', size: st.size, mtimeMs: st.mtimeMs, regular: st.isFile() };
    if (expected) {
      wrongKind(file, expected, 'path');
      if (expected.kind === 'path') {
        if (!identity.regular) {
          throw new SourceError(
            'SourcePosition',
            `${file} is not a regular file (a pipe?), so a read of it cannot resume; start a new crawl`,
          );
        }
        if (expected.size !== identity.size || expected.mtimeMs !== identity.mtimeMs) {
          throw changed(
            file,
            `size ${expected.size} → ${identity.size} bytes, modified ${new Date(expected.mtimeMs).toISOString()} → ${new Date(identity.mtimeMs).toISOString()}`,
          );
        }
      }
    }
    const counter = { reached: start };
    const stream = fh.createReadStream({ ...(start > 0 ? { start } : {}), highWaterMark: 64 * 1024 });
    return {
      chunks: guardedChunks(stream, file, start, options.abortSignal, false, counter),
      identity,
      size: identity.regular ? identity.size : undefined,
      where: file,
      get reached() {
        return counter.reached;
      },
      close: () => stream.destroy(),
    };
  } catch (e) {
    await fh.close().catch(() => undefined);
    throw e;
  }
}

// --- http(s) URLs -------------------------------------------------------------------------------------------

function urlIdentity(res: Response, size: number | undefined): InputIdentity & { kind: 'url' } {
  const etag = res.headers.get('etag') ?? undefined;
  const lastModified = res.headers.get('last-modified') ?? undefined;
  const encoding = res.headers.get('content-encoding');
  const encoded = !!encoding && encoding.toLowerCase() !== 'identity';
  return {
    kind: 'url',
    ...(etag ? { etag } : {}),
    ...(lastModified ? { lastModified } : {}),
    ...(size !== undefined && !encoded ? { size } : {}),
    ...(encoded ? { encoded: true } : {}),
  };
}

function contentLength(res: Response): number | undefined {
  const v = res.headers.get('content-length');
  const n = v === null ? NaN : Number(v);
  return Number.isSafeInteger(n) && n >= 0 ? n : undefined;
}

/** `bytes <first>-<last>/<total|*>` → first and total. */
function parseContentRange(value: string | null): { first: number; total?: number } | undefined {
  const m = /^\s*bytes\s+(\d+)-(\d+)\/(\d+|\*)\s*$/i.exec(value ?? '');
  if (!m) return undefined;
  return { first: Number(m[1]), ...(m[3] !== '*' ? { total: Number(m[3]) } : {}) };
}

function compareUrlVersions(
  where: string,
  expected: InputIdentity & { kind: 'url' },
  got: InputIdentity & { kind: 'url' },
  deps: SourceDeps,
): void {
  const diffs: string[] = [];
  if (expected.etag && got.etag && expected.etag !== got.etag) diffs.push(`ETag ${expected.etag} → ${got.etag}`);
  if (expected.lastModified && got.lastModified && expected.lastModified !== got.lastModified) {
    diffs.push(`Last-Modified ${expected.lastModified} → ${got.lastModified}`);
  }
  if (expected.size !== undefined && got.size !== undefined && expected.size !== got.size) {
    diffs.push(`size ${expected.size} → ${got.size} bytes`);
  }
  if (diffs.length) throw changed(where, diffs.join(', '));
  const comparable = (expected.etag && got.etag) || (expected.lastModified && got.lastModified);
  if (!comparable) {
    deps.logger.warn('the server sends no ETag or Last-Modified: a change between slices is detected by size only', {
      url: where,
    });
  }
}

async function openUrl(url: string, deps: SourceDeps, options: OpenOptions): Promise<OpenedInput> {
  const { start, expected } = options;
  const where = displayUrl(url);
  const headers: Record<string, string> = { accept: '*/*', 'accept-encoding': 'identity' };
  if (expected) {
    wrongKind(where, expected, 'url');
    if (expected.kind === 'url' && !expected.encoded && expected.size !== undefined && start >= expected.size) {
      if (start > expected.size) throw changed(where, `the saved position ${start} is past its ${expected.size} bytes`);
      // Everything was read: nothing to fetch (and nothing of another version can be mixed in).
      return { chunks: empty, identity: expected, size: expected.size, where, reached: start, close: () => undefined };
    }
  }
  const ranged = expected?.kind === 'url' && !expected.encoded && start > 0;
  // fetch adds `Accept-Encoding: identity` to a Range request itself.
  if (ranged) {
    headers.range = `bytes=${start}-`;
    delete headers['accept-encoding'];
  }
  let res: Response;
  try {
    res = await requestWithRetry(url, { method: 'GET', headers }, { deps, abortSignal: options.abortSignal });
  } catch (e) {
    if (e instanceof SourceError && e.status === 416)
      throw changed(where, `the server has fewer than ${start} bytes now`);
    throw e;
  }
  if (!res.body) {
    throw new SourceError('SourceHttp', `empty response body from ${where}`, { url: where });
  }
  const body = Readable.fromWeb(res.body);
  let skip = 0;
  let identity: InputIdentity & { kind: 'url' };
  if (res.status === 206) {
    const range = parseContentRange(res.headers.get('content-range'));
    if (!range || range.first !== start) {
      body.destroy();
      throw new SourceError(
        'SourceHttp',
        `${where} answered the request for bytes ${start}- with Content-Range ${JSON.stringify(res.headers.get('content-range'))}; it cannot be resumed`,
        { url: where, status: 206 },
      );
    }
    identity = urlIdentity(res, range.total);
    if (identity.encoded) {
      body.destroy();
      throw new SourceError(
        'SourceHttp',
        `${where} answered a Range request with compressed content (Content-Encoding ${JSON.stringify(res.headers.get('content-encoding'))}); it cannot be resumed`,
        { url: where, status: 206 },
      );
    }
  } else {
    identity = urlIdentity(res, contentLength(res));
    if (start > 0) {
      skip = start;
      if (ranged) {
        deps.logger.info('the server ignored the Range request; skipping the bytes already read', {
          url: where,
          bytes: start,
        });
      }
    }
  }
  if (expected?.kind === 'url') {
    try {
      compareUrlVersions(where, expected, identity, deps);
    } catch (e) {
      body.destroy();
      throw e;
    }
    // A resumed read keeps the first read's identity, so its positions are those of an uninterrupted read.
    identity = expected;
  }
  const counter = { reached: start };
  const raw = guardedChunks(body, where, 0, options.abortSignal, true, { reached: 0 });
  const chunks: AsyncIterable<Buffer> = {
    async *[Symbol.asyncIterator]() {
      for await (const chunk of skip ? skipBytes(raw, skip, where) : raw) {
        counter.reached += chunk.length;
        yield chunk;
      }
    },
  };
  return {
    chunks,
    identity,
    size: identity.size,
    where,
    get reached() {
      return counter.reached;
    },
    close: () => body.destroy(),
  };
}

// --- blobs --------------------------------------------------------------------------------------------------

function blobError(e: unknown, where: string, start: number): SourceError {
  if (e instanceof SourceError) return e;
  const status = statusOf(e);
  const detail = (e as Error)?.message?.split('\n')[0] ?? String(e);
  if ((e as Error)?.name === 'AbortError')
    return new SourceError('SourceAborted', `reading ${where}: read aborted`, { cause: e });
  if (status === 404) {
    return new SourceError('SourceConfig', `${where} does not exist; check source.blob (container and name)`, {
      status,
      cause: e,
    });
  }
  if (status === 412) return changed(where, 'its ETag is no longer the one the crawl began with');
  if (status === 416) return changed(where, `it has fewer than ${start} bytes now`);
  if (status === 401 || status === 403) {
    return new SourceError(
      'SourceAuth',
      `reading ${where} was refused (${status}); the connector's identity needs the Storage Blob Data Reader role on the container`,
      { status, cause: e },
    );
  }
  const retryable = status === undefined || isTransientStatus(status);
  return new SourceError(status === undefined ? 'SourceNetwork' : 'SourceHttp', `reading ${where} failed: ${detail}`, {
    ...(status !== undefined ? { status } : {}),
    retryable,
    cause: e,
  });
}

async function openBlob(blob: BlobInputDefinition, deps: SourceDeps, options: OpenOptions): Promise<OpenedInput> {
  const { start, expected } = options;
  const where = `blob ${blob.container}/${blob.name}`;
  const reason = reservedContainerReason(blob.container, deps.env ?? process.env);
  if (reason) {
    throw new SourceError(
      'SourceConfig',
      `source.blob.container: the connector does not read its source from "${blob.container}": ${reason}`,
    );
  }
  if (!deps.containers) {
    throw new SourceError(
      'SourceConfig',
      `${where}: blob inputs are read from the connector's storage account, and none was given to the source (AzureWebJobsStorage)`,
    );
  }
  if (expected) {
    wrongKind(where, expected, 'blob');
    if (expected.kind === 'blob' && start >= expected.size) {
      if (start > expected.size) throw changed(where, `the saved position ${start} is past its ${expected.size} bytes`);
      return { chunks: empty, identity: expected, size: expected.size, where, reached: start, close: () => undefined };
    }
  }
  const client = deps.containers(blob.container).getBlobClient(blob.name);
  let res: Awaited<ReturnType<typeof client.download>>;
  const call = (deps.telemetry ?? noTelemetry).dependency('source', {
    method: 'GET',
    url: displayUrl(client.url),
    name: 'GET blob',
  });
  try {
    res = await client.download(start, undefined, {
      maxRetryRequests: 5,
      ...(options.abortSignal ? { abortSignal: options.abortSignal } : {}),
      ...(expected?.kind === 'blob' ? { conditions: { ifMatch: expected.etag } } : {}),
    });
    call.end({ status: res._response.status });
  } catch (e) {
    const status = statusOf(e);
    call.end({ error: e, ...(status !== undefined ? { status } : {}) });
    throw blobError(e, where, start);
  }
  const etag = res.etag ?? '';
  const range = parseContentRange(res.contentRange ?? null);
  const size = range?.total ?? (start === 0 ? res.contentLength : undefined);
  if (expected?.kind === 'blob' && etag !== expected.etag) {
    (res.readableStreamBody as Readable | undefined)?.destroy();
    throw changed(where, `ETag ${expected.etag} → ${etag}`);
  }
  const identity: InputIdentity =
    expected?.kind === 'blob' ? expected : { kind: 'blob', etag, size: size ?? res.contentLength ?? 0 };
  const body = res.readableStreamBody as Readable | undefined;
  const counter = { reached: start };
  return {
    chunks: body ? guardedChunks(body, where, start, options.abortSignal, true, counter) : empty,
    identity,
    size: identity.kind === 'blob' ? identity.size : undefined,
    where,
    get reached() {
      return counter.reached;
    },
    close: () => body?.destroy(),
  };
}
