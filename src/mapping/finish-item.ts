/**
 * The tail every mapper shares (declarative or code hook): encode the id, apply the ACL policy
 * (`onUnresolved`), keep the item under the size cap (`contentOverflow`), and check the result against the
 * schema and Graph's rules. What leaves here with `ok: true` is an item Graph accepts.
 */
import type { MappingDefinition } from '../config/mapping-definition.js';
import { MAX_ITEM_BYTES } from '../config/mapping-definition.js';
import type { AclEntry, ExternalItem, ExternalItemProperties, SchemaProperty } from '../config/model.js';
import { denyAllAcl } from './acl.js';
import { encodeItemIdWithForm } from './item-id.js';
import { rejectRecord, type MapResult } from './types.js';
import { validateItem } from './validate-item.js';
import { odataAnnotation } from './values.js';

/** The mapping-wide settings {@link finishItem} applies, compiled once from the definition. */
export interface ItemPolicy {
  schema: SchemaProperty[];
  /** mapping.maxItemBytes, capped at Graph's 4 MB. */
  maxItemBytes: number;
  overflow: 'reject' | 'truncate';
  allowEveryone: boolean;
  onUnresolved: 'reject' | 'denyAll';
  /** The value of everyone entries (the tenant id). */
  everyoneValue: string;
}

export function itemPolicy(
  def: MappingDefinition,
  schema: SchemaProperty[],
  deps: { tenantId?: string | undefined },
): ItemPolicy {
  return {
    schema,
    maxItemBytes: Math.min(def.maxItemBytes ?? MAX_ITEM_BYTES, MAX_ITEM_BYTES),
    overflow: def.contentOverflow ?? 'reject',
    allowEveryone: def.acl?.allowEveryone === true,
    onUnresolved: def.acl?.onUnresolved ?? 'reject',
    everyoneValue: def.acl?.tenantId ?? deps.tenantId ?? 'everyone',
  };
}

/** An ACL that could not be resolved: where, which rule, and why. `onUnresolved` decides what follows. */
export interface UnresolvedAcl {
  unresolved: { field: string; rule: string; message: string };
}

/** A mapped record before the shared tail: typed, annotated properties; the id still unencoded. */
export interface ItemDraft {
  recordKey: string;
  sourceId: string;
  properties: ExternalItemProperties;
  content: ExternalItem['content'];
  acl: AclEntry[] | UnresolvedAcl;
  warnings: string[];
}

/** Set a coerced value and the `@odata.type` annotation Graph needs for it. */
export function setTypedProperty(
  props: ExternalItemProperties,
  sp: SchemaProperty,
  value: ExternalItemProperties[string],
): void {
  props[sp.name] = value;
  const annotation = odataAnnotation(sp.type, value);
  if (annotation) props[`${sp.name}@odata.type`] = annotation;
}

export function finishItem(draft: ItemDraft, policy: ItemPolicy): MapResult {
  const { recordKey: key, sourceId, warnings } = draft;
  let encoded: ReturnType<typeof encodeItemIdWithForm>;
  try {
    encoded = encodeItemIdWithForm(sourceId);
  } catch (e) {
    return rejectRecord(key, 'id', 'id', `cannot encode id: ${(e as Error).message}`);
  }
  if (encoded.form === 'sha256')
    warnings.push(`id "${sourceId.slice(0, 40)}..." is too long to encode reversibly; hashed to ${encoded.id}`);
  let entries: AclEntry[];
  if (!Array.isArray(draft.acl)) {
    const { field, rule, message } = draft.acl.unresolved;
    if (policy.onUnresolved === 'reject') return rejectRecord(key, field, rule, message);
    warnings.push(`${message}; item is denied to everyone (mapping.acl.onUnresolved: denyAll)`);
    entries = denyAllAcl(policy.everyoneValue);
  } else entries = draft.acl;
  const item: ExternalItem = { id: encoded.id, acl: entries, properties: draft.properties };
  if (draft.content) item.content = draft.content;

  const cap = policy.maxItemBytes;
  // Serialising every item to measure it costs more than the rest of the mapping: an upper bound decides first.
  let size = itemBytesAtMost(item) <= cap ? 0 : itemBytes(item);
  if (size > cap) {
    if (policy.overflow === 'truncate' && item.content) {
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
      return rejectRecord(
        key,
        'content',
        'size',
        `the item is ${size} bytes; the cap is ${cap} (set mapping.contentOverflow: "truncate" to cut the content)`,
      );
    }
  }
  const problems = validateItem(item, policy.schema, { allowEveryone: policy.allowEveryone });
  if (problems.length > 0) {
    const p = problems[0]!;
    return rejectRecord(key, p.field, p.rule, p.message);
  }
  return { ok: true, item, warnings, sourceId };
}

const itemBytes = (item: ExternalItem) => Buffer.byteLength(JSON.stringify(item), 'utf8');

/**
 * An upper bound of {@link itemBytes} without serialising: every string counted as if each of its characters took
 * the most JSON can make of it (6 bytes, a `\u` escape), plus generous room for keys, quotes and punctuation.
 */
export function itemBytesAtMost(item: ExternalItem): number {
  return 64 + boundOf(item.id) + boundOf(item.acl) + boundOf(item.properties) + boundOf(item.content);
}

function boundOf(v: unknown): number {
  if (typeof v === 'string') return 6 * v.length + 2;
  if (v === null || typeof v !== 'object') return 32;
  let n = 2;
  if (Array.isArray(v)) {
    for (const x of v) n += boundOf(x) + 1;
    return n;
  }
  for (const k in v as Record<string, unknown>) n += 6 * k.length + 4 + boundOf((v as Record<string, unknown>)[k]);
  return n;
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
export function truncateToBytes(text: string, budget: number): string {
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
