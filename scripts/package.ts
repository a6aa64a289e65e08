/**
 * `npm run package`: the deployable artifact, built here and run as built (no remote build).
 *
 *   dist/package/             the folder azd deploys (azure.yaml `dist`); the same files as the zip
 *   dist/graph-connector.zip  what `azd deploy --from-package`, `az functionapp deployment source config-zip` or a
 *                             pipeline uploads
 *
 * It holds: functions/*.js (one esbuild bundle per function entry point, sharing chunks in lib/; the dynamic imports
 * of the format readers stay separate chunks that load on first use), lib/sandbox-worker.js (the extraction sandbox
 * forks it: src/extract/sandbox.ts finds it beside its own chunk), node_modules with only what a bundle cannot
 * inline (pdfjs-dist, which reads its fonts and CMaps from its folder; node-forge, required on first PKCS#12
 * certificate; the OCR packages and @napi-rs/canvas when the definition runs OCR), host.json, a trimmed
 * package.json whose `main` names the functions, connector.json and the local files it reads.
 *
 * Local build, bundled, is what Microsoft recommends for TypeScript function apps:
 * https://learn.microsoft.com/azure/azure-functions/typescript-build-options. Native packages (@napi-rs/canvas)
 * must match the platform (Linux x64 on Flex Consumption), so the artifact is built on Linux x64.
 */
import { createWriteStream, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { cp, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build, type Metafile } from 'esbuild';
import { Zip, ZipDeflate } from 'fflate';
import { loadConnectorDefinition, type ConnectorDefinition } from '../src/config/definition.js';

export interface PackageOptions {
  /** The repository (default: the folder holding this script's package.json). */
  root?: string;
  /** Where the artifact's folder is written (default `<root>/dist/package`); emptied first. */
  outDir?: string;
  /** The zip (default `<root>/dist/graph-connector.zip`); `false` for the folder only. */
  zip?: string | false;
  /** The connector definition, relative to `root` (default connector.json). It lands at the artifact's root. */
  config?: string;
  /** Minify the bundles (default true). */
  minify?: boolean;
  /** Progress lines (default: none). */
  log?: (line: string) => void;
}

export interface PackageResult {
  dir: string;
  zip?: string;
  zipBytes?: number;
  /** Bytes of every file in the folder. */
  bytes: number;
  files: number;
  /** The function entry points, relative to the artifact (functions/<name>.js). */
  entryPoints: string[];
  /** Packages copied into node_modules (name@version). */
  packages: string[];
  /** Data files and folders copied for the definition (relative to the artifact). */
  data: string[];
  /** Things the builder should know (e.g. a native package for another platform). */
  warnings: string[];
}

/** Raised for a definition or installation the artifact cannot be built from; the message says the fix. */
export class PackageError extends Error {
  override name = 'PackageError';
}

/** Packages the bundles leave as imports, loaded from node_modules at run time. */
const ALWAYS_EXTERNAL = [
  // pdfjs: imported on first PDF inside a sandbox worker; reads cmaps/, standard_fonts/, wasm/, iccs/ from its folder.
  'pdfjs-dist',
  // required on first PKCS#12 certificate (createRequire), so that no other path loads it.
  'node-forge',
];
/** The OCR packages (optionalDependencies): shipped only when the definition runs OCR. */
const OCR_PACKAGES = ['tesseract.js', 'tesseract.js-core', '@tesseract.js-data/eng', '@napi-rs/canvas'];
/** Never bundled nor shipped: provided by the Functions host, or reached only from TypeScript sources (tests). */
const NEVER_SHIPPED = ['@azure/functions-core', 'typescript'];

/**
 * Files of shipped packages that nothing here loads: pdfjs's browser builds, source maps, types and viewer; the
 * non-"best_int" trained data (src/extract/ocr.ts reads 4.0.0_best_int). tesseract.js-core stays whole: its worker
 * picks a core by CPU features and OCR engine mode at run time (test/deploy/artifact.test.ts runs OCR from the
 * artifact).
 */
const PRUNE: Record<string, RegExp> = {
  'pdfjs-dist':
    /^(build|web|types|image_decoders)\/|\.map$|\.d\.m?ts$|^legacy\/(web|image_decoders)\/|^legacy\/build\/pdf\.(min|sandbox|sandbox\.min|worker\.min)\.mjs$|^webpack\.mjs$/,
  '@tesseract.js-data/eng': /^4\.0\.0\//,
  'tesseract.js': /^(dist|docs|benchmarks|examples|scripts|tests?)\/|\.map$|\.d\.ts$/,
};

const here = path.dirname(fileURLToPath(import.meta.url));

function findRoot(): string {
  let dir = here;
  while (!existsSync(path.join(dir, 'package.json')) || !existsSync(path.join(dir, 'host.json'))) {
    const up = path.dirname(dir);
    if (up === dir) throw new PackageError('cannot find the repository (a folder with package.json and host.json)');
    dir = up;
  }
  return dir;
}

interface Manifest {
  name: string;
  version: string;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
  engines?: Record<string, string>;
}

const readManifest = (dir: string): Manifest =>
  JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as Manifest;

/** Node's lookup of an installed package from `fromDir`: the nearest node_modules/<name> going up. */
function installedDir(name: string, fromDir: string, root: string): string | undefined {
  let dir = fromDir;
  for (;;) {
    const candidate = path.join(dir, 'node_modules', name);
    if (existsSync(path.join(candidate, 'package.json'))) return candidate;
    if (dir === root || path.dirname(dir) === dir) return undefined;
    dir = path.dirname(dir);
  }
}

/** Does the definition extract any file with OCR? */
const needsOcr = (def: ConnectorDefinition): boolean => def.mapping.attachments?.ocr === true;

/** Every local file or folder the definition reads, with the field that names it. */
function localInputs(def: ConnectorDefinition): { field: string; value: string; folder: boolean }[] {
  const out: { field: string; value: string; folder: boolean }[] = [];
  const source = def.source as unknown as Record<string, unknown>;
  const add = (field: string, value: unknown, folder = false) => {
    if (typeof value === 'string' && value) out.push({ field, value, folder });
  };
  add('source.path', source.path);
  add('source.caPath', source.caPath);
  add('source.auth.pfxPath', (source.auth as Record<string, unknown> | undefined)?.pfxPath);
  add('source.groups.path', (source.groups as Record<string, unknown> | undefined)?.path);
  const mapping = def.mapping as unknown as Record<string, unknown>;
  add('mapping.module', mapping.module);
  add('mapping.acl.directory', (mapping.acl as Record<string, unknown> | undefined)?.directory);
  add('mapping.attachments.folder', def.mapping.attachments?.folder, true);
  return out;
}

async function walk(dir: string, base = dir, out: string[] = []): Promise<string[]> {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) await walk(p, base, out);
    else out.push(path.relative(base, p));
  }
  return out;
}

