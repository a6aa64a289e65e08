/**
 * Image decoding and normalisation to PNG for OCR. Every image's size is read from its header first (PNG IHDR,
 * JPEG SOF, TIFF directories, walked with bounds and loop checks) and refused above `maxImagePixels` before
 * anything is decoded; images larger than OCR needs are scaled down before they are handed to tesseract.
 */
import jpeg from 'jpeg-js';
import { PNG } from 'pngjs';
import UTIF from 'utif2';
import { ExtractError } from './types.js';

/** Images above this are scaled down for OCR (a letter page at 400 dpi is about 15 MP; 300 dpi is plenty). */
export const OCR_MAX_PIXELS = 12_000_000;

export interface OcrImage {
  /** PNG bytes fed to tesseract */
  png: Uint8Array;
  width: number;
  height: number;
}

export interface ImageLimits {
  maxImagePixels: number;
  maxMemoryMb: number;
}

/** Box-filter `rgba` down so that it has at most `maxPixels` pixels (integer factor, one pass). */
export function downscaleRgba(
  rgba: Uint8Array,
  width: number,
  height: number,
  maxPixels: number,
): { rgba: Uint8Array; width: number; height: number } {
  if (width * height <= maxPixels) return { rgba, width, height };
  const f = Math.ceil(Math.sqrt((width * height) / maxPixels));
  const w = Math.max(1, Math.floor(width / f));
  const h = Math.max(1, Math.floor(height / f));
  const out = new Uint8Array(w * h * 4);
  const n = f * f;
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      let r = 0;
      let g = 0;
      let b = 0;
      let a = 0;
      for (let dy = 0; dy < f; dy++) {
        let i = ((y * f + dy) * width + x * f) * 4;
        for (let dx = 0; dx < f; dx++, i += 4) {
          r += rgba[i]!;
          g += rgba[i + 1]!;
          b += rgba[i + 2]!;
          a += rgba[i + 3]!;
        }
      }
      const o = (y * w + x) * 4;
      out[o] = r / n;
      out[o + 1] = g / n;
      out[o + 2] = b / n;
      out[o + 3] = a / n;
    }
  return { rgba: out, width: w, height: h };
}

/** RGBA → PNG for tesseract, scaled down to {@link OCR_MAX_PIXELS} first when larger. */
export function rgbaToPng(rgba: Uint8Array, width: number, height: number): OcrImage {
  const small = downscaleRgba(rgba, width, height, OCR_MAX_PIXELS);
  const png = new PNG({ width: small.width, height: small.height });
  png.data = Buffer.from(small.rgba.buffer, small.rgba.byteOffset, small.width * small.height * 4);
  return { png: new Uint8Array(PNG.sync.write(png)), width: small.width, height: small.height };
}

/**
 * Refuse an image whose pixels, or whose decoded samples, exceed the limits: decoded data may not be larger than
 * an 8-bit RGBA image of `maxImagePixels`.
 */
export function checkPixels(width: number, height: number, what: string, limits: ImageLimits, bytesPerPixel = 4): void {
  if (!width || !height) throw new ExtractError('corrupt', `the ${what} image has no pixels`);
  const pixels = width * height;
  if (pixels > limits.maxImagePixels || pixels * bytesPerPixel > limits.maxImagePixels * 4)
    throw new ExtractError(
      'too-large',
      `the ${what} image is ${width}x${height} pixels${bytesPerPixel > 4 ? ` at ${bytesPerPixel} bytes a pixel` : ''}, ` +
        `above the ${limits.maxImagePixels / 1e6} MP limit (maxImagePixels); downscale it, or raise maxImagePixels`,
    );
}

const PNG_CHANNELS: Record<number, number> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };

