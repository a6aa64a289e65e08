/**
 * Which item ids Graph accepts as they are (docs/mapping.md "id"). The mapper sends these unchanged and encodes
 * every other id (src/mapping/item-id.ts); the URL-to-item resolver check (./mapping-resolvers.ts) needs the
 * same rule, so it lives here, once.
 */

/** Graph's longest item id. */
export const MAX_ITEM_ID_LENGTH = 128;
/** Prefixes of encoded item ids (base32, SHA-256): an id that starts with one, in any case, is never kept as is. */
export const ITEM_ID_MARKERS = ['b32', 'h256'] as const;

/**
 * Is this source id sent to Graph unchanged? Letters, digits, `-` and `_`, 1..128 characters, not starting with a
 * marker in any case (docs/mapping.md "id"). The mapper encodes every other id (src/mapping/item-id.ts).
 */
export function isItemIdKeptAsIs(id: string): boolean {
  if (id.length === 0 || id.length > MAX_ITEM_ID_LENGTH || !/^[A-Za-z0-9_-]+$/.test(id)) return false;
  const head = id.slice(0, 4).toLowerCase();
  return !ITEM_ID_MARKERS.some((m) => head.startsWith(m));
}
