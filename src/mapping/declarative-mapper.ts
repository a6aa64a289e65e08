/**
 * The declarative mapper: `mapping.id`, `properties`, `url`/`iconUrl`, `content`, `attachments` and `acl` of
 * connector.json, compiled once, applied to each record; the result goes through {@link finishItem}.
 */
import { resolve } from 'node:path';
import type {
  ContentType,
  ContentTypeMapping,
  MappingDefinition,
  PropertyMapping,
} from '../config/mapping-definition.js';
import { isContentType } from '../config/mapping-definition.js';
import {
  classifyValueRef,
  encodeForUrlTemplate,
  parseFieldPath,
  parseTemplate,
  valueRefAsTemplate,
  whyNotAbsoluteHttpUrl,
  type TemplatePart,
} from '../config/mapping-template.js';
import type { ExternalItem, ExternalItemProperties, SchemaProperty } from '../config/model.js';
import type { AclContext } from './acl.js';
import { buildAcl, compileAclRules } from './acl.js';
import type { AttachmentRef } from './attachments.js';
import { attachmentResolver } from './attachments.js';
import { externalGroupsForCall } from './external-groups.js';
import { finishItem, setTypedProperty, type ItemPolicy } from './finish-item.js';
import { MappingSetupError, rejectRecord, type Mapper, type MapResult } from './types.js';
import {
  coerceToPropertyType,
  escapeHtml,
  readFieldPath,
  isMissingValue,
  renderTemplate,
  stringifyForTemplate,
} from './values.js';

interface CompiledProperty {
  name: string;
  schema: SchemaProperty;
  field?: string[];
  template?: TemplatePart[];
  split?: string;
  required: boolean;
  /** `properties.<name>`, or `url` / `iconUrl` for the labelled properties. */
  source: string;
  /** mapping.url / mapping.iconUrl: values are percent-encoded, and the result must be a URL. */
  isUrl?: true;
}

