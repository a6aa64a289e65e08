/**
 * The attachment service: built once by the composition root from `mapping.attachments` and passed to the
 * pipeline (`deps.attachments`). The mapper only reports which files a record names; this service does the I/O.
 *
 * - Crawl: {@link AttachmentService.fingerprint} gives each file a cheap fingerprint without extracting it
 *   (sha256 of a local file's bytes, streamed; a URL's ETag or Last-Modified from a HEAD, else sha256 of a capped
 *   GET; a blob's ETag and last-modified from its properties). The fingerprints go into the item hash
 *   ({@link AttachmentService.hashExtra}), so an edited file re-ingests its item and an untouched one costs nothing.
 * - Ingest: {@link AttachmentService.apply} reads each file again — under the same rules, since the queue message
 *   that names it may be forged — extracts it (byte cap, time limit, OCR as configured), joins the text into the
 *   item's content under Graph's item cap (truncate at a word boundary, or refuse), and maps file metadata to schema
 *   properties. A file that cannot be read or extracted gives `ok: false` (the caller dead-letters the item); only
 *   network trouble (5xx, 429, connection errors) throws, as a retryable {@link AttachmentError}.
 *
 * Trust rules, every read: local paths stay inside the folder after symbolic links are resolved (files.ts); blobs
 * come from the attachments containers only (blobs.ts); URLs and each of their redirects reach public addresses
 * only unless the definition names the host (urls.ts). Nothing written about a URL keeps its query string.
 */
import { createHash } from 'node:crypto';
import type { AttachmentsMapping } from '../config/mapping-definition.js';
import type { ExternalItem, ExternalItemProperties, SchemaProperty } from '../config/model.js';
import type { OperationOptions } from '../core/async.js';
import { displayUrl } from '../core/url.js';
import type { ExtractMetadata } from '../extract/index.js';
import { extractFile, htmlToText, truncateAtWordBoundary } from '../extract/index.js';
import { validateItem } from '../mapping/validate-item.js';
import { coerceToPropertyType, escapeHtml, odataAnnotation } from '../mapping/values.js';
import { BlobReader, blobLabel, type BlobLocation, type ContainerProvider } from './blobs.js';
import { AttachmentError, refused } from './errors.js';
import { hashOpened, openInFolder, readOpened } from './files.js';
import { compileAttachmentSettings, type AttachmentSettings, type CompileOptions } from './settings.js';
import { UrlFetcher, type Resolver, type SourceCredentials } from './urls.js';

/** A file a record names: exactly one of an absolute local `path`, an http(s) `url` or a `blob`. */
export interface AttachmentFile {
  name: string;
  path?: string;
  url?: string;
  blob?: BlobLocation;
}

/** A file with the fingerprint the crawl hashed (the shape the item queue carries). */
export interface FingerprintedFile extends AttachmentFile {
  fingerprint: string;
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
  /** failure: the code (encrypted, corrupt, too-large, timeout, outside-folder, url-refused, blob-refused, http-404 …) */
  code?: string;
  reason?: string;
}

export type ApplyAttachmentsResult =
  | { ok: true; item: ExternalItem; files: AttachmentReport[]; warnings: string[] }
  | { ok: false; code: 'ExtractionFailed' | 'ItemTooLarge'; reason: string; files: AttachmentReport[] };

export interface AttachmentServiceOptions {
  /** Blob containers of the connector's storage account (without it, blob attachments are refused). */
  containers?: ContainerProvider;
  /** A `rest` source's credentials, sent to URLs on its own origin only. */
  source?: SourceCredentials;
  /** Name resolution for URL hosts (tests); default the system resolver. */
  resolve?: Resolver;
}

/** Where an attachment lives, for reasons: the path, the URL without its query, or `blob:container/name`. */
export function attachmentLabel(a: AttachmentFile): string {
  return a.path ?? (a.url !== undefined ? displayUrl(a.url) : a.blob ? `blob:${blobLabel(a.blob)}` : '');
}

const jsonBytes = (v: unknown) => Buffer.byteLength(JSON.stringify(v), 'utf8');
const errCode = (e: unknown): string => {
  const code = (e as { code?: unknown })?.code;
  return typeof code === 'string' ? code : ((e as Error)?.name ?? 'error');
};