/** Copy an installed package, without its nested node_modules (those are copied as packages of their own). */
async function copyPackage(from: string, to: string, prune: RegExp | undefined): Promise<void> {
  await cp(from, to, {
    recursive: true,
    dereference: true,
    filter: (src) => {
      const rel = path.relative(from, src).split(path.sep).join('/');
      if (rel === '') return true;
      if (rel === 'node_modules' || rel.startsWith('node_modules/')) return false;
      if (!prune) return true;
      if (statSync(src).isDirectory()) return !prune.test(rel + '/');
      return !prune.test(rel);
    },
  });
}

/**
 * The packages to ship and their dependencies (dependencies + installed optionalDependencies), each at the place
 * Node's lookup finds it from its dependent, so the copied tree resolves the same way the repository's does.
 */
function dependencyClosure(roots: string[], root: string, skip: Set<string>): Map<string, string> {
  const found = new Map<string, string>(); // relative path under root -> absolute dir
  const visit = (name: string, fromDir: string, optional: boolean) => {
    if (skip.has(name)) return;
    const dir = installedDir(name, fromDir, root);
    if (!dir) {
      if (optional) return;
      throw new PackageError(
        `${name} is not installed (needed from ${path.relative(root, fromDir) || '.'}): run npm ci`,
      );
    }
    const rel = path.relative(root, dir);
    if (found.has(rel)) return;
    found.set(rel, dir);
    const m = readManifest(dir);
    for (const dep of Object.keys(m.dependencies ?? {})) visit(dep, dir, false);
    for (const dep of Object.keys(m.optionalDependencies ?? {})) visit(dep, dir, true);
  };
  for (const name of roots) visit(name, root, false);
  return found;
}

async function zipFolder(dir: string, zipPath: string): Promise<number> {
  const files = (await walk(dir)).sort();
  mkdirSync(path.dirname(zipPath), { recursive: true });
  const out = createWriteStream(zipPath);
  const done = new Promise<void>((resolve, reject) => {
    out.on('finish', resolve);
    out.on('error', reject);
  });
  let failure: Error | undefined;
  const zip = new Zip((err, chunk, final) => {
    if (err) failure = err;
    else out.write(chunk);
    if (final || err) out.end();
  });
  for (const rel of files) {
    const entry = new ZipDeflate(rel.split(path.sep).join('/'), { level: 6 });
    zip.add(entry);
    entry.push(new Uint8Array(await readFile(path.join(dir, rel))), true);
  }
  zip.end();
  await done;
  if (failure) throw failure;
  return statSync(zipPath).size;
}

