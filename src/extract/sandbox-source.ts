/**
 * Running from TypeScript sources (the tests, through vitest): a sandbox worker process is started by Node itself, which
 * cannot load `.ts` files on Node 20, so the sandbox worker's entry and every module it imports (relative imports,
 * static, dynamic and `new URL(…, import.meta.url)`) are transpiled once with `typescript` (a devDependency) into
 * `node_modules/.cache/graph-connector/`, keyed by a hash of their sources. The compiled build (`dist/`) never
 * loads this module.
 */
import { createHash, randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

function projectRoot(from: string): string {
  let dir = path.dirname(from);
  while (!existsSync(path.join(dir, 'package.json'))) {
    const up = path.dirname(dir);
    if (up === dir) throw new Error(`no package.json above ${from}`);
    dir = up;
  }
  return dir;
}

/** Relative module references in our own sources: `from './x.js'`, `import('./x.js')`, `new URL('./x.js', import.meta.url)`. */
const REFERENCE =
  /\bfrom\s*['"](\.{1,2}\/[^'"]+)['"]|\bimport\s*\(\s*['"](\.{1,2}\/[^'"]+)['"]\s*\)|\bimport\s*['"](\.{1,2}\/[^'"]+)['"]|new URL\(\s*['"](\.{1,2}\/[^'"]+)['"]\s*,\s*import\.meta\.url\s*\)/g;

/**
 * Transpile `entry` (a `.ts` file URL) and its relative imports; returns the URL of the entry's `.js` copy.
 * `outDir` (default: a cache folder keyed by the sources' hash) receives the files under their project-relative
 * paths, so that packages still resolve from the project's `node_modules` (or from `outDir`'s own).
 */
export async function transpiledEntry(entry: URL, outDir?: string): Promise<URL> {
  return (await transpiledEntries([entry], outDir))[0]!;
}

/** {@link transpiledEntry} for several entries at once, into one tree. */
export async function transpiledEntries(entries: readonly URL[], outDir?: string): Promise<URL[]> {
  const entryPaths = entries.map((e) => fileURLToPath(e));
  const root = projectRoot(entryPaths[0]!);
  const sources = new Map<string, string>();
  const queue = [...entryPaths];
  while (queue.length) {
    const file = queue.pop()!;
    if (sources.has(file)) continue;
    const text = readFileSync(file, 'utf8');
    sources.set(file, text);
    if (!file.endsWith('.ts')) continue;
    for (const m of text.matchAll(REFERENCE)) {
      const spec = (m[1] ?? m[2] ?? m[3] ?? m[4])!;
      const target = path.resolve(path.dirname(file), spec);
      const asTs = target.replace(/\.js$/, '.ts');
      if (target.endsWith('.js') && existsSync(asTs)) queue.push(asTs);
      else if (existsSync(target)) queue.push(target);
    }
  }
  const files = [...sources.keys()].sort();
  const hash = createHash('sha256');
  for (const f of files) hash.update(path.relative(root, f)).update('\0').update(sources.get(f)!).update('\0');
  const dir =
    outDir ?? path.join(root, 'node_modules', '.cache', 'graph-connector', `ts-${hash.digest('hex').slice(0, 16)}`);
  const out = (f: string) => path.join(dir, path.relative(root, f).replace(/\.ts$/, '.js'));
  if (!existsSync(path.join(dir, '.complete'))) {
    const ts = (await import('typescript')).default;
    // Written to a private folder, then renamed: parallel test processes never see half a tree.
    const tmp = outDir ?? `${dir}.${process.pid}.${randomUUID()}`;
    const write = (f: string, text: string) => {
      const target = path.join(tmp, path.relative(dir, out(f)));
      mkdirSync(path.dirname(target), { recursive: true });
      writeFileSync(target, text);
    };
    for (const f of files) {
      const text = sources.get(f)!;
      if (!f.endsWith('.ts')) write(f, text);
      else
        write(
          f,
          ts.transpileModule(text, {
            fileName: f,
            compilerOptions: {
              module: ts.ModuleKind.ESNext,
              target: ts.ScriptTarget.ES2022,
              verbatimModuleSyntax: true,
              inlineSourceMap: true,
            },
          }).outputText,
        );
    }
    // Below node_modules, no package.json of the project applies: say these files are ES modules.
    if (!existsSync(path.join(tmp, 'package.json')))
      writeFileSync(path.join(tmp, 'package.json'), '{ "type": "module" }\n');
    writeFileSync(path.join(tmp, '.complete'), '');
    if (tmp !== dir) {
      try {
        renameSync(tmp, dir);
      } catch {
        rmSync(tmp, { recursive: true, force: true }); // another process got there first
      }
    }
  }
  return entryPaths.map((p) => pathToFileURL(out(p)));
}