export class AttachmentService {
  private readonly urls: UrlFetcher;
  private readonly blobs: BlobReader;

  constructor(
    readonly settings: AttachmentSettings,
    options: AttachmentServiceOptions = {},
  ) {
    this.urls = new UrlFetcher(settings.urls, {
      ...(options.source ? { source: options.source } : {}),
      ...(options.resolve ? { resolve: options.resolve } : {}),
    });
    this.blobs = new BlobReader(settings.containers, options.containers);
  }

  /** Release pooled connections (tests; the Functions host just exits). */
  async close(): Promise<void> {
    await this.urls.close();
  }

  /**
   * The fingerprint of one file, without extracting it. Never throws (but for the caller's abort): a file that
   * cannot be read, or may not be, gets `unreadable:<code>` — the ingest then dead-letters the item with the
   * reason, and once the file is fixed the fingerprint changes and the item is sent again.
   */
  async fingerprintFile(file: AttachmentFile, options: OperationOptions = {}): Promise<string> {
    const { maxFileBytes, timeoutMs } = this.settings;
    try {
      if (file.blob !== undefined) return await this.blobs.fingerprint(file.blob, { timeoutMs, ...options });
      if (file.path !== undefined) {
        const opened = await openInFolder(this.settings.folder, file.path);
        if (opened.size > maxFileBytes) {
          // Too big to extract anyway: size and mtime are enough to notice a change.
          const st = await opened.handle.stat();
          await opened.handle.close().catch(() => undefined);
          return `size:${st.size}:mtime:${st.mtimeMs}`;
        }
        return `sha256:${await hashOpened(opened, options)}`;
      }
      const head = await this.urls.fetch(file.url!, { method: 'HEAD', timeoutMs, ...options });
      await head.body?.cancel().catch(() => undefined);
      if (head.ok) {
        const etag = head.headers.get('etag');
        if (etag) return `etag:${etag}`.slice(0, 256);
        const lm = head.headers.get('last-modified');
        if (lm) return `lm:${lm}:${head.headers.get('content-length') ?? ''}`.slice(0, 256);
      }
      const res = await this.urls.fetch(file.url!, { timeoutMs, ...options });
      const bytes = await this.readResponse(res, file.url!);
      return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
    } catch (e) {
      if (options.abortSignal?.aborted) throw e;
      return `unreadable:${errCode(e)}`;
    }
  }

  /** Fingerprints of a record's files, in order (one at a time: bounded memory and I/O). */
  async fingerprint(files: AttachmentFile[], options: OperationOptions = {}): Promise<FingerprintedFile[]> {
    const out: FingerprintedFile[] = [];
    for (const f of files) {
      const fingerprint = await this.fingerprintFile(f, options);
      out.push(
        f.blob !== undefined
          ? { name: f.name, blob: { container: f.blob.container, name: f.blob.name }, fingerprint }
          : f.path !== undefined
            ? { name: f.name, path: f.path, fingerprint }
            : { name: f.name, url: f.url!, fingerprint },
      );
    }
    return out;
  }

  /** The `extra` of the item hash for these files: the settings that shape their text, and each fingerprint. */
  hashExtra(files: FingerprintedFile[]): Record<string, string> {
    const extra: Record<string, string> = { attachments: this.settings.digest };
    files.forEach((a, i) => {
      // The full URL (query included) identifies the file; the hash is never shown.
      const where = a.path ?? a.url ?? (a.blob ? `blob:${blobLabel(a.blob)}` : '');
      extra[`attachment${i}`] = `${a.name}|${where}|${a.fingerprint}`;
    });
    return extra;
  }

