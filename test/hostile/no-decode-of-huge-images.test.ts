/**
 * An image's size is read from its header and refused above `maxImagePixels` before anything is decoded: a PNG or
 * TIFF declaring 100,000 × 100,000 pixels, a JPEG at the format's 65,535 × 65,535, a PDF painting such an image.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_EXTRACT_LIMITS, closeExtraction, warmUpExtraction } from '../../src/extract/index.js';
import { HOSTILE_OPTIONS, corpus, expectContained, extractHostile } from './extraction-support.js';

beforeAll(() => warmUpExtraction({ maxMemoryMb: HOSTILE_OPTIONS.maxMemoryMb }), 60_000);
afterAll(() => closeExtraction());

describe('huge declared dimensions', () => {
  for (const file of corpus((f) => f.class === 'huge-image' && !f.name.endsWith('.pdf')))
    it(`${file.name}: refused from its header, naming the limit`, async () => {
      const m = await extractHostile(file, { ocr: true });
      expectContained(file, m);
      expect(m.result).toMatchObject({ ok: false, code: 'too-large' });
      if (!m.result.ok) {
        expect(m.result.reason).toContain(
          `above the ${DEFAULT_EXTRACT_LIMITS.maxImagePixels / 1e6} MP limit (maxImagePixels)`,
        );
        expect(m.result.reason).toMatch(/\d+x\d+ pixels/);
      }
      expect(m.ms).toBeLessThan(1_000);
      expect(m.peakRssGrowthMb).toBeLessThan(64);
    });

  it('a PDF page painting a 100,000 × 100,000 image: the image is skipped, the page still read', async () => {
    const [file] = corpus((f) => f.name === 'pdf-huge-image.pdf');
    const m = await extractHostile(file!);
    expectContained(file!, m);
    expect(m.result).toMatchObject({ ok: true, metadata: { pageCount: 1 } });
  });
});
