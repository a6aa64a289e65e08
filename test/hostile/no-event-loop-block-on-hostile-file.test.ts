/**
 * No file can block the process: markup that makes a backtracking regular expression or a stack-searching parser
 * take quadratic time (the reported 1.6 KB PPTX of unclosed `<a:p>` paragraphs blocked a worker for 16 s) is read
 * in one linear pass, inside a sandbox worker; a timer in this process keeps ticking throughout.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { unclosedParagraphsPptx } from '../../src/extract/fixtures/hostile.js';
import { closeExtraction, warmUpExtraction } from '../../src/extract/index.js';
import { HOSTILE_OPTIONS, corpus, expectContained, extractHostile } from './extraction-support.js';

beforeAll(() => warmUpExtraction({ maxMemoryMb: HOSTILE_OPTIONS.maxMemoryMb }), 60_000);
afterAll(() => closeExtraction());

describe('quadratic-time bait for every parser', () => {
  it('the reported 1.6 KB PPTX is read at once, and the loop never stops', async () => {
    const file = {
      name: 'unclosed-a-p.pptx',
      class: 'quadratic-parse' as const,
      description: '50,000 unclosed <a:p>',
      bytes: unclosedParagraphsPptx(),
    };
    expect(file.bytes.length).toBeLessThan(1_700);
    const m = await extractHostile(file);
    expectContained(file, m);
    expect(m.result).toMatchObject({ ok: true, text: 'end', metadata: { format: 'pptx', pageCount: 1 } });
    expect(m.ticks).toBeGreaterThan(0);
  });

  for (const file of corpus((f) => f.class === 'quadratic-parse'))
    it(`${file.name}: ${file.description}`, async () => {
      const m = await extractHostile(file);
      expectContained(file, m);
      // Linear parsing reads these whole: none needs the time limit.
      expect(m.result.ok, m.result.ok ? '' : m.result.reason).toBe(true);
    });
});
