/**
 * Keys of the state layer. An item is identified case-insensitively: its **key** is the lower-cased item id, and
 * everything the connector remembers about an item (its ledger row, its snapshot entry, its bucket) hangs off that
 * key. Graph does not document whether item ids are case-sensitive, so two ids that differ only in case are treated
 * as one item: a crawl rejects the second as a duplicate, and an id whose case changes between crawls is moved
 * (the old id deleted before the new one is written), which is correct whichever way Graph compares ids.
 */
import { createHash } from 'node:crypto';

/** Item ids the state layer accepts: letters, digits, `-` and `_`, 1–128 characters (what the mapping produces). */
export const ITEM_ID = /^[A-Za-z0-9_-]{1,128}$/;
/** Graph's connection id rule (alphanumeric, 3–32). */
export const CONNECTION_ID = /^[A-Za-z0-9]{3,32}$/;
/** Crawl ids: 1–64 alphanumerics. */
export const CRAWL_ID = /^[A-Za-z0-9]{1,64}$/;

export interface ItemKey {
  /** The lower-cased item id: the ledger row key. */
  key: string;
  /** The first 8 bytes of sha256(key), as two unsigned 32-bit numbers: the snapshot's sort key. */
  hi: number;
  lo: number;
  /** The ledger bucket: the first byte of the digest as two hex characters (256 buckets per connection). */
  bucket: string;
}

export function itemKeyOf(itemId: string): ItemKey {
  const key = itemId.toLowerCase();
  const d = createHash('sha256').update(key, 'utf8').digest();
  return { key, hi: d.readUInt32BE(0), lo: d.readUInt32BE(4), bucket: d.subarray(0, 1).toString('hex') };
}

/** The ledger partition of an item: `${connectionId}-${bucket}`. */
export function partitionOf(connectionId: string, itemId: string): string {
  return `${connectionId}-${itemKeyOf(itemId).bucket}`;
}

/** All 256 bucket names, `00`..`ff`. */
export const ALL_BUCKETS: readonly string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

/**
 * An item hash (base64url sha256 of the final item, see crawl/hash.ts) reduced to the 8 bytes a snapshot keeps,
 * as two unsigned 32-bit numbers. (0, 0) is reserved for "unknown": it never matches a real hash's reduction
 * because a reduction that comes out as (0, 0) is nudged to (0, 1).
 */
export function hashKeyOf(hash: string): [number, number] {
  if (!hash) return [0, 0];
  const b = Buffer.from(hash, 'base64url');
  if (b.length < 8) {
    const d = createHash('sha256').update(hash, 'utf8').digest();
    return nonZero(d.readUInt32BE(0), d.readUInt32BE(4));
  }
  return nonZero(b.readUInt32BE(0), b.readUInt32BE(4));
}

function nonZero(a: number, b: number): [number, number] {
  return a === 0 && b === 0 ? [0, 1] : [a, b];
}
