import { existsSync } from 'node:fs';
import path from 'node:path';
import jpeg from 'jpeg-js';
import UTIF from 'utif2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  closeOcr,
  extractFile,
  ocrJobCount,
  ocrWorkerCount,
  setOcrIdleMs,
  warmUpOcr,
} from '../../src/extract/index.js';
import type { ExtractResult } from '../../src/extract/index.js';
import { encodePng, grayToRgba, makePdf, renderTextLines } from '../../src/extract/fixtures/index.js';
import { trainedDataDir } from '../../src/extract/ocr.js';

// One tesseract worker for the whole file (started in beforeAll), terminated in afterAll.
beforeAll(() => warmUpOcr(['eng']), 60_000);
afterAll(() => closeOcr());

const opts = { ocr: true, maxBytes: 50 * 1024 * 1024, timeoutMs: 20_000 };
const LINES = ['QUARTERLY BUDGET REVIEW', 'CONTOSO 2025'];
const KEY_WORDS = ['quarterly', 'budget', 'review', 'contoso'];

/** Words of OCR output, lower-cased, punctuation stripped. */
const words = (text: string) =>
  text
    .toLowerCase()
    .split(/[^a-z0-9]+/)
    .filter(Boolean);

function expectKeyWords(r: ExtractResult) {
  if (!r.ok) throw new Error(`expected ok, got ${r.code}: ${r.reason}`);
  expect(r.ocrUsed).toBe(true);
  const found = words(r.text);
  for (const w of KEY_WORDS) expect(found, `OCR text was: ${JSON.stringify(r.text)}`).toContain(w);
}

describe('OCR (offline tesseract.js)', () => {
  it('trained data comes from the installed npm package, not a URL', () => {
    const dir = trainedDataDir('eng');
    expect(path.isAbsolute(dir)).toBe(true);
    expect(dir).toContain(path.join('node_modules', '@tesseract.js-data', 'eng'));
    expect(existsSync(path.join(dir, 'eng.traineddata.gz'))).toBe(true);
  });

  it('reads a rendered line of text from a PNG', async () => {
    const bytes = encodePng(renderTextLines(LINES));
    const r = await extractFile({ bytes, fileName: 'scan.png', contentType: 'image/png' }, opts);
    expectKeyWords(r);
    if (r.ok) expect(r.metadata).toMatchObject({ fileExtension: 'png', format: 'png', sizeBytes: bytes.length });
  });

  it('reads a JPEG and a TIFF', async () => {
    const img = renderTextLines(LINES);
    const jpg = jpeg.encode({ data: Buffer.from(grayToRgba(img)), width: img.width, height: img.height }, 90).data;
    expectKeyWords(await extractFile({ bytes: new Uint8Array(jpg), fileName: 'photo.jpg' }, opts));
    const tif = new Uint8Array(UTIF.encodeImage(grayToRgba(img), img.width, img.height));
    const r = await extractFile({ bytes: tif, fileName: 'fax.tiff' }, opts);
    expectKeyWords(r);
    if (r.ok) expect(r.metadata.pageCount).toBe(1);
  });

  it('falls back to OCR for a scanned PDF page (embedded image, no text layer)', async () => {
    const bytes = makePdf({
      pages: [{ lines: ['Cover page with a real text layer.'] }, { image: renderTextLines(LINES) }],
      info: { title: 'Scanned minutes' },
    });
    const r = await extractFile({ bytes, fileName: 'minutes.pdf' }, opts);
    expectKeyWords(r);
    if (r.ok) {
      expect(r.text).toContain('Cover page with a real text layer.');
      expect(r.metadata).toMatchObject({ pageCount: 2, title: 'Scanned minutes' });
    }
  });

  it('stopping a file while its OCR job runs terminates the OCR worker, and the next file still works', async () => {
    const big = encodePng(renderTextLines(Array.from({ length: 24 }, () => 'THE QUICK BROWN FOX JUMPS OVER IT')));
    await warmUpOcr(['eng']);
    expect(ocrWorkerCount()).toBe(1);
    // The time limit and the caller's abort stop a file the same way; the abort lets the test wait until the file's
    // OCR job is really running (reading it all takes ~6 s here), whatever the machine's load.
    const ac = new AbortController();
    const pending = extractFile(
      { bytes: big, fileName: 'big.png' },
      { ...opts, timeoutMs: 60_000, abortSignal: ac.signal },
    );
    while (ocrJobCount() === 0) await new Promise((resolve) => setTimeout(resolve, 20));
    await new Promise((resolve) => setTimeout(resolve, 200));
    const stopped = Date.now();
    ac.abort();
    const r = await pending;
    expect(r).toMatchObject({ ok: false, code: 'timeout' });
    expect(Date.now() - stopped).toBeLessThan(1_000);
    expect(ocrWorkerCount()).toBe(0); // the busy worker was terminated, not left running
    expect(ocrJobCount()).toBe(0);
    expectKeyWords(await extractFile({ bytes: encodePng(renderTextLines(LINES)), fileName: 'next.png' }, opts));
  });

  it('an OCR language without its data package is unsupported, naming the package', async () => {
    const r = await extractFile(
      { bytes: encodePng(renderTextLines(['HI'])), fileName: 'x.png' },
      { ...opts, ocrLanguages: ['zzz'] },
    );
    expect(r).toMatchObject({ ok: false, code: 'unsupported' });
    if (!r.ok) expect(r.reason).toContain('@tesseract.js-data/zzz');
  });

  it('a corrupt PNG is corrupt, not a throw', async () => {
    const bytes = encodePng(renderTextLines(LINES));
    const broken = bytes.slice(0, 60);
    expect(await extractFile({ bytes: broken, fileName: 'broken.png' }, opts)).toMatchObject({
      ok: false,
      code: 'corrupt',
    });
  });
});

