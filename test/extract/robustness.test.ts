import { strToU8 } from 'fflate';
import { describe, expect, it } from 'vitest';
import { extractFile } from '../../src/extract/index.js';
import { encodePng, makeDocx, makePdf, makePptx, makeXlsx, renderTextLines } from '../../src/extract/fixtures/index.js';

// Regression guard for the "extractor throws / hangs on malformed input" bug class: every damaged file must come
// back as a result (ok, or one of the documented codes), never as an exception or a hang.

function prng(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

const CODES = new Set(['unsupported', 'encrypted', 'corrupt', 'too-large', 'timeout']);

describe('damaged files never throw', () => {
  const seeds: [string, Uint8Array][] = [
    ['a.pdf', makePdf({ pages: [{ lines: ['Alpha beta gamma'] }, { lines: ['Delta'] }], info: { title: 'T' } })],
    ['a.docx', makeDocx(['Alpha beta gamma', 'Delta'], { title: 'T' })],
    ['a.pptx', makePptx([['Alpha'], ['Beta']])],
    ['a.xlsx', makeXlsx([{ name: 'S', rows: [['a', 1]] }])],
    ['a.html', strToU8('<html><body><p>Alpha <b>beta</b></p><script>x()</script></body></html>')],
    ['a.png', encodePng(renderTextLines(['AB']))],
  ];

  it('truncated, bit-flipped and spliced variants of every format resolve to a result', async () => {
    const rand = prng(7);
    let cases = 0;
    const codes = new Map<string, number>();
    for (const [name, original] of seeds) {
      for (let i = 0; i < 12; i++) {
        const bytes = original.slice();
        const mode = i % 3;
        let input: Uint8Array;
        if (mode === 0) input = bytes.subarray(0, Math.floor(rand() * bytes.length));
        else if (mode === 1) {
          for (let k = 0; k < 1 + Math.floor(rand() * 20); k++) {
            const j = Math.floor(rand() * bytes.length);
            bytes[j] = bytes[j]! ^ (1 << k % 8);
          }
          input = bytes;
        } else {
          const cut = Math.floor(rand() * bytes.length);
          input = new Uint8Array([...bytes.subarray(0, cut), ...bytes.subarray(cut + Math.floor(rand() * 200))]);
        }
        const r = await extractFile({ bytes: input, fileName: name }, { ocr: false, maxBytes: 1e7, timeoutMs: 5_000 });
        cases++;
        if (r.ok) {
          expect(typeof r.text).toBe('string');
        } else {
          expect(CODES.has(r.code), `${name}: unexpected code ${r.code}`).toBe(true);
          expect(r.reason.length).toBeGreaterThan(0);
          codes.set(r.code, (codes.get(r.code) ?? 0) + 1);
        }
      }
    }
    expect(cases).toBe(seeds.length * 12);
    expect(codes.get('corrupt') ?? 0).toBeGreaterThan(0); // the damage was real enough to be noticed
  });
});
