import { describe, expect, it } from 'vitest';
import { decodeItemId, encodeItemId, encodeItemIdDetailed, isPlainId } from '../../src/mapping/item-id.js';

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
  it('keeps plain alphanumeric ids unchanged', () => {
    for (const id of ['TSP228082938', 'a', 'Z9', 'x'.repeat(128)]) {
      expect(encodeItemId(id)).toBe(id);
      expect(decodeItemId(id)).toBe(id);
    }
  });

  it('matches RFC 4648 base32 (known vectors, independent of our decoder)', () => {
    expect(encodeItemId('TSP-1')).toBe('b32krjvaljr');
    expect(encodeItemId('Zürich')).toBe('b32llb3y4tjmnua');
  });

  it('encodes ids with other characters into alphanumerics and back', () => {
    for (const id of ['TSP-1234', 'a/b', 'folder/file name.txt', 'Zürich', '日本', 'y'.repeat(70) + '-']) {
      const enc = encodeItemId(id);
      expect(enc).toMatch(/^[A-Za-z0-9]{1,128}$/);
      expect(enc).not.toBe(id);
      expect(decodeItemId(enc)).toBe(id);
    }
  });

  it('encodes plain ids that start with a marker, so decoding is never ambiguous (marker collision class)', () => {
    for (const id of ['b32', 'b32abc', 'h256', 'h256ff00']) {
      expect(isPlainId(id)).toBe(false);
      const enc = encodeItemId(id);
      expect(enc).not.toBe(id);
      expect(decodeItemId(enc)).toBe(id);
    }
    // The encoding of one id never equals another id's plain form.
    expect(decodeItemId(encodeItemId('TSP-1'))).toBe('TSP-1');
  });

  it('hashes ids too long to encode reversibly, and says so', () => {
    const long = 'é'.repeat(80);
    const r = encodeItemIdDetailed(long);
    expect(r.hashed).toBe(true);
    expect(r.id).toMatch(/^h256[0-9a-f]{64}$/);
    expect(decodeItemId(r.id)).toBeUndefined();
    expect(encodeItemId(long)).toBe(r.id); // stable
    expect(encodeItemId('é'.repeat(81))).not.toBe(r.id);
  });

  it('rejects non-canonical or foreign strings on decode', () => {
    expect(decodeItemId('b32!!')).toBeUndefined();
    expect(decodeItemId('b32a')).toBeUndefined(); // leftover bits
    expect(decodeItemId('has-dash')).toBeUndefined();
    expect(() => encodeItemId('')).toThrow(/empty/);
    // Lone surrogates would not survive UTF-8 and two of them could collide (lossy id class).
    expect(() => encodeItemId('a\ud800b')).toThrow(/Unicode/);
  });

  it('property: every id round-trips or is hashed; output is always valid; distinct ids never collide', () => {
    const r = rng(42);
    const seen = new Map<string, string>();
    for (let i = 0; i < 3000; i++) {
      const id = randomId(r);
      const { id: enc, hashed } = encodeItemIdDetailed(id);
      expect(enc).toMatch(/^[A-Za-z0-9]{1,128}$/);
      if (!hashed) expect(decodeItemId(enc)).toBe(id);
      const prev = seen.get(enc);
      if (prev !== undefined) expect(prev).toBe(id);
      seen.set(enc, id);
    }
    expect(seen.size).toBeGreaterThan(2500);
  });
});
