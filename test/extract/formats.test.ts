import { describe, expect, it } from 'vitest';
import { strToU8, zipSync } from 'fflate';
import {
  extractFile,
  fileFingerprint,
  itemContent,
  truncateAtWordBoundary,
  utf8Length,
} from '../../src/extract/index.js';
import type { ExtractResult } from '../../src/extract/index.js';
import { makeDocx, makePdf, makePptx, makeXlsx, renderTextLines } from '../../src/extract/fixtures/index.js';

const opts = { ocr: false, maxBytes: 20 * 1024 * 1024, timeoutMs: 20_000 };
const SENTENCE = 'The quarterly budget review for Fabrikam closes on Friday.';

function ok(r: ExtractResult) {
  if (!r.ok) throw new Error(`expected ok, got ${r.code}: ${r.reason}`);
  return r;
}

describe('PDF', () => {
  it('round-trips text and reads the info dictionary and page count', async () => {
    const bytes = makePdf({
      pages: [{ lines: [SENTENCE] }, { lines: ['Second page about invoices.'] }, { lines: ['Third page.'] }],
      info: {
        title: 'Budget 2025',
        author: 'Megan Bowen',
        created: new Date('2024-03-01T10:00:00Z'),
        modified: new Date('2024-04-02T11:30:00Z'),
      },
    });
    const r = ok(await extractFile({ bytes, fileName: 'reports/Budget.PDF' }, opts));
    expect(r.text).toContain(SENTENCE);
    expect(r.text).toContain('Second page about invoices.');
    expect(r.contentType).toBe('text');
    expect(r.ocrUsed).toBe(false);
    expect(r.metadata).toMatchObject({
      fileName: 'Budget.PDF',
      fileExtension: 'pdf',
      sizeBytes: bytes.length,
      pageCount: 3,
      title: 'Budget 2025',
      author: 'Megan Bowen',
      created: '2024-03-01T10:00:00.000Z',
      modified: '2024-04-02T11:30:00.000Z',
      format: 'pdf',
    });
  });

  it('rejects a password-protected PDF as encrypted', async () => {
    const bytes = makePdf({
      pages: [{ lines: [SENTENCE] }],
      encrypt: { userPassword: 'open-sesame', ownerPassword: 'o' },
    });
    const r = await extractFile({ bytes, fileName: 'locked.pdf' }, opts);
    expect(r).toMatchObject({ ok: false, code: 'encrypted' });
    if (!r.ok) expect(r.reason).toMatch(/password/);
  });

  it('reads a PDF encrypted with an owner password only (no password is needed to open it)', async () => {
    const bytes = makePdf({
      pages: [{ lines: [SENTENCE] }],
      info: { author: 'Owner Only' },
      encrypt: { userPassword: '', ownerPassword: 'owner' },
    });
    const r = ok(await extractFile({ bytes, fileName: 'restricted.pdf' }, opts));
    expect(r.text).toContain(SENTENCE);
    expect(r.metadata.author).toBe('Owner Only');
  });

  it('warns about scanned pages when OCR is off instead of returning nothing silently', async () => {
    const bytes = makePdf({ pages: [{ lines: [SENTENCE] }, { image: renderTextLines(['SCANNED']) }] });
    const r = ok(await extractFile({ bytes, fileName: 'mixed.pdf' }, opts));
    expect(r.text).toContain(SENTENCE);
    expect(r.warnings.join(' ')).toMatch(/1 page\(s\) have no text layer \(2\); enable ocr/);
  });

  it('reports a truncated PDF as corrupt, not a throw', async () => {
    const bytes = makePdf({ pages: [{ lines: [SENTENCE] }] });
    const r = await extractFile({ bytes: bytes.subarray(0, 40), fileName: 'cut.pdf' }, opts);
    expect(r).toMatchObject({ ok: false, code: 'corrupt' });
  });

  it('a .pdf name without the PDF signature is corrupt', async () => {
    const r = await extractFile({ bytes: strToU8('<html>not a pdf</html>'), fileName: 'x.pdf' }, opts);
    expect(r).toMatchObject({ ok: false, code: 'corrupt' });
  });
});

