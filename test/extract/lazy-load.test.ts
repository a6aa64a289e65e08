/**
 * Extraction weight loads on first use only: importing `src/extract`, the Graph credential module or any Azure
 * Functions entry point loads none of the format libraries (pdfjs, image decoders, tesseract.js, canvas, zip
 * readers) nor node-forge. Each import runs in a fresh `node` process whose module loader reports every module it
 * resolves (ESM, through a loader hook) or loads (CommonJS, through the require cache).
 */
import { execFile } from 'node:child_process';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { transpiledEntries } from '../../src/extract/sandbox-source.js';

const run = promisify(execFile);
const ROOT = path.resolve(import.meta.dirname, '..', '..');

/** Packages that only extraction of a file (or a PKCS#12 certificate) may load. */
const HEAVY = [
  'pdfjs-dist',
  'mammoth',
  'jszip',
  'tesseract.js',
  'tesseract.js-core',
  '@tesseract.js-data/eng',
  '@napi-rs/canvas',
  'jpeg-js',
  'pngjs',
  'utif2',
  'fflate',
  'node-forge',
];

const heavyIn = (packages: readonly string[]): string[] => packages.filter((p) => HEAVY.includes(p));

/**
 * A child script: records what the module loader resolves, imports each of `targets` in turn (with
 * `@azure/functions-core`, which only the Functions host provides, stubbed as test/functions/fake-core.ts does),
 * optionally runs `after` with the first module, and prints, for each target, the packages its import added.
 */
const CHILD = String.raw`
import Module, { register } from 'node:module';
import { MessageChannel } from 'node:worker_threads';
const { port1, port2 } = new MessageChannel();
const urls = new Set();
port1.on('message', (u) => urls.add(u));
port1.unref();
register('data:text/javascript,' + encodeURIComponent(
  'let port; export function initialize(d) { port = d.port; }' +
  'export async function resolve(s, c, next) { const r = await next(s, c); port.postMessage(r.url); return r; }'),
  { data: { port: port2 }, transferList: [port2] });
const fake = { setProgrammingModel() {}, getProgrammingModel() {}, log() {}, registerHook() { return { dispose() {} }; },
  registerFunction() { return { dispose() {} }; } };
const load = Module._load;
Module._load = function (request, ...rest) { return request === '@azure/functions-core' ? fake : load.call(this, request, ...rest); };
const packages = async () => {
  await new Promise((r) => setTimeout(r, 50)); // the hook reports through a port
  const found = new Set();
  for (const f of [...urls, ...Object.keys(Module._cache)]) {
    const m = /node_modules[\/]((?:@[^\/]+[\/])?[^.\/][^\/]*)[\/]/.exec(f);
    if (m) found.add(m[1].replace('\\', '/'));
  }
  return found;
};
const added = [];
let seen = new Set();
const targets = JSON.parse(process.env.TARGETS);
for (const [i, target] of targets.entries()) {
  const mod = await import(target);
  if (i === 0 && process.env.AFTER) await new Function('mod', 'return (async () => {' + process.env.AFTER + '})()')(mod);
  const now = await packages();
  added.push([...now].filter((p) => !seen.has(p)).sort());
  seen = now;
}
process.stdout.write(JSON.stringify(added));
process.exit(0);
`;

/** For each target, in order, the packages its import (and `after`, for the first) loaded. */
async function packagesLoadedBy(targets: URL[], after = ''): Promise<string[][]> {
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', CHILD], {
    cwd: ROOT,
    env: { ...process.env, TARGETS: JSON.stringify(targets.map((t) => t.href)), AFTER: after, NODE_OPTIONS: '' },
    timeout: 120_000,
  });
  return JSON.parse(stdout) as string[][];
}

const functionFiles = readdirSync(path.join(ROOT, 'functions')).filter((f) => f.endsWith('.ts'));
let extract: URL;
let credentials: URL;
let fixtures: URL;
let functions: URL[] = [];

beforeAll(async () => {
  [extract, credentials, fixtures, ...functions] = (await transpiledEntries([
    pathToFileURL(path.join(ROOT, 'src/extract/index.ts')),
    pathToFileURL(path.join(ROOT, 'src/graph/credentials.ts')),
    pathToFileURL(path.join(ROOT, 'src/extract/fixtures/index.ts')),
    ...functionFiles.map((f) => pathToFileURL(path.join(ROOT, 'functions', f))),
  ])) as [URL, URL, URL, ...URL[]];
}, 120_000);

describe('lazy extraction weight', () => {
  it('the loader hook sees packages (a control: the PDF module loads pdfjs when it runs)', async () => {
    const after = `await import(new URL('./pdf.js', '${'${extract}'}')).then((m) => m.extractPdf(new Uint8Array(0), { maxPages: 1, maxImagePixels: 1 })).catch(() => {});`;
    const [loaded] = await packagesLoadedBy([extract], after.replace('${extract}', extract.href));
    expect(loaded).toContain('pdfjs-dist');
  });

  it('importing src/extract loads no format library, and extracting a PDF loads none in this thread', async () => {
    const after = [
      `const { makePdf } = await import('${fixtures.href}');`,
      "const r = await mod.extractFile({ bytes: makePdf({ pages: [{ lines: ['lazy weight'] }] }), fileName: 'a.pdf' },",
      '  { ocr: false, maxBytes: 1e6, timeoutMs: 30000 });',
      "if (!r.ok || r.text !== 'lazy weight') throw new Error('extraction failed: ' + JSON.stringify(r));",
      'await mod.closeExtraction();',
    ].join('\n');
    const [onImport] = await packagesLoadedBy([extract]);
    expect(heavyIn(onImport!)).toEqual([]);
    const [afterPdf] = await packagesLoadedBy([extract], after);
    expect(afterPdf).toContain('fflate'); // the fixture writer's: the script ran
    expect(heavyIn(afterPdf!.filter((p) => p !== 'fflate' && p !== 'pngjs'))).toEqual([]);
  });

  it('the Graph credential module does not load node-forge until a PKCS#12 certificate is read', async () => {
    const [loaded] = await packagesLoadedBy([credentials]);
    expect(loaded).toContain('@azure/identity');
    expect(loaded).not.toContain('node-forge');
  });

  it('no Azure Functions entry point loads any of them', async () => {
    const added = await packagesLoadedBy(functions);
    expect(added.flat()).toContain('@azure/functions'); // the imports really ran
    for (const [i, f] of functionFiles.entries()) expect(heavyIn(added[i]!), `functions/${f}`).toEqual([]);
  });
});
