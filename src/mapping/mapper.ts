/**
 * createMapper: a source record → a Graph externalItem, or a reject reason. Never throws per record.
 */
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { MappingDefinition, PropertyMapping, TemplatePart } from '../config/mapping-definition.js';
import { MAX_ITEM_BYTES, parseFieldPath, parseTemplate, valueRefKind } from '../config/mapping-definition.js';
import type { AclEntry, ExternalItem, ExternalItemProperties, SchemaProperty } from '../config/model.js';
import { buildAcl, compileAclRules, denyAllAcl, resolvePrincipal } from './acl.js';
import type { AttachmentRef, AttachmentSettings } from './attachments.js';
import { attachmentResolver, compileAttachmentSettings } from './attachments.js';
import { encodeItemId, encodeItemIdDetailed } from './item-id.js';
import { validateItem } from './validate-item.js';
import {
  coerce,
  escapeHtml,
  getPath,
  isMissing,
  odataAnnotation,
  renderTemplate,
  stringifyForTemplate,
} from './values.js';

/** What the mapper needs from a source record (structurally a SourceRecord from src/sources). */
export interface MappableRecord {
  key: string;
  data?: Record<string, unknown>;
  /** Set when the source could not parse the record. */
  error?: string;
}

export interface RejectReason {
  recordKey: string;
  field: string;
  rule: string;
  /** `record <key>: field "<field>": <what> (rule: <rule>)`. */
  message: string;
}

export type MapResult =
  | {
      ok: true;
      item: ExternalItem;
      warnings: string[];
      /** the id before encoding (ledger) */
      sourceId: string;
      /** Files the record points to (mapping.attachments), extracted into the content at ingest time. */
      attachments?: AttachmentRef[];
    }
  | { ok: false; reason: RejectReason };

export interface Mapper {
  map(record: MappableRecord): MapResult;
  /** Set when mapping.attachments is configured: how the ingest extracts and joins the files. */
  attachments?: AttachmentSettings;
}

export interface MapperDeps {
  /** upn (any case) → Entra object id, e.g. from {@link directoryFromJson}. Else mapping.acl.directory is loaded. */
  directory?: Map<string, string>;
  /** Folder of connector.json: `mapping.module` is resolved against it. */
  baseDir: string;
  /** Value for everyone entries when mapping.acl.tenantId is not set (Graph expects the tenant id). */
  tenantId?: string;
}

/** What a `mapping.module` gets as its second argument. */
export interface MapperHelpers {
  encodeItemId(id: string): string;
  escapeHtml(s: string): string;
  get(record: Record<string, unknown>, path: string): unknown;
  /** UPN or object id → object id (undefined when unknown). */
  resolveUser(upnOrId: string): string | undefined;
  /** Stop mapping this record: it is rejected with this field, rule and message. */
  reject(field: string, rule: string, message: string): never;
}

/** What `map(record, helpers)` in a mapping module returns: raw property values, coerced and annotated here. */
export interface ModuleMapOutput {
  id: string;
  properties: Record<string, unknown>;
  content?: { type: 'text' | 'html'; value: string };
  acl: AclEntry[];
}

class RejectSignal extends Error {
  constructor(
    readonly field: string,
    readonly rule: string,
    message: string,
  ) {
    super(message);
  }
}

function reject(recordKey: string, field: string, rule: string, what: string): MapResult {
  return {
    ok: false,
    reason: { recordKey, field, rule, message: `record ${recordKey}: field "${field}": ${what} (rule: ${rule})` },
  };
}

/** Load `directory.json` ({users:[{id,userPrincipalName}], groups:[{id,displayName}]}) into a lookup map. */
export function directoryFromJson(json: unknown): Map<string, string> {
  const map = new Map<string, string>();
  const obj = (json ?? {}) as { users?: unknown; groups?: unknown };
  for (const u of Array.isArray(obj.users) ? (obj.users as Record<string, unknown>[]) : []) {
    if (typeof u.id === 'string' && typeof u.userPrincipalName === 'string')
      map.set(u.userPrincipalName.toLowerCase(), u.id);
    if (typeof u.id === 'string' && typeof u.mail === 'string') map.set(u.mail.toLowerCase(), u.id);
  }
  for (const g of Array.isArray(obj.groups) ? (obj.groups as Record<string, unknown>[]) : []) {
    if (typeof g.id === 'string' && typeof g.displayName === 'string') map.set(g.displayName.toLowerCase(), g.id);
  }
  return map;
}

// UTF-8 bytes one code unit takes inside a JSON string.
function jsonCharBytes(code: number): number {
  if (code === 0x22 || code === 0x5c) return 2;
  if (code < 0x20) return code === 8 || code === 9 || code === 10 || code === 12 || code === 13 ? 2 : 6;
  if (code < 0x80) return 1;
  if (code < 0x800) return 2;
  return 3;
}

