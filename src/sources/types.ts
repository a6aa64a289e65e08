/**
 * The Source contract. A source streams records page by page (never the whole source in memory) and knows
 * nothing of Graph or the queue. Malformed records are yielded as `{ key, error }` so the crawl counts them.
 */
import type { ExternalGroup } from '../config/model.js';
import type { Logger } from '../log.js';
import type { SecretProvider } from '../secrets/types.js';

export type SourceRecord =
  | {
      /** Stable id for reporting (the keyField value, else a position such as `line 12`). */
      key: string;
      data: Record<string, unknown>;
      /** Where the record was found (`line 12`, `element 3`, `page 2`), for diagnostics. */
      position?: string;
      error?: undefined;
    }
  | { key: string; error: string; position?: string; data?: undefined };

export interface ReadOptions {
  signal?: AbortSignal;
  /** Incremental read from this watermark (a value previously returned by readCursor). */
  cursor?: string;
}

/**
 * Where a paged read can resume: opaque to the crawl, JSON-serialisable, at most 16 KB once serialised. A source
 * returns one after every page ({@link SourcePage.next}); `readPages({ position })` resumes right after that page,
 * so a crawl killed at any moment re-reads at most the page it was working on. Examples: the byte offset after the
 * page's last complete record of a file or blob (with what is needed to go on: a CSV header, a line number, the
 * blob's ETag), the `@odata.nextLink` or page number of a REST source.
 */
export type SourcePosition = { readonly [key: string]: unknown };

export interface PagedReadOptions extends ReadOptions {
  /** Resume after the page that returned this position; absent = from the beginning. */
  position?: SourcePosition;
  /** Records per page for sources that choose their page size (files, blobs). Default 1000. */
  pageSize?: number;
}

/** How far a read has come, when the source can tell (a file knows its size; a REST source may know a total). */
export interface SourceProgress {
  /** Units done so far, counted from the very beginning of the read (not from the resumed position). */
  done: number;
  /** Units in all, when known. */
  total?: number;
  unit: 'bytes' | 'records' | 'pages';
}

export interface SourcePage {
  records: SourceRecord[];
  /** Where to resume after this page; undefined after the last page. */
  next: SourcePosition | undefined;
  progress?: SourceProgress;
}

export interface SourceCapabilities {
  /** read({cursor}) returns only records changed since the cursor. */
  incremental: boolean;
  /** groups() yields external groups with their members. */
  groups: boolean;
}

export interface Source {
  /** The definition's type: csv, jsonLines, jsonArray, rest. */
  readonly kind: string;
  readonly capabilities: SourceCapabilities;
  read(options?: ReadOptions): AsyncIterable<SourceRecord>;
  /**
   * The same records as {@link read}, page by page, each page with the position to resume after it. A resumed read
   * yields exactly the records that follow that page (same keys, same `position` labels), so counts stay exact.
   */
  readPages(options?: PagedReadOptions): AsyncIterable<SourcePage>;
  /**
   * The watermark to take BEFORE enumerating for an incremental crawl (e.g. now minus an overlap window).
   * Commit it only after the crawl settled; pass it back as `cursor` next time.
   */
  readCursor?(options?: { signal?: AbortSignal }): Promise<string>;
  groups?(options?: { signal?: AbortSignal }): AsyncIterable<ExternalGroup>;
}

/** Stores a rotated secret (e.g. an OAuth2 refresh token) back where it came from (Key Vault, ...). */
export type SecretWriter = (name: string, value: string, options?: { signal?: AbortSignal }) => Promise<void>;

export interface SourceDeps {
  secrets: SecretProvider;
  logger: Logger;
  /** Folder of connector.json: relative paths in the definition resolve against it. */
  baseDir: string;
  fetch?: typeof fetch;
  /** Optional: where rotated refresh tokens are written. Without it they are kept in memory (with a warning). */
  secretWriter?: SecretWriter;
  /** Clock, for cursors and token expiry (tests). */
  now?: () => Date;
}

export type SourceErrorCode = 'http' | 'network' | 'throttled' | 'parse' | 'truncated' | 'auth' | 'config' | 'aborted';

/** A read that cannot complete. The crawl must be marked failed (never treated as a complete enumeration). */
export class SourceError extends Error {
  override name = 'SourceError';
  readonly code: SourceErrorCode;
  readonly status?: number;
  /** The request URL without its query string (queries may carry tokens). */
  readonly url?: string;
  readonly retryable: boolean;
  constructor(
    code: SourceErrorCode,
    message: string,
    options: { status?: number; url?: string; retryable?: boolean; cause?: unknown } = {},
  ) {
    super(message, options.cause !== undefined ? { cause: options.cause } : undefined);
    this.code = code;
    this.status = options.status;
    this.url = options.url;
    this.retryable = options.retryable ?? false;
  }
}

/** A URL safe to show in logs and errors: no query, no fragment, no credentials. */
export function displayUrl(url: string | URL): string {
  try {
    const u = new URL(url);
    return `${u.origin}${u.pathname}`;
  } catch {
    return '(invalid url)';
  }
}