function compileProperty(name: string, m: PropertyMapping, sp: SchemaProperty, source: string): CompiledProperty {
  if (typeof m === 'string') {
    const k = classifyValueRef(m);
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
 * `mapping.content.type` → the content type of one record: fixed (`"text"`, `"html"`), or the value of a field or
 * template (any case, trimmed), which must be text or html; `default` applies when the record has none.
 */
function compileContentType(ref: ContentTypeMapping): (data: unknown) => { type: ContentType } | { why: string } {
  if (typeof ref === 'string' && isContentType(ref)) return () => ({ type: ref });
  const spec = typeof ref === 'string' ? { template: ref } : ref;
  const parts = 'field' in spec ? valueRefAsTemplate({ field: spec.field }) : parseTemplate(spec.template);
  const source = 'field' in spec ? `field "${spec.field}"` : `template "${spec.template}"`;
  const fallback = spec.default;
  return (data) => {
    const r = renderTemplate(parts, data, { strict: true });
    if ('missing' in r) {
      if (fallback) return { type: fallback };
      return {
        why: `no content type: ${source} has no value for "${r.missing}"; give the record one ("text" or "html") or set mapping.content.type.default`,
      };
    }
    const value = r.value.trim().toLowerCase();
    if (isContentType(value)) return { type: value };
    return {
      why: `${source} gives the content type ${JSON.stringify(r.value.slice(0, 60))}; it must be "text" or "html" (any case): fix the record's value`,
    };
  };
}

/**
 * Compile a validated declarative mapping (run validateMappingDefinition first: what does not compile throws
 * here, at start-up, never per record).
 */
export function createDeclarativeMapper(
  def: MappingDefinition,
  policy: ItemPolicy,
  aclContext: AclContext,
  options: { baseDir: string; syncsExternalGroups: boolean },
): Mapper {
  const { baseDir } = options;
  const schema = policy.schema;
  if (def.id === undefined) throw new MappingSetupError('mapping.id is required (e.g. "{ticketId}")');
  if (!def.acl) throw new MappingSetupError('mapping.acl is required');
  const byName = new Map(schema.map((p) => [p.name, p]));
  const idRef = classifyValueRef(def.id);
  const idTemplate = 'template' in idRef ? parseTemplate(idRef.template) : undefined;
  const idField = 'field' in idRef ? parseFieldPath(idRef.field) : undefined;

  const compiled: CompiledProperty[] = [];
  for (const [name, m] of Object.entries(def.properties ?? {})) {
    const sp = byName.get(name);
    if (!sp) throw new MappingSetupError(`mapping.properties.${name}: no schema property named "${name}"`);
    compiled.push(compileProperty(name, m, sp, `properties.${name}`));
  }
  for (const label of ['url', 'iconUrl'] as const) {
    const t = def[label];
    if (t === undefined) continue;
    const sp = schema.find((p) => p.labels?.includes(label));
    if (!sp) throw new MappingSetupError(`mapping.${label}: no schema property carries the label "${label}"`);
    compiled.push({ ...compileProperty(sp.name, { template: t }, sp, label), required: false, isUrl: true });
  }
  const contentTemplate = def.content?.template !== undefined ? parseTemplate(def.content.template) : undefined;
  const contentField = def.content?.field !== undefined ? parseFieldPath(def.content.field) : undefined;
  const contentTypeOf = compileContentType(def.content?.type ?? 'text');
  const aclRules = compileAclRules(def.acl);
  const resolveAttachments = def.attachments
    ? attachmentResolver(def.attachments, resolve(baseDir, def.attachments.folder ?? '.'))
    : undefined;

  const mapRecord = (key: string, data: Record<string, unknown>, callAcl: AclContext): MapResult => {
    let sourceId: string;
    if (idTemplate) {
      const r = renderTemplate(idTemplate, data, { strict: true });
      if ('missing' in r) return rejectRecord(key, 'id', 'required', `no value for "${r.missing}" in the id template`);
      sourceId = r.value;
    } else {
      const v = readFieldPath(data, idField!);
      if (isMissingValue(v)) return rejectRecord(key, 'id', 'required', `no value for "${idField!.join('.')}"`);
      if (typeof v === 'object')
        return rejectRecord(
          key,
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
        const r = renderTemplate(p.template, data, {
          strict: true,
          ...(p.isUrl ? { encode: encodeForUrlTemplate } : {}),
        });
        raw = 'missing' in r ? undefined : r.value;
      } else raw = readFieldPath(data, p.field!);
      const c = coerceToPropertyType(raw, p.schema.type, { split: p.split });
      if (!c.ok) return rejectRecord(key, p.name, c.rule, c.message);
      if ('missing' in c) {
        if (p.required) return rejectRecord(key, p.name, 'required', 'no value, and the mapping marks it required');
        continue;
      }
      if (p.isUrl) {
        const url = c.value as string;
        const why = whyNotAbsoluteHttpUrl(url);
        if (why)
          return rejectRecord(
            key,
            p.name,
            'url',
            `${p.source} "${url.slice(0, 120)}" is not a valid absolute http(s) URL: ${why} (fix the value, or mapping.${p.source}: {field} values are percent-encoded, {+field} keeps a path's "/")`,
          );
      }
      setTypedProperty(props, p.schema, c.value);
    }

    let content: ExternalItem['content'];
    const contentValue = contentField ? readFieldPath(data, contentField) : undefined;
    if (contentTemplate || (contentField && !isMissingValue(contentValue))) {
      const type = contentTypeOf(data);
      if ('why' in type) return rejectRecord(key, 'content.type', 'contentType', type.why);
      if (contentTemplate) {
        const r = renderTemplate(contentTemplate, data, {
          strict: false,
          ...(type.type === 'html' ? { encode: escapeHtml } : {}),
        });
        if ('value' in r) content = { type: type.type, value: r.value };
      } else content = { type: type.type, value: stringifyForTemplate(contentValue) };
    }

    let attachments: AttachmentRef[] | undefined;
    if (resolveAttachments) {
      const r = resolveAttachments(data);
      if ('message' in r) return rejectRecord(key, r.field, 'attachments', r.message);
      if (r.refs.length) attachments = r.refs;
    }

    const acl = buildAcl(aclRules, data, callAcl);
    const result = finishItem(
      {
        recordKey: key,
        sourceId,
        properties: props,
        content,
        acl: acl.resolved ? acl.entries : { unresolved: { field: acl.field, rule: acl.rule, message: acl.message } },
        warnings: [...acl.warnings],
      },
      policy,
    );
    return result.ok && attachments ? { ...result, attachments } : result;
  };

  return {
    map(record, context) {
      if (record.error !== undefined || !record.data)
        return rejectRecord(record.key, '(record)', 'parse', record.error ?? 'no data');
      try {
        const externalGroups = externalGroupsForCall(context, options.syncsExternalGroups);
        return mapRecord(record.key, record.data, externalGroups ? { ...aclContext, externalGroups } : aclContext);
      } catch (e) {
        // A bad record never stops the crawl.
        return rejectRecord(
          record.key,
          '(mapper)',
          'internal',
          `unexpected error: ${(e as Error)?.message ?? String(e)}`,
        );
      }
    },
  };
}
