/**
 * The extraction itself, as it runs inside a sandbox worker (src/extract/sandbox-worker.ts): format detection,
 * then one extractor per format, each bounded by the limits it is given. Format libraries (pdfjs, the image
 * decoders) are imported on first use. OCR is asked of the parent process through `recognize`.
 */
import { detect, extensionOf, formatFromExtension } from './detect.js';
import { htmlToText, sanitizeHtml } from './html.js';
import type { OcrImage } from './image.js';
import { assertOcrInstalled } from './ocr.js';
import { coreProperties, docxBodyText, ooxmlKind, pptxText, xlsxText } from './ooxml.js';
import type { PdfImage } from './pdf.js';
import { charsetFromContentType, charsetFromHtml, decodeText, truncateAtWordBoundary } from './text.js';
import { ExtractError } from './types.js';
import type { DetectedFormat, ExtractLimits, ExtractMetadata } from './types.js';
import { Warnings } from './warnings.js';
import { InflateBudget, ZipArchive } from './zip.js';

/** What a sandbox job is told: the serialisable part of the caller's options, limits resolved. */
export interface RunOptions extends ExtractLimits {
  ocr: boolean;
  ocrLanguages: string[];
  html: 'text' | 'keep';
  maxOcrImages: number;
}

export interface RunInput {
  bytes: Uint8Array;
  fileName?: string;
  contentType?: string;
}

export interface Extracted {
  text: string;
  contentType: 'text' | 'html';
  metadata: Partial<ExtractMetadata>;
  warnings: string[];
  ocrUsed: boolean;
  format: DetectedFormat;
}

export interface RunContext {
  options: RunOptions;
  /** the file as messages name it (`"report.pdf"`) */
  file: string;
  /** OCR of one PNG, done by the parent process's tesseract worker */
  recognize(png: Uint8Array): Promise<{ text: string; confidence: number }>;
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

/** Clean extracted text: normalise newlines, drop control characters other than tab and newline (linear). */
export function cleanText(text: string): string {
  return (
    text
      .replace(/\r\n?/g, '\n')
      // eslint-disable-next-line no-control-regex -- removing control characters is the point
      .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/g, '')
      .replace(/\n{3,}/g, '\n\n')
      .trim()
  );
}

type Body = Omit<Extracted, 'format' | 'warnings'> & { warnings: Warnings };

async function ocrImages(images: OcrImage[], ctx: RunContext, label: string, warnings: Warnings): Promise<string> {
  const texts: string[] = [];
  for (const [i, img] of images.entries()) {
    const { text, confidence } = await ctx.recognize(img.png);
    const cleaned = text.trim();
    const which = `${label}${images.length > 1 ? ` ${i + 1}` : ''}`;
    if (!cleaned) warnings.push(`OCR found no text in ${which}`);
    else if (confidence < 50) warnings.push(`OCR confidence is low (${Math.round(confidence)}%) for ${which}`);
    if (cleaned) texts.push(cleaned);
  }
  return texts.join('\n\n');
}

async function extractImage(format: 'png' | 'jpeg' | 'tiff', bytes: Uint8Array, ctx: RunContext): Promise<Body> {
  if (!ctx.options.ocr)
    throw new ExtractError('unsupported', `${LABEL[format]} images need OCR, which is off; enable ocr to index them`);
  assertOcrInstalled();
  const { pngImage, jpegImage, tiffImages } = await import('./image.js');
  const max = ctx.options.maxOcrImages;
  const warnings = new Warnings();
  let images: OcrImage[];
  const metadata: Partial<ExtractMetadata> = {};
  if (format === 'tiff') {
    const tiff = tiffImages(bytes, ctx.options, max);
    images = tiff.images;
    metadata.pageCount = tiff.pageCount;
    if (tiff.pageCount > max)
      warnings.push(`only the first ${max} of ${tiff.pageCount} TIFF pages were read by OCR (maxOcrImages)`);
  } else images = [format === 'png' ? pngImage(bytes, ctx.options) : jpegImage(bytes, ctx.options)];
  const text = await ocrImages(images, ctx, format === 'tiff' ? 'TIFF page' : 'the image', warnings);
  return { text, contentType: 'text', metadata, warnings, ocrUsed: true };
}

