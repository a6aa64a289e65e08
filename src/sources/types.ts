/**
 * The Source contract. A source streams records page by page (never the whole source in memory) and knows
 * nothing of Graph or the queue. Malformed records are yielded as `{ key, error }` so the crawl counts them.
 * Every page carries the position to resume after it; docs/sources.md says what each source stores there.
 */
import type { Telemetry } from '../core/telemetry.js';
import type { ContainerClient } from '@azure/storage-blob';
import type { ExternalGroup } from '../config/model.js';
import type { OperationOptions } from '../core/async.js';
import { ConnectorError } from '../core/errors.js';
import type { Logger } from '../log.js';
import type { SecretProvider } from '../secrets/types.js';

export type SourceRecord =
  | {
      /** Stable id for reporting (the keyField value, else a position such as `line 12`). */
      key: string;
      data: Record<string, unknown>;
      /** Where the record was found (`line 12`, `element 3`, `page 2 item 1`), for diagnostics. */
      position?: string;
      error?: undefined;
    }
  | { key: string; error: string; position?: string; data?: undefined };

/** Cancellation for a source operation: `abortSignal` aborts file streams, requests and Retry-After waits. */
export type SourceOperationOptions = OperationOptions;

export interface ReadOptions extends SourceOperationOptions {
  /** Incremental read from this watermark (a value previously returned by readCursor). */
  cursor?: string;
}

/**
 * Where a paged read can resume: opaque to the crawl, JSON-serialisable, at most {@link MAX_POSITION_BYTES} once
 * serialised. A source returns one after every page ({@link SourcePage.next}); `readPages({ position })` resumes
 * right after that page, so a crawl killed at any moment re-reads at most the page it was working on. Files and
 * blobs store the byte offset after the page's last complete record (with the line number, the CSV header, the
 * JSON array splitter's state and the file's identity); REST sources store the next page's URL. A position may
 * hold a REST API's paging token: store it as carefully as the data itself and never log it.
 */
export type SourcePosition = { readonly [key: string]: unknown };

/** The largest serialised position a source returns (a longer next link fails the read rather than the store). */
export const MAX_POSITION_BYTES = 16 * 1024;

export interface PagedReadOptions extends ReadOptions {
  /** Resume after the page that returned this position; absent = from the beginning. */
  position?: SourcePosition;
  /**
   * Records per page for sources that choose their page size (files, blobs). Default 1000. A CSV page ends where
   * the parser knows a row ended, so a page ending on a row with a quoting error runs on to the next row that does.
   * REST pages are the server's.
   */
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
  /** Where to resume after this page; undefined after the last page (which may be empty). */
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
  /** Every record, in order: the records of {@link readPages} one after the other. */
  read(options?: ReadOptions): AsyncIterable<SourceRecord>;
  /**
   * The same records as {@link read}, page by page, each page with the position to resume after it. A resumed read
   * yields exactly the records that follow that page (same keys, same `position` labels), so counts stay exact. A
   * position the source cannot use (another definition, or the file, blob or URL changed since the read began)
   * fails with a {@link SourceError} (`SourcePosition`, `SourceChanged`) rather than mixing versions.
   */
  readPages(options?: PagedReadOptions): AsyncIterable<SourcePage>;
  /**
   * The watermark to take BEFORE enumerating for an incremental crawl (e.g. now minus an overlap window).
   * Commit it only after the crawl settled; pass it back as `cursor` next time.
   */
  readCursor?(options?: SourceOperationOptions): Promise<string>;
  groups?(options?: SourceOperationOptions): AsyncIterable<ExternalGroup>;
}

/** Stores a rotated secret (e.g. an OAuth2 refresh token) back where it came from (Key Vault, ...). */
export type SecretWriter = (name: string, value: string, options?: OperationOptions) => Promise<void>;

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
  /** Containers of the connector's own storage account, for `blob` inputs. Without it a blob input fails. */
  containers?: (name: string) => ContainerClient;
  /** Environment for the names of the connector's own containers (`CLAIMS_CONTAINER`); default process.env. */
  env?: Record<string, string | undefined>;
  /** A dependency span per source call (default: none). */
  telemetry?: Telemetry;
}

/** The abort signal of an options bag. */
export function abortSignalOf(options: SourceOperationOptions | undefined): AbortSignal | undefined {
  return options?.abortSignal;
}

export type SourceErrorCode =
  /** The server answered with an error status (after retries for transient ones). */
  | 'SourceHttp'
  /** The connection failed (after retries). */
  | 'SourceNetwork'
  /** Throttled beyond the retry budget. */
  | 'SourceThrottled'
  /** A response or document that cannot be parsed as a whole (not one malformed record: that is a record error). */
  | 'SourceParse'
  /** The document ends early or has trailing content: the read is incomplete. */
  | 'SourceTruncated'
  /** Credentials were refused or could not be obtained. */
  | 'SourceAuth'
  /** The definition points at something that cannot be read (missing file, bad container, ...). */
  | 'SourceConfig'
  /** The read was cancelled. */
  | 'SourceAborted'
  /** The file, blob or URL changed since the read began: a resumed read would mix two versions. */
  | 'SourceChanged'
  /** A position this source cannot resume from (another source or definition, a corrupt value). */
  | 'SourcePosition';

/**
 * A read that cannot complete. The crawl must be marked failed (never treated as a complete enumeration).
 * `SourceChanged` and `SourcePosition` mean the saved position is useless: the enumeration must start over.
 */
export class SourceError extends ConnectorError {
  override name = 'SourceError';
  declare readonly code: SourceErrorCode;
  readonly status?: number;
  /** The request URL without its query string (queries may carry tokens). */
  readonly url?: string;
  constructor(
    code: SourceErrorCode,
    message: string,
    options: { status?: number; url?: string; retryable?: boolean; retryAfterMs?: number; cause?: unknown } = {},
  ) {
    super(message, {
      code,
      retryable: options.retryable ?? false,
      ...(options.retryAfterMs !== undefined ? { retryAfterMs: options.retryAfterMs } : {}),
      ...(options.cause !== undefined ? { cause: options.cause } : {}),
    });
    this.status = options.status;
    this.url = options.url;
  }
}

/** A URL safe to show in logs and errors: the one rule everywhere (scheme, host and path). */
export { displayUrl } from '../core/url.js';
