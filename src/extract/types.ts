/** Public types of the content-extraction library (issue #7). */

export interface ExtractInput {
  bytes: Uint8Array;
  /** original file name; its extension is the second signal for the format (magic bytes come first) */
  fileName?: string;
  /** MIME type reported by the source, if any; the third signal */
  contentType?: string;
}

export interface ExtractOptions {
  /** run OCR on images and on PDF pages without a text layer */
  ocr: boolean;
  /** tesseract language codes (default `['eng']`); each needs its `@tesseract.js-data/<lang>` package installed */
  ocrLanguages?: string[];
  /** files larger than this are refused with `too-large` before any parsing */
  maxBytes: number;
  /** wall-clock limit for one file; on expiry the result is `timeout` and an OCR worker is terminated */
  timeoutMs: number;
  /** abort from the caller (for example a crawl being cancelled); reported as `timeout` */
  signal?: AbortSignal;
  /** HTML input: `text` (default) converts to plain text, `keep` returns sanitised HTML with contentType `html` */
  html?: 'text' | 'keep';
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

/** Thrown inside extractors and turned into an `{ ok: false }` result by `extractFile`; never escapes it. */
export class ExtractError extends Error {
  constructor(
    readonly code: ExtractErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'ExtractError';
  }
}
