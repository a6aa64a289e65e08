/** Format detection: magic bytes first, file extension second, MIME type third. */
import type { DetectedFormat } from './types.js';

export type Detection =
  | { kind: 'format'; format: DetectedFormat; by: 'magic' | 'extension' | 'content-type' | 'sniff' }
  | { kind: 'zip' } // an OOXML container or another zip: decided after reading the entry list
  | { kind: 'cfb' } // OLE compound file: legacy Office, or an encrypted OOXML file
  | { kind: 'unknown'; hint?: string };

const EXTENSIONS: Record<string, DetectedFormat> = {
  pdf: 'pdf',
  docx: 'docx',
  docm: 'docx',
  pptx: 'pptx',
  pptm: 'pptx',
  xlsx: 'xlsx',
  xlsm: 'xlsx',
  html: 'html',
  htm: 'html',
  xhtml: 'html',
  txt: 'text',
  text: 'text',
  log: 'text',
  csv: 'text',
  tsv: 'text',
  json: 'text',
  xml: 'text',
  md: 'markdown',
  markdown: 'markdown',
  png: 'png',
  jpg: 'jpeg',
  jpeg: 'jpeg',
  tif: 'tiff',
  tiff: 'tiff',
};

const MIME: Record<string, DetectedFormat> = {
  'application/pdf': 'pdf',
  'application/vnd.openxmlformats-officedocument.wordprocessingml.document': 'docx',
  'application/vnd.openxmlformats-officedocument.presentationml.presentation': 'pptx',
  'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet': 'xlsx',
  'text/html': 'html',
  'application/xhtml+xml': 'html',
  'text/plain': 'text',
  'text/csv': 'text',
  'text/markdown': 'markdown',
  'image/png': 'png',
  'image/jpeg': 'jpeg',
  'image/tiff': 'tiff',
};

/** Lower-case extension without the dot, or undefined. */
export function extensionOf(fileName: string | undefined): string | undefined {
  if (!fileName) return undefined;
  const base = fileName.split(/[\\/]/).pop() ?? '';
  const dot = base.lastIndexOf('.');
  return dot > 0 && dot < base.length - 1 ? base.slice(dot + 1).toLowerCase() : undefined;
}

export function formatFromExtension(ext: string | undefined): DetectedFormat | undefined {
  return ext ? EXTENSIONS[ext] : undefined;
}

export function formatFromContentType(contentType: string | undefined): DetectedFormat | undefined {
  if (!contentType) return undefined;
  return MIME[contentType.split(';')[0]!.trim().toLowerCase()];
}

const startsWith = (b: Uint8Array, sig: readonly number[], at = 0) => sig.every((v, i) => b[at + i] === v);

function findAscii(bytes: Uint8Array, needle: string, within: number): number {
  const limit = Math.min(bytes.length - needle.length, within);
  outer: for (let i = 0; i <= limit; i++) {
    for (let j = 0; j < needle.length; j++) if (bytes[i + j] !== needle.charCodeAt(j)) continue outer;
    return i;
  }
  return -1;
}

/** True when the first 8 KB look like text: no NUL bytes (outside UTF-16) and few control characters. */
export function looksLikeText(bytes: Uint8Array): boolean {
  const n = Math.min(bytes.length, 8192);
  if (n === 0) return true;
  if ((bytes[0] === 0xff && bytes[1] === 0xfe) || (bytes[0] === 0xfe && bytes[1] === 0xff)) return true;
  let control = 0;
  let zeros = 0;
  for (let i = 0; i < n; i++) {
    const b = bytes[i]!;
    if (b === 0) zeros++;
    else if (b < 9 || (b > 13 && b < 32)) control++;
  }
  if (zeros > 0) return zeros > n * 0.3; // BOM-less UTF-16 has many NULs; binary has a few
  return control <= n * 0.02;
}

export function detect(bytes: Uint8Array, fileName?: string, contentType?: string): Detection {
  if (findAscii(bytes, '%PDF-', 1024) >= 0) return { kind: 'format', format: 'pdf', by: 'magic' };
  if (startsWith(bytes, [0x50, 0x4b, 0x03, 0x04]) || startsWith(bytes, [0x50, 0x4b, 0x05, 0x06]))
    return { kind: 'zip' };
  if (startsWith(bytes, [0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1])) return { kind: 'cfb' };
  if (startsWith(bytes, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))
    return { kind: 'format', format: 'png', by: 'magic' };
  if (startsWith(bytes, [0xff, 0xd8, 0xff])) return { kind: 'format', format: 'jpeg', by: 'magic' };
  if (startsWith(bytes, [0x49, 0x49, 0x2a, 0x00]) || startsWith(bytes, [0x4d, 0x4d, 0x00, 0x2a]))
    return { kind: 'format', format: 'tiff', by: 'magic' };

  const byExt = formatFromExtension(extensionOf(fileName));
  if (byExt) return { kind: 'format', format: byExt, by: 'extension' };
  const byMime = formatFromContentType(contentType);
  if (byMime) return { kind: 'format', format: byMime, by: 'content-type' };

  if (looksLikeText(bytes)) {
    const head = new TextDecoder('utf-8').decode(bytes.subarray(0, 1024)).trimStart().toLowerCase();
    if (head.startsWith('<!doctype html') || head.startsWith('<html'))
      return { kind: 'format', format: 'html', by: 'sniff' };
    return { kind: 'format', format: 'text', by: 'sniff' };
  }
  return { kind: 'unknown', hint: extensionOf(fileName) };
}
