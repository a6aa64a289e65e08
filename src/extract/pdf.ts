/**
 * PDF extraction with pdfjs-dist (legacy build, the one meant for Node): text layer per page, the info dictionary,
 * password detection, and the raw images of pages without a text layer (for OCR of scanned documents).
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import type * as PdfJsModule from 'pdfjs-dist/legacy/build/pdf.mjs';
import type { PDFDocumentProxy, PDFPageProxy } from 'pdfjs-dist/types/src/display/api.js';
import { ExtractError } from './types.js';
import { Warnings } from './warnings.js';
import type { ExtractMetadata } from './types.js';

type PdfJs = typeof PdfJsModule;
let pdfjsPromise: Promise<PdfJs> | undefined;

/** Whether pdfjs can load its canvas, `@napi-rs/canvas` (an optional dependency, needed to render pages). */
function canvasInstalled(): boolean {
  try {
    const require = createRequire(import.meta.url);
    createRequire(require.resolve('pdfjs-dist/package.json')).resolve('@napi-rs/canvas');
    return true;
  } catch {
    return false;
  }
}

/**
 * pdfjs, imported on first use (inside a sandbox worker). Its display layer builds a `DOMMatrix` when the module
 * loads, which @napi-rs/canvas provides; installed without the optional packages, a placeholder lets the module
 * load, text extraction works, and rendering a page for OCR fails with a warning.
 */
const loadPdfJs = (): Promise<PdfJs> =>
  (pdfjsPromise ??= (async () => {
    if (!('DOMMatrix' in globalThis) && !canvasInstalled())
      Object.defineProperty(globalThis, 'DOMMatrix', {
        configurable: true,
        writable: true,
        value: class DOMMatrixUnavailable {},
      });
    return import('pdfjs-dist/legacy/build/pdf.mjs');
  })());

/** Local folders of pdfjs-dist's CMaps, standard fonts, wasm decoders and ICC profiles: nothing is fetched remotely. */
function localDataDirs(): { cMapUrl: string; standardFontDataUrl: string; wasmUrl: string; iccUrl: string } {
  const root = path.dirname(createRequire(import.meta.url).resolve('pdfjs-dist/package.json'));
  const dir = (name: string) => path.join(root, name) + path.sep;
  return {
    cMapUrl: dir('cmaps'),
    standardFontDataUrl: dir('standard_fonts'),
    wasmUrl: dir('wasm'),
    iccUrl: dir('iccs'),
  };
}

export interface PdfImage {
  width: number;
  height: number;
  /** RGBA, 4 bytes per pixel */
  rgba: Uint8Array;
}

export interface PdfPageText {
  pageNumber: number;
  text: string;
  /** true when the page had no text layer and its images were handed to `ocrPage` */
  ocr?: boolean;
}

export interface PdfExtraction {
  pages: PdfPageText[];
  metadata: Pick<ExtractMetadata, 'pageCount' | 'author' | 'title' | 'created' | 'modified'>;
  warnings: string[];
}

function toIso(pdfjs: PdfJs, value: unknown): string | undefined {
  if (typeof value !== 'string' || !value) return undefined;
  const d = pdfjs.PDFDateString.toDateObject(value);
  return d && !Number.isNaN(d.getTime()) ? d.toISOString() : undefined;
}

const infoString = (info: Record<string, unknown>, key: string): string | undefined => {
  const v = info[key];
  return typeof v === 'string' && v.trim() ? v.trim() : undefined;
};

interface RawImage {
  width: number;
  height: number;
  kind?: number;
  data?: Uint8Array | Uint8ClampedArray;
}

function toRgba(img: RawImage, kinds: PdfJs['ImageKind']): PdfImage | undefined {
  const { width, height, data, kind } = img;
  if (!data || !width || !height) return undefined;
  const n = width * height;
  const rgba = new Uint8Array(n * 4);
  if (kind === kinds.RGBA_32BPP) rgba.set(data.subarray(0, n * 4));
  else if (kind === kinds.RGB_24BPP) {
    for (let i = 0; i < n; i++) {
      rgba[i * 4] = data[i * 3]!;
      rgba[i * 4 + 1] = data[i * 3 + 1]!;
      rgba[i * 4 + 2] = data[i * 3 + 2]!;
      rgba[i * 4 + 3] = 255;
    }
  } else if (kind === kinds.GRAYSCALE_1BPP) {
    const rowBytes = (width + 7) >> 3;
    for (let y = 0; y < height; y++)
      for (let x = 0; x < width; x++) {
        const bit = (data[y * rowBytes + (x >> 3)]! >> (7 - (x & 7))) & 1;
        const v = bit ? 255 : 0;
        const o = (y * width + x) * 4;
        rgba[o] = rgba[o + 1] = rgba[o + 2] = v;
        rgba[o + 3] = 255;
      }
  } else return undefined;
  return { width, height, rgba };
}

