/**
 * Local attachment files, held inside the attachments folder at the moment they are read.
 *
 * A path is first checked as written (it must lie under the folder), then the file is opened and the real path
 * of what was opened is compared with the real path of the folder: a symbolic link anywhere on the way (the
 * file itself, a directory above it) that leads out of the folder is refused, however it was planted and
 * whenever (the check is on the open file, so swapping a link between a check and the open gains nothing).
 * The same check runs at crawl time (the fingerprint) and at ingest (a forged queue message may name any path).
 */
import { createHash } from 'node:crypto';
import { constants } from 'node:fs';
import { open, readlink, realpath, type FileHandle } from 'node:fs/promises';
import { isAbsolute, relative, resolve, sep } from 'node:path';
import { AttachmentError, refused } from './errors.js';

const errCode = (e: unknown) => (e as NodeJS.ErrnoException)?.code ?? (e as Error)?.name ?? 'error';

const inside = (root: string, path: string) => {
  const rel = relative(root, path);
  return rel !== '' && rel !== '..' && !rel.startsWith(`..${sep}`) && !isAbsolute(rel);
};

/** The real path of the file behind an open handle (Linux: /proc/self/fd), else of the path it was opened by. */
async function realPathOf(handle: FileHandle, path: string): Promise<string> {
  if (process.platform === 'linux') {
    try {
      return await readlink(`/proc/self/fd/${handle.fd}`);
    } catch {
      // no /proc: fall through
    }
  }
  return realpath(path);
}

export interface OpenedFile {
  handle: FileHandle;
  size: number;
  /** The file's real path (inside the folder's real path). */
  real: string;
}

/**
 * Open `path` for reading if, and only if, it is a regular file inside `folder` — both as written and after every
 * symbolic link is resolved. Throws a refusal naming the path, where it leads and the folder.
 */
export async function openInFolder(folder: string, path: string): Promise<OpenedFile> {
  const root = resolve(folder);
  const full = resolve(root, path);
  if (!inside(root, full))
    throw refused('outside-folder', `${path} is outside the attachments folder ${root} (mapping.attachments.folder)`);
  let realRoot: string;
  try {
    realRoot = await realpath(root);
  } catch (e) {
    throw refused(
      'unreadable',
      `the attachments folder ${root} cannot be read (${errCode(e)}); check mapping.attachments.folder`,
    );
  }
  let handle: FileHandle;
  try {
    // O_NONBLOCK: opening a FIFO someone planted must not hang the worker.
    handle = await open(full, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (e) {
    throw refused(errCode(e) === 'ENOENT' ? 'not-found' : 'unreadable', `cannot read ${full} (${errCode(e)})`);
  }
  try {
    const real = await realPathOf(handle, full);
    if (!inside(realRoot, real))
      throw refused(
        'outside-folder',
        `${full} resolves to ${real}, outside the attachments folder ${realRoot} (mapping.attachments.folder); a symbolic link may not lead out of it`,
      );
    const st = await handle.stat();
    if (!st.isFile()) throw refused('not-a-file', `${full} is not a regular file`);
    return { handle, size: st.size, real };
  } catch (e) {
    await handle.close().catch(() => undefined);
    if (e instanceof AttachmentError) throw e;
    throw refused('unreadable', `cannot read ${full} (${errCode(e)})`);
  }
}

/** Read an opened file whole (the caller checked the size cap) and close it. */
export async function readOpened(file: OpenedFile, options: { abortSignal?: AbortSignal } = {}): Promise<Uint8Array> {
  try {
    return new Uint8Array(await file.handle.readFile(options.abortSignal ? { signal: options.abortSignal } : {}));
  } finally {
    await file.handle.close().catch(() => undefined);
  }
}

/** sha256 of an opened file's bytes, streamed, then close it. */
export async function hashOpened(file: OpenedFile, options: { abortSignal?: AbortSignal } = {}): Promise<string> {
  const h = createHash('sha256');
  try {
    const stream = file.handle.createReadStream({
      autoClose: false,
      ...(options.abortSignal ? { signal: options.abortSignal } : {}),
    });
    for await (const chunk of stream) h.update(chunk as Buffer);
    return h.digest('hex');
  } finally {
    await file.handle.close().catch(() => undefined);
  }
}
