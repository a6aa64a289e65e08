/**
 * Attachments in the pipeline (issue #7).
 *
 * - Crawl: {@link fingerprintAttachments} gives each file a cheap fingerprint WITHOUT extracting it (sha256 of a
 *   local file's bytes, streamed; a URL's ETag or Last-Modified from a HEAD, else sha256 of a capped GET; a blob's
 *   ETag and last-modified from its properties, never its bytes). The
 *   fingerprints go into the item hash, so an edited file re-ingests its item and an untouched one costs nothing.
 * - Ingest: {@link applyAttachments} reads each file, extracts it (byte cap, time limit, OCR as configured),
 *   joins the text into the item's content under Graph's item cap (truncate at a word boundary, or refuse), and
 *   maps file metadata to schema properties. It never throws for a bad file: the caller dead-letters the item.
 *   Network trouble fetching a URL or a blob (5xx, 429, connection errors) throws {@link AttachmentTransientError}
 *   so the queue redelivers.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import type { ExternalItem, ExternalItemProperties } from '../config/model.js';
import { extractFile, htmlToText, truncateAtWordBoundary } from '../extract/index.js';
import type { ExtractMetadata } from '../extract/index.js';
import type { SourceDefinition } from '../config/source-definition.js';
import type { Readable } from 'node:stream';
import type { AttachmentFetch, AttachmentRef, AttachmentSettings, BlobLocation } from '../mapping/attachments.js';
import { createAuthProvider } from '../sources/auth.js';
import type { SourceDeps } from '../sources/types.js';
import { validateItem } from '../mapping/validate-item.js';
import { coerce, escapeHtml, odataAnnotation } from '../mapping/values.js';
import type { ItemAttachment } from '../state/queues/items.js';

/** A URL fetch failed in a way worth retrying (5xx, 429, network): let the queue redeliver. */
export class AttachmentTransientError extends Error {
  override name = 'AttachmentTransientError';
}

/** A file could not be read at all (missing, refused, too big): dead-letter the item. */
class AttachmentReadError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

const plainFetch: AttachmentFetch = (url, init) => fetch(url, { ...init, redirect: 'follow' });

/**
 * A fetch for attachment URLs that carries the source's authentication (a `rest` source's `auth`, `headers`
 * and client certificate / CA) — but only to the source's own origin, so a record cannot make the connector
 * send its credentials to another host. Redirects are followed by hand: to the same origin with the
 * credentials, elsewhere without them. A 401 refreshes the credentials once (as the source does).
 * Other sources (files) have no auth: undefined (plain fetch).
 */
export function sourceAttachmentFetch(source: SourceDefinition, deps: SourceDeps): AttachmentFetch | undefined {
  if (source.type !== 'rest') return undefined;
  const origin = new URL(source.url).origin;
  const auth = createAuthProvider(source.auth, deps, { caPath: source.caPath });
  const authed = async (
    url: string,
    init: { method?: 'GET' | 'HEAD'; signal?: AbortSignal },
    hops: number,
  ): Promise<Response> => {
    for (let attempt = 0; ; attempt++) {
      const { headers, dispatcher } = await auth.prepare(init.signal);
      const res = await fetch(url, {
        ...init,
        headers: { ...source.headers, ...headers },
        redirect: 'manual',
        ...(dispatcher ? { dispatcher } : {}),
      });
      if (res.status === 401 && attempt === 0 && (await auth.onUnauthorized())) {
        await res.body?.cancel().catch(() => undefined);
        continue;
      }
      const location = res.status >= 300 && res.status < 400 ? res.headers.get('location') : null;
      if (!location) return res;
      await res.body?.cancel().catch(() => undefined);
      if (hops >= 5) throw new AttachmentReadError('http-redirects', `${url}: more than 5 redirects`);
      const next = new URL(location, url).href;
      return new URL(next).origin === origin ? authed(next, init, hops + 1) : plainFetch(next, init);
    }
  };
  return (url, init) => (new URL(url).origin === origin ? authed(url, init, 0) : plainFetch(url, init));
}

const errCode = (e: unknown) => (e as NodeJS.ErrnoException)?.code ?? (e as Error)?.name ?? 'error';

function timeoutSignal(ms: number, signal?: AbortSignal): AbortSignal {
  const t = AbortSignal.timeout(ms);
  return signal ? AbortSignal.any([t, signal]) : t;
}

