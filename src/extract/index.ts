/**
 * Content extraction for graph-connector: binary attachments become searchable text plus metadata before the item
 * is PUT to Graph. `extractFile` never throws: every failure is an `{ ok: false, code, reason }` result.
 */
import { createHash } from 'node:crypto';
import { detect, extensionOf, formatFromExtension } from './detect.js';
import { htmlToText, sanitizeHtml } from './html.js';
import { jpegImage, pngImage, rgbaToPng, tiffImages } from './image.js';
import type { OcrImage } from './image.js';
import { recognize } from './ocr.js';
import { coreProperties, docxText, ooxmlKind, pptxText, readZip, xlsxText, zipEntries } from './ooxml.js';
import { extractPdf } from './pdf.js';
import type { PdfImage } from './pdf.js';
import { charsetFromContentType, charsetFromHtml, decodeText, truncateAtWordBoundary } from './text.js';
import { ExtractError } from './types.js';
import type { DetectedFormat, ExtractInput, ExtractMetadata, ExtractOptions, ExtractResult } from './types.js';

export type {
  DetectedFormat,
  ExtractErrorCode,
  ExtractInput,
  ExtractMetadata,
  ExtractOptions,
  ExtractResult,
} from './types.js';
export { ExtractError } from './types.js';
export { truncateAtWordBoundary, utf8Length, decodeText } from './text.js';
export { closeOcr, ocrWorkerCount, setOcrIdleMs, warmUpOcr } from './ocr.js';
export { htmlToText, sanitizeHtml } from './html.js';

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
  if (cut.truncated && result.contentType === 'html') value = value.replace(/<[^>]*$/, '').trimEnd();
  return { content: { type: result.contentType, value }, truncated: cut.truncated };
}

/** sha256 of the file's bytes (hex), for the pipeline's "unchanged" hash. */
export function fileFingerprint(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Extra options beyond the shared contract. */
export interface ExtractOptionsExtra extends ExtractOptions {
  /** truncate the returned text at a word boundary to this many UTF-8 bytes (adds a warning) */
  maxTextBytes?: number;
  /** OCR at most this many images per file (default 50): bounds the cost of a long scanned PDF */
  maxOcrImages?: number;
}

interface Extracted {
  text: string;
  contentType: 'text' | 'html';
  metadata: Partial<ExtractMetadata>;
  warnings: string[];
  ocrUsed: boolean;
}

interface Ctx {
  signal: AbortSignal;
  options: ExtractOptionsExtra;
  languages: string[];
}

const LABEL: Record<DetectedFormat, string> = {
  pdf: 'PDF',
  docx: 'DOCX',
  pptx: 'PPTX',
  xlsx: 'XLSX',
  html: 'HTML',
  text: 'text',
  markdown: 'Markdown',
  png: 'PNG',
  jpeg: 'JPEG',
  tiff: 'TIFF',
};

/** Clean extracted text: normalise newlines, drop control characters other than tab and newline. */
function cleanText(text: string): string {
  return (
    text
      .replace(/\r\n?/g, '\n')
      // eslint-disable-next-line no-control-regex -- removing control characters is the point
      .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/g, '')
      .replace(/\n{3,}/g, '\n\n')
      .trim()
  );
}

async function ocrImages(images: OcrImage[], ctx: Ctx, label: string, warnings: string[]): Promise<string> {
  const texts: string[] = [];
  for (const [i, img] of images.entries()) {
    const { text, confidence } = await recognize(img.png, ctx.languages, ctx.signal);
    const cleaned = text.trim();
    if (!cleaned) warnings.push(`OCR found no text in ${label}${images.length > 1 ? ` ${i + 1}` : ''}`);
    else if (confidence < 50)
      warnings.push(
        `OCR confidence is low (${Math.round(confidence)}%) for ${label}${images.length > 1 ? ` ${i + 1}` : ''}`,
      );
    if (cleaned) texts.push(cleaned);
  }
  return texts.join('\n\n');
}

async function extractImage(format: 'png' | 'jpeg' | 'tiff', bytes: Uint8Array, ctx: Ctx): Promise<Extracted> {
  if (!ctx.options.ocr)
    throw new ExtractError('unsupported', `${LABEL[format]} images need OCR, which is off; enable ocr to index them`);
  const images = format === 'png' ? [pngImage(bytes)] : format === 'jpeg' ? [jpegImage(bytes)] : tiffImages(bytes);
  const metadata: Partial<ExtractMetadata> = format === 'tiff' ? { pageCount: images.length } : {};
  const max = ctx.options.maxOcrImages ?? 50;
  const warnings: string[] = [];
  if (images.length > max) warnings.push(`only the first ${max} of ${images.length} TIFF pages were read by OCR`);
  const text = await ocrImages(images.slice(0, max), ctx, format === 'tiff' ? 'TIFF page' : 'the image', warnings);
  return { text, contentType: 'text', metadata, warnings, ocrUsed: true };
}