describe('Office Open XML', () => {
  const props = { title: 'Plan', author: 'Adele Vance', created: new Date('2023-01-05T08:00:00Z') };

  it('DOCX: text and core properties', async () => {
    const bytes = makeDocx(['Heading line', SENTENCE, 'Tom & Jerry <3'], props);
    const r = ok(await extractFile({ bytes, fileName: 'plan.docx' }, opts));
    expect(r.text).toContain(SENTENCE);
    expect(r.text).toContain('Tom & Jerry <3');
    expect(r.metadata).toMatchObject({ title: 'Plan', author: 'Adele Vance', created: '2023-01-05T08:00:00.000Z' });
    expect(r.metadata).toMatchObject({ fileExtension: 'docx', format: 'docx' });
  });

  it('PPTX: slide text in slide order, slide count as pageCount', async () => {
    const slides = Array.from({ length: 11 }, (_, i) => [`Slide ${i + 1} title`, `Body ${i + 1}`]);
    slides[4] = ['Roadmap', SENTENCE];
    const r = ok(await extractFile({ bytes: makePptx(slides, props), fileName: 'deck.pptx' }, opts));
    expect(r.text).toContain(SENTENCE);
    expect(r.text.indexOf('Slide 2 title')).toBeLessThan(r.text.indexOf('Slide 10 title'));
    expect(r.metadata).toMatchObject({ pageCount: 11, author: 'Adele Vance', format: 'pptx' });
  });

  it('XLSX: cell text per sheet, shared strings and numbers', async () => {
    const bytes = makeXlsx(
      [
        {
          name: 'Q1',
          rows: [
            ['Region', 'Revenue'],
            ['North', 1200.5],
            ['South', 800],
          ],
        },
        { name: 'Notes', rows: [[SENTENCE]] },
      ],
      props,
    );
    const r = ok(await extractFile({ bytes, fileName: 'numbers.xlsx' }, opts));
    expect(r.text).toContain('Q1\nRegion\tRevenue\nNorth\t1200.5\nSouth\t800');
    expect(r.text).toContain(`Notes\n${SENTENCE}`);
    expect(r.metadata).toMatchObject({ pageCount: 2, title: 'Plan', format: 'xlsx' });
  });

  it('a truncated DOCX is corrupt with a reason', async () => {
    const full = makeDocx([SENTENCE.repeat(50)], props);
    const r = await extractFile(
      { bytes: full.subarray(0, Math.floor(full.length / 2)), fileName: 'broken.docx' },
      opts,
    );
    expect(r).toMatchObject({ ok: false, code: 'corrupt' });
    if (!r.ok) expect(r.reason).toMatch(/zip/);
  });

  it('a zip that is not OOXML is unsupported; one named .docx is corrupt', async () => {
    const zip = zipSync({ 'a.txt': strToU8('hello') });
    expect(await extractFile({ bytes: zip, fileName: 'a.zip' }, opts)).toMatchObject({
      ok: false,
      code: 'unsupported',
    });
    expect(await extractFile({ bytes: zip, fileName: 'a.docx' }, opts)).toMatchObject({ ok: false, code: 'corrupt' });
  });

  it('refuses a zip bomb by its declared expansion', async () => {
    const huge = new Uint8Array(120 * 1024 * 1024); // zeros compress ~1000:1
    const bytes = zipSync({ 'word/document.xml': huge, '[Content_Types].xml': strToU8('<Types/>') }, { level: 1 });
    const r = await extractFile({ bytes, fileName: 'bomb.docx' }, opts);
    expect(r).toMatchObject({ ok: false, code: 'too-large' });
  });

  it('an encrypted Office file (OLE container with EncryptionInfo) is encrypted; legacy .doc is unsupported', async () => {
    const cfbHeader = [0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1];
    const enc = new Uint8Array([...cfbHeader, ...Buffer.from('....EncryptionInfo', 'utf16le')]);
    expect(await extractFile({ bytes: enc, fileName: 'secret.docx' }, opts)).toMatchObject({
      ok: false,
      code: 'encrypted',
    });
    const legacy = new Uint8Array([...cfbHeader, ...Buffer.from('WordDocument', 'utf16le')]);
    expect(await extractFile({ bytes: legacy, fileName: 'old.doc' }, opts)).toMatchObject({
      ok: false,
      code: 'unsupported',
    });
  });
});

describe('HTML', () => {
  const html = `<!doctype html><html><head><title>Release notes</title><meta name="author" content="Lee Gu">
    <style>p { color: red }</style><script>alert("x")</script></head>
    <body><h1>Version&nbsp;2</h1><p>First   paragraph &amp; more.</p><div>Second<br>line</div>
    <ul><li>one</li><li>two</li></ul><table><tr><td>a</td><td>b</td></tr></table>
    <img src="x.png" alt="diagram" onerror="steal()"><a href="javascript:evil()">link</a></body></html>`;

  it('converts to text with block-level line breaks and no script or style', async () => {
    const r = ok(await extractFile({ bytes: strToU8(html), fileName: 'notes.html' }, opts));
    expect(r.contentType).toBe('text');
    expect(r.text).toBe('Version 2\nFirst paragraph & more.\nSecond\nline\none\ntwo\na\tb\ndiagram link');
    expect(r.metadata).toMatchObject({ title: 'Release notes', author: 'Lee Gu' });
  });

  it("keeps sanitised HTML when html: 'keep'", async () => {
    const r = ok(await extractFile({ bytes: strToU8(html), fileName: 'notes.htm' }, { ...opts, html: 'keep' }));
    expect(r.contentType).toBe('html');
    expect(r.text).toContain('<h1>Version\u00a02</h1>');
    expect(r.text).toContain('<li>one</li>');
    expect(r.text).not.toMatch(/script|alert|onerror|javascript:|color: red/i);
    expect(r.text).toContain('<img src="x.png" alt="diagram">');
  });
});

