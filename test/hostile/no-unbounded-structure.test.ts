/**
 * Structure an attacker controls is bounded: a PDF with 100,000 pages (or a page tree that claims two billion),
 * objects nested 100,000 deep, a cyclic page tree, TIFF directories that loop or claim billions of values. Each
 * file is read within `maxPages` and the time limit, or refused, with the loop free and memory bounded.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makePdf } from '../../src/extract/fixtures/index.js';
import { closeExtraction, warmUpExtraction } from '../../src/extract/index.js';
import { HOSTILE_OPTIONS, corpus, expectContained, extractHostile } from './extraction-support.js';

beforeAll(() => warmUpExtraction({ maxMemoryMb: HOSTILE_OPTIONS.maxMemoryMb }), 60_000);
afterAll(() => closeExtraction());

describe('pages, nesting, loops', () => {
  for (const file of corpus((f) => f.class === 'huge-structure'))
    it(`${file.name}: ${file.description}`, async () => {
      const m = await extractHostile(file);
      expectContained(file, m);
    });

  it('a PDF with more pages than maxPages is read up to maxPages, with a warning that says so', async () => {
    const file = {
      name: '3000-pages.pdf',
      class: 'huge-structure' as const,
      description: '3,000 short pages',
      bytes: makePdf({ pages: Array.from({ length: 3_000 }, (_, i) => ({ lines: [`page ${i + 1}`] })) }),
    };
    const m = await extractHostile(file, { maxPages: 50, timeoutMs: 10_000 });
    expectContained(file, m, 10_000);
    expect(m.result).toMatchObject({ ok: true, metadata: { pageCount: 3_000 } });
    if (m.result.ok) {
      expect(m.result.text).toContain('page 50');
      expect(m.result.text).not.toContain('page 51');
      expect(m.result.warnings).toContain('only the first 50 of 3000 pages were read (maxPages)');
    }
  });

  it('a page tree that claims two billion pages is read as the one page it holds', async () => {
    const [file] = corpus((f) => f.name === 'pdf-lying-page-count.pdf');
    const m = await extractHostile(file!);
    expectContained(file!, m);
    expect(m.result).toMatchObject({ ok: true, text: 'one', metadata: { pageCount: 1 } });
  });

  it('TIFF directory loops and impossible field counts are refused before the decoder runs', async () => {
    for (const file of corpus((f) => f.name.startsWith('tiff-') && f.class === 'huge-structure')) {
      const m = await extractHostile(file, { ocr: true });
      expectContained(file, m);
      expect(m.result).toMatchObject({ ok: false, code: 'corrupt' });
      if (!m.result.ok)
        expect(m.result.reason).toMatch(
          /the TIFF file is damaged: (directory at 8 is referenced twice|field 269 points outside the file)/,
        );
    }
  });
});
