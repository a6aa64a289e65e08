/**
 * Truncated and random-byte files of every type come back as a result (extracted, or a documented failure whose
 * reason names the file), within the time limit, with the loop free: never a throw, a hang or a crash.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeExtraction, sandboxWorkerCount, warmUpExtraction } from '../../src/extract/index.js';
import { HOSTILE_OPTIONS, corpus, expectContained, extractHostile } from './extraction-support.js';

beforeAll(() => warmUpExtraction({ maxMemoryMb: HOSTILE_OPTIONS.maxMemoryMb }), 60_000);
afterAll(() => closeExtraction());

const CODES = ['unsupported', 'encrypted', 'corrupt', 'too-large', 'timeout'];

describe('truncated and random files', () => {
  const files = corpus((f) => f.class === 'damaged');
  it('the corpus has a truncated and a random file of every type', () => {
    for (const ext of ['pdf', 'docx', 'pptx', 'xlsx', 'html', 'png', 'jpg', 'tif'])
      for (const kind of ['truncated', 'random']) expect(files.map((f) => f.name)).toContain(`${kind}.${ext}`);
  });

  for (const file of files)
    it(`${file.name}: ${file.description}`, async () => {
      const m = await extractHostile(file, { ocr: true });
      expectContained(file, m);
      if (!m.result.ok) expect(CODES).toContain(m.result.code);
      else expect(typeof m.result.text).toBe('string');
      expect(sandboxWorkerCount()).toBeLessThanOrEqual(2);
    });
});