async function hashFile(path: string, signal?: AbortSignal): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path, signal ? { signal } : {})) h.update(chunk as Buffer);
  return h.digest('hex');
}

/** Read a response body, refusing more than `max` bytes. */
async function readCapped(res: Response, max: number, what: string): Promise<Uint8Array> {
  const declared = Number(res.headers.get('content-length') ?? NaN);
  if (Number.isFinite(declared) && declared > max) {
    await res.body?.cancel().catch(() => undefined);
    throw new AttachmentReadError(
      'too-large',
      `${what} is ${declared} bytes, above the ${max}-byte limit (mapping.attachments.maxFileBytes)`,
    );
  }
  const chunks: Uint8Array[] = [];
  let size = 0;
  if (res.body) {
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      size += chunk.byteLength;
      if (size > max) {
        await res.body.cancel().catch(() => undefined);
        throw new AttachmentReadError(
          'too-large',
          `${what} is over the ${max}-byte limit (mapping.attachments.maxFileBytes)`,
        );
      }
      chunks.push(chunk);
    }
  }
  return new Uint8Array(Buffer.concat(chunks));
}

function checkStatus(res: Response, what: string): void {
  if (res.ok) return;
  if (res.status >= 500 || res.status === 429 || res.status === 408)
    throw new AttachmentTransientError(`${what}: HTTP ${res.status}`);
  throw new AttachmentReadError(`http-${res.status}`, `${what} answered HTTP ${res.status}`);
}

type BlobSettings = Pick<AttachmentSettings, 'containers'>;

/** `container/name`, how a blob is named in reasons and the hash. */
export const blobLabel = (b: BlobLocation) => `${b.container}/${b.name}`;

function blobClient(b: BlobLocation, settings: BlobSettings) {
  if (!settings.containers)
    throw new AttachmentReadError(
      'no-blob-storage',
      `blob ${blobLabel(b)}: no blob storage is configured for attachments (the runtime sets it from AzureWebJobsStorage)`,
    );
  return settings.containers(b.container).getBlobClient(b.name);
}

const statusOf = (e: unknown): number | undefined => {
  const s = (e as { statusCode?: unknown })?.statusCode;
  return typeof s === 'number' ? s : undefined;
};

/** A storage error as a dead letter (missing, refused) or a transient error (5xx, 429, network). */
function blobError(e: unknown, b: BlobLocation, signal?: AbortSignal): Error {
  if (signal?.aborted || e instanceof AttachmentReadError || e instanceof AttachmentTransientError) return e as Error;
  const status = statusOf(e);
  const code = (e as { code?: unknown })?.code;
  const what = `blob "${b.name}" in container "${b.container}"`;
  if (status === 404)
    return new AttachmentReadError(
      'blob-not-found',
      `${what} does not exist (${typeof code === 'string' ? code : 'HTTP 404'}); upload it or fix the record`,
    );
  if (status === 401 || status === 403)
    return new AttachmentReadError(
      `blob-${status}`,
      `${what}: access denied (HTTP ${status}); give the app's identity the Storage Blob Data Reader role on the storage account`,
    );
  if (status === undefined || status >= 500 || status === 429 || status === 408)
    return new AttachmentTransientError(`${what}: ${status ? `HTTP ${status}` : ((e as Error)?.message ?? String(e))}`);
  return new AttachmentReadError(`blob-${status}`, `${what} answered HTTP ${status}`);
}

async function fingerprintBlob(
  b: BlobLocation,
  settings: BlobSettings & Pick<AttachmentSettings, 'timeoutMs'>,
  signal?: AbortSignal,
) {
  const client = blobClient(b, settings);
  try {
    const p = await client.getProperties({ abortSignal: timeoutSignal(settings.timeoutMs, signal) });
    return `blob:${p.etag ?? ''}:${p.lastModified?.toISOString() ?? ''}:${p.contentLength ?? ''}`.slice(0, 256);
  } catch (e) {
    const err = blobError(e, b, signal);
    if (err instanceof AttachmentReadError) throw err;
    throw new AttachmentReadError(statusOf(e) ? `blob-${statusOf(e)}` : errCode(e), err.message);
  }
}