describe('OCR worker lifecycle', () => {
  it('terminates an idle worker so it does not hold memory or keep a process alive', async () => {
    setOcrIdleMs(300);
    try {
      expectKeyWords(await extractFile({ bytes: encodePng(renderTextLines(LINES)), fileName: 'a.png' }, opts));
      expect(ocrWorkerCount()).toBe(1);
      await new Promise((resolve) => setTimeout(resolve, 800));
      expect(ocrWorkerCount()).toBe(0);
    } finally {
      setOcrIdleMs(30_000);
    }
  });
});

describe('OCR budget for long scanned PDFs', () => {
  it('stops at maxOcrImages and says so', async () => {
    const page = { image: renderTextLines(['BUDGET']) };
    const bytes = makePdf({ pages: [page, page, page] });
    const r = await extractFile({ bytes, fileName: 'scans.pdf' }, { ...opts, maxOcrImages: 1 });
    if (!r.ok) throw new Error(r.reason);
    expect(words(r.text)).toEqual(['budget']);
    expect(r.warnings.join(' ')).toMatch(/OCR stopped after 1 images \(maxOcrImages\)/);
    expect(r.warnings.join(' ')).toMatch(/2 page\(s\) have no readable text \(2, 3\)/);
  });
});

describe('scanned PDF pages without an image to lift out', () => {
  it('renders a page whose text is drawn as vector paths and reads it by OCR', async () => {
    const bytes = makePdf({ pages: [{ vector: renderTextLines(LINES, 1) }] });
    const r = await extractFile({ bytes, fileName: 'outlined.pdf' }, opts);
    expectKeyWords(r);
  });
});

describe('several OCR languages', () => {
  it('combines trained data from separate package folders into one langPath', async () => {
    const { mkdtempSync, writeFileSync, readFileSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { combinedLangPath } = await import('../../src/extract/ocr.js');
    const a = mkdtempSync(path.join(tmpdir(), 'lang-a-'));
    const b = mkdtempSync(path.join(tmpdir(), 'lang-b-'));
    writeFileSync(path.join(a, 'eng.traineddata.gz'), 'E');
    writeFileSync(path.join(b, 'deu.traineddata.gz'), 'D');
    expect(combinedLangPath([{ lang: 'eng', dir: a }])).toBe(a);
    const both = combinedLangPath([
      { lang: 'eng', dir: a },
      { lang: 'deu', dir: b },
    ]);
    expect(readFileSync(path.join(both, 'eng.traineddata.gz'), 'utf8')).toBe('E');
    expect(readFileSync(path.join(both, 'deu.traineddata.gz'), 'utf8')).toBe('D');
  });
});
