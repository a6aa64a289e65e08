/**
 * Attachments in the mapping step: which files a record points to (`mapping.attachments.field`), resolved to
 * safe references. Nothing is read or fetched here — the crawl fingerprints the references and the ingest
 * extracts them (src/pipeline/attachments.ts).
 */
import { isAbsolute, relative, resolve, sep } from 'node:path';
import type { ContainerClient } from '@azure/storage-blob';
import type { AttachmentMetadataMapping, AttachmentsMapping } from '../config/mapping-definition.js';
import {
  DEFAULT_ATTACHMENT_MAX_FILE_BYTES,
  DEFAULT_ATTACHMENT_TIMEOUT_MS,
  MAX_ITEM_BYTES,
  isBlobContainerName,
  parseFieldPath,
} from '../config/mapping-definition.js';
import type { SchemaProperty } from '../config/model.js';
import { getPath, isMissing } from './values.js';

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

/**
 * How attachment URLs are fetched. The runtime sets one that adds the source's authentication for URLs on the
 * source's own origin (see src/pipeline/attachments.ts sourceAttachmentFetch); default: plain fetch, no auth.
 */
export type AttachmentFetch = (
  url: string,
  init: { method?: 'GET' | 'HEAD'; signal?: AbortSignal },
) => Promise<Response>;

/** What the ingest needs to extract and join a record's attachments (compiled from mapping.attachments). */
export interface AttachmentSettings {
  join: 'append' | 'replace';
  separator: string;
  ocr: boolean;
  maxFileBytes: number;
  timeoutMs: number;
  html: 'text' | 'keep';
  /** metadata key → schema property */
  metadata: { key: keyof AttachmentMetadataMapping; property: SchemaProperty }[];
  /** Graph's cap for the final item, and what to do above it (mapping.maxItemBytes, mapping.contentOverflow). */
  maxItemBytes: number;
  overflow: 'reject' | 'truncate';
  schema: SchemaProperty[];
  allowEveryone: boolean;
  /** A short digest of the settings that shape the extracted content: part of the item hash. */
  digest: string;
  /** Fetch for attachment URLs (set by the runtime to carry the source's auth); default global fetch. */
  fetch?: AttachmentFetch;
  /**
   * Blob containers for `blob` attachments (set by the runtime: the connector's own storage account, with its
   * connection string or identity). Unset: blob attachments cannot be read (fingerprint `unreadable:no-blob-storage`).
   */
  containers?: (name: string) => ContainerClient;
}

const MAX_ATTACHMENTS = 50;

/** Hosts that may be fetched over plain http (tests and local fakes only). */
function isLoopback(host: string): boolean {
  return host === '127.0.0.1' || host === 'localhost' || host === '[::1]';
}

export function compileAttachmentSettings(
  def: AttachmentsMapping,
  schema: SchemaProperty[],
  options: { maxItemBytes?: number; overflow?: 'reject' | 'truncate'; allowEveryone: boolean },
): AttachmentSettings {
  const byName = new Map(schema.map((p) => [p.name, p]));
  const metadata: AttachmentSettings['metadata'] = [];
  for (const [key, name] of Object.entries(def.metadata ?? {}) as [string, string | undefined][]) {
    const property = name ? byName.get(name) : undefined;
    if (!property) throw new Error(`mapping.attachments.metadata.${key}: no schema property named "${String(name)}"`);
    metadata.push({ key: key as keyof AttachmentMetadataMapping, property });
  }
  const s = {
    join: def.join,
    separator: def.separator ?? '\n\n',
    ocr: def.ocr === true,
    maxFileBytes: def.maxFileBytes ?? DEFAULT_ATTACHMENT_MAX_FILE_BYTES,
    timeoutMs: def.timeoutMs ?? DEFAULT_ATTACHMENT_TIMEOUT_MS,
    html: def.html ?? 'text',
  };
  return {
    ...s,
    metadata,
    maxItemBytes: Math.min(options.maxItemBytes ?? MAX_ITEM_BYTES, MAX_ITEM_BYTES),
    overflow: options.overflow ?? 'reject',
    schema,
    allowEveryone: options.allowEveryone,
    digest: `${s.join}|${JSON.stringify(s.separator)}|ocr=${s.ocr}|html=${s.html}|${metadata
      .map((m) => `${m.key}>${m.property.name}`)
      .join(',')}`,
  };
}

/**
 * A resolver for one mapping: record data → attachment references, or a reject message naming the field.
 * Paths resolve against `folder` (absolute: the caller resolves mapping.attachments.folder against
 * connector.json's folder) and may not leave it; URLs must be https (http only for 127.0.0.1/localhost);
 * blobs (`{ "blob", "container"? }` or `"blob:<container>/<name>"`) take `def.container` when they name none.
 */
export function attachmentResolver(
  def: AttachmentsMapping,
  folder: string,
): (data: Record<string, unknown>) => { refs: AttachmentRef[] } | { field: string; message: string } {
  const fieldPath = parseFieldPath(def.field);
  const root = resolve(folder);
  return (data) => {
    const raw = getPath(data, fieldPath);
    if (isMissing(raw)) return { refs: [] };
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
          return { field: where, message: `"${url.slice(0, 80)}" is not a valid URL` };
        }
        if (!(u.protocol === 'https:' || (u.protocol === 'http:' && isLoopback(u.hostname))))
          return {
            field: where,
            message: `attachment URL "${url.slice(0, 80)}" must be https (plain http only for 127.0.0.1/localhost)`,
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
