/** Plain-text decoding (BOM, UTF-16 sniffing, invalid UTF-8) and UTF-8 byte-accurate truncation. */

export interface DecodedText {
  text: string;
  warnings: string[];
  /** the WHATWG encoding name used */
  encoding: string;
}

/** Charset from a MIME type parameter (`text/plain; charset=windows-1252`). */
export function charsetFromContentType(contentType: string | undefined): string | undefined {
  const m = /;\s*charset\s*=\s*"?([^";\s]+)/i.exec(contentType ?? '');
  return m?.[1];
}

/** Charset declared in the first 2 KB of an HTML document (`<meta charset>` or `http-equiv` content type). */
export function charsetFromHtml(bytes: Uint8Array): string | undefined {
  const head = new TextDecoder('latin1').decode(bytes.subarray(0, 2048));
  return /<meta[^>]+charset\s*=\s*["']?([a-z0-9_.:-]+)/i.exec(head)?.[1];
}

/** windows-1252 0x80–0x9F (0 = undefined there, kept as the C1 control). */
const CP1252_HIGH = [
  0x20ac, 0, 0x201a, 0x0192, 0x201e, 0x2026, 0x2020, 0x2021, 0x02c6, 0x2030, 0x0160, 0x2039, 0x0152, 0, 0x017d, 0, 0,
  0x2018, 0x2019, 0x201c, 0x201d, 0x2022, 0x2013, 0x2014, 0x02dc, 0x2122, 0x0161, 0x203a, 0x0153, 0, 0x017e, 0x0178,
];

/**
 * windows-1252 decoded by hand: Node 20's TextDecoder takes a latin1 fast path for this label and returns C1
 * controls for 0x80–0x9F (for example 0x80 should be €).
 */
function decodeCp1252(bytes: Uint8Array): string {
  let out = '';
  for (let i = 0; i < bytes.length; i += 8192) {
    const chunk = bytes.subarray(i, i + 8192);
    out += String.fromCharCode(...Array.from(chunk, (b) => (b >= 0x80 && b <= 0x9f ? CP1252_HIGH[b - 0x80] || b : b)));
  }
  return out;
}

function decoderFor(label: string | undefined): { encoding: string; decode: (b: Uint8Array) => string } | undefined {
  if (!label) return undefined;
  try {
    const d = new TextDecoder(label.toLowerCase());
    if (d.encoding === 'windows-1252') return { encoding: d.encoding, decode: decodeCp1252 };
    return { encoding: d.encoding, decode: (b) => d.decode(b) };
  } catch {
    return undefined;
  }
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

/**
 * Decode text bytes: UTF-8/UTF-16 BOMs honoured, BOM-less UTF-16 sniffed; then a declared charset (from the MIME
 * type or an HTML meta tag) other than UTF-8; else UTF-8 with invalid sequences replaced by U+FFFD and a warning.
 */
export function decodeText(bytes: Uint8Array, declaredCharset?: string): DecodedText {
  const warnings: string[] = [];
  if (bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) return utf8(bytes.subarray(3), warnings);
  if (bytes[0] === 0xff && bytes[1] === 0xfe) return utf16(bytes.subarray(2), 'utf-16le', warnings);
  if (bytes[0] === 0xfe && bytes[1] === 0xff) return utf16(bytes.subarray(2), 'utf-16be', warnings);
  const sniffed = sniffUtf16(bytes);
  if (sniffed) return utf16(bytes, sniffed, warnings);
  const declared = decoderFor(declaredCharset);
  if (declared && declared.encoding !== 'utf-8' && !declared.encoding.startsWith('utf-16'))
    return { text: declared.decode(bytes), warnings, encoding: declared.encoding };
  if (declaredCharset && !declared) warnings.push(`unknown charset "${declaredCharset}" was ignored; read as UTF-8`);
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