/** Read a PNG's size from its IHDR, refuse it above the limits, then validate it by decoding. */
export function pngImage(bytes: Uint8Array, limits: ImageLimits): OcrImage {
  if (bytes.length < 33) throw new ExtractError('corrupt', 'the PNG file is truncated (no IHDR chunk)');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint32(12) !== 0x49484452) throw new ExtractError('corrupt', 'the PNG file does not start with IHDR');
  const width = view.getUint32(16);
  const height = view.getUint32(20);
  const depth = bytes[24]!;
  const channels = PNG_CHANNELS[bytes[25]!];
  if (!channels || ![1, 2, 4, 8, 16].includes(depth))
    throw new ExtractError('corrupt', 'the PNG header has an invalid colour type or bit depth');
  checkPixels(width, height, 'PNG', limits, Math.max(4, Math.ceil((depth * channels) / 8)));
  let decoded: PNG;
  try {
    decoded = PNG.sync.read(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)); // CRCs and zlib data
  } catch (err) {
    throw new ExtractError('corrupt', `the PNG file could not be decoded: ${(err as Error).message}`);
  }
  if (width * height <= OCR_MAX_PIXELS) return { png: bytes, width, height };
  return rgbaToPng(new Uint8Array(decoded.data.buffer, decoded.data.byteOffset, decoded.data.length), width, height);
}

/** A JPEG's size from its SOF segment (segments walked by their lengths, so the scan is linear). */
export function jpegSize(bytes: Uint8Array): { width: number; height: number } {
  let p = 2;
  while (p + 4 <= bytes.length) {
    if (bytes[p] !== 0xff) throw new ExtractError('corrupt', 'the JPEG file has a damaged segment');
    const marker = bytes[p + 1]!;
    if (marker === 0xff) {
      p++;
      continue;
    }
    if (marker === 0xd8 || marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) {
      p += 2;
      continue;
    }
    const length = (bytes[p + 2]! << 8) | bytes[p + 3]!;
    if (length < 2) throw new ExtractError('corrupt', 'the JPEG file has a damaged segment');
    const sof = marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc;
    if (sof) {
      if (p + 9 > bytes.length) break;
      return { height: (bytes[p + 5]! << 8) | bytes[p + 6]!, width: (bytes[p + 7]! << 8) | bytes[p + 8]! };
    }
    if (marker === 0xda || marker === 0xd9) break;
    p += 2 + length;
  }
  throw new ExtractError('corrupt', 'the JPEG file has no frame header (truncated or damaged)');
}

export function jpegImage(bytes: Uint8Array, limits: ImageLimits): OcrImage {
  const { width, height } = jpegSize(bytes);
  checkPixels(width, height, 'JPEG', limits);
  let decoded: { width: number; height: number; data: Uint8Array };
  try {
    decoded = jpeg.decode(bytes, {
      useTArray: true,
      formatAsRGBA: true,
      maxResolutionInMP: limits.maxImagePixels / 1e6,
      maxMemoryUsageInMB: Math.max(64, Math.floor(limits.maxMemoryMb * 0.75)),
    });
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    if (/maxResolutionInMP|maxMemoryUsage/.test(message))
      throw new ExtractError('too-large', `the JPEG image is above the size limit: ${message}`);
    throw new ExtractError('corrupt', `the JPEG file could not be decoded: ${message}`);
  }
  checkPixels(decoded.width, decoded.height, 'JPEG', limits);
  return rgbaToPng(decoded.data, decoded.width, decoded.height);
}

/** Bytes per value of each TIFF field type. */
const TIFF_TYPE_SIZE: Record<number, number> = {
  1: 1,
  2: 1,
  3: 2,
  4: 4,
  5: 8,
  6: 1,
  7: 1,
  8: 2,
  9: 4,
  10: 8,
  11: 4,
  12: 8,
  13: 4,
};
/** Tags whose values point at more directories (SubIFDs, EXIF, GPS, DNG private data, Fuji). */
const TIFF_SUB_IFD_TAGS = new Set([330, 34665, 34853, 50740, 61440]);
/** Pages of one TIFF read (each needs OCR; far more than maxOcrImages). */
export const MAX_TIFF_PAGES = 1_000;

/**
 * Walk a TIFF's directories before the decoder does: every directory and every field must lie inside the file, a
 * directory may be visited once (no loops), at most {@link MAX_TIFF_PAGES} pages. Returns each page's size and
 * decoded bytes per pixel.
 */