/** Download a blob, refusing one over `max` bytes before reading it and never buffering more than `max`. */
async function readBlob(
  b: BlobLocation,
  settings: BlobSettings & Pick<AttachmentSettings, 'timeoutMs' | 'maxFileBytes'>,
  signal?: AbortSignal,
): Promise<{ bytes: Uint8Array; contentType?: string }> {
  const client = blobClient(b, settings);
  const max = settings.maxFileBytes;
  const what = `blob "${b.name}" in container "${b.container}"`;
  try {
    const res = await client.download(0, undefined, { abortSignal: timeoutSignal(settings.timeoutMs, signal) });
    const body = res.readableStreamBody as Readable | undefined;
    if (res.contentLength !== undefined && res.contentLength > max) {
      body?.destroy();
      throw new AttachmentReadError(
        'too-large',
        `${what} is ${res.contentLength} bytes, above the ${max}-byte limit (mapping.attachments.maxFileBytes)`,
      );
    }
    const chunks: Buffer[] = [];
    let size = 0;
    if (body) {
      for await (const chunk of body as AsyncIterable<Buffer>) {
        size += chunk.byteLength;
        if (size > max) {
          body.destroy();
          throw new AttachmentReadError(
            'too-large',
            `${what} is over the ${max}-byte limit (mapping.attachments.maxFileBytes)`,
          );
        }
        chunks.push(chunk);
      }
    }
    return {
      bytes: new Uint8Array(Buffer.concat(chunks)),
      ...(res.contentType ? { contentType: res.contentType } : {}),
    };
  } catch (e) {
    throw blobError(e, b, signal);
  }
}

/**
 * The fingerprint of one attachment, without extracting it. Never throws: a file that cannot be read gets an
 * `unreadable:<code>` fingerprint (the ingest then dead-letters the item with the reason; when the file is
 * fixed, the fingerprint changes and the item is sent again).
 */
export async function fingerprintAttachment(
  ref: AttachmentRef,
  settings: Pick<AttachmentSettings, 'maxFileBytes' | 'timeoutMs' | 'fetch' | 'containers'>,
  signal?: AbortSignal,
): Promise<string> {
  const get = settings.fetch ?? plainFetch;
  try {
    if (ref.blob !== undefined) return await fingerprintBlob(ref.blob, settings, signal);
    if (ref.path !== undefined) {
      const st = await stat(ref.path);
      if (!st.isFile()) return 'unreadable:not-a-file';
      // Too big to extract anyway: size and mtime are enough to notice a change.
      if (st.size > settings.maxFileBytes) return `size:${st.size}:mtime:${st.mtimeMs}`;
      return `sha256:${await hashFile(ref.path, signal)}`;
    }
    const s = timeoutSignal(settings.timeoutMs, signal);
    const head = await get(ref.url, { method: 'HEAD', signal: s });
    await head.body?.cancel().catch(() => undefined);
    if (head.ok) {
      const etag = head.headers.get('etag');
      if (etag) return `etag:${etag}`.slice(0, 256);
      const lm = head.headers.get('last-modified');
      if (lm) return `lm:${lm}:${head.headers.get('content-length') ?? ''}`.slice(0, 256);
    }
    const res = await get(ref.url, { signal: s });
    checkStatus(res, ref.url);
    return `sha256:${createHash('sha256')
      .update(await readCapped(res, settings.maxFileBytes, ref.url))
      .digest('hex')}`;
  } catch (e) {
    if (e instanceof AttachmentReadError) return `unreadable:${e.code}`;
    return `unreadable:${errCode(e)}`;
  }
}

/** Fingerprints of a record's attachments, in order (files one at a time: bounded memory and I/O). */
export async function fingerprintAttachments(
  refs: AttachmentRef[],
  settings: Pick<AttachmentSettings, 'maxFileBytes' | 'timeoutMs' | 'fetch' | 'containers'>,
  signal?: AbortSignal,
): Promise<ItemAttachment[]> {
  const out: ItemAttachment[] = [];
  for (const ref of refs) {
    const fingerprint = await fingerprintAttachment(ref, settings, signal);
    out.push(
      ref.blob !== undefined
        ? { name: ref.name, blob: { container: ref.blob.container, name: ref.blob.name }, fingerprint }
        : ref.path !== undefined
          ? { name: ref.name, path: ref.path, fingerprint }
          : { name: ref.name, url: ref.url, fingerprint },
    );
  }
  return out;
}

/** The `extra` of itemHash for these attachments: the settings that shape their text, and each fingerprint. */
export function attachmentHashExtra(
  attachments: ItemAttachment[],
  settings: AttachmentSettings,
): Record<string, string> {
  const extra: Record<string, string> = { attachments: settings.digest };
  attachments.forEach((a, i) => (extra[`attachment${i}`] = `${a.name}|${attachmentLabel(a)}|${a.fingerprint}`));
  return extra;
}

