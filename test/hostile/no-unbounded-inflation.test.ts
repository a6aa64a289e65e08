/**
 * Inflation is bounded by what it produces, never by what headers declare: the reported 3 MB DOCX whose
 * `word/document.xml` claims 2 KB and inflates to 3 GB (it grew a worker to 3.4 GB) stops at `maxInflatedBytes`;
 * honest bombs are refused before inflating; overlapping entries draw on one budget; archives inside archives
 * are never opened; a PDF stream that inflates to gigabytes is stopped at the memory limit.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lyingSizeDocx } from '../../src/extract/fixtures/hostile.js';
import { DEFAULT_EXTRACT_LIMITS, closeExtraction, warmUpExtraction } from '../../src/extract/index.js';
import { HOSTILE_OPTIONS, corpus, expectContained, extractHostile } from './extraction-support.js';

beforeAll(() => warmUpExtraction({ maxMemoryMb: HOSTILE_OPTIONS.maxMemoryMb }), 60_000);
afterAll(() => closeExtraction());

describe('zip bombs, lying sizes, nested archives, flate bombs', () => {
  it('the reported DOCX (3 MB, declares 2 KB, inflates to 3 GB) stops at the inflation limit', async () => {
    const bytes = lyingSizeDocx();
    expect(bytes.length).toBeGreaterThan(2_500_000);
    expect(bytes.length).toBeLessThan(3_500_000);
    const file = { name: 'lying.docx', class: 'unbounded-inflation' as const, description: '3 GB behind 2 KB', bytes };
    const m = await extractHostile(file);
    expectContained(file, m);
    expect(m.result).toMatchObject({ ok: false, code: 'too-large' });
    if (!m.result.ok) {
      expect(m.result.reason).toContain(`limit of ${DEFAULT_EXTRACT_LIMITS.maxInflatedBytes} inflated bytes`);
      expect(m.result.reason).toContain('(maxInflatedBytes)');
      expect(m.result.reason).toContain('word/document.xml');
    }
    // Counted as produced: the process grew by about the limit, not by the 3 GB the part holds.
    expect(m.peakRssGrowthMb).toBeLessThan(DEFAULT_EXTRACT_LIMITS.maxInflatedBytes / 2 ** 20 + 150);
  });

  it('a smaller inflation limit is honoured as given', async () => {
    const file = {
      name: 'lying.docx',
      class: 'unbounded-inflation' as const,
      description: '',
      bytes: lyingSizeDocx(64),
    };
    const m = await extractHostile(file, { maxInflatedBytes: 8 * 2 ** 20 });
    expect(m.result).toMatchObject({ ok: false, code: 'too-large' });
    if (!m.result.ok) expect(m.result.reason).toContain(`limit of ${8 * 2 ** 20} inflated bytes`);
  });

  // The PDF bomb is inflated by pdfjs inside the worker: stopped by the memory limit, or on a slow machine by the
  // time limit first; either way within bounds.
  const expected: Record<string, { code: RegExp; reason: RegExp }> = {
    'docx-lying-size.docx': { code: /^too-large$/, reason: /maxInflatedBytes/ },
    'docx-honest-bomb.docx': { code: /^too-large$/, reason: /maxInflatedBytes/ },
    'xlsx-overlapping-entries.xlsx': { code: /^too-large$/, reason: /maxInflatedBytes/ },
    'docx-nested-zip.docx': { code: /^corrupt$/, reason: /itself a zip archive; nested archives are not opened/ },
    'zip-of-zips.zip': { code: /^unsupported$/, reason: /zip archives other than DOCX, PPTX and XLSX/ },
    'pdf-flate-bomb.pdf': {
      code: /^(too-large|timeout)$/,
      reason: /memory than the 256 MB limit \(maxMemoryMb\)|longer than 4000 ms \(timeoutMs\)/,
    },
  };
  for (const file of corpus((f) => f.class === 'unbounded-inflation'))
    it(`${file.name}: ${file.description}`, async () => {
      const m = await extractHostile(file);
      expectContained(file, m);
      const want = expected[file.name];
      expect(want, `no expectation for ${file.name}`).toBeDefined();
      expect(m.result.ok).toBe(false);
      if (!m.result.ok) {
        expect(m.result.code).toMatch(want!.code);
        expect(m.result.reason).toMatch(want!.reason);
      }
    });
});
