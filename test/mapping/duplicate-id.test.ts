import { describe, expect, it } from 'vitest';
import { duplicateCheckKey, duplicateItemIdReason } from '../../src/mapping/duplicate-id.js';

describe('the duplicate-id reason names each record (ambiguous duplicate reason class)', () => {
  it('names the position of both records when their keys are the same', () => {
    const reason = duplicateItemIdReason(
      { key: 'T0010', position: 'line 3', itemId: 'T0010' },
      { key: 'T0010', position: 'line 12', itemId: 'T0010' },
    );
    expect(reason).toEqual({
      recordKey: 'T0010',
      field: 'id',
      rule: 'unique-id',
      message:
        'record T0010 (line 12): field "id": item id T0010 is already the id of record T0010 (line 3) in this crawl, so the two are one item and this one is not sent; give each record its own id in the source (rule: unique-id)',
    });
  });

  it('says when the ids differ only in case, and works without positions', () => {
    const reason = duplicateItemIdReason({ key: 'a', itemId: 'TSP-1' }, { key: 'b', itemId: 'tsp-1' });
    expect(reason.message).toContain(
      'record b: field "id": item id tsp-1 is the same, ignoring case, as the id TSP-1 of record a',
    );
    expect(duplicateCheckKey('TSP-1')).toBe(duplicateCheckKey('tsp-1'));
    expect(duplicateCheckKey('b32krjvaibr')).not.toBe(duplicateCheckKey('TSP-1'));
  });
});
