import { describe, expect, it } from 'vitest';
import {
  decodeExternalGroupId,
  decodeItemId,
  encodeExternalGroupId,
  encodeItemId,
  encodeItemIdAlphanumericOnly,
  encodeItemIdWithForm,
  isItemIdKeptAsIs,
  itemIdComparisonKey,
  itemIdMigration,
} from '../../src/mapping/item-id.js';

// Seeded generator for property tests (no extra dependency).
function rng(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const POOLS = [
  'abcXYZ019',
  'b32h256',
  '-_./:@ #%+=?&~',
  'éüßçøñ',
  '日本語中文한국',
  '\u{1F600}\u{1F4A9}',
  '\t\n\u0000"\\',
];
function randomId(r: () => number): string {
  const len = 1 + Math.floor(r() * (r() < 0.1 ? 200 : 40));
  let s = '';
  for (let i = 0; i < len; i++) {
    const pool = [...POOLS[Math.floor(r() * POOLS.length)]!];
    s += pool[Math.floor(r() * pool.length)];
  }
  return s;
}

describe('item id encoding', () => {
  it('keeps ids of letters, digits, - and _ unchanged, as Graph accepts them', () => {
    for (const id of [
      'TSP228082938',
      'a',
      'Z9',
      'x'.repeat(128),
      'TSP-1',
      '2-rules-play-spfx',
      'auth__msal-node',
      '_-',
    ]) {
      expect(encodeItemId(id)).toBe(id);
      expect(encodeItemIdWithForm(id).form).toBe('asIs');
      expect(decodeItemId(id)).toBe(id);
    }
  });

  it('matches RFC 4648 base32 (known vectors, independent of our decoder)', () => {
    expect(encodeItemId('TSP 1')).toBe('b32krjvaibr');
    expect(encodeItemId('Zürich')).toBe('b32llb3y4tjmnua');
  });

  it('encodes ids with other characters into letters and digits, and back', () => {
    for (const id of ['TSP.1234', 'a/b', 'folder/file name.txt', 'Zürich', '日本', 'y'.repeat(70) + '.']) {
      const encoded = encodeItemId(id);
      expect(encoded).toMatch(/^b32[a-z2-7]{1,125}$/);
      expect(decodeItemId(encoded)).toBe(id);
    }
  });

  it('encodes ids that start with a marker in any case, so no id sent as is equals an encoded one ignoring case (marker collision class)', () => {
    for (const id of ['b32', 'b32abc', 'h256', 'h256ff00', 'B32KRJVAIBR', 'H256x', 'b32-x']) {
      expect(isItemIdKeptAsIs(id), id).toBe(false);
      const encoded = encodeItemId(id);
      expect(encoded).not.toBe(id);
      expect(decodeItemId(encoded)).toBe(id);
    }
    // "B32KRJVAIBR" would equal the encoding of "TSP 1" ignoring case if it were kept as is.
    expect(itemIdComparisonKey(encodeItemId('B32KRJVAIBR'))).not.toBe(itemIdComparisonKey(encodeItemId('TSP 1')));
  });

  it('hashes ids too long to encode reversibly, and says so', () => {
    const long = 'é'.repeat(80);
    const r = encodeItemIdWithForm(long);
    expect(r.form).toBe('sha256');
    expect(r.id).toMatch(/^h256[0-9a-f]{64}$/);
    expect(decodeItemId(r.id)).toBeUndefined();
    expect(encodeItemId(long)).toBe(r.id); // stable
    expect(encodeItemId('é'.repeat(81))).not.toBe(r.id);
    // Over 128 characters of kept characters: too long to keep, too long for base32.
    expect(encodeItemIdWithForm('x'.repeat(129)).form).toBe('sha256');
  });

  it('rejects non-canonical or foreign strings on decode', () => {
    expect(decodeItemId('b32!!')).toBeUndefined();
    expect(decodeItemId('b32a')).toBeUndefined(); // leftover bits
    expect(decodeItemId('has space')).toBeUndefined();
    expect(decodeItemId('B32KRJVAIBR')).toBeUndefined(); // neither kept as is nor a canonical encoding
    expect(() => encodeItemId('')).toThrow(/empty/);
    // Lone surrogates would not survive UTF-8 and two of them could collide (lossy id class).
    expect(() => encodeItemId('a\ud800b')).toThrow(/Unicode/);
  });

  it('property: every id round-trips or is hashed; output is valid; distinct ids never collide, even ignoring case, unless they differ only in case', () => {
    const r = rng(42);
    const seen = new Map<string, string>();
    for (let i = 0; i < 3000; i++) {
      const id = randomId(r);
      const { id: encoded, form } = encodeItemIdWithForm(id);
      expect(encoded).toMatch(/^[A-Za-z0-9_-]{1,128}$/);
      if (form !== 'sha256') expect(decodeItemId(encoded)).toBe(id);
      const key = itemIdComparisonKey(encoded);
      const prev = seen.get(key);
      if (prev !== undefined) expect(prev.toLowerCase()).toBe(id.toLowerCase());
      seen.set(key, id);
    }
    expect(seen.size).toBeGreaterThan(2500);
  });
});

describe('ids of earlier versions (alphanumeric only) and the migration', () => {
  it('reproduces what earlier versions sent: only letters and digits were kept', () => {
    expect(encodeItemIdAlphanumericOnly('TSP-1')).toBe('b32krjvaljr');
    expect(encodeItemIdAlphanumericOnly('TSP1')).toBe('TSP1');
    expect(encodeItemIdAlphanumericOnly('B32x')).toBe('B32x'); // the old marker rule was case-sensitive
    expect(encodeItemIdAlphanumericOnly('b32x')).toMatch(/^b32[a-z2-7]+$/);
  });

  it('names the old and the new id exactly when they differ', () => {
    expect(itemIdMigration('TSP-1')).toEqual({ previousId: 'b32krjvaljr', currentId: 'TSP-1' });
    expect(itemIdMigration('2-rules_play')).toEqual({
      previousId: encodeItemIdAlphanumericOnly('2-rules_play'),
      currentId: '2-rules_play',
    });
    expect(itemIdMigration('B32x')).toEqual({ previousId: 'B32x', currentId: encodeItemId('B32x') });
    for (const same of ['TSP1', 'a b', 'Zürich', 'é'.repeat(80)]) expect(itemIdMigration(same), same).toBeUndefined();
    expect(itemIdMigration('')).toBeUndefined();
  });

  it('property: an id changes only if it has - or _, or starts with an upper-case marker', () => {
    const r = rng(7);
    for (let i = 0; i < 2000; i++) {
      const id = randomId(r);
      const moved = itemIdMigration(id) !== undefined;
      const plausible = /[-_]/.test(id) || /^(B32|H256)/i.test(id);
      if (moved) expect(plausible, id).toBe(true);
    }
  });

  it('external group ids keep the alphanumeric-only rule', () => {
    expect(encodeExternalGroupId('payments')).toBe('payments');
    const encoded = encodeExternalGroupId('hr-onboarding');
    expect(encoded).toMatch(/^b32[a-z2-7]+$/);
    expect(decodeExternalGroupId(encoded)).toBe('hr-onboarding');
  });
});
