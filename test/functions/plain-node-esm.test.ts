/**
 * The Functions host loads the app with plain Node ESM — not through vitest, whose interop hides the fact
 * that `@azure/functions` (a CommonJS bundle) exposes only some named exports to ESM. This builds the app and
 * imports every entry point with plain `node`, as the host would.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, rm, cp } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const root = join(import.meta.dirname, '..', '..');
let out: string;

beforeAll(async () => {
  out = await mkdtemp(join(root, '.local-build-'));
  await run(
    process.execPath,
    [
      join(root, 'node_modules/typescript/bin/tsc'),
      '-p',
      join(root, 'tsconfig.build.json'),
      '--outDir',
      out,
      '--tsBuildInfoFile',
      join(out, '.tsbuildinfo'),
    ],
    {
      cwd: root,
    },
  );
  await cp(join(root, 'package.json'), join(out, 'package.json'));
}, 120_000);

afterAll(async () => {
  if (out) await rm(out, { recursive: true, force: true });
});

describe('built entry points under plain Node ESM', () => {
  it('every function file and the CLI load with plain node', async () => {
    const fnFiles = (await readdir(join(out, 'functions'))).filter((f) => f.endsWith('.js'));
    expect(fnFiles.length).toBe(14);
    const script = [
      ...fnFiles.map((f) => `await import(${JSON.stringify(join(out, 'functions', f))});`),
      `const cli = await import(${JSON.stringify(join(out, 'src/cli/index.js'))});`,
      `if (typeof cli.main !== 'function') throw new Error('cli.main missing');`,
      `console.log('loaded ${fnFiles.length}');`,
    ].join('\n');
    const { stdout, stderr } = await run(process.execPath, ['--input-type=module', '-e', script], {
      cwd: root,
      env: { ...process.env, NODE_PATH: join(root, 'node_modules') },
    });
    expect(stdout.trim()).toBe(`loaded ${fnFiles.length}`);
    // Outside the host the library runs in "test mode" and says so; it must not fail on imports.
    expect(stderr).not.toMatch(/SyntaxError|does not provide an export named|Named export/);
  }, 60_000);
});