export function tiffPages(bytes: Uint8Array): { width: number; height: number; bytesPerPixel: number }[] {
  const corrupt = (what: string) => new ExtractError('corrupt', `the TIFF file is damaged: ${what}`);
  if (bytes.length < 8) throw corrupt('shorter than its header');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const le = bytes[0] === 0x49;
  const u16 = (o: number) => view.getUint16(o, le);
  const u32 = (o: number) => view.getUint32(o, le);
  const seen = new Set<number>();
  const pages: { width: number; height: number; bytesPerPixel: number }[] = [];

  const readDirectory = (offset: number, depth: number): { next: number; fields: Map<number, number[]> } => {
    if (depth > 4) throw corrupt('directories nested more than 4 deep');
    if (seen.has(offset)) throw corrupt(`directory at ${offset} is referenced twice (a loop)`);
    seen.add(offset);
    if (offset < 8 || offset + 2 > bytes.length) throw corrupt(`directory offset ${offset} is outside the file`);
    const count = u16(offset);
    if (offset + 2 + count * 12 + 4 > bytes.length) throw corrupt(`directory at ${offset} runs past the end`);
    const fields = new Map<number, number[]>();
    for (let i = 0; i < count; i++) {
      const e = offset + 2 + i * 12;
      const tag = u16(e);
      const type = u16(e + 2);
      const n = u32(e + 4);
      const size = TIFF_TYPE_SIZE[type];
      if (!size) throw corrupt(`field ${tag} has an unknown type ${type}`);
      const valueAt = n * size <= 4 ? e + 8 : u32(e + 8);
      if (valueAt + n * size > bytes.length) throw corrupt(`field ${tag} points outside the file`);
      // Only small numeric fields are read here: sizes, samples, and directory pointers.
      if ((type === 3 || type === 4 || type === 13) && n <= 64) {
        const values: number[] = [];
        for (let k = 0; k < n; k++) values.push(type === 3 ? u16(valueAt + 2 * k) : u32(valueAt + 4 * k));
        fields.set(tag, values);
      }
      if (TIFF_SUB_IFD_TAGS.has(tag) && (type === 4 || type === 13) && n <= 64)
        for (const sub of fields.get(tag) ?? []) readDirectory(sub, depth + 1);
    }
    return { next: u32(offset + 2 + count * 12), fields };
  };

  let next = u32(4);
  while (next !== 0) {
    if (pages.length >= MAX_TIFF_PAGES)
      throw new ExtractError('too-large', `the TIFF has more than ${MAX_TIFF_PAGES} pages`);
    const { next: after, fields } = readDirectory(next, 0);
    const width = fields.get(256)?.[0];
    const height = fields.get(257)?.[0];
    if (width !== undefined && height !== undefined) {
      const bits = fields.get(258) ?? [1];
      const samples = fields.get(277)?.[0] ?? bits.length;
      const bitsPerPixel = (bits[0] ?? 1) * samples;
      pages.push({ width, height, bytesPerPixel: Math.max(4, Math.ceil(bitsPerPixel / 8)) });
    }
    next = after;
  }
  if (!pages.length) throw corrupt('no image directory');
  return pages;
}

/** Decode the first `max` pages of a TIFF (after {@link tiffPages} vetted its structure and sizes). */
export function tiffImages(
  bytes: Uint8Array,
  limits: ImageLimits,
  max: number,
): { images: OcrImage[]; pageCount: number } {
  const pages = tiffPages(bytes);
  for (const p of pages) checkPixels(p.width, p.height, 'TIFF', limits, p.bytesPerPixel);
  const buffer = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
  try {
    // utif2 takes a second parameter its typings omit: parseMN false skips camera maker notes.
    const decode = UTIF.decode as (b: ArrayBuffer, prm: { parseMN: boolean; debug: boolean }) => UTIF.IFD[];
    const ifds = decode(buffer, { parseMN: false, debug: false }).filter((ifd) => ifd['t256'] !== undefined);
    if (!ifds.length) throw new ExtractError('corrupt', 'the TIFF file has no image directory');
    const images = ifds.slice(0, max).map((ifd) => {
      UTIF.decodeImage(buffer, ifd);
      checkPixels(ifd.width, ifd.height, 'TIFF', limits);
      return rgbaToPng(UTIF.toRGBA8(ifd), ifd.width, ifd.height);
    });
    return { images, pageCount: ifds.length };
  } catch (err) {
    if (err instanceof ExtractError) throw err;
    throw new ExtractError('corrupt', `the TIFF file could not be decoded: ${(err as Error).message}`);
  }
}
