/**
 * `npm install` on a fresh clone leaves package-lock.json as committed. A range in package.json that the lock's
 * root entry records differently (`^` against `~`, a package moved between dependency kinds) makes npm rewrite
 * the lock on every install. Checked two ways: the lock's root entry against package.json (offline), and npm itself
 * re-resolving package.json + the lock in an empty folder (`npm install --package-lock-only --ignore-scripts`).
 */
import { execFile } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const ROOT = path.resolve(import.meta.dirname, '..', '..');
const KINDS = ['dependencies', 'optionalDependencies', 'devDependencies', 'peerDependencies'] as const;

type Manifest = Partial<Record<(typeof KINDS)[number], Record<string, string>>>;

describe('package-lock.json agrees with package.json', () => {
  it('the lock root records every dependency with the same range and kind', () => {
    const manifest = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as Manifest;
    const lock = JSON.parse(readFileSync(path.join(ROOT, 'package-lock.json'), 'utf8')) as {
      packages: Record<string, Manifest>;
    };
    const rootEntry = lock.packages[''];
    for (const kind of KINDS) expect(rootEntry?.[kind] ?? {}, kind).toEqual(manifest[kind] ?? {});
  });

  it('npm install --package-lock-only on a fresh copy leaves the lock byte for byte', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'gc-lock-'));
    try {
      for (const f of ['package.json', 'package-lock.json']) copyFileSync(path.join(ROOT, f), path.join(dir, f));
      const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
      await run(npm, ['install', '--package-lock-only', '--ignore-scripts', '--no-audit', '--no-fund'], {
        cwd: dir,
        timeout: 240_000,
      });
      const after = readFileSync(path.join(dir, 'package-lock.json'), 'utf8');
      expect(after === readFileSync(path.join(ROOT, 'package-lock.json'), 'utf8')).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 300_000);
});
