/**
 * The mapping's fast paths give exactly what the general code gives: a dateTime already in toISOString form, and
 * the item size bound that spares serialising every item to measure it.
 */
import { describe, expect, it } from 'vitest';
import { itemBytesAtMost } from '../../src/mapping/finish-item.js';
import { normaliseDateTime } from '../../src/mapping/values.js';

const slow = (v: string) => {
  const d = new Date(v);
  return Number.isNaN(d.getTime()) ? undefined : d.toISOString();
};

describe('normaliseDateTime fast path', () => {
  it('agrees with Date for canonical UTC strings, and leaves every other form to the full parser', () => {
    const samples = [
      '2026-01-02T03:04:05Z',
      '2026-01-02T03:04:05.123Z',
      '2024-02-29T23:59:59.999Z',
      '2023-02-29T00:00:00Z', // not a date
      '2026-13-01T00:00:00Z',
      '2026-04-31T00:00:00Z',
      '2026-01-02T24:00:00Z',
      '2000-02-29T00:00:00Z',
      '1900-02-29T00:00:00Z',
      '2026-01-02T03:04:05+01:00',
      '2026-01-02',
    ];
    for (const s of samples) {
      const r = normaliseDateTime(s);
      const want = slow(s);
      if (s === '2026-01-02T03:04:05+01:00') expect(r).toEqual({ ok: true, value: '2026-01-02T02:04:05.000Z' });
      else if (s === '2026-01-02') expect(r.ok).toBe(true);
      else if (want === undefined || !want.startsWith(s.slice(0, 10))) expect(r.ok, s).toBe(false);
      else expect(r, s).toEqual({ ok: true, value: want });
    }
    for (let i = 0; i < 2000; i++) {
      const t = Math.floor(Math.random() * 8e12) + 1e12;
      const iso = new Date(t).toISOString();
      expect(normaliseDateTime(iso)).toEqual({ ok: true, value: iso });
      expect(normaliseDateTime(iso.replace(/\.\d{3}Z$/, 'Z'))).toEqual({
        ok: true,
        value: iso.replace(/\.\d{3}Z$/, '.000Z'),
      });
    }
  });
});

describe('itemBytesAtMost', () => {
  it('is never below the serialised size, whatever the characters', () => {
    const alphabet = ['a', '"', '\\', '\n', '\u0001', 'é', '漢', '😀', '\ud800'];
    for (let i = 0; i < 500; i++) {
      const s = () =>
        Array.from(
          { length: Math.floor(Math.random() * 40) },
          () => alphabet[Math.floor(Math.random() * alphabet.length)],
        ).join('');
      const item = {
        id: 'T-1',
        acl: [{ type: 'user' as const, value: s(), accessType: 'grant' as const }],
        properties: { [s() || 'k']: s(), n: Math.random() * 1e12, list: [s(), s()], flag: true, nothing: null },
        content: { type: 'text' as const, value: s() },
      };
      expect(itemBytesAtMost(item as never)).toBeGreaterThanOrEqual(Buffer.byteLength(JSON.stringify(item), 'utf8'));
    }
  });
});
