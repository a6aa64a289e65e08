import { describe, expect, it } from 'vitest';
import type { ExternalItem, SchemaProperty } from '../../src/config/model.js';
import { validateItem } from '../../src/mapping/validate-item.js';

const schema: SchemaProperty[] = [
  { name: 'title', type: 'string' },
  { name: 'n', type: 'int64' },
  { name: 'tags', type: 'stringCollection' },
  { name: 'when', type: 'dateTime' },
];
const good: ExternalItem = {
  id: 'A1',
  acl: [{ type: 'user', value: 'u', accessType: 'grant' }],
  properties: { title: 'x', n: 1, tags: ['a'], 'tags@odata.type': 'Collection(String)', when: '2025-01-01T00:00:00Z' },
  content: { type: 'text', value: 'c' },
};
const check = (item: unknown, allowEveryone = false) => validateItem(item as ExternalItem, schema, { allowEveryone });
const rules = (item: unknown, allowEveryone = false) => check(item, allowEveryone).map((p) => `${p.field}:${p.rule}`);

describe('validateItem (the last gate before Graph)', () => {
  it('accepts a valid item', () => {
    expect(check(good)).toEqual([]);
  });
  it('accepts item ids with - and _ (as Graph does), not other characters', () => {
    for (const id of ['TSP-1', 'auth__slug', '2-rules-play-spfx', 'x'.repeat(128)])
      expect(check({ ...good, id })).toEqual([]);
  });
  it.each([
    [{ ...good, id: '' }, 'id:required'],
    [{ ...good, id: 'a.b' }, 'id:id'],
    [{ ...good, id: 'a b' }, 'id:id'],
    [{ ...good, id: 'a/b' }, 'id:id'],
    [{ ...good, id: 'a'.repeat(129) }, 'id:id'],
    [{ ...good, acl: [] }, 'acl:required'],
    [{ ...good, acl: [{ type: 'robot', value: 'x', accessType: 'grant' }] }, 'acl[0]:acl'],
    [{ ...good, acl: [{ type: 'everyone', value: 't', accessType: 'grant' }] }, 'acl[0]:acl.everyone'],
    [{ ...good, acl: [{ type: 'externalGroup', value: 'a-b', accessType: 'grant' }] }, 'acl[0]:acl'],
    [{ ...good, properties: { ...good.properties, extra: 1 } }, 'extra:schema'],
    [
      { ...good, properties: { ...good.properties, 'title@odata.type': 'String', 'x@odata.type': 'String' } },
      'x@odata.type:schema',
    ],
    [{ ...good, properties: { ...good.properties, n: 1.5 } }, 'n:type'],
    [{ ...good, properties: { ...good.properties, when: '2025-01-01' } }, 'when:type'],
    [{ ...good, properties: { title: 'x', tags: ['a'] } }, 'tags:annotation'],
    [{ ...good, properties: { title: 'Zürich' } }, 'title:annotation'],
    [{ ...good, properties: {} }, 'properties:required'],
    [{ ...good, content: 'just a string' }, 'content:content'],
  ])('rejects %j with %s', (item, rule) => {
    expect(rules(item)).toContain(rule);
  });
  it('allows an everyone grant only with allowEveryone, and a deny-everyone always', () => {
    expect(rules({ ...good, acl: [{ type: 'everyone', value: 't', accessType: 'grant' }] }, true)).toEqual([]);
    expect(rules({ ...good, acl: [{ type: 'everyone', value: 't', accessType: 'deny' }] })).toEqual([]);
  });
});