/** The longest prefix of `text` whose JSON-escaped UTF-8 size is ≤ budget, cut back to a word boundary. */
function truncateToBytes(text: string, budget: number): string {
  let used = 0;
  let i = 0;
  while (i < text.length) {
    const c = text.charCodeAt(i);
    let step = 1;
    let bytes: number;
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length) {
      const d = text.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        bytes = 4;
        step = 2;
      } else bytes = 6;
    } else if (c >= 0xd800 && c <= 0xdfff) bytes = 6;
    else bytes = jsonCharBytes(c);
    if (used + bytes > budget) break;
    used += bytes;
    i += step;
  }
  if (i >= text.length) return text;
  const cut = text.slice(0, i);
  const ws = cut.search(/\s\S*$/);
  return (ws > 0 ? cut.slice(0, ws) : cut).trimEnd();
}

const itemBytes = (item: ExternalItem) => Buffer.byteLength(JSON.stringify(item), 'utf8');

interface CompiledProperty {
  name: string;
  schema: SchemaProperty;
  field?: string[];
  template?: TemplatePart[];
  split?: string;
  required: boolean;
  source: string;
}

function compileProperty(name: string, m: PropertyMapping, sp: SchemaProperty, source: string): CompiledProperty {
  if (typeof m === 'string') {
    const k = valueRefKind(m);
    return 'template' in k
      ? { name, schema: sp, template: parseTemplate(k.template), required: false, source }
      : { name, schema: sp, field: parseFieldPath(k.field), required: false, source };
  }
  return {
    name,
    schema: sp,
    field: m.field !== undefined ? parseFieldPath(m.field) : undefined,
    template: m.template !== undefined ? parseTemplate(m.template) : undefined,
    split: m.split,
    required: m.required === true,
    source,
  };
}

/**
 * Build a mapper for a validated mapping definition (run validateMappingDefinition first; a definition that
 * does not compile throws here, at start-up, never per record). Async because `mapping.module` is imported.
 */
