/**
 * Graph item ids (and external group ids) must be alphanumeric and at most 128 characters.
 *
 * Encoding, chosen so that it is reversible and unambiguous:
 * - a "plain" id (only [A-Za-z0-9], 1..128 chars, not starting with a marker below) is kept as is;
 * - anything else becomes `b32` + lowercase RFC 4648 base32 (no padding) of its UTF-8 bytes,
 *   if that fits in 128 characters (source ids up to 78 UTF-8 bytes);
 * - longer ids become `h256` + the hex SHA-256 of the UTF-8 (68 chars). That form is NOT reversible:
 *   the mapper returns the source id next to the item so the ledger records it.
 * Plain ids that happen to start with `b32` or `h256` are encoded too, so decoding never guesses.
 */
import { createHash } from 'node:crypto';

export const MAX_ID_LENGTH = 128;
const B32 = 'b32';
const HASH = 'h256';
const ALPHABET = 'abcdefghijklmnopqrstuvwxyz234567';
const PLAIN = /^[A-Za-z0-9]+$/;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function base32(bytes: Uint8Array): string {
  let out = '';
  let bits = 0;
  let acc = 0;
  for (const b of bytes) {
    acc = (acc << 8) | b;
    bits += 8;
    while (bits >= 5) {
      out += ALPHABET[(acc >>> (bits - 5)) & 31];
      bits -= 5;
    }
    acc &= (1 << bits) - 1;
  }
  if (bits > 0) out += ALPHABET[(acc << (5 - bits)) & 31];
  return out;
}

function unbase32(text: string): Uint8Array | undefined {
  const out: number[] = [];
  let bits = 0;
  let acc = 0;
  for (const ch of text) {
    const v = ALPHABET.indexOf(ch);
    if (v < 0) return undefined;
    acc = (acc << 5) | v;
    bits += 5;
    if (bits >= 8) {
      out.push((acc >>> (bits - 8)) & 255);
      bits -= 8;
    }
    acc &= (1 << bits) - 1;
  }
  // Canonical form only: leftover bits must be zero and fewer than 5.
  if (bits >= 5 || acc !== 0) return undefined;
  return Uint8Array.from(out);
}

export function isPlainId(id: string): boolean {
  return id.length > 0 && id.length <= MAX_ID_LENGTH && PLAIN.test(id) && !id.startsWith(B32) && !id.startsWith(HASH);
}

/** Encode any non-empty source id into a valid Graph id. `hashed` is true when the form is not reversible. */
export function encodeItemIdDetailed(sourceId: string): { id: string; hashed: boolean } {
  if (sourceId.length === 0) throw new RangeError('an item id cannot be empty');
  if (LONE_SURROGATE.test(sourceId)) throw new RangeError('the id is not well-formed Unicode (lone surrogate)');
  if (isPlainId(sourceId)) return { id: sourceId, hashed: false };
  const bytes = Buffer.from(sourceId, 'utf8');
  const encoded = B32 + base32(bytes);
  if (encoded.length <= MAX_ID_LENGTH) return { id: encoded, hashed: false };
  return { id: HASH + createHash('sha256').update(bytes).digest('hex'), hashed: true };
}

/** Encode a source id into a valid Graph item id (see the module comment for the rules). */
export function encodeItemId(sourceId: string): string {
  return encodeItemIdDetailed(sourceId).id;
}

/**
 * Decode a Graph id produced by {@link encodeItemId}. Returns undefined for the hashed form
 * (look the source id up in the ledger) and for strings that are not a valid encoding.
 */
export function decodeItemId(id: string): string | undefined {
  if (id.startsWith(HASH)) return undefined;
  if (id.startsWith(B32)) {
    const bytes = unbase32(id.slice(B32.length));
    if (!bytes) return undefined;
    const text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
    try {
      const s = text.decode(bytes);
      // Only canonical encodings decode: re-encoding must give the same id.
      return encodeItemId(s) === id ? s : undefined;
    } catch {
      return undefined;
    }
  }
  return isPlainId(id) ? id : undefined;
}

/** External group ids follow the same alphanumeric ≤128 rule; use the same encoding on both sides. */
export const encodeExternalGroupId = encodeItemId;
export const decodeExternalGroupId = decodeItemId;
