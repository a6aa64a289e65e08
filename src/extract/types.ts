/** Public types of the content-extraction library. */
import { ConnectorError } from '../core/errors.js';

export interface ExtractInput {
  bytes: Uint8Array;
  /** original file name; its extension is the second signal for the format (magic bytes come first) */
  fileName?: string;
  /** MIME type reported by the source, if any; the third signal */
  contentType?: string;
}

/**
 * The bounds of one extraction beyond `maxBytes` and `timeoutMs` (see docs/extraction.md, "Limits"). Each has a
 * default in {@link DEFAULT_EXTRACT_LIMITS}; pass a field in the options of `extractFile` to change it.
 */
export interface ExtractLimits {
  /**
   * Memory of one extraction, in MB: the V8 heap limit of the sandbox worker that runs it, and how much the
   * process may grow while it runs before the worker is stopped (decoded buffers live outside the V8 heap).
   */
  maxMemoryMb: number;
  /** Bytes that inflating the parts of one zip-based file (DOCX, PPTX, XLSX) may produce, counted as produced. */
  maxInflatedBytes: number;
  /** PDF pages read; later pages are skipped with a warning. */
  maxPages: number;
  /** Pixels of one image (width × height) that may be decoded: an image file, a TIFF page, a PDF image. */
  maxImagePixels: number;
  /**
   * UTF-8 bytes of text one file may yield; longer text is cut at a word boundary, with a warning. The default,
   * twice Graph's 4 MB item cap, keeps every use of the text while bounding what crosses between processes.
   */
  maxTextBytes: number;
}

export const DEFAULT_EXTRACT_LIMITS: Readonly<ExtractLimits> = Object.freeze({
  maxMemoryMb: 512,
  maxInflatedBytes: 100 * 1024 * 1024,
  maxPages: 2_000,
  maxImagePixels: 40_000_000,
  maxTextBytes: 8 * 1024 * 1024,
});

export interface ExtractOptions extends Partial<ExtractLimits> {
  /** run OCR on images and on PDF pages without a text layer */
  ocr: boolean;
  /** tesseract language codes (default `['eng']`); each needs its `@tesseract.js-data/<lang>` package installed */
  ocrLanguages?: string[];
  /** files larger than this are refused with `too-large` before any parsing */
  maxBytes: number;
  /**
   * wall-clock limit for one file, from the moment a sandbox worker takes it; on expiry the worker (and an OCR job
   * of the file) is terminated and the result is `timeout`
   */
  timeoutMs: number;
  /** abort from the caller (for example a crawl being cancelled); reported as `timeout` */
  abortSignal?: AbortSignal;
  /** @deprecated the same as `abortSignal` (kept for callers written before the options-bag convention) */
  signal?: AbortSignal;
  /** HTML input: `text` (default) converts to plain text, `keep` returns sanitised HTML with contentType `html` */
  html?: 'text' | 'keep';
  /** OCR at most this many images per file (default 50): bounds the cost of a long scanned PDF */
  maxOcrImages?: number;
}

export interface ExtractMetadata {
  fileName?: string;
  /** lower-case, without the dot */
  fileExtension?: string;
  sizeBytes: number;
  /** pages (PDF, DOCX when recorded by the writer), slides (PPTX) or sheets (XLSX) */
  pageCount?: number;
  author?: string;
  title?: string;
  /** ISO 8601 */
  modified?: string;
  /** ISO 8601 */
  created?: string;
  /** the detected format, for example `pdf`, `docx`, `png` */
  format?: DetectedFormat;
}

export type ExtractErrorCode = 'unsupported' | 'encrypted' | 'corrupt' | 'too-large' | 'timeout';

export type ExtractResult =
  | {
      ok: true;
      text: string;
      contentType: 'text' | 'html';
      metadata: ExtractMetadata;
      warnings: string[];
      ocrUsed: boolean;
    }
  | { ok: false; reason: string; code: ExtractErrorCode };

export type DetectedFormat = 'pdf' | 'docx' | 'pptx' | 'xlsx' | 'html' | 'text' | 'markdown' | 'png' | 'jpeg' | 'tiff';

/**
 * Thrown inside extractors and turned into an `{ ok: false }` result by `extractFile`; never escapes it. The same
 * file fails the same way again, so none is retryable.
 */
export class ExtractError extends ConnectorError {
  override name = 'ExtractError';
  declare readonly code: ExtractErrorCode;

  constructor(code: ExtractErrorCode, message: string, options: { cause?: unknown } = {}) {
    super(message, { code, retryable: false, ...options });
  }
}
