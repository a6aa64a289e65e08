/** Image decoding and normalisation to PNG for OCR: PNG passes through, JPEG and TIFF are decoded and re-encoded. */
import jpeg from 'jpeg-js';
import { PNG } from 'pngjs';
import UTIF from 'utif2';
import { ExtractError } from './types.js';

/** Images above this many pixels are refused (a 10,000 x 10,000 scan is 100 MP; a page at 300 dpi is ~9 MP). */
export const MAX_IMAGE_PIXELS = 100_000_000;

export interface OcrImage {
  /** PNG bytes fed to tesseract */
  png: Uint8Array;
  width: number;
  height: number;
}

export function rgbaToPng(rgba: Uint8Array, width: number, height: number): OcrImage {
  const png = new PNG({ width, height });
  png.data = Buffer.from(rgba.buffer, rgba.byteOffset, width * height * 4);
  return { png: new Uint8Array(PNG.sync.write(png)), width, height };
}

function checkPixels(width: number, height: number, what: string): void {
  if (!width || !height) throw new ExtractError('corrupt', `the ${what} image has no pixels`);
  if (width * height > MAX_IMAGE_PIXELS)
    throw new ExtractError(
      'too-large',
      `the ${what} image is ${width}x${height} pixels, above the ${MAX_IMAGE_PIXELS / 1e6} MP OCR limit; downscale it`,
    );
}

/** Read a PNG's size from its IHDR without decoding it. */
export function pngImage(bytes: Uint8Array): OcrImage {
  if (bytes.length < 33) throw new ExtractError('corrupt', 'the PNG file is truncated (no IHDR chunk)');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const width = view.getUint32(16);
  const height = view.getUint32(20);
  checkPixels(width, height, 'PNG');
  try {
    PNG.sync.read(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)); // validates CRCs and zlib data
  } catch (err) {
    throw new ExtractError('corrupt', `the PNG file could not be decoded: ${(err as Error).message}`);
  }
  return { png: bytes, width, height };
}

export function jpegImage(bytes: Uint8Array): OcrImage {
  let decoded: { width: number; height: number; data: Uint8Array };
  try {
    decoded = jpeg.decode(bytes, {
      useTArray: true,
      formatAsRGBA: true,
      maxResolutionInMP: MAX_IMAGE_PIXELS / 1e6,
      maxMemoryUsageInMB: 2048,
    });
  } catch (err) {
    const message = (err as Error).message;
    if (/maxResolutionInMP|maxMemoryUsage/.test(message))
      throw new ExtractError('too-large', `the JPEG image is above the OCR size limit: ${message}`);
    throw new ExtractError('corrupt', `the JPEG file could not be decoded: ${message}`);
  }
  checkPixels(decoded.width, decoded.height, 'JPEG');
  return rgbaToPng(decoded.data, decoded.width, decoded.height);
}

/** Decode every page of a TIFF. */
export function tiffImages(bytes: Uint8Array): OcrImage[] {
  const buffer = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
  try {
    const ifds = UTIF.decode(buffer).filter((ifd) => ifd['t256'] !== undefined);
    if (!ifds.length) throw new ExtractError('corrupt', 'the TIFF file has no image directory');
    return ifds.map((ifd) => {
      const w = Number((ifd['t256'] as number[])[0]);
      const h = Number((ifd['t257'] as number[])[0]);
      checkPixels(w, h, 'TIFF');
      UTIF.decodeImage(buffer, ifd);
      return rgbaToPng(UTIF.toRGBA8(ifd), ifd.width, ifd.height);
    });
  } catch (err) {
    if (err instanceof ExtractError) throw err;
    throw new ExtractError('corrupt', `the TIFF file could not be decoded: ${(err as Error).message}`);
  }
}