describe('plain text and Markdown', () => {
  it('UTF-8 with BOM, UTF-16LE/BE with BOM and BOM-less UTF-16LE decode to the same text', async () => {
    const s = 'Grüße aus Zürich – 東京 ✓';
    const variants = [
      new Uint8Array([0xef, 0xbb, 0xbf, ...Buffer.from(s, 'utf8')]),
      new Uint8Array([0xff, 0xfe, ...Buffer.from(s, 'utf16le')]),
      new Uint8Array([0xfe, 0xff, ...Buffer.from(s, 'utf16le').swap16()]),
      new Uint8Array(Buffer.from(`${s} plus some ASCII words to sniff`, 'utf16le')),
    ];
    for (const bytes of variants) {
      const r = ok(await extractFile({ bytes, fileName: 'greeting.txt' }, opts));
      expect(r.text.startsWith(s)).toBe(true);
      expect(r.warnings).toEqual([]);
    }
  });

  it('invalid UTF-8 becomes replacement characters plus a warning', async () => {
    const bytes = new Uint8Array([...Buffer.from('abc '), 0xff, 0xfe, 0x41, ...Buffer.from(' def')]);
    const r = ok(await extractFile({ bytes, fileName: 'bad.md' }, opts));
    expect(r.text).toContain('\uFFFD');
    expect(r.text).toContain('def');
    expect(r.warnings.join(' ')).toMatch(/invalid UTF-8/);
  });

  it('honours a declared legacy charset (MIME parameter or HTML meta) instead of mangling it as UTF-8', async () => {
    const cafe = new Uint8Array([0x63, 0x61, 0x66, 0xe9, 0x20, 0x80, 0x35]); // "café €5" in windows-1252
    const t = ok(
      await extractFile({ bytes: cafe, fileName: 'menu.txt', contentType: 'text/plain; charset=windows-1252' }, opts),
    );
    expect(t.text).toBe('café €5');
    expect(t.warnings).toEqual([]);
    const html = new Uint8Array([
      ...strToU8('<html><head><meta charset="windows-1252"></head><body><p>'),
      ...cafe,
      ...strToU8('</p></body></html>'),
    ]);
    const h = ok(await extractFile({ bytes: html, fileName: 'menu.html' }, opts));
    expect(h.text).toBe('café €5');
  });

  it('Markdown is kept as its text', async () => {
    const r = ok(await extractFile({ bytes: strToU8(`# Title\n\n${SENTENCE}\n`), fileName: 'README.md' }, opts));
    expect(r.text).toBe(`# Title\n\n${SENTENCE}`);
    expect(r.metadata.format).toBe('markdown');
  });
});

