/** Items (I1–I3), addActivities (A1), and the item payload rules (reference §2.4, §2.5, §5). */
import { requireState } from './access.js';
import { notFound } from './connections.js';
import type { Emu } from './context.js';
import { ALNUM_RE, GUID_RE, GraphError, isObject, type Ctx, type Reply } from './http.js';
import type { Principal } from './identity.js';
import type { AclEntry, Connection, SchemaProperty, StoredItem } from './store.js';

const ACL_TYPES = ['user', 'group', 'everyone', 'everyoneExceptGuests', 'externalGroup'];
const ACCESS_TYPES = ['grant', 'deny'];
const ITEM_KEYS = ['id', 'acl', 'properties', 'content', 'informationProtectionLabel', '@odata.type', '@odata.context'];
const DATE_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,7})?)?(Z|[+-]\d{2}:\d{2})$/;

/** `@odata.type` annotation each collection type needs. */
const COLLECTION_ANNOTATION: Record<string, string> = {
  stringCollection: 'Collection(String)',
  int64Collection: 'Collection(Int64)',
  doubleCollection: 'Collection(Double)',
  dateTimeCollection: 'Collection(DateTimeOffset)',
  principalCollection: 'Collection(microsoft.graph.externalConnectors.principal)',
};

function mismatch(name: string, detail: string): GraphError {
  return new GraphError(
    400,
    'BadRequest',
    `Property ${name} in payload has a value that does not match schema. ${detail}`,
    {
      code: 'InvalidPropertyValue',
      message: detail,
    },
  );
}

/**
 * Item ids: letters, digits, `-` and `_`, 1–128 characters. The docs say "alphanumeric"; Microsoft's own connector
 * samples PUT ids with `-` and `_` (Learn slugs, blog slugs) to Graph, so those pass (docs/emulator.md).
 */
export const ITEM_ID_RE = /^[A-Za-z0-9_-]+$/;

export function checkItemId(id: string, what = 'Item id'): void {
  if (id.length === 0 || id.length > 128 || !ITEM_ID_RE.test(id))
    throw new GraphError(400, 'InvalidRequest', 'The request is malformed or incorrect.', {
      code: 'InvalidItemId',
      message: `${what} '${id}' is invalid: it must be 1–128 characters of letters, digits, '-' and '_'. Encode other ids (for example base64url without '=' or a hex hash).`,
    });
}

function isAscii(s: string): boolean {
  // eslint-disable-next-line no-control-regex
  return /^[\x00-\x7f]*$/.test(s);
}

function checkDate(name: string, v: unknown): void {
  if (typeof v !== 'string' || !DATE_RE.test(v) || Number.isNaN(Date.parse(v)))
    throw mismatch(
      name,
      `Expected an ISO 8601 date-time with a time zone (for example 2021-04-06T18:04:31.033Z), got ${JSON.stringify(v)}.`,
    );
}

function checkScalar(name: string, type: string, v: unknown): void {
  switch (type) {
    case 'string':
      if (typeof v !== 'string') throw mismatch(name, `Expected a string, got ${JSON.stringify(v)}.`);
      return;
    case 'int64':
      if (typeof v !== 'number' || !Number.isSafeInteger(v))
        throw mismatch(name, `Expected an Int64 (a JSON integer), got ${JSON.stringify(v)}.`);
      return;
    case 'double':
      if (typeof v !== 'number' || !Number.isFinite(v))
        throw mismatch(name, `Expected a Double (a JSON number), got ${JSON.stringify(v)}.`);
      return;
    case 'boolean':
      if (typeof v !== 'boolean') throw mismatch(name, `Expected a Boolean, got ${JSON.stringify(v)}.`);
      return;
    case 'dateTime':
      checkDate(name, v);
      return;
    case 'principal':
      if (!isObject(v))
        throw mismatch(name, 'Expected a principal object {externalName, externalId, entraId, email, upn, ...}.');
      return;
  }
}

