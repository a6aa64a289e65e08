/**
 * The last gate before an item leaves the mapper: is it what Graph accepts for this schema?
 * (id of letters, digits, - and _ ≤128, acl non-empty, ≥1 property, properties declared and typed, collection and
 * non-ASCII annotations, content an object; docs/mapping.md "Final validation".)
 */
import type { ExternalItem, PropertyType, SchemaProperty } from '../config/model.js';
import { MAX_ITEM_ID_LENGTH } from './item-id.js';
import { odataAnnotation } from './values.js';

export interface ItemProblem {
  field: string;
  rule: string;
  message: string;
}

const ISO_Z = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,7})?Z$/;
const ACL_TYPES = new Set(['user', 'group', 'everyone', 'everyoneExceptGuests', 'externalGroup']);

const str = (x: unknown) => typeof x === 'string';
const int = (x: unknown) => typeof x === 'number' && Number.isSafeInteger(x);
const dbl = (x: unknown) => typeof x === 'number' && Number.isFinite(x);
const dt = (x: unknown) => typeof x === 'string' && ISO_Z.test(x);

/** The schema's properties by name, built once per schema (a crawl validates every record against one schema). */
const byNameCache = new WeakMap<readonly SchemaProperty[], Map<string, SchemaProperty>>();
function propertiesByName(schema: readonly SchemaProperty[]): Map<string, SchemaProperty> {
  let m = byNameCache.get(schema);
  if (!m) byNameCache.set(schema, (m = new Map(schema.map((p) => [p.name, p]))));
  return m;
}

function valueMatches(type: PropertyType, v: unknown): boolean {
  const all = (f: (x: unknown) => boolean) => Array.isArray(v) && v.every(f);
  switch (type) {
    case 'string':
      return str(v);
    case 'int64':
      return int(v);
    case 'double':
      return dbl(v);
    case 'boolean':
      return typeof v === 'boolean';
    case 'dateTime':
      return dt(v);
    case 'stringCollection':
      return all(str);
    case 'int64Collection':
      return all(int);
    case 'doubleCollection':
      return all(dbl);
    case 'dateTimeCollection':
      return all(dt);
    default:
      return false;
  }
}

export function validateItem(
  item: ExternalItem,
  schema: SchemaProperty[],
  options: { allowEveryone: boolean },
): ItemProblem[] {
  const out: ItemProblem[] = [];
  if (typeof item.id !== 'string' || item.id.length === 0) {
    out.push({ field: 'id', rule: 'required', message: 'the item has no id' });
  } else if (!/^[A-Za-z0-9_-]+$/.test(item.id)) {
    out.push({
      field: 'id',
      rule: 'id',
      message: `item id "${item.id.slice(0, 40)}" has characters other than letters, digits, - and _`,
    });
  } else if (item.id.length > MAX_ITEM_ID_LENGTH) {
    out.push({
      field: 'id',
      rule: 'id',
      message: `item id is ${item.id.length} characters; Graph allows ${MAX_ITEM_ID_LENGTH}`,
    });
  }

  if (!Array.isArray(item.acl) || item.acl.length === 0) {
    out.push({ field: 'acl', rule: 'required', message: 'the item has no ACL entries' });
  } else {
    item.acl.forEach((e, i) => {
      if (!ACL_TYPES.has(e.type) || (e.accessType !== 'grant' && e.accessType !== 'deny') || !e.value) {
        out.push({ field: `acl[${i}]`, rule: 'acl', message: `invalid ACL entry ${JSON.stringify(e)}` });
      } else if (
        (e.type === 'everyone' || e.type === 'everyoneExceptGuests') &&
        e.accessType === 'grant' &&
        !options.allowEveryone
      ) {
        out.push({
          field: `acl[${i}]`,
          rule: 'acl.everyone',
          message: `a ${e.type} grant needs mapping.acl.allowEveryone: true`,
        });
      } else if (e.type === 'externalGroup' && !/^[A-Za-z0-9]{1,128}$/.test(e.value)) {
        out.push({
          field: `acl[${i}]`,
          rule: 'acl',
          message: `external group id "${e.value}" is not alphanumeric ≤128`,
        });
      }
    });
  }

  const props = item.properties;
  if (typeof props !== 'object' || props === null || Array.isArray(props)) {
    out.push({ field: 'properties', rule: 'required', message: 'the item has no properties object' });
    return out;
  }
  const byName = propertiesByName(schema);
  let count = 0;
  for (const [key, v] of Object.entries(props)) {
    const at = key.indexOf('@');
    if (at >= 0) {
      const base = key.slice(0, at);
      if (key.slice(at) !== '@odata.type' || !byName.has(base)) {
        out.push({ field: key, rule: 'schema', message: `annotation "${key}" does not belong to a schema property` });
      }
      continue;
    }
    const sp = byName.get(key);
    if (!sp) {
      out.push({ field: key, rule: 'schema', message: `"${key}" is not a property of the schema` });
      continue;
    }
    count++;
    if (!valueMatches(sp.type, v)) {
      out.push({
        field: key,
        rule: 'type',
        message: `value ${JSON.stringify(v)?.slice(0, 60)} does not match schema type ${sp.type}`,
      });
      continue;
    }
    const want = odataAnnotation(sp.type, v);
    const have = props[`${key}@odata.type`];
    if (want !== undefined && have !== want) {
      out.push({ field: key, rule: 'annotation', message: `needs "${key}@odata.type": "${want}"` });
    }
  }
  if (count === 0) out.push({ field: 'properties', rule: 'required', message: 'Graph requires at least one property' });

  if (item.content !== undefined) {
    const c = item.content as unknown as Record<string, unknown>;
    if (
      typeof c !== 'object' ||
      c === null ||
      (c.type !== 'text' && c.type !== 'html') ||
      typeof c.value !== 'string'
    ) {
      out.push({
        field: 'content',
        rule: 'content',
        message: 'content must be {"type": "text"|"html", "value": string}',
      });
    }
  }
  return out;
}