/** Where an attachment lives, for reasons and the hash: the path, the URL, or `blob:container/name`. */
function attachmentLabel(a: ItemAttachment): string {
  return a.path ?? a.url ?? (a.blob ? `blob:${blobLabel(a.blob)}` : '');
}

async function readAttachment(
  a: ItemAttachment,
  settings: AttachmentSettings,
  signal?: AbortSignal,
): Promise<{ bytes: Uint8Array; contentType?: string }> {
  if (a.blob !== undefined) return readBlob(a.blob, settings, signal);
  if (a.path !== undefined) {
    let size: number;
    try {
      const st = await stat(a.path);
      if (!st.isFile()) throw new AttachmentReadError('unreadable', `${a.path} is not a file`);
      size = st.size;
    } catch (e) {
      if (e instanceof AttachmentReadError) throw e;
      throw new AttachmentReadError('unreadable', `cannot read ${a.path} (${errCode(e)})`);
    }
    if (size > settings.maxFileBytes)
      throw new AttachmentReadError(
        'too-large',
        `the file is ${size} bytes, above the ${settings.maxFileBytes}-byte limit (mapping.attachments.maxFileBytes)`,
      );
    try {
      return { bytes: new Uint8Array(await readFile(a.path, signal ? { signal } : {})) };
    } catch (e) {
      throw new AttachmentReadError('unreadable', `cannot read ${a.path} (${errCode(e)})`);
    }
  }
  const url = a.url!;
  let res: Response;
  try {
    res = await (settings.fetch ?? plainFetch)(url, { signal: timeoutSignal(settings.timeoutMs, signal) });
  } catch (e) {
    if (signal?.aborted || e instanceof AttachmentReadError) throw e;
    throw new AttachmentTransientError(`${url}: ${(e as Error)?.message ?? String(e)}`);
  }
  checkStatus(res, url);
  const bytes = await readCapped(res, settings.maxFileBytes, url);
  const contentType = res.headers.get('content-type');
  return { bytes, ...(contentType ? { contentType } : {}) };
}

/** What happened to one file, for progress lines and stats (never its text). */
export interface AttachmentReport {
  name: string;
  ok: boolean;
  format?: string;
  pageCount?: number;
  /** UTF-8 bytes of the extracted text */
  textBytes?: number;
  ocrUsed?: boolean;
  warnings?: string[];
  /** failure: the extraction code (encrypted, corrupt, too-large, timeout, unsupported, unreadable, http-404...) */
  code?: string;
  reason?: string;
}

export type ApplyAttachmentsResult =
  | { ok: true; item: ExternalItem; files: AttachmentReport[]; warnings: string[] }
  | { ok: false; code: 'ExtractionFailed' | 'ItemTooLarge'; reason: string; files: AttachmentReport[] };

const jsonBytes = (v: unknown) => Buffer.byteLength(JSON.stringify(v), 'utf8');

/**
 * Extract every attachment of an item and build the final item (content joined, metadata mapped, under the
 * cap). Files are read one at a time. Returns `ok: false` (dead-letter the item) for a file that cannot be
 * extracted or an item over the cap with `contentOverflow: "reject"`; throws only AttachmentTransientError
 * (or the caller's abort).
 */
