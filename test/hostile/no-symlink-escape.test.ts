/**
 * Regression (bug class: a local attachment escapes the attachments folder). A symbolic link inside the folder
 * pointing at a file outside it was followed and the file published; a forged item-queue message could name
 * any absolute path and the ingest read it. The real paths of the folder and of the file are now compared when
 * the file is read (at crawl time for the fingerprint and again at ingest), on real symlinks on disk.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  deadLetters,
  forgedUpsert,
  hostileStack,
  ingestForged,
  itemIds,
  leaked,
  ticket,
  type HStack,
} from './support.js';

const SECRET = `outsidesecret${randomBytes(4).toString('hex')}`;
const INSIDE = `insidefine${randomBytes(4).toString('hex')}`;
let root: string;
let outsideFile: string;
let stack: HStack;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'gc-symlink-'));
  const files = join(root, 'files');
  await mkdir(join(files, 'sub'), { recursive: true });
  await mkdir(join(root, 'outside'));
  outsideFile = join(root, 'outside', 'secret.txt');
  await writeFile(outsideFile, `the private key is ${SECRET}`);
  await writeFile(join(files, 'ok.txt'), `An ordinary attachment ${INSIDE}.`);
  await symlink(join('..', 'outside', 'secret.txt'), join(files, 'relative-link.txt'));
  await symlink(outsideFile, join(files, 'absolute-link.txt'));
  await symlink(join('..', 'outside'), join(files, 'dirlink'));
  await symlink(join('..', '..', 'outside', 'secret.txt'), join(files, 'sub', 'deep-link.txt'));
  await symlink(join(files, 'relative-link.txt'), join(files, 'chain-link.txt'));
  // A link that stays inside the folder is fine.
  await symlink('ok.txt', join(files, 'inner-link.txt'));
  // The configured folder may itself be reached through a link: its real path is what counts.
  await symlink(files, join(root, 'folder-link'));
  stack = await hostileStack({
    attachments: { folder: join(root, 'folder-link') },
    records: [
      ticket('LINKOK', ['ok.txt', 'inner-link.txt']),
      ticket('LINKREL', 'relative-link.txt'),
      ticket('LINKABS', 'absolute-link.txt'),
      ticket('LINKDIR', 'dirlink/secret.txt'),
      ticket('LINKDEEP', 'sub/deep-link.txt'),
      ticket('LINKCHAIN', 'chain-link.txt'),
    ],
  });
}, 60_000);

afterAll(async () => {
  await stack?.close();
  if (root) await rm(root, { recursive: true, force: true });
});

describe('local attachments stay inside the folder', () => {
  it('no link to a file outside the folder is followed; links inside it are', async () => {
    const { job } = await stack.crawl({ mode: 'full' });
    expect(job?.status, job?.error).toBe('completed');
    expect(await leaked(stack, [SECRET])).toEqual([]);
    expect(await itemIds(stack)).toEqual(['LINKOK']);
    expect(await leaked(stack, [INSIDE])).toEqual([INSIDE]);
    const dls = await deadLetters(stack);
    for (const id of ['LINKREL', 'LINKABS', 'LINKDIR', 'LINKDEEP', 'LINKCHAIN']) {
      const d = dls.find((x) => x.itemId === id);
      expect(d?.message, id).toMatch(/outside-folder: .* resolves to .*secret\.txt, outside the attachments folder/);
    }
  }, 60_000);

  it('a forged queue message naming an absolute path outside the folder is refused at ingest', async () => {
    for (const path of [outsideFile, join(root, 'folder-link', '..', 'outside', 'secret.txt'), '/etc/hostname']) {
      const outcome = await ingestForged(
        stack,
        forgedUpsert(stack, 'FORGEDPATH', [{ name: 'secret.txt', path, fingerprint: 'x' }]),
      );
      expect(outcome.outcome, path).toBe('deadLettered');
      expect((outcome as { reason: string }).reason, path).toMatch(/outside the attachments folder/);
    }
    expect(await itemIds(stack)).not.toContain('FORGEDPATH');
    expect(await leaked(stack, [SECRET])).toEqual([]);
  });
});
