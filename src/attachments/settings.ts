/**
 * `mapping.attachments` compiled once, at start-up: how files are extracted and joined into the item, and the
 * trust rules every read is held to — the folder local paths may not leave, the blob containers that may be
 * read, and which URLs may be fetched (scheme, allow-list, hosts allowed to be non-public addresses).
 */
import { isAbsolute, resolve } from 'node:path';
import type { AttachmentMetadataMapping, AttachmentsMapping } from '../config/mapping-definition.js';
import {
  DEFAULT_ATTACHMENT_MAX_FILE_BYTES,
  DEFAULT_ATTACHMENT_TIMEOUT_MS,
  MAX_ITEM_BYTES,
  reservedContainerReason,
} from '../config/mapping-definition.js';
import type { SchemaProperty } from '../config/model.js';
import { ConfigError, problem } from '../config/problems.js';

/** A host named by the definition: `name` (any port) or `name:port`. Lower-case; IPv6 in brackets. */
export interface NamedHost {
  hostname: string;
  /** The port, when the entry names one ('' = any). */
  port: string;
}

/** Which URLs may be fetched (mapping.attachments.allowHttp, allowHosts, privateHosts). */
export interface UrlPolicy {
  allowHttp: boolean;
  /** Set: every URL and redirect must be on one of these (exact name, or `*.suffix` for subdomains). */
  allowHosts?: string[];
  /** Hosts that may be non-public addresses (loopback, private, link-local …). */
  privateHosts: NamedHost[];
}

/** What the attachment service needs (compiled from mapping.attachments and the schema). */
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
  /** The attachments folder (absolute, as configured; its real path is resolved at each read). */
  folder: string;
  /** The only blob containers that may be read (mapping.attachments.container and containers). */
  containers: ReadonlySet<string>;
  urls: UrlPolicy;
}

export interface CompileOptions {
  /** Folder of connector.json: mapping.attachments.folder resolves against it. */
  baseDir: string;
  maxItemBytes?: number;
  overflow?: 'reject' | 'truncate';
  allowEveryone: boolean;
  /** The claims container (CLAIMS_CONTAINER): other items' bodies, never an attachments container. */
  claimsContainer?: string;
}

const WHERE = 'connector.json: mapping.attachments';

/** `name` or `name:port` (IPv6 in brackets) → its parts, normalised the way URL parsing normalises hosts. */
export function parseNamedHost(entry: string): NamedHost {
  const u = new URL(`http://${entry}`);
  const explicitDefault = /:80$/.test(entry) ? '80' : '';
  return { hostname: u.hostname.toLowerCase(), port: u.port || explicitDefault };
}

export function compileAttachmentSettings(
  def: AttachmentsMapping,
  schema: SchemaProperty[],
  options: CompileOptions,
): AttachmentSettings {
  const problems = [];
  const byName = new Map(schema.map((p) => [p.name, p]));
  const metadata: AttachmentSettings['metadata'] = [];
  for (const [key, name] of Object.entries(def.metadata ?? {}) as [string, string | undefined][]) {
    const property = name ? byName.get(name) : undefined;
    if (!property)
      problems.push(
        problem(`${WHERE}.metadata.${key}`, `no schema property named "${String(name)}"`, 'name a schema property'),
      );
    else metadata.push({ key: key as keyof AttachmentMetadataMapping, property });
  }
  const containers = new Set([...(def.container ? [def.container] : []), ...(def.containers ?? [])]);
  for (const c of containers) {
    const why =
      reservedContainerReason(c) ??
      (c === options.claimsContainer
        ? `"${c}" is the claims container (CLAIMS_CONTAINER): it holds other items' bodies`
        : undefined);
    if (why)
      problems.push(
        problem(
          `${WHERE}.container${def.container === c ? '' : 's'}`,
          why,
          'keep attachments in a container of their own',
        ),
      );
  }
  if (problems.length) throw new ConfigError(problems, 'connector.json');

  const s = {
    join: def.join,
    separator: def.separator ?? '\n\n',
    ocr: def.ocr === true,
    maxFileBytes: def.maxFileBytes ?? DEFAULT_ATTACHMENT_MAX_FILE_BYTES,
    timeoutMs: def.timeoutMs ?? DEFAULT_ATTACHMENT_TIMEOUT_MS,
    html: def.html ?? 'text',
  };
  const folder = def.folder ?? '.';
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
    folder: isAbsolute(folder) ? resolve(folder) : resolve(options.baseDir, folder),
    containers,
    urls: {
      allowHttp: def.allowHttp === true,
      ...(def.allowHosts ? { allowHosts: def.allowHosts.map((h) => h.toLowerCase()) } : {}),
      privateHosts: (def.privateHosts ?? []).map(parseNamedHost),
    },
  };
}