async function extractPdfFile(bytes: Uint8Array, ctx: Ctx): Promise<Extracted> {
  const maxImages = ctx.options.maxOcrImages ?? 50;
  const warnings: string[] = [];
  let ocrBudget = maxImages;
  let ocrUsed = false;
  let ocrSkipped = false;
  const pdf = await extractPdf(bytes, {
    isCancelled: () => ctx.signal.aborted,
    ...(ctx.options.ocr
      ? {
          ocrPage: async (pageNumber: number, images: PdfImage[]) => {
            if (ocrBudget <= 0) {
              ocrSkipped = true;
              return '';
            }
            const pngs = images.slice(0, Math.min(4, ocrBudget)).map((i) => rgbaToPng(i.rgba, i.width, i.height));
            ocrBudget -= pngs.length;
            ocrUsed = true;
            return ocrImages(pngs, ctx, `page ${pageNumber}`, warnings);
          },
        }
      : {}),
  });
  warnings.unshift(...pdf.warnings);
  if (ocrSkipped)
    warnings.push(`OCR stopped after ${maxImages} images (maxOcrImages); later scanned pages were not read`);
  const textless: number[] = [];
  const pageTexts: string[] = [];
  for (const page of pdf.pages) {
    if (!page.text) textless.push(page.pageNumber);
    pageTexts.push(page.text);
  }
  if (textless.length) {
    const list = textless.length > 10 ? `${textless.slice(0, 10).join(', ')}, ...` : textless.join(', ');
    warnings.push(
      ctx.options.ocr
        ? `${textless.length} page(s) have no readable text (${list})`
        : `${textless.length} page(s) have no text layer (${list}); enable ocr to read scanned pages`,
    );
  }
  return {
    text: pageTexts.filter(Boolean).join('\n\n'),
    contentType: 'text',
    metadata: pdf.metadata,
    warnings,
    ocrUsed,
  };
}

async function extractZip(bytes: Uint8Array, ext: string | undefined): Promise<Extracted & { format: DetectedFormat }> {
  const entries = zipEntries(bytes);
  const kind = ooxmlKind(entries.map((e) => e.name));
  if (!kind) {
    const expected = formatFromExtension(ext);
    if (expected === 'docx' || expected === 'pptx' || expected === 'xlsx')
      throw new ExtractError('corrupt', `the .${ext} file is a zip but has no ${expected.toUpperCase()} main part`);
    throw new ExtractError('unsupported', 'zip archives other than DOCX, PPTX and XLSX are not supported');
  }
  const declared = entries.reduce((n, e) => n + e.size, 0);
  const limit = Math.min(1 << 30, Math.max(100 * 1024 * 1024, bytes.length * 30));
  if (declared > limit)
    throw new ExtractError(
      'too-large',
      `the ${kind.toUpperCase()} expands to ${declared} bytes, above the ${limit}-byte limit; it may be a zip bomb`,
    );
  if (kind === 'docx') {
    const zip = readZip(bytes, limit, (n) => n.startsWith('docProps/'));
    const { text, warnings } = await docxText(bytes);
    return { format: kind, text, contentType: 'text', metadata: coreProperties(zip), warnings, ocrUsed: false };
  }
  const zip = readZip(bytes, limit, (n) => n.endsWith('.xml') || n.endsWith('.rels'));
  const metadata = coreProperties(zip);
  if (kind === 'pptx') {
    const { text, slides } = pptxText(zip);
    return {
      format: kind,
      text,
      contentType: 'text',
      metadata: { ...metadata, pageCount: slides },
      warnings: [],
      ocrUsed: false,
    };
  }
  const { text, sheets } = xlsxText(zip);
  return {
    format: kind,
    text,
    contentType: 'text',
    metadata: { ...metadata, pageCount: sheets },
    warnings: [],
    ocrUsed: false,
  };
}

function hasUtf16(bytes: Uint8Array, needle: string): boolean {
  const pattern = Buffer.from(needle, 'utf16le');
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).includes(pattern);
}

