/**
 * Content extraction for graph-connector: binary attachments become searchable text plus metadata before the item
 * is PUT to Graph. `extractFile` never throws: every failure is an `{ ok: false, code, reason }` result.
 *
 * Every file is extracted in a sandbox worker process (src/extract/sandbox.ts) with a time limit, a memory limit
 * and bounded parsers; this module loads none of the format libraries (pdfjs, image decoders, tesseract.js): they
 * are imported inside the worker process, or for OCR in this process, on first use.
 */
import { createHash } from 'node:crypto';
import { extensionOf } from './detect.js';
import { closeOcr } from './ocr.js';
import type { RunOptions } from './run.js';
import { closeSandbox, runInSandbox, warmUpSandbox } from './sandbox.js';
import { truncateAtWordBoundary } from './text.js';
import { DEFAULT_EXTRACT_LIMITS } from './types.js';
import type { ExtractInput, ExtractMetadata, ExtractOptions, ExtractResult } from './types.js';

export type {
  DetectedFormat,
  ExtractErrorCode,
  ExtractInput,
  ExtractLimits,
  ExtractMetadata,
  ExtractOptions,
  ExtractResult,
} from './types.js';
export { DEFAULT_EXTRACT_LIMITS, ExtractError } from './types.js';
export { truncateAtWordBoundary, utf8Length, decodeText } from './text.js';
export { closeOcr, ocrJobCount, ocrWorkerCount, setOcrIdleMs, warmUpOcr } from './ocr.js';
export { htmlToText, sanitizeHtml } from './html.js';
export {
  configureSandbox,
  sandboxPids,
  sandboxResidentBytes,
  sandboxWorkerCount,
  RECYCLE_ABOVE_MB,
} from './sandbox.js';
export type { SandboxSettings } from './sandbox.js';

/** @deprecated every option is in {@link ExtractOptions} now */
export type ExtractOptionsExtra = ExtractOptions;

/** Graph's item cap is 4 MB for the whole request body: leave room for properties and the ACL. */
export const DEFAULT_MAX_CONTENT_BYTES = 3_800_000;

/**
 * The externalItem `content` for a successful extraction, cut to `maxBytes` UTF-8 bytes at a word boundary (HTML is
 * also cut back before a tag the cut would split). `truncated` tells the caller to record a warning.
 */
export function itemContent(
  result: Extract<ExtractResult, { ok: true }>,
  maxBytes: number = DEFAULT_MAX_CONTENT_BYTES,
): { content: { type: 'text' | 'html'; value: string }; truncated: boolean } {
  const cut = truncateAtWordBoundary(result.text, maxBytes);
  let value = cut.text;
  if (cut.truncated && result.contentType === 'html') {
    const open = value.lastIndexOf('<');
    if (open > value.lastIndexOf('>')) value = value.slice(0, open).trimEnd();
  }
  return { content: { type: result.contentType, value }, truncated: cut.truncated };
}

/** sha256 of the file's bytes (hex), for the pipeline's "unchanged" hash. */
export function fileFingerprint(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** How messages name a file: its base name in quotes, or "the file". */
function fileLabel(fileName: string | undefined): string {
  const base = fileName?.split(/[\\/]/).pop();
  return base ? `"${base.length > 200 ? `${base.slice(0, 200)}…` : base}"` : 'the file';
}

/**
 * Turn a file into searchable text plus metadata. Format by magic bytes first, then extension, then MIME type.
 * Never throws: unsupported, encrypted, corrupt, too-large and timed-out files come back as `{ ok: false }`, with a
 * reason that names the file (and, for a limit, the limit and how to raise it).
 */
export async function extractFile(input: ExtractInput, options: ExtractOptions): Promise<ExtractResult> {
  const { bytes } = input;
  const file = fileLabel(input.fileName);
  const fail = (code: Extract<ExtractResult, { ok: false }>['code'], reason: string): ExtractResult => ({
    ok: false,
    code,
    reason: reason.includes(file) ? reason : `${reason} (${file})`,
  });
  if (bytes.length > options.maxBytes)
    return fail(
      'too-large',
      `the file is ${bytes.length} bytes, above the ${options.maxBytes}-byte extraction limit (maxBytes)`,
    );
  const abortSignal = options.abortSignal ?? options.signal;
  if (abortSignal?.aborted) return fail('timeout', `extraction of ${file} was cancelled by the caller`);

  const runOptions: RunOptions = {
    ocr: options.ocr,
    ocrLanguages: options.ocrLanguages?.length ? options.ocrLanguages : ['eng'],
    html: options.html ?? 'text',
    maxOcrImages: options.maxOcrImages ?? 50,
    maxTextBytes: options.maxTextBytes ?? DEFAULT_EXTRACT_LIMITS.maxTextBytes,
    maxMemoryMb: options.maxMemoryMb ?? DEFAULT_EXTRACT_LIMITS.maxMemoryMb,
    maxInflatedBytes: options.maxInflatedBytes ?? DEFAULT_EXTRACT_LIMITS.maxInflatedBytes,
    maxPages: options.maxPages ?? DEFAULT_EXTRACT_LIMITS.maxPages,
    maxImagePixels: options.maxImagePixels ?? DEFAULT_EXTRACT_LIMITS.maxImagePixels,
  };
  const outcome = await runInSandbox(
    {
      bytes,
      ...(input.fileName !== undefined ? { fileName: input.fileName } : {}),
      ...(input.contentType !== undefined ? { contentType: input.contentType } : {}),
    },
    runOptions,
    { timeoutMs: options.timeoutMs, file },
    { abortSignal },
  );
  if (!outcome.ok) return fail(outcome.code, outcome.reason);
  const out = outcome.result;
  const ext = extensionOf(input.fileName);
  const metadata: ExtractMetadata = {
    ...(input.fileName ? { fileName: input.fileName.split(/[\\/]/).pop()! } : {}),
    ...(ext ? { fileExtension: ext } : {}),
    sizeBytes: bytes.length,
    ...out.metadata,
    format: out.format,
  };
  return {
    ok: true,
    text: out.text,
    contentType: out.contentType,
    metadata,
    warnings: out.warnings,
    ocrUsed: out.ocrUsed,
  };
}

/**
 * Start an extraction worker ahead of time (for a process that is about to extract files); `maxMemoryMb` as the
 * files will be extracted with.
 */
export function warmUpExtraction(options: { maxMemoryMb?: number } = {}): Promise<void> {
  return warmUpSandbox(options.maxMemoryMb ?? DEFAULT_EXTRACT_LIMITS.maxMemoryMb);
}

/** Stop every extraction worker and OCR worker now (call on shutdown; a CLI exits without it, only later). */
export async function closeExtraction(): Promise<void> {
  await Promise.all([closeSandbox(), closeOcr()]);
}