function getObj(page: PDFPageProxy, id: string): Promise<unknown> {
  const store = id.startsWith('g_') ? page.commonObjs : page.objs;
  return new Promise((resolve) => {
    try {
      store.get(id, resolve);
    } catch {
      resolve(undefined);
    }
  });
}

/** Images of one page handed to OCR, largest first. */
export const MAX_IMAGES_PER_PAGE = 4;

async function pageImages(
  pdfjs: PdfJs,
  page: PDFPageProxy,
  warnings: Warnings,
  n: number,
  maxPixels: number,
): Promise<PdfImage[]> {
  const ops = await page.getOperatorList();
  // Only the largest few images are converted (and OCRed): keep references, convert the winners at the end.
  const largest: RawImage[] = [];
  for (let i = 0; i < ops.fnArray.length; i++) {
    const fn = ops.fnArray[i];
    const args = ops.argsArray[i] as unknown[] | null;
    let raw: unknown;
    if (fn === pdfjs.OPS.paintImageXObject || fn === pdfjs.OPS.paintImageXObjectRepeat) {
      const id = args?.[0];
      if (typeof id === 'string') raw = await getObj(page, id);
    } else if (fn === pdfjs.OPS.paintInlineImageXObject) raw = args?.[0];
    if (!raw || typeof raw !== 'object') continue;
    const img = raw as RawImage;
    const { width, height } = img;
    if (!(width >= 32 && height >= 16)) continue;
    if (width * height > maxPixels) {
      warnings.push(
        `page ${n}: an image of ${width}x${height} pixels is above the ${maxPixels / 1e6} MP limit (maxImagePixels) and was skipped`,
      );
      continue;
    }
    if (largest.includes(img)) continue;
    largest.push(img);
    largest.sort((a, b) => b.width * b.height - a.width * a.height);
    if (largest.length > MAX_IMAGES_PER_PAGE) largest.pop();
  }
  const images: PdfImage[] = [];
  for (const raw of largest) {
    const img = toRgba(raw, pdfjs.ImageKind);
    if (img) images.push(img);
  }
  return images;
}

/** Render resolution for OCR of pages without usable images, bounded to RENDER_MAX_PIXELS. */
const RENDER_DPI = 200;
const RENDER_MAX_PIXELS = 12_000_000;

interface CanvasLike {
  width: number;
  height: number;
}
interface Context2dLike {
  getImageData(x: number, y: number, w: number, h: number): { data: Uint8ClampedArray };
}
interface CanvasFactoryLike {
  create(w: number, h: number): { canvas: CanvasLike; context: Context2dLike };
  destroy(c: { canvas: CanvasLike; context: Context2dLike }): void;
}

/**
 * Render a page to RGBA with pdfjs's Node canvas factory (backed by @napi-rs/canvas, a prebuilt binary from the
 * registry). Returns undefined, with a warning, when rendering is not possible here.
 */
