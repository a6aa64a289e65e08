/**
 * Attachments in the mapping step: which files a record points to (`mapping.attachments.field`), resolved to
 * references, or a reject reason naming the field. Nothing is read or fetched here: the attachment service
 * (src/attachments) fingerprints the references at crawl time and reads them at ingest, and holds every read to
 * the same rules again (a queue message may be forged; a symbolic link or a DNS answer is only known at read time).
 */
import { isAbsolute, relative, resolve, sep } from 'node:path';
import type { AttachmentsMapping } from '../config/mapping-definition.js';
import { isBlobContainerName, parseFieldPath } from '../config/mapping-definition.js';
import { displayUrl } from '../core/url.js';
import { isMissingValue, readFieldPath } from './values.js';

/** A blob in a container of the connector's storage account. */
export interface BlobLocation {
  container: string;
  name: string;
}

/**
 * One file a record points to: an absolute local path, an http(s) URL or a blob, with the name shown for it.
 */
export type AttachmentRef =
  | { name: string; path: string; url?: undefined; blob?: undefined }
  | { name: string; url: string; path?: undefined; blob?: undefined }
  | { name: string; blob: BlobLocation; path?: undefined; url?: undefined };

/** The longest blob name Azure accepts. */
export const MAX_BLOB_NAME = 1024;

const MAX_ATTACHMENTS = 50;

/** Does `hostname` match an allowHosts entry (`name`, or `*.suffix` for its subdomains)? */
function onAllowList(allow: string[], hostname: string): boolean {
  const h = hostname.toLowerCase();
  return allow.some((entry) => {
    const p = entry.toLowerCase();
    return p.startsWith('*.') ? h.endsWith(p.slice(1)) && h.length > p.length - 1 : h === p;
  });
}

/** The host part of allowHosts/privateHosts entries, lower-case (a privateHosts entry may carry a port). */
const hostOf = (entry: string) => {
  try {
    return new URL(`http://${entry}`).hostname.toLowerCase();
  } catch {
    return entry.toLowerCase();
  }
};

/**
 * A resolver for one mapping: record data → attachment references, or a reject message naming the field.
 * Paths resolve against `folder` (absolute: the caller resolves mapping.attachments.folder against
 * connector.json's folder) and may not leave it; URLs must be https (http only with `allowHttp`) and, when
 * `allowHosts` is set, on an allowed (or private-named) host; blobs (`{ "blob", "container"? }` or
 * `"blob:<container>/<name>"`) take `def.container` when they name none, and must be in `container`/`containers`.
 */