export async function createMapper(
  def: MappingDefinition,
  schema: SchemaProperty[],
  deps: MapperDeps,
): Promise<Mapper> {
  const cap = Math.min(def.maxItemBytes ?? MAX_ITEM_BYTES, MAX_ITEM_BYTES);
  const overflow = def.contentOverflow ?? 'reject';
  const allowEveryone = def.acl?.allowEveryone === true;
  const onUnresolved = def.acl?.onUnresolved ?? 'reject';
  const everyoneValue = def.acl?.tenantId ?? deps.tenantId ?? 'everyone';
  let directory = deps.directory;
  if (!directory && def.acl?.directory) {
    const file = resolve(deps.baseDir, def.acl.directory);
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (e) {
      throw new Error(
        `mapping.acl.directory: cannot read ${file} (${(e as NodeJS.ErrnoException).code ?? String(e)}); fix the path (relative to connector.json)`,
        { cause: e },
      );
    }
    try {
      directory = directoryFromJson(JSON.parse(text));
    } catch (e) {
      throw new Error(`mapping.acl.directory: ${file} is not valid JSON (${(e as Error).message})`, {
        cause: e,
      });
    }
  }
  const aclCtx = { directory, everyoneValue, allowEveryone };
  const byName = new Map(schema.map((p) => [p.name, p]));

  /** Shared tail: annotate, apply ACL policy, size cap, final validation. */
  const finish = (
    key: string,
    sourceId: string,
    props: ExternalItemProperties,
    content: ExternalItem['content'],
    acl: AclEntry[] | { unresolved: { field: string; rule: string; message: string } },
    warnings: string[],
  ): MapResult => {
    let idInfo: { id: string; hashed: boolean };
    try {
      idInfo = encodeItemIdDetailed(sourceId);
    } catch (e) {
      return reject(key, 'id', 'id', `cannot encode id: ${(e as Error).message}`);
    }
    if (idInfo.hashed)
      warnings.push(`id "${sourceId.slice(0, 40)}..." is too long to encode reversibly; hashed to ${idInfo.id}`);
    let entries: AclEntry[];
    if (!Array.isArray(acl)) {
      if (onUnresolved === 'reject')
        return reject(key, acl.unresolved.field, acl.unresolved.rule, acl.unresolved.message);
      warnings.push(`${acl.unresolved.message}; item is denied to everyone (mapping.acl.onUnresolved: denyAll)`);
      entries = denyAllAcl(everyoneValue);
    } else entries = acl;
    const item: ExternalItem = { id: idInfo.id, acl: entries, properties: props };
    if (content) item.content = content;

    let size = itemBytes(item);
    if (size > cap) {
      if (overflow === 'truncate' && item.content) {
        const full = item.content.value;
        const overhead = itemBytes({ ...item, content: { type: item.content.type, value: '' } });
        if (overhead < cap) {
          item.content = { type: item.content.type, value: truncateToBytes(full, cap - overhead) };
          size = itemBytes(item);
          warnings.push(
            `content truncated from ${full.length} to ${item.content.value.length} characters to fit the ${cap}-byte item cap`,
          );
        }
      }
      if (size > cap) {
        return reject(
          key,
          'content',
          'size',
          `the item is ${size} bytes; the cap is ${cap} (set mapping.contentOverflow: "truncate" to cut the content)`,
        );
      }
    }
    const problems = validateItem(item, schema, { allowEveryone });
    if (problems.length > 0) {
      const p = problems[0]!;
      return reject(key, p.field, p.rule, p.message);
    }
    return { ok: true, item, warnings, sourceId };
  };

  const annotate = (props: ExternalItemProperties, sp: SchemaProperty, value: ExternalItemProperties[string]) => {
    props[sp.name] = value;
    const a = odataAnnotation(sp.type, value);
    if (a) props[`${sp.name}@odata.type`] = a;
  };

  // ---------------------------------------------------------------- code hook
  if (def.module) {
    const url = pathToFileURL(resolve(deps.baseDir, def.module)).href;
    const mod = (await import(url)) as { map?: unknown; default?: { map?: unknown } };
    const fn = (typeof mod.map === 'function' ? mod.map : mod.default?.map) as
      | ((record: Record<string, unknown>, helpers: MapperHelpers) => ModuleMapOutput | null | undefined)
      | undefined;
    if (typeof fn !== 'function') {
      throw new Error(
        `mapping.module "${def.module}" (${url}) does not export a function map(record, helpers); export one`,
      );
    }
    const helpers: MapperHelpers = {
      encodeItemId,
      escapeHtml,
      get: (r, p) => getPath(r, parseFieldPath(p)),
      resolveUser: (v) => resolvePrincipal('user', v, aclCtx),
      reject: (field, rule, message) => {
        throw new RejectSignal(field, rule, message);
      },
    };
    return {
      map(record) {
        if (record.error !== undefined || !record.data)
          return reject(record.key, '(record)', 'parse', record.error ?? 'no data');
        let out: ModuleMapOutput | null | undefined;
        try {
          out = fn(record.data, helpers);
          if (out && typeof (out as unknown as Promise<unknown>).then === 'function') {
            return reject(
              record.key,
              '(module)',
              'module',
              'map() returned a Promise; mapping modules must be synchronous',
            );
          }
        } catch (e) {
          if (e instanceof RejectSignal) return reject(record.key, e.field, e.rule, e.message);
          return reject(record.key, '(module)', 'module', `map() threw: ${(e as Error)?.message ?? String(e)}`);
        }
        if (!out || typeof out !== 'object') return reject(record.key, '(module)', 'module', 'map() returned nothing');
        if (typeof out.id !== 'string' || out.id === '')
          return reject(record.key, 'id', 'required', 'map() returned no id');
        const props: ExternalItemProperties = {};
        for (const [name, raw] of Object.entries(out.properties ?? {})) {
          const sp = byName.get(name);
          if (!sp) return reject(record.key, name, 'schema', `"${name}" is not a property of the schema`);
          const c = coerce(raw, sp.type);
          if (!c.ok) return reject(record.key, name, c.rule, c.message);
          if ('value' in c) annotate(props, sp, c.value);
        }
        const warnings: string[] = [];
        const acl = Array.isArray(out.acl) ? out.acl : [];
        const everyoneGrant = acl.find(
          (e) => (e.type === 'everyone' || e.type === 'everyoneExceptGuests') && e.accessType === 'grant',
        );
        if (everyoneGrant && !allowEveryone) {
          return reject(
            record.key,
            'acl',
            'acl.everyone',
            `a ${everyoneGrant.type} grant needs mapping.acl.allowEveryone: true`,
          );
        }
        const resolvedAcl = acl.some((e) => e.accessType === 'grant')
          ? acl
          : { unresolved: { field: 'acl', rule: 'acl.noGrant', message: 'map() returned an ACL with no grant' } };
        return finish(record.key, out.id, props, out.content, resolvedAcl, warnings);
      },
    };
  }

  // ---------------------------------------------------------------- declarative
  if (def.id === undefined) throw new Error('mapping.id is required (e.g. "{ticketId}")');
  if (!def.acl) throw new Error('mapping.acl is required');
  const idRef = valueRefKind(def.id);
  const idTemplate = 'template' in idRef ? parseTemplate(idRef.template) : undefined;
  const idField = 'field' in idRef ? parseFieldPath(idRef.field) : undefined;

  const compiled: CompiledProperty[] = [];
  for (const [name, m] of Object.entries(def.properties ?? {})) {
    const sp = byName.get(name);
    if (!sp) throw new Error(`mapping.properties.${name}: no schema property named "${name}"`);
    compiled.push(compileProperty(name, m, sp, `properties.${name}`));
  }
  for (const label of ['url', 'iconUrl'] as const) {
    const t = def[label];
    if (t === undefined) continue;
    const sp = schema.find((p) => p.labels?.includes(label));
    if (!sp) throw new Error(`mapping.${label}: no schema property carries the label "${label}"`);
    compiled.push({ ...compileProperty(sp.name, { template: t }, sp, label), required: false });
  }
  const contentTemplate = def.content?.template !== undefined ? parseTemplate(def.content.template) : undefined;
  const contentField = def.content?.field !== undefined ? parseFieldPath(def.content.field) : undefined;
  const contentType = def.content?.type ?? 'text';
  const aclRules = compileAclRules(def.acl);
  const attachmentSettings = def.attachments
    ? compileAttachmentSettings(def.attachments, schema, {
        maxItemBytes: def.maxItemBytes,
        overflow: def.contentOverflow,
        allowEveryone,
      })
    : undefined;
  const resolveAttachments = def.attachments
    ? attachmentResolver(def.attachments, resolve(deps.baseDir, def.attachments.folder ?? '.'))
    : undefined;

  return {
    ...(attachmentSettings ? { attachments: attachmentSettings } : {}),
    map(record) {
      try {
        if (record.error !== undefined || !record.data)
          return reject(record.key, '(record)', 'parse', record.error ?? 'no data');
        const data = record.data;
        const warnings: string[] = [];

        let sourceId: string | undefined;
        if (idTemplate) {
          const r = renderTemplate(idTemplate, data, { strict: true });
          if ('missing' in r)
            return reject(record.key, 'id', 'required', `no value for "${r.missing}" in the id template`);
          sourceId = r.value;
        } else {
          const v = getPath(data, idField!);
          if (isMissing(v)) return reject(record.key, 'id', 'required', `no value for "${idField!.join('.')}"`);
          if (typeof v === 'object')
            return reject(
              record.key,
              'id',
              'type',
              `expected a string or number id, got ${JSON.stringify(v)?.slice(0, 60)}`,
            );
          sourceId = stringifyForTemplate(v);
        }

        const props: ExternalItemProperties = {};
        for (const p of compiled) {
          let raw: unknown;
          if (p.template) {
            const r = renderTemplate(p.template, data, { strict: true });
            raw = 'missing' in r ? undefined : r.value;
          } else raw = getPath(data, p.field!);
          const c = coerce(raw, p.schema.type, { split: p.split });
          if (!c.ok) return reject(record.key, p.name, c.rule, c.message);
          if ('missing' in c) {
            if (p.required)
              return reject(record.key, p.name, 'required', 'no value, and the mapping marks it required');
            continue;
          }
          if (p.source === 'url' || p.source === 'iconUrl') {
            const s = c.value as string;
            let okUrl = false;
            try {
              okUrl = /^https?:$/.test(new URL(s).protocol);
            } catch {
              okUrl = false;
            }
            if (!okUrl)
              return reject(
                record.key,
                p.name,
                'url',
                `${p.source} "${s.slice(0, 80)}" is not an absolute http(s) URL`,
              );
          }
          annotate(props, p.schema, c.value);
        }

        let content: ExternalItem['content'];
        if (contentTemplate) {
          const r = renderTemplate(contentTemplate, data, {
            strict: false,
            escape: contentType === 'html' ? escapeHtml : undefined,
          });
          if ('value' in r) content = { type: contentType, value: r.value };
        } else if (contentField) {
          const v = getPath(data, contentField);
          if (!isMissing(v)) content = { type: contentType, value: stringifyForTemplate(v) };
        }

        let attachments: AttachmentRef[] | undefined;
        if (resolveAttachments) {
          const r = resolveAttachments(data);
          if ('message' in r) return reject(record.key, r.field, 'attachments', r.message);
          if (r.refs.length) attachments = r.refs;
        }

        const acl = buildAcl(aclRules, data, aclCtx);
        warnings.push(...acl.warnings);
        const result = finish(
          record.key,
          sourceId,
          props,
          content,
          acl.resolved ? acl.entries : { unresolved: { field: acl.field, rule: acl.rule, message: acl.message } },
          warnings,
        );
        return result.ok && attachments ? { ...result, attachments } : result;
      } catch (e) {
        // A bad record never stops the crawl.
        return reject(record.key, '(mapper)', 'internal', `unexpected error: ${(e as Error)?.message ?? String(e)}`);
      }
    },
  };
}