/** Validate the properties bag against the schema (keys, types, @odata.type annotations). */
export function checkProperties(props: unknown, schema: SchemaProperty[]): void {
  if (!isObject(props))
    throw new GraphError(
      400,
      'BadRequest',
      'Property properties in payload has a value that does not match schema. properties must be an object.',
    );
  const byName = new Map(schema.map((p) => [p.name, p]));
  const keys = Object.keys(props);
  const valueKeys = keys.filter((k) => !k.includes('@'));
  if (valueKeys.length === 0)
    throw new GraphError(400, 'BadRequest', 'An item needs at least one property in properties.', {
      code: 'MissingProperties',
    });
  for (const key of keys) {
    const at = key.indexOf('@');
    if (at >= 0) {
      const base = key.slice(0, at);
      const annotation = key.slice(at + 1);
      if (annotation !== 'odata.type')
        throw new GraphError(
          400,
          'BadRequest',
          `Unsupported annotation '${key}'; only '<property>@odata.type' is allowed.`,
        );
      if (!byName.has(base))
        throw new GraphError(
          400,
          'BadRequest',
          `The annotation '${key}' refers to '${base}', which is not a property of the schema.`,
          { code: 'UnknownProperty' },
        );
      if (!(base in props))
        throw new GraphError(400, 'BadRequest', `The annotation '${key}' has no value '${base}' next to it.`);
      continue;
    }
    const def = byName.get(key);
    if (!def) {
      const ci = schema.find((p) => p.name.toLowerCase() === key.toLowerCase());
      throw new GraphError(
        400,
        'BadRequest',
        `The property '${key}' does not exist in the schema of this connection.${ci ? ` Did you mean '${ci.name}'? Property names are case-sensitive here.` : ' Add it to the schema first (schema updates are additive).'}`,
        { code: 'UnknownProperty' },
      );
    }
    const v = props[key];
    if (v === null) continue;
    const rawAnnotation = props[`${key}@odata.type`];
    const annotation = typeof rawAnnotation === 'string' ? rawAnnotation.replace(/^#/, '') : undefined;
    if (rawAnnotation !== undefined && typeof rawAnnotation !== 'string')
      throw mismatch(key, `${key}@odata.type must be a string.`);
    const collection = COLLECTION_ANNOTATION[def.type];
    if (collection) {
      if (!Array.isArray(v)) throw mismatch(key, `Expected an array for ${def.type}, got ${JSON.stringify(v)}.`);
      if (annotation === undefined)
        throw mismatch(key, `A ${def.type} value needs the annotation "${key}@odata.type": "${collection}".`);
      if (annotation !== collection)
        throw mismatch(
          key,
          `The annotation "${key}@odata.type" is "${annotation}" but a ${def.type} needs "${collection}"${def.type === 'dateTimeCollection' ? ' (not Collection(DateTime))' : ''}.`,
        );
      const elementType = def.type.replace('Collection', '');
      for (const el of v) {
        checkScalar(key, elementType, el);
      }
      continue;
    }
    if (Array.isArray(v)) throw mismatch(key, `Expected a single ${def.type} value, got an array.`);
    checkScalar(key, def.type, v);
    if (annotation !== undefined) {
      const expected: Record<string, string[]> = {
        string: ['String', 'Edm.String'],
        int64: ['Int64', 'Edm.Int64'],
        double: ['Double', 'Edm.Double'],
        boolean: ['Boolean', 'Edm.Boolean'],
        dateTime: ['DateTimeOffset', 'Edm.DateTimeOffset'],
        principal: ['microsoft.graph.externalConnectors.principal'],
      };
      if (!(expected[def.type] ?? []).includes(annotation))
        throw mismatch(key, `The annotation "${key}@odata.type": "${annotation}" does not fit a ${def.type} property.`);
    }
    if (def.type === 'string' && typeof v === 'string' && !isAscii(v) && annotation === undefined)
      throw mismatch(key, `A string with non-ASCII characters needs the annotation "${key}@odata.type": "String".`);
  }
}

/**
 * Validate an ACL. `everyone` / `everyoneExceptGuests` entries name the tenant id (the acl resource page); another
 * value is accepted — Microsoft's samples send the literal "everyone" — with a warning in the request log.
 */
export function checkAcl(
  acl: unknown,
  version: string,
  context: { tenantId: string; warn(message: string): void },
): AclEntry[] {
  if (!Array.isArray(acl) || acl.length === 0)
    throw new GraphError(
      400,
      'BadRequest',
      'acl is required and must be a non-empty array of {type, value, accessType}.',
      {
        code: 'InvalidAcl',
      },
    );
  return acl.map((e, i) => {
    const where = `acl[${i}]`;
    if (!isObject(e))
      throw new GraphError(400, 'BadRequest', `${where} must be an object {type, value, accessType}.`, {
        code: 'InvalidAcl',
      });
    for (const k of Object.keys(e))
      if (
        !['type', 'value', 'accessType', '@odata.type', ...(version === 'beta' ? ['identitySource'] : [])].includes(k)
      )
        throw new GraphError(
          400,
          'BadRequest',
          `${where}: the property '${k}' does not exist on type 'microsoft.graph.externalConnectors.acl'.`,
          {
            code: 'InvalidAcl',
          },
        );
    if (!ACL_TYPES.includes(e.type as string))
      throw new GraphError(
        400,
        'BadRequest',
        `${where}.type ${JSON.stringify(e.type)} is not one of ${ACL_TYPES.join(', ')}.`,
        {
          code: 'InvalidAcl',
        },
      );
    if (!ACCESS_TYPES.includes(e.accessType as string))
      throw new GraphError(
        400,
        'BadRequest',
        `${where}.accessType ${JSON.stringify(e.accessType)} must be grant or deny.`,
        {
          code: 'InvalidAcl',
        },
      );
    if (typeof e.value !== 'string' || e.value.length === 0)
      throw new GraphError(400, 'BadRequest', `${where}.value must be a non-empty string.`, { code: 'InvalidAcl' });
    if ((e.type === 'user' || e.type === 'group') && !GUID_RE.test(e.value) && e.identitySource !== 'external')
      throw new GraphError(
        400,
        'BadRequest',
        `${where}.value '${e.value}' is not an Entra object id (GUID). A ${e.type} entry needs the object id, not a UPN or name; resolve it through the directory first.`,
        { code: 'InvalidAcl' },
      );
    if (e.type === 'externalGroup' && (e.value.length > 128 || !ALNUM_RE.test(e.value)))
      throw new GraphError(
        400,
        'BadRequest',
        `${where}.value '${e.value}' is not a valid external group id (alphanumeric, ≤128).`,
        {
          code: 'InvalidAcl',
        },
      );
    if (
      (e.type === 'everyone' || e.type === 'everyoneExceptGuests') &&
      context.tenantId &&
      e.value.toLowerCase() !== context.tenantId.toLowerCase()
    )
      context.warn(
        `${where}: ${e.type} value '${e.value.slice(0, 64)}' is not the tenant id (${context.tenantId}); accepted and applied to the whole tenant`,
      );
    const out: AclEntry = { type: e.type as string, value: e.value, accessType: e.accessType as string };
    if (typeof e.identitySource === 'string') out.identitySource = e.identitySource;
    return out;
  });
}

function checkContent(content: unknown): { type: string; value: string } {
  if (!isObject(content) || typeof content.value !== 'string')
    throw new GraphError(400, 'BadRequest', 'Property content in payload has a value that does not match schema.', {
      code: 'InvalidContent',
      message: 'content must be an object {"type": "text" | "html", "value": "<string>"}.',
    });
  const type = content.type === undefined ? 'text' : content.type;
  if (type !== 'text' && type !== 'html')
    throw new GraphError(400, 'BadRequest', 'Property content in payload has a value that does not match schema.', {
      code: 'InvalidContent',
      message: `content.type ${JSON.stringify(content.type)} must be "text" or "html".`,
    });
  for (const k of Object.keys(content))
    if (!['type', 'value', '@odata.type'].includes(k))
      throw new GraphError(
        400,
        'BadRequest',
        `content: the property '${k}' does not exist on type 'externalItemContent'.`,
      );
  return { type, value: content.value };
}

function stored(c: Connection, itemId: string): StoredItem {
  const item = c.items.get(itemId);
  if (!item) throw notFound(`The item '${itemId}' of connection '${c.id}'`);
  return item;
}

export function putItem(
  emu: Emu,
  ctx: Ctx,
  c: Connection,
  itemId: string,
  body: Record<string, unknown>,
  p: Principal,
  version: string,
): Reply {
  checkItemId(itemId);
  const existing = c.items.get(itemId);
  requireState(c, existing ? 'updateItem' : 'createItem');
  if (!existing && c.itemQuota !== undefined && c.items.size >= c.itemQuota) {
    c.state = 'limitExceeded';
    emu.changed();
    requireState(c, 'createItem');
  }
  for (const key of Object.keys(body))
    if (!ITEM_KEYS.includes(key))
      throw new GraphError(
        400,
        'BadRequest',
        `The property '${key}' does not exist on type 'microsoft.graph.externalConnectors.externalItem'.`,
      );
  if (body.id === undefined)
    throw new GraphError(400, 'BadRequest', `The item body needs "id": "${itemId}" (the same id as in the URL).`, {
      code: 'MissingItemId',
    });
  if (body.id !== itemId)
    throw new GraphError(
      400,
      'BadRequest',
      `The id in the body (${JSON.stringify(body.id)}) does not match the id in the URL ('${itemId}').`,
      {
        code: 'ItemIdMismatch',
      },
    );
  if (!c.schema) throw new GraphError(400, 'InvalidRequest', `Connection '${c.id}' has no schema.`);
  const acl =
    body.acl === undefined
      ? undefined
      : checkAcl(body.acl, version, {
          tenantId: emu.store.state.tenantId,
          warn: (message) => ctx.warnings.push(message),
        });
  if (body.properties !== undefined) checkProperties(body.properties, c.schema.properties);
  const content = body.content === undefined || body.content === null ? undefined : checkContent(body.content);
  if (!existing) {
    if (!acl)
      throw new GraphError(
        400,
        'BadRequest',
        'acl is required and must be a non-empty array of {type, value, accessType}.',
        { code: 'InvalidAcl' },
      );
    if (body.properties === undefined)
      throw new GraphError(400, 'BadRequest', 'properties is required (at least one property of the schema).', {
        code: 'MissingProperties',
      });
  } else {
    for (const field of ['acl', 'properties', 'content'])
      if (body[field] === undefined)
        ctx.warnings.push(`PUT without '${field}' kept the stored ${field} (partial update)`);
  }
  const now = new Date().toISOString();
  const item: StoredItem = {
    id: itemId,
    acl: acl ?? existing!.acl,
    properties: (body.properties as Record<string, unknown> | undefined) ?? existing!.properties,
    content: body.content === undefined ? existing?.content : content,
    informationProtectionLabel: body.informationProtectionLabel ?? existing?.informationProtectionLabel,
    activities: existing?.activities ?? [],
    createdDateTime: existing?.createdDateTime ?? now,
    lastModifiedDateTime: now,
    writtenBy: p.appId,
  };
  if (item.content === undefined) delete item.content;
  if (item.informationProtectionLabel === undefined) delete item.informationProtectionLabel;
  c.items.set(itemId, item);
  if (c.itemQuota !== undefined && c.items.size >= c.itemQuota && c.state === 'ready') c.state = 'limitExceeded';
  emu.changed();
  return { status: 200 };
}

export function renderItem(item: StoredItem): Record<string, unknown> {
  const out: Record<string, unknown> = { id: item.id, acl: item.acl, properties: item.properties };
  if (item.content) out.content = item.content;
  if (item.informationProtectionLabel) out.informationProtectionLabel = item.informationProtectionLabel;
  return out;
}

export function getItem(emu: Emu, c: Connection, itemId: string, version: string): Reply {
  requireState(c, 'readItem');
  const item = stored(c, itemId);
  return {
    status: 200,
    body: {
      '@odata.context': `${emu.baseUrl}/${version}/$metadata#external/connections('${c.id}')/items/$entity`,
      ...renderItem(item),
    },
  };
}

export function deleteItem(emu: Emu, c: Connection, itemId: string): Reply {
  requireState(c, 'updateItem');
  stored(c, itemId);
  c.items.delete(itemId);
  if (c.state === 'limitExceeded' && c.itemQuota !== undefined && c.items.size < c.itemQuota) c.state = 'ready';
  emu.changed();
  return { status: 204 };
}

/**
 * externalActivityType without `unknownFutureValue`, the evolvable-enum sentinel a client does not send
 * (https://learn.microsoft.com/graph/api/resources/externalconnectors-externalactivity). At most 20 activities per
 * call: "Number of activities; this is the throttling threshold per activities call | 20 activities"
 * (https://learn.microsoft.com/graph/connecting-external-content-api-limits).
 */
const ACTIVITY_TYPES = ['viewed', 'modified', 'created', 'commented'];

export function addActivities(emu: Emu, c: Connection, itemId: string, body: Record<string, unknown>): Reply {
  requireState(c, 'updateItem');
  const item = stored(c, itemId);
  const list = body.activities;
  if (!Array.isArray(list) || list.length === 0)
    throw new GraphError(400, 'BadRequest', 'activities must be a non-empty array of externalActivity.');
  if (list.length > 20)
    throw new GraphError(
      400,
      'BadRequest',
      `At most 20 activities per addActivities call; got ${list.length}. Split the batch.`,
      {
        code: 'TooManyActivities',
      },
    );
  let failed = 0;
  const value = list.map((a) => {
    const problems: string[] = [];
    if (!isObject(a)) problems.push('the activity must be an object');
    else {
      if (!ACTIVITY_TYPES.includes(a.type as string))
        problems.push(`type ${JSON.stringify(a.type)} is not one of ${ACTIVITY_TYPES.join(', ')}`);
      if (typeof a.startDateTime !== 'string' || !DATE_RE.test(a.startDateTime))
        problems.push('startDateTime must be an ISO 8601 date-time');
      const by = a.performedBy;
      if (!isObject(by) || by.type !== 'user' || typeof by.id !== 'string' || !GUID_RE.test(by.id))
        problems.push('performedBy must be {"type": "user", "id": "<Entra user object id>"}');
    }
    // An externalActivityResult repeats the activity's type and startDateTime and adds error; performedBy is a
    // relationship, not returned (https://learn.microsoft.com/graph/api/resources/externalconnectors-externalactivityresult,
    // and the response example of https://learn.microsoft.com/graph/api/externalconnectors-externalitem-addactivities).
    const base = isObject(a) ? { type: a.type ?? null, startDateTime: a.startDateTime ?? null } : {};
    if (problems.length) {
      failed++;
      return {
        '@odata.type': '#microsoft.graph.externalConnectors.externalActivityResult',
        ...base,
        error: { code: 'InvalidRequest', message: problems.join('; ') },
      };
    }
    item.activities.push(a);
    return { '@odata.type': '#microsoft.graph.externalConnectors.externalActivityResult', ...base, error: null };
  });
  if (failed < list.length) emu.changed();
  return {
    status: failed ? 207 : 200,
    body: {
      '@odata.context': `${emu.baseUrl}/v1.0/$metadata#Collection(microsoft.graph.externalConnectors.externalActivityResult)`,
      value,
    },
  };
}
