/**
 * The deploy artifact before and after `npm run package`, side by side:
 *
 * - before: what a remote build leaves to run: the tsc output (dist/src, dist/functions), package.json, host.json,
 *   connector.json and the full production node_modules (every package-lock.json entry not marked dev, as
 *   `npm ci --omit=dev` installs them);
 * - after: the artifact (scripts/package.ts).
 *
 * Both are laid out under the OS temp folder, so module resolution cannot reach the repository's node_modules.
 * Figures: files, bytes, zip bytes, and the import time of each function entry point in a fresh `node` process
 * (median of `runs`), plus all of them in one process as the host loads them (`main: functions/*.js`).
 */
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { cp, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { Zip, ZipDeflate } from 'fflate';
import { buildPackage } from '../scripts/package.js';

const run = promisify(execFile);

export interface VariantFigures {
  files: number;
  bytes: number;
  zipBytes: number;
  /** entry (file name) -> median import ms in a fresh process */
  importMs: Record<string, number>;
  /** every entry point imported in one process, in order (what the host does at start-up) */
  allImportMs: number;
}

export interface PackageFigures {
  before: VariantFigures;
  after: VariantFigures;
  runs: number;
}

/** A child that stands in for the host's @azure/functions-core, then times the import of each of `TARGETS`. */
const CHILD = String.raw`
import Module from 'node:module';
const fake = { setProgrammingModel() {}, getProgrammingModel() {}, log() {}, registerHook() { return { dispose() {} }; },
  registerFunction() { return { dispose() {} }; } };
const load = Module._load;
Module._load = function (request, ...rest) { return request === '@azure/functions-core' ? fake : load.call(this, request, ...rest); };
const started = performance.now();
for (const target of JSON.parse(process.env.TARGETS)) await import(target);
process.stdout.write(JSON.stringify({ ms: performance.now() - started }));
process.exit(0);
`;

async function importMs(dir: string, files: string[]): Promise<number> {
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', CHILD], {
    cwd: dir,
    env: { PATH: process.env.PATH ?? '', TARGETS: JSON.stringify(files.map((f) => pathToFileURL(f).href)) },
    timeout: 120_000,
  });
  return (JSON.parse(stdout) as { ms: number }).ms;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

function walk(dir: string, out: string[] = []): string[] {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) walk(p, out);
    else out.push(p);
  }
  return out;
}

/** Zip bytes of a folder (deflate level 6, as scripts/package.ts writes it), counted without keeping the zip. */
async function zippedBytes(dir: string): Promise<number> {
  let bytes = 0;
  const zip = new Zip((err, chunk) => {
    if (err) throw err;
    bytes += chunk.length;
  });
  for (const file of walk(dir).sort()) {
    const entry = new ZipDeflate(path.relative(dir, file).split(path.sep).join('/'), { level: 6 });
    zip.add(entry);
    entry.push(readFileSync(file), true);
  }
  zip.end();
  return bytes;
}

/** The remote build's result: tsc output + production node_modules from package-lock.json. */
async function layOutBefore(root: string, dir: string): Promise<void> {
  const built = path.join(root, 'dist');
  if (!existsSync(path.join(built, 'functions')))
    throw new Error('dist/functions is missing: run `npm run build` first (npm run bench does)');
  for (const sub of ['src', 'functions'])
    await cp(path.join(built, sub), path.join(dir, 'dist', sub), {
      recursive: true,
      filter: (src) => !src.endsWith('.map'),
    });
  for (const f of ['package.json', 'host.json', 'connector.json']) await cp(path.join(root, f), path.join(dir, f));
  const lock = JSON.parse(readFileSync(path.join(root, 'package-lock.json'), 'utf8')) as {
    packages: Record<string, { dev?: boolean; link?: boolean }>;
  };
  for (const [rel, entry] of Object.entries(lock.packages)) {
    if (!rel || entry.dev || entry.link) continue;
    const from = path.join(root, rel);
    if (!existsSync(from)) continue; // an optional package for another platform
    await cp(from, path.join(dir, rel), {
      recursive: true,
      dereference: true,
      // nested node_modules are lock entries of their own
      filter: (src) => !path.relative(from, src).split(path.sep).includes('node_modules'),
    });
  }
}