export async function applyAttachments(
  item: ExternalItem,
  attachments: ItemAttachment[],
  settings: AttachmentSettings,
  signal?: AbortSignal,
): Promise<ApplyAttachmentsResult> {
  const files: AttachmentReport[] = [];
  const texts: { text: string; type: 'text' | 'html' }[] = [];
  const metadata: ExtractMetadata[] = [];
  const warnings: string[] = [];
  for (const a of attachments) {
    const fail = (code: string, reason: string): ApplyAttachmentsResult => {
      files.push({ name: a.name, ok: false, code, reason });
      return {
        ok: false,
        code: 'ExtractionFailed',
        reason: `item ${item.id}: attachment "${a.name}" (${attachmentLabel(a)}): ${code}: ${reason}`,
        files,
      };
    };
    let input: { bytes: Uint8Array; contentType?: string };
    try {
      input = await readAttachment(a, settings, signal);
    } catch (e) {
      if (e instanceof AttachmentReadError) return fail(e.code, e.message);
      throw e;
    }
    const r = await extractFile(
      { ...input, fileName: a.name },
      {
        ocr: settings.ocr,
        maxBytes: settings.maxFileBytes,
        timeoutMs: settings.timeoutMs,
        html: settings.html,
        ...(signal ? { signal } : {}),
      },
    );
    if (!r.ok) return fail(r.code, r.reason);
    for (const w of r.warnings) warnings.push(`attachment "${a.name}": ${w}`);
    files.push({
      name: a.name,
      ok: true,
      ...(r.metadata.format ? { format: r.metadata.format } : {}),
      ...(r.metadata.pageCount !== undefined ? { pageCount: r.metadata.pageCount } : {}),
      textBytes: Buffer.byteLength(r.text, 'utf8'),
      ocrUsed: r.ocrUsed,
      ...(r.warnings.length ? { warnings: r.warnings } : {}),
    });
    if (r.text) texts.push({ text: r.text, type: r.contentType });
    metadata.push(r.metadata);
  }

  // Join: the record's content first (append), then each file, in one content type.
  const base = settings.join === 'append' ? item.content : undefined;
  const type: 'text' | 'html' = base?.type ?? texts[0]?.type ?? item.content?.type ?? 'text';
  const parts: string[] = [];
  if (base?.value) parts.push(base.value);
  for (const t of texts) {
    if (t.type === type) parts.push(t.text);
    else if (type === 'text') parts.push(htmlToText(t.text).text);
    else parts.push(`<pre>${escapeHtml(t.text)}</pre>`);
  }
  const out: ExternalItem = { ...item, properties: { ...item.properties } };
  if (parts.length) out.content = { type, value: parts.join(type === 'html' ? '\n' : settings.separator) };
  else if (settings.join === 'replace') delete out.content;

  // Metadata → schema properties (collections take every file's value; a single value the first file's).
  const props: ExternalItemProperties = out.properties;
  for (const { key, property } of settings.metadata) {
    const values = metadata.map((m) => m[key]).filter((v) => v !== undefined && v !== '');
    if (!values.length) continue;
    const c = coerce(property.type.endsWith('Collection') ? values : values[0], property.type);
    if (!c.ok) {
      warnings.push(`attachment metadata ${key} → ${property.name}: ${c.message}; left out`);
      continue;
    }
    if (!('value' in c)) continue;
    props[property.name] = c.value;
    const annotation = odataAnnotation(property.type, c.value);
    if (annotation) props[`${property.name}@odata.type`] = annotation;
    else delete props[`${property.name}@odata.type`];
  }

  // Graph's cap applies to the final item.
  const cap = settings.maxItemBytes;
  let size = jsonBytes(out);
  if (size > cap) {
    const content = out.content;
    if (settings.overflow === 'truncate' && content) {
      const overhead = jsonBytes({ ...out, content: { type: content.type, value: '' } });
      let budget = cap - overhead;
      let value = content.value;
      for (let i = 0; i < 8 && budget > 0 && size > cap; i++) {
        const cut = truncateAtWordBoundary(content.value, budget);
        value = cut.text;
        if (content.type === 'html') value = value.replace(/<[^>]*$/, '').trimEnd();
        out.content = { type: content.type, value };
        const next = jsonBytes(out);
        budget -= next - cap + 64; // JSON escapes make the item bigger than the UTF-8 text: shrink and retry
        size = next;
      }
      if (size <= cap)
        warnings.push(
          `content truncated at a word boundary from ${Buffer.byteLength(content.value, 'utf8')} to ${Buffer.byteLength(value, 'utf8')} bytes to fit the ${cap}-byte item cap (mapping.contentOverflow: truncate)`,
        );
    }
    if (size > cap)
      return {
        ok: false,
        code: 'ItemTooLarge',
        reason: `item ${item.id}: with its attachments (${attachments.map((a) => a.name).join(', ')}) the item is ${size} bytes; the cap is ${cap} (set mapping.contentOverflow: "truncate" to cut the content)`,
        files,
      };
  }
  const problems = validateItem(out, settings.schema, { allowEveryone: settings.allowEveryone });
  if (problems.length)
    return {
      ok: false,
      code: 'ExtractionFailed',
      reason: `item ${item.id}: after adding its attachments: ${problems[0]!.message}`,
      files,
    };
  return { ok: true, item: out, files, warnings };
}