async function extractPdfFile(bytes: Uint8Array, ctx: RunContext): Promise<Body> {
  const { extractPdf } = await import('./pdf.js');
  const { rgbaToPng } = await import('./image.js');
  const maxImages = ctx.options.maxOcrImages;
  const warnings = new Warnings();
  let ocrBudget = maxImages;
  let ocrUsed = false;
  let ocrSkipped = false;
  const pdf = await extractPdf(bytes, {
    maxPages: ctx.options.maxPages,
    maxImagePixels: ctx.options.maxImagePixels,
    ...(ctx.options.ocr
      ? {
          ocrReady: assertOcrInstalled,
          ocrPage: async (pageNumber: number, images: PdfImage[]) => {
            if (ocrBudget <= 0) {
              ocrSkipped = true;
              return '';
            }
            const pngs = images.slice(0, ocrBudget).map((i) => rgbaToPng(i.rgba, i.width, i.height));
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
    else pageTexts.push(page.text);
  }
  if (textless.length) {
    const list = textless.length > 10 ? `${textless.slice(0, 10).join(', ')}, ...` : textless.join(', ');
    warnings.push(
      ctx.options.ocr
        ? `${textless.length} page(s) have no readable text (${list})`
        : `${textless.length} page(s) have no text layer (${list}); enable ocr to read scanned pages`,
    );
  }
  return { text: pageTexts.join('\n\n'), contentType: 'text', metadata: pdf.metadata, warnings, ocrUsed };
}

function extractZip(bytes: Uint8Array, ext: string | undefined, ctx: RunContext): Body & { format: DetectedFormat } {
  const zip = ZipArchive.open(bytes);
  const kind = ooxmlKind(zip.names);
  if (!kind) {
    const expected = formatFromExtension(ext);
    if (expected === 'docx' || expected === 'pptx' || expected === 'xlsx')
      throw new ExtractError('corrupt', `the .${ext} file is a zip but has no ${expected.toUpperCase()} main part`);
    throw new ExtractError('unsupported', 'zip archives other than DOCX, PPTX and XLSX are not supported');
  }
  const budget = new InflateBudget(ctx.options.maxInflatedBytes, ctx.file);
  const metadata = coreProperties(zip, budget);
  const base = { format: kind, contentType: 'text' as const, warnings: new Warnings(), ocrUsed: false };
  if (kind === 'docx') return { ...base, text: docxBodyText(zip, budget), metadata };
  if (kind === 'pptx') {
    const { text, slides } = pptxText(zip, budget);
    return { ...base, text, metadata: { ...metadata, pageCount: slides } };
  }
  const { text, sheets } = xlsxText(zip, budget);
  return { ...base, text, metadata: { ...metadata, pageCount: sheets } };
}

function hasUtf16(bytes: Uint8Array, needle: string): boolean {
  const pattern = Buffer.from(needle, 'utf16le');
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).includes(pattern);
}

async function extractBody(input: RunInput, ctx: RunContext): Promise<Body & { format: DetectedFormat }> {
  const { bytes, fileName, contentType } = input;
  const ext = extensionOf(fileName);
  const d = detect(bytes, fileName, contentType);
  if (d.kind === 'zip') return extractZip(bytes, ext, ctx);
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
  let out: Body;
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
      const decoded = decodeText(bytes, charsetFromContentType(contentType) ?? charsetFromHtml(bytes));
      const { text, title, author } = htmlToText(decoded.text);
      const metadata: Partial<ExtractMetadata> = { ...(title ? { title } : {}), ...(author ? { author } : {}) };
      const w = new Warnings();
      w.push(...decoded.warnings);
      out =
        ctx.options.html === 'keep'
          ? { text: sanitizeHtml(decoded.text), contentType: 'html', metadata, warnings: w, ocrUsed: false }
          : { text, contentType: 'text', metadata, warnings: w, ocrUsed: false };
      break;
    }
    case 'text':
    case 'markdown': {
      const decoded = decodeText(bytes, charsetFromContentType(contentType));
      const w = new Warnings();
      w.push(...decoded.warnings);
      out = { text: decoded.text, contentType: 'text', metadata: {}, warnings: w, ocrUsed: false };
      break;
    }
    default:
      throw new ExtractError('unsupported', `the ${LABEL[format]} format is not supported`);
  }
  out.warnings.unshift(...warnings);
  return { ...out, format };
}

/** Extract one file: text cleaned and cut to `maxTextBytes`, warnings bounded. Throws ExtractError. */
export async function runExtraction(input: RunInput, ctx: RunContext): Promise<Extracted> {
  const out = await extractBody(input, ctx);
  const cut = truncateAtWordBoundary(cleanText(out.text), ctx.options.maxTextBytes);
  if (cut.truncated)
    out.warnings.push(`text truncated at a word boundary to ${ctx.options.maxTextBytes} UTF-8 bytes (maxTextBytes)`);
  return { ...out, text: cut.text, warnings: out.warnings.list() };
}
