import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { sampleAttachments } from '../../scripts/fixtures/samples.js';
import { closeOcr, extractFile } from '../../src/extract/index.js';

afterAll(() => closeOcr());

const dir = path.join('samples', 'contoso-tasks', 'attachments');
const opts = { ocr: true, maxBytes: 10 * 1024 * 1024, timeoutMs: 20_000 };

describe('sample attachments (samples/contoso-tasks/attachments)', () => {
  const expected = sampleAttachments();

  it('the committed files are exactly what scripts/fixtures/write-samples.ts generates', () => {
    for (const [name, bytes] of Object.entries(expected)) {
      const committed = new Uint8Array(readFileSync(path.join(dir, name)));
      expect(Buffer.compare(committed, bytes), `${name} differs: rerun scripts/fixtures/write-samples.ts`).toBe(0);
    }
  });

  it('each sample extracts to its known text', async () => {
    const read = async (name: string) => {
      const r = await extractFile({ bytes: new Uint8Array(readFileSync(path.join(dir, name))), fileName: name }, opts);
      if (!r.ok) throw new Error(`${name}: ${r.code}: ${r.reason}`);
      return r;
    };
    const pdf = await read('TSP100000-customs-checklist.pdf');
    expect(pdf.text).toContain('Customs checklist for container MSCU8162777');
    expect(pdf.metadata).toMatchObject({ pageCount: 2, author: 'Nestor Wilke', title: 'Customs checklist' });
    const docx = await read('TSP100000-route-plan.docx');
    expect(docx.text).toContain('adds about 26 minutes per stop');
    expect(docx.metadata).toMatchObject({ title: 'Route plan', modified: '2025-10-03T11:42:09.000Z' });
    const png = await read('TSP100000-scanned-receipt.png');
    expect(png.ocrUsed).toBe(true);
    const words = png.text.toLowerCase().split(/[^a-z0-9]+/);
    for (const w of ['receipt', 'container', 'contoso']) expect(words, png.text).toContain(w);
  });
});
