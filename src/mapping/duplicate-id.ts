/**
 * Two records of one crawl with the same item id (compared ignoring case, {@link itemIdComparisonKey}) are one
 * item: the crawl keeps the first and rejects the second with {@link duplicateItemIdReason}, which names both
 * records by key and position, since their keys are often the same.
 */
import { itemIdComparisonKey } from './item-id.js';
import type { RejectReason } from './types.js';

/** One record as the crawl saw it: its source key, where it was found (`line 12`), and the item id it mapped to. */
export interface MappedRecordRef {
  key: string;
  position?: string;
  itemId: string;
}

const label = (r: MappedRecordRef) => `record ${r.key}${r.position ? ` (${r.position})` : ''}`;

/** The key a crawl's duplicate check (and the ledger) compares item ids by. */
export const duplicateCheckKey = itemIdComparisonKey;

/** The reject reason for `second`, whose item id equals (ignoring case) that of `first`, seen earlier in the crawl. */
export function duplicateItemIdReason(first: MappedRecordRef, second: MappedRecordRef): RejectReason {
  const same =
    first.itemId === second.itemId
      ? `item id ${second.itemId} is already the id of ${label(first)}`
      : `item id ${second.itemId} is the same, ignoring case, as the id ${first.itemId} of ${label(first)}`;
  return {
    recordKey: second.key,
    field: 'id',
    rule: 'unique-id',
    message: `${label(second)}: field "id": ${same} in this crawl, so the two are one item and this one is not sent; give each record its own id in the source (rule: unique-id)`,
  };
}
