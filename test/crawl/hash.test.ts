import { describe, expect, it } from 'vitest';
import type { ExternalItem } from '../../src/config/model.js';
import { canonicalJson, itemHash } from '../../src/crawl/hash.js';

const base: ExternalItem = {
  id: 'TSP1',
  acl: [
    { type: 'externalGroup', value: 'payments', accessType: 'grant' },
    { type: 'user', value: 'u1', accessType: 'deny' },
  ],
  properties: { title: 'Gateway down', priority: 1 },
  content: { type: 'text', value: 'The payment gateway returns 502.' },
};

describe('itemHash', () => {
  it('is stable across property order and ACL entry order', () => {
    const reordered: ExternalItem = {
      ...base,
      acl: [...base.acl].reverse(),
      properties: { priority: 1, title: 'Gateway down' },
    };
    expect(itemHash(reordered)).toBe(itemHash(base));
    expect(canonicalJson({ b: 1, a: [2, { d: 1, c: 2 }] })).toBe('{"a":[2,{"c":2,"d":1}],"b":1}');
  });

  it('changes on a permission-only change (grant to deny, or another principal)', () => {
    const denied: ExternalItem = { ...base, acl: [{ ...base.acl[0]!, accessType: 'deny' }, base.acl[1]!] };
    const otherGroup: ExternalItem = { ...base, acl: [{ ...base.acl[0]!, value: 'logistics' }, base.acl[1]!] };
    expect(itemHash(denied)).not.toBe(itemHash(base));
    expect(itemHash(otherGroup)).not.toBe(itemHash(base));
  });

  it('changes with content, properties and extra inputs such as an attachment fingerprint', () => {
    expect(itemHash({ ...base, content: { type: 'text', value: 'other' } })).not.toBe(itemHash(base));
    expect(itemHash({ ...base, properties: { ...base.properties, priority: 2 } })).not.toBe(itemHash(base));
    expect(itemHash(base, { file: 'abc' })).not.toBe(itemHash(base, { file: 'abd' }));
  });
});

describe('canonicalJson', () => {
  it('writes every string exactly as JSON.stringify does (quotes, backslashes, control characters, surrogates)', () => {
    const samples = [
      'plain',
      'quote " inside',
      'back\\slash',
      'tab\tnew\nline',
      '\u0000\u001f',
      'emoji 😀',
      'lone \ud800 x',
      'é ü ß 漢字',
      '',
    ];
    for (const s of samples) expect(canonicalJson(s)).toBe(JSON.stringify(s));
    for (let i = 0; i < 2000; i++) {
      const s = String.fromCharCode(...Array.from({ length: 8 }, () => Math.floor(Math.random() * 0xffff)));
      expect(canonicalJson(s)).toBe(JSON.stringify(s));
    }
    expect(canonicalJson({ 'k"y': ['a', null, undefined, 1.5] })).toBe('{"k\\"y":["a",null,null,1.5]}');
  });
});

describe('itemDigest', () => {
  it('reduces the hash to the same 8 bytes the snapshot keeps (hashKeyOf)', async () => {
    const { itemDigest } = await import('../../src/crawl/hash.js');
    const { hashKeyOf } = await import('../../src/state/keys.js');
    const d = itemDigest(base);
    expect(d.hash).toBe(itemHash(base));
    expect(d.reduced).toEqual(hashKeyOf(d.hash));
  });
});