async function run(input: ExtractInput, ctx: Ctx): Promise<Extracted & { format: DetectedFormat }> {
  const { bytes, fileName, contentType } = input;
  const ext = extensionOf(fileName);
  const d = detect(bytes, fileName, contentType);
  if (d.kind === 'zip') return extractZip(bytes, ext);
  if (d.kind === 'cfb') {
    if (hasUtf16(bytes, 'EncryptionInfo') || hasUtf16(bytes, 'EncryptedPackage'))
      throw new ExtractError('encrypted', 'the Office file is password-protected; remove the password at the source');
    throw new ExtractError(
      'unsupported',
      'legacy Office binary files (.doc, .xls, .ppt) are not supported; save them as .docx, .xlsx or .pptx',
    );
  }
  if (d.kind === 'unknown')
    throw new ExtractError('unsupported', `the file format${d.hint ? ` (.${d.hint})` : ''} is not recognised`);
  const format = d.format;
  const warnings: string[] = [];
  const expected = formatFromExtension(ext);
  if (d.by === 'magic' && expected && expected !== format)
    warnings.push(`the file name says .${ext} but the content is ${LABEL[format]}; extracted as ${LABEL[format]}`);

  if (d.by !== 'magic') {
    // extension or MIME type claims a binary format whose signature is missing
    if (format === 'pdf') throw new ExtractError('corrupt', 'the file is named as a PDF but does not start with %PDF-');
    if (format === 'docx' || format === 'pptx' || format === 'xlsx')
      throw new ExtractError('corrupt', `the file is named as ${LABEL[format]} but is not a zip container`);
    if (format === 'png' || format === 'jpeg' || format === 'tiff')
      throw new ExtractError(
        'corrupt',
        `the file is named as ${LABEL[format]} but lacks the ${LABEL[format]} signature`,
      );
  }
  let out: Extracted;
  switch (format) {
    case 'pdf':
      out = await extractPdfFile(bytes, ctx);
      break;
    case 'png':
    case 'jpeg':
    case 'tiff':
      out = await extractImage(format, bytes, ctx);
      break;
    case 'html': {
      const decoded = decodeText(bytes, charsetFromContentType(input.contentType) ?? charsetFromHtml(bytes));
      const { text, title, author } = htmlToText(decoded.text);
      const metadata: Partial<ExtractMetadata> = { ...(title ? { title } : {}), ...(author ? { author } : {}) };
      out =
        ctx.options.html === 'keep'
          ? {
              text: sanitizeHtml(decoded.text),
              contentType: 'html',
              metadata,
              warnings: decoded.warnings,
              ocrUsed: false,
            }
          : { text, contentType: 'text', metadata, warnings: decoded.warnings, ocrUsed: false };
      break;
    }
    case 'text':
    case 'markdown': {
      const decoded = decodeText(bytes, charsetFromContentType(input.contentType));
      out = { text: decoded.text, contentType: 'text', metadata: {}, warnings: decoded.warnings, ocrUsed: false };
      break;
    }
    default:
      throw new ExtractError('unsupported', `the ${LABEL[format]} format is not supported`);
  }
  return { ...out, warnings: [...warnings, ...out.warnings], format };
}

/**
 * Turn a file into searchable text plus metadata. Format by magic bytes first, then extension, then MIME type.
 * Never throws: unsupported, encrypted, corrupt, too-large and timed-out files come back as `{ ok: false }`.
 */
export async function extractFile(input: ExtractInput, options: ExtractOptionsExtra): Promise<ExtractResult> {
  const { bytes } = input;
  if (bytes.length > options.maxBytes)
    return {
      ok: false,
      code: 'too-large',
      reason: `the file is ${bytes.length} bytes, above the ${options.maxBytes}-byte extraction limit (maxBytes)`,
    };
  if (options.signal?.aborted) return { ok: false, code: 'timeout', reason: 'extraction was cancelled by the caller' };

  const controller = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    controller.abort();
  }, options.timeoutMs);
  const onCallerAbort = () => controller.abort();
  options.signal?.addEventListener('abort', onCallerAbort, { once: true });
  const ctx: Ctx = {
    signal: controller.signal,
    options,
    languages: options.ocrLanguages?.length ? options.ocrLanguages : ['eng'],
  };
  const aborted = new Promise<never>((_, reject) => {
    controller.signal.addEventListener('abort', () => reject(new ExtractError('timeout', '')), { once: true });
  });
  aborted.catch(() => undefined);
  try {
    const out = await Promise.race([run(input, ctx), aborted]);
    if (controller.signal.aborted) throw new ExtractError('timeout', '');
    let text = cleanText(out.text);
    const warnings = out.warnings;
    if (options.maxTextBytes !== undefined) {
      const cut = truncateAtWordBoundary(text, options.maxTextBytes);
      if (cut.truncated) warnings.push(`text truncated at a word boundary to ${options.maxTextBytes} UTF-8 bytes`);
      text = cut.text;
    }
    const ext = extensionOf(input.fileName);
    const metadata: ExtractMetadata = {
      ...(input.fileName ? { fileName: input.fileName.split(/[\\/]/).pop()! } : {}),
      ...(ext ? { fileExtension: ext } : {}),
      sizeBytes: bytes.length,
      ...out.metadata,
      format: out.format,
    };
    return { ok: true, text, contentType: out.contentType, metadata, warnings, ocrUsed: out.ocrUsed };
  } catch (err) {
    if (controller.signal.aborted || (err instanceof ExtractError && err.code === 'timeout'))
      return {
        ok: false,
        code: 'timeout',
        reason: timedOut
          ? `extraction took longer than ${options.timeoutMs} ms (timeoutMs); the work was stopped`
          : 'extraction was cancelled by the caller',
      };
    if (err instanceof ExtractError) return { ok: false, code: err.code, reason: err.message };
    return {
      ok: false,
      code: 'corrupt',
      reason: `the file could not be read: ${(err as Error)?.message ?? String(err)}`,
    };
  } finally {
    clearTimeout(timer);
    options.signal?.removeEventListener('abort', onCallerAbort);
  }
}
