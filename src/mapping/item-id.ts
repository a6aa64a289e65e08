/**
 * Item ids as Graph accepts them, and external group ids (docs/mapping.md "id").
 *
 * Item ids ({@link encodeItemId}):
 * - an id of letters, digits, `-` and `_`, 1..128 characters, that does not start with a marker below (in any
 *   case) is sent as is — so `TSP-1` stays `TSP-1`, and a URL-to-item resolver written as `{slug}` finds it;
 * - anything else becomes `b32` + lowercase RFC 4648 base32 (no padding) of its UTF-8 bytes, if that fits in
 *   128 characters (source ids up to 78 UTF-8 bytes);
 * - longer ids become `h256` + the hex SHA-256 of the UTF-8 (68 chars). That form is NOT reversible: the mapper
 *   returns the source id next to the item so the ledger records it.
 * Ids that start with `b32` or `h256` in any case are encoded too, so decoding never guesses and an id sent as is
 * never equals an encoded one, even ignoring case (encoded ids are lowercase).
 *
 * Item ids are compared ignoring case ({@link itemIdComparisonKey}): two records whose ids differ only in case
 * are one item.
 *
 * Earlier versions of the connector kept only letters and digits ({@link encodeItemIdAlphanumericOnly}); an id
 * that changed is moved (the old id deleted, the new one written) — {@link itemIdMigration} says which.
 * External group ids keep that alphanumeric-only rule (Graph documents them as alphanumeric).
 */
import { createHash } from 'node:crypto';
import { isItemIdKeptAsIs, ITEM_ID_MARKERS, MAX_ITEM_ID_LENGTH } from '../config/mapping-item-id.js';

export { isItemIdKeptAsIs, MAX_ITEM_ID_LENGTH };
const [BASE32_MARKER, SHA256_MARKER] = ITEM_ID_MARKERS;
const ALPHABET = 'abcdefghijklmnopqrstuvwxyz234567';
const ALPHANUMERIC = /^[A-Za-z0-9]+$/;
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

/** How a source id became its Graph id: kept as is, base32 (reversible) or SHA-256 (not reversible). */
export type ItemIdForm = 'asIs' | 'base32' | 'sha256';

function isKeptAlphanumericOnly(id: string): boolean {
  return (
    id.length > 0 &&
    id.length <= MAX_ITEM_ID_LENGTH &&
    ALPHANUMERIC.test(id) &&
    // The earlier versions' marker rule was case-sensitive.
    !id.startsWith(BASE32_MARKER) &&
    !id.startsWith(SHA256_MARKER)
  );
}

/** The encoded forms both schemes share: base32 when it fits in 128 characters, else SHA-256. */
function encodeBytes(sourceId: string): { id: string; form: ItemIdForm } {
  if (sourceId.length === 0) throw new RangeError('an item id cannot be empty');
  if (LONE_SURROGATE.test(sourceId)) throw new RangeError('the id is not well-formed Unicode (lone surrogate)');
  const bytes = Buffer.from(sourceId, 'utf8');
  const encoded = BASE32_MARKER + base32(bytes);
  if (encoded.length <= MAX_ITEM_ID_LENGTH) return { id: encoded, form: 'base32' };
  return { id: SHA256_MARKER + createHash('sha256').update(bytes).digest('hex'), form: 'sha256' };
}

/** Encode a non-empty source id into the Graph item id, and say which form it took. Throws a RangeError. */
export function encodeItemIdWithForm(sourceId: string): { id: string; form: ItemIdForm } {
  if (isItemIdKeptAsIs(sourceId)) return { id: sourceId, form: 'asIs' };
  return encodeBytes(sourceId);
}

/** The Graph item id this connector sends for a source id (see the module comment for the rules). */
export function encodeItemId(sourceId: string): string {
  return encodeItemIdWithForm(sourceId).id;
}

/**
 * The source id of a Graph id produced by {@link encodeItemId}. Undefined for the SHA-256 form (look the source
 * id up in the ledger) and for strings that are not a canonical encoding.
 */
export function decodeItemId(id: string): string | undefined {
  return decodeWith(id, isItemIdKeptAsIs, encodeItemId);
}

/**
 * Two item ids that differ only in case are one item: the connector compares (and keys its ledger and duplicate
 * check by) this form. Ids are ASCII, so lower-casing is exact.
 */
export function itemIdComparisonKey(id: string): string {
  return id.toLowerCase();
}

// ------------------------------------------------------------------ the alphanumeric-only scheme (earlier versions)

/**
 * The item id earlier versions of the connector produced for a source id: only `[A-Za-z0-9]` ids (not starting
 * with `b32`/`h256`, case-sensitively) were kept; `TSP-1` became `b32krjvaljr`. Use it to find the id Graph
 * holds from an earlier crawl; the connector sends {@link encodeItemId}.
 */
export function encodeItemIdAlphanumericOnly(sourceId: string): string {
  if (isKeptAlphanumericOnly(sourceId)) return sourceId;
  return encodeBytes(sourceId).id;
}

/**
 * For a source id whose Graph id differs between the alphanumeric-only scheme of earlier versions and this
 * one: the id to delete (`previousId`) and the id to write (`currentId`). Undefined when the id did not change
 * (or cannot be encoded at all: the mapper rejects those records).
 */
export function itemIdMigration(sourceId: string): { previousId: string; currentId: string } | undefined {
  let previousId: string;
  let currentId: string;
  try {
    previousId = encodeItemIdAlphanumericOnly(sourceId);
    currentId = encodeItemId(sourceId);
  } catch {
    return undefined;
  }
  return previousId === currentId ? undefined : { previousId, currentId };
}

// ------------------------------------------------------------------ external group ids

/** External group ids are alphanumeric (≤128): the alphanumeric-only scheme, on the synced groups and in ACLs. */
export const encodeExternalGroupId = encodeItemIdAlphanumericOnly;

/** The source group id of an id produced by {@link encodeExternalGroupId} (undefined for SHA-256 and non-canonical). */
export function decodeExternalGroupId(id: string): string | undefined {
  return decodeWith(id, isKeptAlphanumericOnly, encodeItemIdAlphanumericOnly);
}

function decodeWith(
  id: string,
  keptAsIs: (id: string) => boolean,
  encode: (sourceId: string) => string,
): string | undefined {
  if (id.startsWith(SHA256_MARKER)) return undefined;
  if (id.startsWith(BASE32_MARKER)) {
    const bytes = unbase32(id.slice(BASE32_MARKER.length));
    if (!bytes) return undefined;
    try {
      const s = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes);
      // Only canonical encodings decode: re-encoding must give the same id.
      return encode(s) === id ? s : undefined;
    } catch {
      return undefined;
    }
  }
  return keptAsIs(id) ? id : undefined;
}