export function attachmentResolver(
  def: AttachmentsMapping,
  folder: string,
): (data: Record<string, unknown>) => { refs: AttachmentRef[] } | { field: string; message: string } {
  const fieldPath = parseFieldPath(def.field);
  const root = resolve(folder);
  const containers = new Set([...(def.container ? [def.container] : []), ...(def.containers ?? [])]);
  const allowHosts = def.allowHosts ? [...def.allowHosts, ...(def.privateHosts ?? []).map(hostOf)] : undefined;
  return (data) => {
    const raw = readFieldPath(data, fieldPath);
    if (isMissingValue(raw)) return { refs: [] };
    const list = Array.isArray(raw) ? raw : [raw];
    if (list.length > MAX_ATTACHMENTS)
      return { field: def.field, message: `${list.length} attachments; at most ${MAX_ATTACHMENTS} per record` };
    const refs: AttachmentRef[] = [];
    for (const [i, entry] of list.entries()) {
      const where = list.length > 1 ? `${def.field}[${i}]` : def.field;
      if (entry === null || entry === undefined || entry === '') continue;
      let path: unknown;
      let url: unknown;
      let name: unknown;
      let blob: unknown;
      let container: unknown;
      if (typeof entry === 'string') {
        if (/^blob:/i.test(entry)) {
          const m = /^blob:([^/]*)\/(.+)$/is.exec(entry);
          if (!m)
            return {
              field: where,
              message: `"${entry.slice(0, 80)}" must be "blob:<container>/<blob name>"`,
            };
          container = m[1];
          blob = m[2];
        } else if (/^[a-z][a-z0-9+.-]*:\/\//i.test(entry)) url = entry;
        else path = entry;
      } else if (typeof entry === 'object' && !Array.isArray(entry)) {
        const o = entry as Record<string, unknown>;
        path = o.path;
        url = o.url;
        blob = o.blob;
        container = o.container;
        name = o.name;
        if ([path, url, blob].filter((v) => v !== undefined).length !== 1)
          return { field: where, message: 'an attachment object needs exactly one of "path", "url" or "blob"' };
        if (container !== undefined && blob === undefined)
          return { field: where, message: '"container" goes with "blob"; remove it or give a "blob" name' };
        if (name !== undefined && (typeof name !== 'string' || name.trim() === '' || name.length > 255))
          return { field: where, message: '"name" must be a file name of 1-255 characters' };
      } else {
        return {
          field: where,
          message: `expected a path, a URL, "blob:<container>/<name>" or {path|url|blob, name}, got ${JSON.stringify(entry)}`,
        };
      }
      if (blob !== undefined) {
        if (typeof blob !== 'string' || blob === '' || blob.length > MAX_BLOB_NAME)
          return { field: where, message: `"blob" must be a blob name of 1-${MAX_BLOB_NAME} characters` };
        if (blob.includes('\0')) return { field: where, message: 'the blob name contains a NUL character' };
        if (blob.split(/[/\\]/).some((seg) => seg === '.' || seg === '..'))
          return {
            field: where,
            message: `blob "${blob.slice(0, 120)}" has a "." or ".." segment, which would leave its container; name the blob without it`,
          };
        const c = container ?? def.container;
        if (c === undefined || c === '')
          return {
            field: where,
            message: `blob "${blob.slice(0, 120)}" names no container; add "container" to the entry or set mapping.attachments.container`,
          };
        if (!isBlobContainerName(c))
          return {
            field: where,
            message: `${JSON.stringify(c).slice(0, 80)} is not a valid blob container name (3-63 lowercase letters, digits and single hyphens)`,
          };
        if (!containers.has(c))
          return {
            field: where,
            message: `blob "${blob.slice(0, 120)}": container "${c}" is not an attachments container (${
              containers.size ? `allowed: ${[...containers].join(', ')}` : 'none is configured'
            }); only mapping.attachments.container and mapping.attachments.containers may be read`,
          };
        const last = blob.split('/').pop() || blob;
        refs.push({ name: typeof name === 'string' ? name : last, blob: { container: c, name: blob } });
        continue;
      }
      if (url !== undefined) {
        if (typeof url !== 'string') return { field: where, message: '"url" must be a string' };
        let u: URL;
        try {
          u = new URL(url);
        } catch {
          return { field: where, message: `"${displayUrl(url)}" is not a valid URL` };
        }
        if (!(u.protocol === 'https:' || (u.protocol === 'http:' && def.allowHttp === true)))
          return {
            field: where,
            message: `attachment URL ${displayUrl(u)} must be https${
              u.protocol === 'http:' ? ' (plain http only with mapping.attachments.allowHttp: true)' : ''
            }`,
          };
        if (allowHosts && !onAllowList(allowHosts, u.hostname))
          return {
            field: where,
            message: `attachment URL ${displayUrl(u)}: ${u.hostname} is not in mapping.attachments.allowHosts (${allowHosts.join(', ')})`,
          };
        const last = decodeURIComponent(u.pathname.split('/').pop() ?? '') || u.hostname;
        refs.push({ name: typeof name === 'string' ? name : last, url: u.href });
        continue;
      }
      if (typeof path !== 'string' || path.trim() === '') return { field: where, message: '"path" must be a string' };
      if (path.includes('\0')) return { field: where, message: 'the path contains a NUL character' };
      const full = resolve(root, path);
      const rel = relative(root, full);
      if (rel === '' || rel.startsWith(`..${sep}`) || rel === '..' || isAbsolute(rel))
        return {
          field: where,
          message: `path "${path.slice(0, 120)}" is outside the attachments folder ${root} (mapping.attachments.folder)`,
        };
      refs.push({ name: typeof name === 'string' ? name : (full.split(sep).pop() ?? path), path: full });
    }
    return { refs };
  };
}