describe('detection and limits', () => {
  it('magic bytes win over a wrong extension, with a warning', async () => {
    const bytes = makePdf({ pages: [{ lines: [SENTENCE] }] });
    const r = ok(await extractFile({ bytes, fileName: 'misnamed.docx' }, opts));
    expect(r.text).toContain(SENTENCE);
    expect(r.metadata.format).toBe('pdf');
    expect(r.warnings.join(' ')).toMatch(/says \.docx but the content is PDF/);
  });

  it('no name and no type: sniffs text; binary garbage is unsupported', async () => {
    expect(ok(await extractFile({ bytes: strToU8(SENTENCE) }, opts)).text).toBe(SENTENCE);
    const noise = new Uint8Array(256).map((_, i) => (i * 37) % 256);
    expect(await extractFile({ bytes: noise, fileName: 'blob.bin' }, opts)).toMatchObject({
      ok: false,
      code: 'unsupported',
    });
  });

  it('an image with OCR off is unsupported, with the fix in the reason', async () => {
    const png = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, ...new Uint8Array(40)]);
    const r = await extractFile({ bytes: png, fileName: 'x.png' }, opts);
    expect(r).toMatchObject({ ok: false, code: 'unsupported' });
    if (!r.ok) expect(r.reason).toMatch(/enable ocr/);
  });

  it('enforces the byte cap before parsing', async () => {
    const bytes = makePdf({ pages: [{ lines: [SENTENCE] }] });
    const r = await extractFile({ bytes, fileName: 'a.pdf' }, { ...opts, maxBytes: bytes.length - 1 });
    expect(r).toMatchObject({ ok: false, code: 'too-large' });
    if (!r.ok) expect(r.reason).toContain('maxBytes');
    expect(ok(await extractFile({ bytes, fileName: 'a.pdf' }, { ...opts, maxBytes: bytes.length })).text).toContain(
      SENTENCE,
    );
  });

  it('times out a long PDF and honours a caller abort', async () => {
    const pages = Array.from({ length: 3000 }, (_, i) => ({ lines: [`Page ${i} ${SENTENCE}`] }));
    const bytes = makePdf({ pages });
    const started = Date.now();
    const r = await extractFile({ bytes, fileName: 'long.pdf' }, { ...opts, timeoutMs: 30 });
    expect(r).toMatchObject({ ok: false, code: 'timeout' });
    expect(Date.now() - started).toBeLessThan(4_000); // all 3,000 pages take ~10 s here
    const ac = new AbortController();
    const pending = extractFile({ bytes, fileName: 'long.pdf' }, { ...opts, abortSignal: ac.signal });
    await new Promise((resolve) => setTimeout(resolve, 5));
    const abortedAt = Date.now();
    ac.abort();
    const r2 = await pending;
    expect(Date.now() - abortedAt).toBeLessThan(1_000);
    expect(r2).toMatchObject({
      ok: false,
      code: 'timeout',
      reason: 'extraction of "long.pdf" was cancelled by the caller',
    });
  });

  it('maxTextBytes truncates the result at a word boundary with a warning', async () => {
    const bytes = makePdf({ pages: [{ lines: [SENTENCE] }] });
    const r = ok(await extractFile({ bytes, fileName: 'a.pdf' }, { ...opts, maxTextBytes: 30 }));
    expect(r.text).toBe('The quarterly budget review');
    expect(r.warnings.join(' ')).toMatch(/truncated/);
  });
});

describe('truncateAtWordBoundary (4 MB item cap)', () => {
  it('cuts at the last whitespace within the UTF-8 byte budget', () => {
    expect(truncateAtWordBoundary('alpha beta gamma', 12)).toEqual({ text: 'alpha beta', truncated: true });
    expect(truncateAtWordBoundary('alpha beta gamma', 100)).toEqual({ text: 'alpha beta gamma', truncated: false });
    expect(truncateAtWordBoundary('alpha beta gamma', 10)).toEqual({ text: 'alpha beta', truncated: true });
  });

  it('never splits a multi-byte character or a surrogate pair (byte-accurate)', () => {
    const text = 'ééééé 😀😀😀 日本語テキスト';
    for (let max = 1; max <= utf8Length(text); max++) {
      const { text: cut } = truncateAtWordBoundary(text, max);
      expect(utf8Length(cut)).toBeLessThanOrEqual(max);
      expect(cut).not.toContain('\uFFFD');
      expect(text.startsWith(cut)).toBe(true);
      expect(/[\uD800-\uDBFF]$/.test(cut)).toBe(false);
    }
  });

  it('handles a 4 MB cap on a large text', () => {
    const word = 'naïve ';
    const big = word.repeat(800_000); // 5.6 MB in UTF-8
    const { text, truncated } = truncateAtWordBoundary(big, 4_000_000);
    expect(truncated).toBe(true);
    expect(utf8Length(text)).toBeLessThanOrEqual(4_000_000);
    expect(utf8Length(text)).toBeGreaterThan(4_000_000 - 10);
    expect(text.endsWith('naïve')).toBe(true);
  });
});

describe('fileFingerprint', () => {
  it('is the sha256 of the bytes and changes with content', () => {
    const a = fileFingerprint(strToU8('abc'));
    expect(a).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    expect(fileFingerprint(strToU8('abd'))).not.toBe(a);
  });
});

describe('itemContent (externalItem content under the item cap)', () => {
  it('returns Graph content typed by the result and cuts HTML before a split tag', async () => {
    const r = ok(
      await extractFile(
        { bytes: strToU8('<p>alpha beta</p><p>gamma delta</p>'), fileName: 'a.html' },
        { ...opts, html: 'keep' },
      ),
    );
    expect(itemContent(r)).toEqual({
      content: { type: 'html', value: '<p>alpha beta</p><p>gamma delta</p>' },
      truncated: false,
    });
    const cut = itemContent(r, 19); // the byte cut lands inside '<p>' of the second paragraph
    expect(cut.truncated).toBe(true);
    expect(cut.content.value).toBe('<p>alpha beta</p>');
    const t = ok(await extractFile({ bytes: strToU8(SENTENCE), fileName: 'a.txt' }, opts));
    expect(itemContent(t, 20)).toEqual({ content: { type: 'text', value: 'The quarterly budget' }, truncated: true });
  });
});