  /** Read a response body, refusing an error status and more than maxFileBytes. */
  private async readResponse(res: Response, url: string): Promise<Uint8Array> {
    const shown = displayUrl(url);
    const max = this.settings.maxFileBytes;
    if (!res.ok) {
      await res.body?.cancel().catch(() => undefined);
      const retry = res.status >= 500 || res.status === 429 || res.status === 408;
      throw new AttachmentError(
        `http-${res.status}`,
        `${shown} answered HTTP ${res.status}${retry ? '' : '; fix the URL in the record'}`,
        { retryable: retry },
      );
    }
    const declared = Number(res.headers.get('content-length') ?? NaN);
    if (Number.isFinite(declared) && declared > max) {
      await res.body?.cancel().catch(() => undefined);
      throw refused(
        'too-large',
        `${shown} is ${declared} bytes, above the ${max}-byte limit (mapping.attachments.maxFileBytes)`,
      );
    }
    const chunks: Uint8Array[] = [];
    let size = 0;
    if (res.body) {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        size += chunk.byteLength;
        if (size > max) {
          await res.body.cancel().catch(() => undefined);
          throw refused('too-large', `${shown} is over the ${max}-byte limit (mapping.attachments.maxFileBytes)`);
        }
        chunks.push(chunk);
      }
    }
    return new Uint8Array(Buffer.concat(chunks));
  }

  private async read(
    a: FingerprintedFile,
    options: OperationOptions,
  ): Promise<{ bytes: Uint8Array; contentType?: string }> {
    const { maxFileBytes, timeoutMs } = this.settings;
    if (a.blob !== undefined) return this.blobs.read(a.blob, { maxBytes: maxFileBytes, timeoutMs, ...options });
    if (a.path !== undefined) {
      const opened = await openInFolder(this.settings.folder, a.path);
      if (opened.size > maxFileBytes) {
        await opened.handle.close().catch(() => undefined);
        throw refused(
          'too-large',
          `the file is ${opened.size} bytes, above the ${maxFileBytes}-byte limit (mapping.attachments.maxFileBytes)`,
        );
      }
      try {
        return { bytes: await readOpened(opened, options) };
      } catch (e) {
        if (options.abortSignal?.aborted) throw e;
        throw refused('unreadable', `cannot read ${a.path} (${errCode(e)})`);
      }
    }
    if (a.url === undefined) throw refused('unreadable', 'the attachment names no path, URL or blob');
    const res = await this.urls.fetch(a.url, { timeoutMs, ...options });
    const bytes = await this.readResponse(res, a.url);
    const contentType = res.headers.get('content-type');
    return { bytes, ...(contentType ? { contentType } : {}) };
  }

  /**
   * Extract every file of an item and build the final item (content joined, metadata mapped, under the cap).
   * Files are read one at a time. Returns `ok: false` (dead-letter the item) for a file that cannot be read or
   * extracted, or an item over the cap with `contentOverflow: "reject"`; throws only a retryable
   * {@link AttachmentError} (or the caller's abort).
   */
  async apply(
    item: ExternalItem,
    attachments: FingerprintedFile[],
    options: OperationOptions = {},
  ): Promise<ApplyAttachmentsResult> {
    const settings = this.settings;
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
        input = await this.read(a, options);
      } catch (e) {
        if (e instanceof AttachmentError && !e.retryable) return fail(e.code, e.message);
        throw e;
      }
      const r = await extractFile(
        { ...input, fileName: a.name },
        {
          ocr: settings.ocr,
          maxBytes: settings.maxFileBytes,
          timeoutMs: settings.timeoutMs,
          html: settings.html,
          ...(options.abortSignal ? { signal: options.abortSignal } : {}),
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
    return finishItem(item, attachments, texts, metadata, warnings, files, settings);
  }
}

/** Join the texts into the item, map metadata to properties, and hold the item to Graph's cap and schema. */
function finishItem(
  item: ExternalItem,
  attachments: AttachmentFile[],
  texts: { text: string; type: 'text' | 'html' }[],
  metadata: ExtractMetadata[],
  warnings: string[],
  files: AttachmentReport[],
  settings: AttachmentSettings,
): ApplyAttachmentsResult {
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
    const c = coerceToPropertyType(property.type.endsWith('Collection') ? values : values[0], property.type);
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

/** Build the service for a definition's mapping.attachments (throws ConfigError naming the field). */
export function createAttachmentService(
  def: AttachmentsMapping,
  schema: SchemaProperty[],
  options: CompileOptions & AttachmentServiceOptions,
): AttachmentService {
  return new AttachmentService(compileAttachmentSettings(def, schema, options), options);
}
