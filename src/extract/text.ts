/** Plain-text decoding (BOM, UTF-16 sniffing, invalid UTF-8) and UTF-8 byte-accurate truncation. */

export interface DecodedText {
  text: string;
  warnings: string[];
  encoding: 'utf-8' | 'utf-16le' | 'utf-16be';
}

/** Guess UTF-16 without a BOM: many NUL bytes, nearly all on one parity (ASCII-range text in UTF-16). */
function sniffUtf16(bytes: Uint8Array): 'utf-16le' | 'utf-16be' | undefined {
  const n = Math.min(bytes.length, 4096) & ~1;
  if (n < 4) return undefined;
  let evenZeros = 0;
  let oddZeros = 0;
  for (let i = 0; i < n; i += 2) {
    if (bytes[i] === 0) evenZeros++;
    if (bytes[i + 1] === 0) oddZeros++;
  }
  const pairs = n / 2;
  if (oddZeros > pairs * 0.4 && evenZeros < pairs * 0.05) return 'utf-16le';
  if (evenZeros > pairs * 0.4 && oddZeros < pairs * 0.05) return 'utf-16be';
  return undefined;
}

/** Decode text bytes: UTF-8/UTF-16 BOMs honoured, BOM-less UTF-16 sniffed, invalid UTF-8 replaced with U+FFFD. */
export function decodeText(bytes: Uint8Array): DecodedText {
  const warnings: string[] = [];
  if (bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) return utf8(bytes.subarray(3), warnings);
  if (bytes[0] === 0xff && bytes[1] === 0xfe) return utf16(bytes.subarray(2), 'utf-16le', warnings);
  if (bytes[0] === 0xfe && bytes[1] === 0xff) return utf16(bytes.subarray(2), 'utf-16be', warnings);
  const sniffed = sniffUtf16(bytes);
  if (sniffed) return utf16(bytes, sniffed, warnings);
  return utf8(bytes, warnings);
}

function utf8(bytes: Uint8Array, warnings: string[]): DecodedText {
  try {
    return { text: new TextDecoder('utf-8', { fatal: true }).decode(bytes), warnings, encoding: 'utf-8' };
  } catch {
    const text = new TextDecoder('utf-8').decode(bytes);
    let bad = 0;
    for (const ch of text) if (ch === '\uFFFD') bad++;
    warnings.push(`invalid UTF-8: ${bad} byte sequence(s) replaced with U+FFFD; save the file as UTF-8 to avoid this`);
    return { text, warnings, encoding: 'utf-8' };
  }
}

function utf16(bytes: Uint8Array, encoding: 'utf-16le' | 'utf-16be', warnings: string[]): DecodedText {
  if (bytes.length % 2 === 1) warnings.push(`${encoding} text has an odd number of bytes; the last byte was dropped`);
  const text = new TextDecoder(encoding).decode(bytes.subarray(0, bytes.length & ~1));
  if (text.includes('\uFFFD')) warnings.push(`invalid ${encoding} sequences were replaced with U+FFFD`);
  return { text, warnings, encoding };
}

const encoder = new TextEncoder();

/** UTF-8 length of a string without allocating the encoded bytes for short strings. */
export function utf8Length(text: string): number {
  return Buffer.byteLength(text, 'utf8');
}

/**
 * Cut `text` so its UTF-8 encoding is at most `maxBytes`, at the last whitespace before the limit (or at a code-point
 * boundary when a single word is longer than the window). Never splits a surrogate pair or a multi-byte sequence.
 * Returns the text unchanged when it already fits.
 */
export function truncateAtWordBoundary(text: string, maxBytes: number): { text: string; truncated: boolean } {
  if (maxBytes <= 0) return { text: '', truncated: text.length > 0 };
  if (utf8Length(text) <= maxBytes) return { text, truncated: false };
  // Find the largest prefix (in UTF-16 units) whose UTF-8 length fits, by encoding into a bounded buffer.
  const buf = new Uint8Array(maxBytes);
  const { read } = encoder.encodeInto(text, buf); // stops before a code point that would not fit whole
  let cut = read;
  // Prefer a word boundary: the last whitespace in the fitting prefix, unless it throws away more than half.
  const prefix = text.slice(0, cut);
  const ws = Math.max(
    prefix.lastIndexOf(' '),
    prefix.lastIndexOf('\n'),
    prefix.lastIndexOf('\t'),
    prefix.lastIndexOf('\r'),
  );
  const nextIsSpace = /\s/.test(text.charAt(cut));
  if (!nextIsSpace && ws > 0 && ws >= cut / 2) cut = ws;
  return { text: text.slice(0, cut).trimEnd(), truncated: true };
}