async function renderPage(
  doc: PDFDocumentProxy,
  page: PDFPageProxy,
  warnings: Warnings,
  n: number,
): Promise<PdfImage | undefined> {
  try {
    const base = page.getViewport({ scale: 1 });
    let scale = RENDER_DPI / 72;
    const pixels = base.width * base.height * scale * scale;
    if (pixels > RENDER_MAX_PIXELS) scale *= Math.sqrt(RENDER_MAX_PIXELS / pixels);
    const viewport = page.getViewport({ scale });
    const factory = doc.canvasFactory as CanvasFactoryLike;
    const target = factory.create(Math.ceil(viewport.width), Math.ceil(viewport.height));
    try {
      const params = { canvasContext: target.context, canvas: target.canvas, viewport };
      // With DOM typings (lib "dom") pdfjs wants an HTMLCanvasElement; the Node canvas is structurally enough.
      // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-assertion
      await page.render(params as unknown as Parameters<PDFPageProxy['render']>[0]).promise;
      const { width, height } = target.canvas;
      const data = target.context.getImageData(0, 0, width, height).data;
      return { width, height, rgba: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
    } finally {
      factory.destroy(target);
    }
  } catch (err) {
    warnings.push(`page ${n} could not be rendered for OCR: ${(err as Error).message}`);
    return undefined;
  }
}

/**
 * Extract text and metadata, at most `maxPages` pages; `ocrPage` (when OCR is on) reads pages without a text layer
 * from their images. Pages are read one at a time, so only one page's objects and images are in memory.
 */
export async function extractPdf(
  bytes: Uint8Array,
  opts: {
    maxPages: number;
    maxImagePixels: number;
    /**
     * Called for each page without a text layer that paints images (largest first); returns the page's OCR text.
     */
    ocrPage?: (pageNumber: number, images: PdfImage[]) => Promise<string>;
    /** Called before the first page is prepared for OCR; throws when OCR cannot run here. */
    ocrReady?: () => void;
  },
): Promise<PdfExtraction> {
  const pdfjs = await loadPdfJs();
  const warnings = new Warnings();
  const task = pdfjs.getDocument({
    data: bytes.slice(), // pdfjs takes ownership of (detaches) the buffer it is given
    ...localDataDirs(),
    useSystemFonts: false,
    disableFontFace: true,
    isEvalSupported: false,
    isOffscreenCanvasSupported: false,
    isImageDecoderSupported: false,
    maxImageSize: opts.maxImagePixels,
    stopAtErrors: false,
    verbosity: pdfjs.VerbosityLevel.ERRORS,
  });
  let doc: PDFDocumentProxy;
  try {
    doc = await task.promise;
  } catch (err) {
    await task.destroy().catch(() => undefined);
    const name = (err as { name?: string }).name;
    if (name === 'PasswordException')
      throw new ExtractError(
        'encrypted',
        'the PDF is password-protected; remove the password at the source to index it',
      );
    throw new ExtractError('corrupt', `the PDF could not be parsed: ${(err as Error).message}`);
  }
  try {
    const metadata: PdfExtraction['metadata'] = { pageCount: doc.numPages };
    try {
      const meta = await doc.getMetadata();
      const info = (meta.info ?? {}) as Record<string, unknown>;
      const title = infoString(info, 'Title');
      const author = infoString(info, 'Author');
      const created = toIso(pdfjs, info.CreationDate);
      const modified = toIso(pdfjs, info.ModDate);
      if (title) metadata.title = title;
      if (author) metadata.author = author;
      if (created) metadata.created = created;
      if (modified) metadata.modified = modified;
    } catch (err) {
      warnings.push(`PDF metadata could not be read: ${(err as Error).message}`);
    }
    const pages: PdfPageText[] = [];
    const last = Math.min(doc.numPages, opts.maxPages);
    if (doc.numPages > last) warnings.push(`only the first ${last} of ${doc.numPages} pages were read (maxPages)`);
    for (let n = 1; n <= last; n++) {
      let page: PDFPageProxy;
      let text = '';
      try {
        page = await doc.getPage(n);
        const content = await page.getTextContent();
        for (const item of content.items) {
          if (!('str' in item)) continue;
          text += item.str;
          if (item.hasEOL) text += '\n';
        }
      } catch (err) {
        warnings.push(`page ${n} could not be read: ${(err as Error).message}`);
        continue;
      }
      text = text
        .split('\n')
        .map((line) => line.trimEnd())
        .join('\n')
        .trim();
      const entry: PdfPageText = { pageNumber: n, text };
      if (!text && opts.ocrPage) {
        opts.ocrReady?.();
        let images: PdfImage[] = [];
        try {
          images = await pageImages(pdfjs, page, warnings, n, opts.maxImagePixels);
        } catch (err) {
          warnings.push(`page ${n}: its images could not be read for OCR: ${(err as Error).message}`);
        }
        if (!images.length) {
          // Nothing to lift out (text drawn as vector paths, tiny tiles, ...): render the page instead.
          const rendered = await renderPage(doc, page, warnings, n);
          images = rendered ? [rendered] : [];
        }
        if (images.length) {
          entry.text = (await opts.ocrPage(n, images)).trim();
          entry.ocr = true;
        }
      }
      pages.push(entry);
      page.cleanup();
    }
    return { pages, metadata, warnings: warnings.list() };
  } finally {
    await doc.destroy().catch(() => undefined);
  }
}