async function measure(dir: string, entries: string[], runs: number, zipBytes?: number): Promise<VariantFigures> {
  const files = walk(dir);
  const importTimes: Record<string, number> = {};
  for (const entry of entries) {
    const times: number[] = [];
    for (let i = 0; i < runs; i++) times.push(await importMs(dir, [entry]));
    importTimes[path.basename(entry, '.js')] = median(times);
  }
  const all: number[] = [];
  for (let i = 0; i < runs; i++) all.push(await importMs(dir, entries));
  return {
    files: files.length,
    bytes: files.reduce((n, f) => n + statSync(f).size, 0),
    zipBytes: zipBytes ?? (await zippedBytes(dir)),
    importMs: importTimes,
    allImportMs: median(all),
  };
}

export async function benchPackage(root: string, options: { runs?: number; log?: (m: string) => void } = {}) {
  const runs = options.runs ?? 3;
  const log = options.log ?? (() => undefined);
  const base = await mkdtemp(path.join(tmpdir(), 'gc-bench-package-'));
  try {
    const beforeDir = path.join(base, 'before');
    const afterDir = path.join(base, 'after');
    await mkdir(beforeDir, { recursive: true });
    log('package: laying out the remote build (tsc output + production node_modules)');
    await layOutBefore(root, beforeDir);
    log('package: building the artifact');
    const built = await buildPackage({ root, outDir: afterDir, zip: path.join(base, 'after.zip') });
    const names = built.entryPoints.map((e) => path.basename(e));
    log(`package: timing ${names.length} entry points × ${runs} fresh processes, before and after`);
    const before = await measure(
      beforeDir,
      names.map((n) => path.join(beforeDir, 'dist', 'functions', n)),
      runs,
    );
    const after = await measure(
      afterDir,
      names.map((n) => path.join(afterDir, 'functions', n)),
      runs,
      built.zipBytes,
    );
    return { before, after, runs } satisfies PackageFigures;
  } finally {
    await rm(base, { recursive: true, force: true });
  }
}

const mb = (n: number) => `${(n / 1024 / 1024).toFixed(1)} MB`;
const ms = (n: number) => `${Math.round(n)} ms`;
const ratio = (a: number, b: number) => (b > 0 ? `${(a / b).toFixed(1)}×` : '—');

/** The before/after table (markdown, as the README's deploy section shows it). */
export function packageTable(f: PackageFigures): string[] {
  const rows: string[][] = [
    ['', 'before (remote build)', 'after (`npm run package`)', 'before ÷ after'],
    ['files', String(f.before.files), String(f.after.files), ratio(f.before.files, f.after.files)],
    ['size on disk', mb(f.before.bytes), mb(f.after.bytes), ratio(f.before.bytes, f.after.bytes)],
    ['zip', mb(f.before.zipBytes), mb(f.after.zipBytes), ratio(f.before.zipBytes, f.after.zipBytes)],
    [
      'import all entry points (one process)',
      ms(f.before.allImportMs),
      ms(f.after.allImportMs),
      ratio(f.before.allImportMs, f.after.allImportMs),
    ],
    ...Object.keys(f.after.importMs).map((name) => [
      `import functions/${name}.js`,
      ms(f.before.importMs[name] ?? NaN),
      ms(f.after.importMs[name]!),
      ratio(f.before.importMs[name] ?? NaN, f.after.importMs[name]!),
    ]),
  ];
  const widths = [0, 1, 2, 3].map((i) => Math.max(...rows.map((r) => r[i]!.length), 3));
  const line = (r: string[]) =>
    `| ${r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(' | ')} |`;
  return [
    line(rows[0]!),
    `| ${widths.map((w, i) => (i === 0 ? '-'.repeat(w) : '-'.repeat(w - 1) + ':')).join(' | ')} |`,
    ...rows.slice(1).map(line),
  ];
}
