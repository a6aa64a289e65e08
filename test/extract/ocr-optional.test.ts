/**
 * OCR is an optional dependency: installed without tesseract.js, its wasm core, its trained data and
 * @napi-rs/canvas (`npm install --omit=optional`), the connector extracts every file that does not need OCR, and
 * a file that needs OCR fails as `unsupported` with a reason that says what to install. The "installation" here is
 * the project's code transpiled into a temporary folder whose node_modules links every package except those.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { transpiledEntries } from '../../src/extract/sandbox-source.js';

const run = promisify(execFile);
const ROOT = path.resolve(import.meta.dirname, '..', '..');
const OPTIONAL = ['tesseract.js', 'tesseract.js-core', '@tesseract.js-data', '@napi-rs'];

let app: string;
let extract: URL;
let fixtures: URL;

beforeAll(async () => {
  app = mkdtempSync(path.join(tmpdir(), 'gc-no-ocr-'));
  const modules = path.join(app, 'node_modules');
  mkdirSync(modules);
  for (const name of readdirSync(path.join(ROOT, 'node_modules'))) {
    if (name.startsWith('.') || OPTIONAL.includes(name)) continue;
    if (name.startsWith('@')) {
      mkdirSync(path.join(modules, name));
      for (const sub of readdirSync(path.join(ROOT, 'node_modules', name)))
        symlinkSync(path.join(ROOT, 'node_modules', name, sub), path.join(modules, name, sub));
    } else symlinkSync(path.join(ROOT, 'node_modules', name), path.join(modules, name));
  }
  [extract, fixtures] = (await transpiledEntries(
    [
      pathToFileURL(path.join(ROOT, 'src/extract/index.ts')),
      pathToFileURL(path.join(ROOT, 'src/extract/fixtures/index.ts')),
    ],
    app,
  )) as [URL, URL];
}, 120_000);

afterAll(() => rmSync(app, { recursive: true, force: true }));

/** Extract the fixtures named in `script` in a child process that resolves packages from the temporary folder only. */
async function inApp(
  script: string,
): Promise<Record<string, { ok: boolean; code?: string; reason?: string; text?: string }>> {
  const child = String.raw`
    const x = await import(process.env.EXTRACT);
    const f = await import(process.env.FIXTURES);
    const out = {};
    const extract = async (name, bytes) => { out[name] = await x.extractFile({ bytes, fileName: name }, { ocr: true, maxBytes: 1e7, timeoutMs: 30000 }); };
    ${script}
    await x.closeExtraction();
    process.stdout.write(JSON.stringify(out));
    process.exit(0);
  `;
  const { stdout } = await run(process.execPath, ['--preserve-symlinks', '--input-type=module', '-e', child], {
    cwd: app,
    env: { ...process.env, EXTRACT: extract.href, FIXTURES: fixtures.href, NODE_OPTIONS: '' },
    timeout: 120_000,
  }).catch((e: Error & { stderr?: string; code?: number }) => {
    throw new Error(`the child failed (exit ${e.code}): ${e.stderr || e.message}`);
  });
  return JSON.parse(stdout) as Record<string, { ok: boolean; code?: string; reason?: string; text?: string }>;
}

describe('without the optional OCR packages', () => {
  it('a file that needs OCR is unsupported, saying what to install; every other file is extracted', async () => {
    const out = await inApp(`
      await extract('scan.png', f.encodePng(f.renderTextLines(['SCANNED'])));
      await extract('scanned.pdf', f.makePdf({ pages: [{ image: f.renderTextLines(['SCANNED']) }] }));
      await extract('text.pdf', f.makePdf({ pages: [{ lines: ['a text layer needs no OCR'] }] }));
      await extract('plan.docx', f.makeDocx(['a document needs no OCR']));
      await extract('notes.html', new TextEncoder().encode('<p>nor does HTML</p>'));
    `);
    for (const name of ['scan.png', 'scanned.pdf']) {
      expect(out[name], JSON.stringify(out[name])).toMatchObject({ ok: false, code: 'unsupported' });
      expect(out[name]!.reason).toContain('OCR is not installed');
      expect(out[name]!.reason).toContain(
        'npm install tesseract.js@~7.0.0 tesseract.js-core@~7.0.0 @tesseract.js-data/eng@~1.0.0',
      );
      expect(out[name]!.reason).toContain(`"${name}"`);
    }
    expect(out['text.pdf']).toMatchObject({ ok: true, text: 'a text layer needs no OCR' });
    expect(out['plan.docx']).toMatchObject({ ok: true, text: 'a document needs no OCR' });
    expect(out['notes.html']).toMatchObject({ ok: true, text: 'nor does HTML' });
  });
});