/** Which output holds src/extract/sandbox.ts: the worker's entry must sit beside it (sandbox.ts resolves it so). */
function checkWorkerPlacement(meta: Metafile, outDir: string, root: string): void {
  const sandboxIn = path.relative(process.cwd(), path.join(root, 'src/extract/sandbox.ts')).split(path.sep).join('/');
  const holders = Object.entries(meta.outputs)
    .filter(([, o]) => Object.keys(o.inputs).some((i) => i.endsWith('src/extract/sandbox.ts') || i === sandboxIn))
    .map(([file]) => path.resolve(file));
  if (!holders.length)
    throw new PackageError('no bundle holds src/extract/sandbox.ts; the extraction sandbox is missing');
  for (const file of holders) {
    if (!existsSync(path.join(path.dirname(file), 'sandbox-worker.js')))
      throw new PackageError(
        `${path.relative(outDir, file)} holds the extraction sandbox but sandbox-worker.js is not beside it`,
      );
  }
}

/** Where `npm run package` writes (azure.yaml's `dist` names the folder). */
export function buildPackageDefaults(root = findRoot()): { outDir: string; zip: string } {
  return { outDir: path.join(root, 'dist', 'package'), zip: path.join(root, 'dist', 'graph-connector.zip') };
}

export async function buildPackage(options: PackageOptions = {}): Promise<PackageResult> {
  const root = options.root ?? findRoot();
  const defaults = buildPackageDefaults(root);
  const outDir = options.outDir ?? defaults.outDir;
  const zipPath = options.zip === false ? undefined : (options.zip ?? defaults.zip);
  const configRel = options.config ?? 'connector.json';
  const log = options.log ?? (() => undefined);
  const warnings: string[] = [];

  const configPath = path.resolve(root, configRel);
  const { definition } = await loadConnectorDefinition(configPath);
  const configDir = path.dirname(configPath);
  const ocr = needsOcr(definition);

  rmSync(outDir, { recursive: true, force: true });
  mkdirSync(outDir, { recursive: true });

  // 1. The bundles.
  const functionsDir = path.join(root, 'functions');
  const functionFiles = readdirSync(functionsDir)
    .filter((f) => f.endsWith('.ts'))
    .sort();
  if (!functionFiles.length) throw new PackageError(`no function entry points in ${functionsDir}`);
  const entryPoints: Record<string, string> = {
    'lib/sandbox-worker': path.join(root, 'src/extract/sandbox-worker.ts'),
  };
  for (const f of functionFiles) entryPoints[`functions/${f.replace(/\.ts$/, '')}`] = path.join(functionsDir, f);
  const rootManifest = readManifest(root);
  const shipped = [...ALWAYS_EXTERNAL, ...(ocr ? OCR_PACKAGES : [])];
  log(`bundling ${functionFiles.length} function entry points`);
  const result = await build({
    absWorkingDir: root,
    entryPoints,
    outdir: outDir,
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    chunkNames: 'lib/[name]-[hash]',
    minify: options.minify ?? true,
    legalComments: 'none',
    metafile: true,
    logLevel: 'silent',
    // Every optional package stays an import even when the definition does not ship it: it then fails as
    // "not installed" at the point of use, with the reason src/extract/ocr.ts gives.
    external: [...ALWAYS_EXTERNAL, ...OCR_PACKAGES, ...NEVER_SHIPPED],
    // Bundled CommonJS packages call require() for Node built-ins; ESM output has no require of its own.
    banner: {
      js: "import { createRequire as __gcCreateRequire } from 'node:module'; const require = __gcCreateRequire(import.meta.url);",
    },
  });
  for (const w of result.warnings) warnings.push(`esbuild: ${w.text}`);
  checkWorkerPlacement(result.metafile, outDir, root);

  // 2. node_modules: the external packages and what they need.
  const skip = new Set([...NEVER_SHIPPED, ...(ocr ? [] : OCR_PACKAGES)]);
  const closure = dependencyClosure(shipped, root, skip);
  const packages: string[] = [];
  for (const [rel, dir] of [...closure].sort(([a], [b]) => a.localeCompare(b))) {
    const m = readManifest(dir);
    await copyPackage(dir, path.join(outDir, rel), PRUNE[m.name]);
    packages.push(`${m.name}@${m.version}`);
  }
  if (ocr && process.platform === 'linux' && process.arch === 'x64') {
    if (!installedDir('@napi-rs/canvas-linux-x64-gnu', path.join(root, 'node_modules', '@napi-rs/canvas'), root))
      warnings.push('@napi-rs/canvas-linux-x64-gnu is not installed: scanned PDF pages cannot be rendered for OCR');
  } else if (ocr) {
    warnings.push(
      `built on ${process.platform}-${process.arch}: @napi-rs/canvas carries this platform's native binary, not ` +
        "Linux x64's (Flex Consumption); build the artifact on Linux x64 (CI) for OCR of scanned PDF pages",
    );
  }

  // 3. The definition and the local files it reads, at the same places relative to it.
  await cp(configPath, path.join(outDir, 'connector.json'));
  const data: string[] = ['connector.json'];
  for (const input of localInputs(definition)) {
    const abs = path.resolve(configDir, input.value);
    const rel = path.relative(configDir, abs);
    if (rel.startsWith('..') || path.isAbsolute(rel))
      throw new PackageError(
        `${input.field}: "${input.value}" is outside the folder of ${configRel}; the artifact carries only files ` +
          `under it. Move the file beside ${configRel} (or below it), or read it from a URL or a blob instead.`,
      );
    if (!existsSync(abs))
      throw new PackageError(`${input.field}: "${input.value}" does not exist (resolved to ${abs}); fix the path`);
    await cp(abs, path.join(outDir, rel), { recursive: true, dereference: true });
    data.push(rel.split(path.sep).join('/') + (input.folder ? '/' : ''));
  }
  if (definition.mapping.attachments && definition.mapping.attachments.folder === undefined)
    warnings.push(
      'mapping.attachments has no folder: relative attachment paths would resolve against the artifact root, ' +
        'and no local attachment is packaged. Set mapping.attachments.folder to ship local files.',
    );

  // 4. host.json and a package.json for the host: ESM, `main` naming the bundles, the shipped dependencies.
  await cp(path.join(root, 'host.json'), path.join(outDir, 'host.json'));
  const direct = Object.fromEntries(
    shipped
      .filter((n) => !skip.has(n) && closure.has(path.join('node_modules', n)))
      .map((n) => [n, readManifest(closure.get(path.join('node_modules', n))!).version]),
  );
  const manifest = {
    name: rootManifest.name,
    version: rootManifest.version,
    private: true,
    type: 'module',
    main: 'functions/*.js',
    ...(rootManifest.engines ? { engines: rootManifest.engines } : {}),
    dependencies: direct,
  };
  await writeFile(path.join(outDir, 'package.json'), JSON.stringify(manifest, null, 2) + '\n');

  const files = await walk(outDir);
  const bytes = files.reduce((n, f) => n + statSync(path.join(outDir, f)).size, 0);
  let zipBytes: number | undefined;
  if (zipPath) {
    log(`zipping ${files.length} files`);
    zipBytes = await zipFolder(outDir, zipPath);
  }
  return {
    dir: outDir,
    ...(zipPath ? { zip: zipPath, zipBytes } : {}),
    bytes,
    files: files.length,
    entryPoints: functionFiles.map((f) => `functions/${f.replace(/\.ts$/, '.js')}`),
    packages,
    data,
    warnings,
  };
}

const mb = (n: number) => `${(n / 1024 / 1024).toFixed(1)} MB`;

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    const root = findRoot();
    // The definition to ship: CONNECTOR_CONFIG (relative to the repository) or connector.json. It lands as
    // connector.json at the artifact's root, the app setting's default.
    const config = process.env.CONNECTOR_CONFIG?.trim() || 'connector.json';
    const r = await buildPackage({ root, config, log: (l) => process.stderr.write(`package: ${l}\n`) });
    for (const w of r.warnings) process.stderr.write(`package: warning: ${w}\n`);
    process.stdout.write(
      [
        `artifact: ${path.relative(root, r.dir)}/ (${r.files} files, ${mb(r.bytes)})`,
        ...(r.zip ? [`zip:      ${path.relative(root, r.zip)} (${mb(r.zipBytes!)})`] : []),
        `functions: ${r.entryPoints.length} (${r.entryPoints.map((e) => path.basename(e, '.js')).join(', ')})`,
        `node_modules: ${r.packages.join(', ')}`,
        `data: ${r.data.join(', ')}`,
      ].join('\n') + '\n',
    );
  } catch (err) {
    process.stderr.write(`package: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  }
}
