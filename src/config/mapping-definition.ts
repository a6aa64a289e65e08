/**
 * The `mapping` section of connector.json: how a source record becomes a Graph externalItem
 * (id, typed properties, content, url/iconUrl, ACL). Validated against the schema by
 * {@link validateMappingDefinition}; applied by src/mapping (createMapper). Documented in docs/mapping.md. The template
 * language (`{field}`, `{+path}`) is in ./mapping-template.ts.
 */
import { PROPERTY_TYPES, type AclType, type SchemaProperty } from './model.js';
import {
  encodeForUrlTemplate,
  isPlaceholder,
  parseFieldPath,
  parseTemplate,
  renderTemplateParts,
  templatePlaceholders,
  whyNotAbsoluteHttpUrl,
  type TemplatePart,
  type ValueRef,
} from './mapping-template.js';
import { checkUrlToItemResolvers } from './mapping-resolvers.js';
import type { ConfigProblem } from './problems.js';
import { problem, unknownKeyProblems, warning } from './problems.js';
import { isBlobContainerName, reservedContainerReason } from '../core/containers.js';

// The template language has its own module; these are re-exported for the code that still imports them here.
export { parseFieldPath, parseTemplate, type TemplatePart, type ValueRef } from './mapping-template.js';

export interface PropertyMappingObject {
  /** Dotted path into the record (`owner.email`, `tags.0`). Exactly one of field / template. */
  field?: string;
  /** A string template: `{a} - {b}`. A placeholder with no value makes the whole value missing. */
  template?: string;
  /** Collections only: split a string value on this delimiter (items are trimmed; empty ones dropped). */
  split?: string;
  /** Reject the record when the value is missing (default false: the property is left out). */
  required?: boolean;
}
export type PropertyMapping = string | PropertyMappingObject;

export const CONTENT_TYPES = ['text', 'html'] as const;
export type ContentType = (typeof CONTENT_TYPES)[number];
export const isContentType = (v: unknown): v is ContentType => (CONTENT_TYPES as readonly unknown[]).includes(v);

/**
 * The content type of each record: `"text"` or `"html"`, or taken from the record — a template (`"{bodyType}"`)
 * or `{ "field": "bodyType" }` / `{ "template": ... }` — whose value must be text or html (any case); `default`
 * applies when the record has no value.
 */
export type ContentTypeMapping =
  | string // "text", "html", or a template such as "{bodyType}"
  | { field: string; default?: ContentType }
  | { template: string; default?: ContentType };

export interface ContentMapping {
  type: ContentTypeMapping;
  /** Template with `{field}` placeholders; values are HTML-escaped when the record's type is html. */
  template?: string;
  /** Or a field whose value is the content as-is (HTML fields are NOT escaped: they are HTML already). */
  field?: string;
}

export interface AclCondition {
  field: string;
  equals?: string | number | boolean;
  notEquals?: string | number | boolean;
  in?: (string | number | boolean)[];
  /** true: the field has a non-empty value; false: it has none. */
  exists?: boolean;
}

export interface AclRule {
  access: 'grant' | 'deny';
  type: AclType;
  /** Template for one principal: `{team}`, `{ownerUpn}`, or a fixed object id. */
  value?: string;
  /** A field holding many principals (an array, or a string split on `split`, default `,`). */
  from?: string;
  split?: string;
  /** Apply this rule only when the condition holds. */
  when?: AclCondition;
}

export interface AclMapping {
  /** Required to use `everyone` / `everyoneExceptGuests` grants. Fail-closed by default. */
  allowEveryone?: boolean;
  /** What to do when a record's ACL has no resolvable grant (or an unresolvable deny). Must be explicit. */
  onUnresolved: 'reject' | 'denyAll';
  /** The value written for everyone / everyoneExceptGuests entries (Graph: the tenant id). Default: deps.tenantId, else "everyone". */
  tenantId?: string;
  /**
   * A directory file (`{"users":[{"id","userPrincipalName"}],"groups":[{"id","displayName"}]}`, relative to
   * connector.json) that resolves UPNs and group names to Entra object ids. Used when the caller passes no map.
   */
  directory?: string;
  rules: AclRule[];
}

/** Which attachment metadata goes into which schema property (values are schema property names). */
export interface AttachmentMetadataMapping {
  fileName?: string;
  fileExtension?: string;
  sizeBytes?: string;
  pageCount?: string;
  author?: string;
  modified?: string;
}

export const ATTACHMENT_METADATA_KEYS = [
  'fileName',
  'fileExtension',
  'sizeBytes',
  'pageCount',
  'author',
  'modified',
] as const satisfies readonly (keyof AttachmentMetadataMapping)[];

/**
 * Files a record points to (paths, https URLs, blobs), extracted at ingest time and joined into the item's
 * content. See docs/mapping.md "Attachments".
 */
export interface AttachmentsMapping {
  /** The record field holding a string, or an array of strings / `{path|url|blob, container?, name?}` objects. */
  field: string;
  /** `append`: the record's content, then each file's text; `replace`: the files' text only. */
  join: 'append' | 'replace';
  /** Put between the parts (default a blank line). */
  separator?: string;
  /** Folder that relative paths resolve against and that paths may not leave (default: connector.json's folder). */
  folder?: string;
  /**
   * The default blob container for `{ "blob": ... }` entries (in the connector's storage account). Blobs are read
   * from this container and from `containers` only.
   */
  container?: string;
  /** More blob containers a record may name (`{ "blob", "container" }`, `"blob:<container>/<name>"`). */
  containers?: string[];
  /** Allow plain `http` attachment URLs (default false: https only). Every redirect is held to the same rule. */
  allowHttp?: boolean;
  /**
   * When set, attachment URLs — and every redirect they take — must be on one of these hosts (or one named in
   * `privateHosts`): `files.contoso.com`, or `*.contoso.com` for its subdomains.
   */
  allowHosts?: string[];
  /**
   * Hosts that may resolve to a non-public address (loopback, private, link-local, unique local): `name` or
   * `name:port` (only that port). Every other host must resolve to public addresses only.
   */
  privateHosts?: string[];
  /** Run OCR on images and scanned PDF pages (default false: slow). */
  ocr?: boolean;
  /** Files larger than this are not extracted: the item is dead-lettered (default 50 MB). */
  maxFileBytes?: number;
  /** Time limit per file in milliseconds (default 60,000). */
  timeoutMs?: number;
  /** HTML files: `text` (default) or `keep` (sanitised HTML; the item content becomes html). */
  html?: 'text' | 'keep';
  metadata?: AttachmentMetadataMapping;
}

export const DEFAULT_ATTACHMENT_MAX_FILE_BYTES = 50 * 1024 * 1024;

export { isBlobContainerName, reservedContainerReason } from '../core/containers.js';
export const DEFAULT_ATTACHMENT_TIMEOUT_MS = 60_000;

/**
 * The activity types a mapping may send (Graph's `externalActivityType` without the evolvable-enum sentinel
 * `unknownFutureValue`): https://learn.microsoft.com/graph/api/resources/externalconnectors-externalactivity
 */
export const ACTIVITY_TYPES = ['created', 'modified', 'viewed', 'commented'] as const;
export type ActivityType = (typeof ACTIVITY_TYPES)[number];

/**
 * One kind of user activity on the item, read from the record (see docs/mapping.md "Activities"): who
 * (`user`: an Entra object id, or a UPN / email the directory resolves) did `type` when (`time`). With `from`, the
 * field is an array and each element is one activity (`user` and `time` are paths inside the element).
 */
export interface ActivityMapping {
  type: ActivityType;
  user: string;
  time: string;
  from?: string;
}

/** At most this many activity rules (each may read an array). */
export const MAX_ACTIVITY_RULES = 16;

export interface MappingDefinition {
  /** A module exporting `map(record, helpers)`; replaces the declarative mapping when set. */
  module?: string;
  /** The item id: a template (`"{ticketId}"`) or a field path. Encoded to Graph's alphanumeric rule. */
  id?: ValueRef;
  properties?: Record<string, PropertyMapping>;
  content?: ContentMapping;
  /** Template for the property labelled `url` in the schema. */
  url?: string;
  /** Template (or fixed URL) for the property labelled `iconUrl`. */
  iconUrl?: string;
  acl?: AclMapping;
  /** When the item would exceed the size cap: reject the record (default) or truncate the content. */
  contentOverflow?: 'reject' | 'truncate';
  /** Cap on the serialized item in bytes (default and maximum 4,000,000). */
  maxItemBytes?: number;
  /** Files the record points to, extracted into the item's content at ingest time. */
  attachments?: AttachmentsMapping;
  /** User activities on the item (created, modified, viewed, commented), sent with addActivities after its PUT. */
  activities?: ActivityMapping[];
}

export const MAX_ITEM_BYTES = 4_000_000;

export const ACL_TYPES: AclType[] = ['user', 'group', 'everyone', 'everyoneExceptGuests', 'externalGroup'];

// ------------------------------------------------------------------------------------------ validation

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const isNonEmptyString = (v: unknown): v is string => typeof v === 'string' && v.trim().length > 0;

/**
 * Check a template's syntax. `{+field}` (the raw form) is for URL templates only: anywhere else it is an error.
 * Returns the parsed template when it parses.
 */
function checkTemplate(
  value: unknown,
  path: string,
  out: ConfigProblem[],
  options: { url?: boolean } = {},
): TemplatePart[] | undefined {
  if (typeof value !== 'string') {
    out.push(problem(path, 'must be a template string', 'write e.g. "{ticketId}"'));
    return undefined;
  }
  let parts: TemplatePart[];
  try {
    parts = parseTemplate(value);
  } catch (e) {
    out.push(
      problem(
        path,
        `bad template: ${(e as Error).message}`,
        'placeholders are {field.path}; write {{ or }} for a literal brace',
      ),
    );
    return undefined;
  }
  if (!options.url) {
    for (const p of templatePlaceholders(parts).filter((x) => x.raw)) {
      const name = p.path.join('.');
      out.push(
        problem(
          path,
          `{+${name}} (the raw form, which keeps "/" and other URL characters) only applies to url and iconUrl`,
          `write {${name}}`,
        ),
      );
    }
  }
  return parts;
}

/**
 * A URL template must make an absolute http(s) URL whatever the values: it starts with the scheme and host as
 * literal text, or with `{+field}` (a field that holds a whole URL). `{field}` values are percent-encoded as URI
 * components, so they cannot supply the scheme or the host.
 */
function checkUrlTemplate(value: unknown, path: string, out: ConfigProblem[]): void {
  if (value === '') {
    out.push(problem(path, 'is empty', 'write the address, e.g. "https://tasks.contoso.com/tickets/{ticketId}"'));
    return;
  }
  const parts = checkTemplate(value, path, out, { url: true });
  if (!parts?.length) return;
  const first = parts[0]!;
  if (isPlaceholder(first)) {
    if (first.raw) return; // the field holds the URL; each record's value is checked when it is mapped
    const name = first.path.join('.');
    out.push(
      problem(
        path,
        `"${String(value)}" starts with {${name}}, whose value is percent-encoded as a URI component, so it cannot supply the scheme and host`,
        `write "{+${name}}" if the field holds a whole URL, or start with the address, e.g. "https://tasks.contoso.com/tickets/{${name}}"`,
      ),
    );
    return;
  }
  const sample = renderTemplateParts(parts, () => 'x', { strict: true, encode: encodeForUrlTemplate });
  const why = 'value' in sample ? whyNotAbsoluteHttpUrl(sample.value) : undefined;
  if (why)
    out.push(
      problem(
        path,
        `"${String(value)}" does not make an absolute http(s) URL: ${why}`,
        'start with the scheme and host, e.g. "https://tasks.contoso.com/tickets/{ticketId}"; values are percent-encoded for you',
      ),
    );
}

function checkField(value: unknown, path: string, out: ConfigProblem[]): void {
  if (!isNonEmptyString(value)) {
    out.push(problem(path, 'must be a field name or dotted path', 'e.g. "title" or "owner.email"'));
    return;
  }
  try {
    parseFieldPath(value);
  } catch (e) {
    out.push(problem(path, (e as Error).message, 'write a dotted path like "owner.email"'));
  }
}

function checkValueRef(value: unknown, path: string, out: ConfigProblem[]): void {
  if (typeof value === 'string') {
    if (value.includes('{') || value.includes('}')) checkTemplate(value, path, out);
    else checkField(value, path, out);
    return;
  }
  if (isObj(value)) {
    const hasF = value.field !== undefined;
    const hasT = value.template !== undefined;
    if (hasF === hasT) {
      out.push(
        problem(
          path,
          'needs exactly one of "field" or "template"',
          'write {"field": "title"} or {"template": "{a} {b}"}',
        ),
      );
      return;
    }
    if (hasF) checkField(value.field, `${path}.field`, out);
    if (hasT) checkTemplate(value.template, `${path}.template`, out);
    return;
  }
  out.push(problem(path, 'must be a field path, a template string, or {field}/{template}', 'e.g. "{ticketId}"'));
}

function checkLiteral(v: unknown): boolean {
  return typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean';
}

function checkAcl(value: unknown, path: string, out: ConfigProblem[]): void {
  if (!isObj(value)) {
    out.push(
      problem(
        path,
        'is missing: every item needs an ACL, and there is no safe default',
        'add "acl": {"onUnresolved": "reject", "rules": [{"access": "grant", "type": "externalGroup", "value": "{team}"}]}',
      ),
    );
    return;
  }
  if (value.onUnresolved !== 'reject' && value.onUnresolved !== 'denyAll') {
    out.push(
      problem(
        `${path}.onUnresolved`,
        `must be set explicitly to "reject" or "denyAll" (got ${JSON.stringify(value.onUnresolved)})`,
        'choose what happens to a record whose ACL resolves to no grant: "reject" (not ingested) or "denyAll" (ingested, visible to nobody)',
      ),
    );
  }
  if (value.allowEveryone !== undefined && typeof value.allowEveryone !== 'boolean') {
    out.push(
      problem(
        `${path}.allowEveryone`,
        'must be true or false',
        'write "allowEveryone": true only if items may be public',
      ),
    );
  }
  if (value.directory !== undefined && (!isNonEmptyString(value.directory) || !/\.json$/i.test(value.directory))) {
    out.push(
      problem(
        `${path}.directory`,
        'must be the path of a directory JSON file',
        'e.g. "samples/contoso-tasks/directory.json" (relative to connector.json)',
      ),
    );
  }
  for (const k of Object.keys(value)) {
    if (!['allowEveryone', 'onUnresolved', 'tenantId', 'directory', 'rules'].includes(k)) {
      out.push(
        warning(
          `${path}.${k}`,
          `unknown key "${k}" is ignored`,
          'use allowEveryone, onUnresolved, tenantId, directory or rules',
        ),
      );
    }
  }
  if (value.tenantId !== undefined && !isNonEmptyString(value.tenantId)) {
    out.push(problem(`${path}.tenantId`, 'must be a non-empty string', 'set your Entra tenant id'));
  }
  const rules = value.rules;
  if (!Array.isArray(rules) || rules.length === 0) {
    out.push(
      problem(
        `${path}.rules`,
        'must be a non-empty array of ACL rules',
        'add at least one {"access": "grant", ...} rule',
      ),
    );
    return;
  }
  let grants = 0;
  rules.forEach((r: unknown, i) => {
    const p = `${path}.rules[${i}]`;
    if (!isObj(r)) {
      out.push(problem(p, 'must be an object', 'write {"access": "grant", "type": "user", "from": "owners"}'));
      return;
    }
    out.push(...unknownKeyProblems(r, ['access', 'type', 'value', 'from', 'split', 'when'], p));
    if (r.access !== 'grant' && r.access !== 'deny') {
      out.push(problem(`${p}.access`, `must be "grant" or "deny" (got ${JSON.stringify(r.access)})`, 'set access'));
    } else if (r.access === 'grant') grants++;
    if (!ACL_TYPES.includes(r.type as AclType)) {
      out.push(
        problem(`${p}.type`, `unknown ACL type ${JSON.stringify(r.type)}`, `use one of ${ACL_TYPES.join(', ')}`),
      );
      return;
    }
    const everyone = r.type === 'everyone' || r.type === 'everyoneExceptGuests';
    if (everyone) {
      if (r.access === 'grant' && value.allowEveryone !== true) {
        out.push(
          problem(
            `${p}.type`,
            `a "${String(r.type)}" grant makes items visible to the whole tenant, but ${path}.allowEveryone is not true`,
            `set ${path}.allowEveryone to true if that is intended, or grant users/groups instead`,
          ),
        );
      }
      if (r.value !== undefined || r.from !== undefined) {
        out.push(warning(p, `"${String(r.type)}" takes no value/from; they are ignored`, 'remove value/from'));
      }
    } else {
      const n = (r.value !== undefined ? 1 : 0) + (r.from !== undefined ? 1 : 0);
      if (n !== 1) {
        out.push(
          problem(
            p,
            'needs exactly one of "value" (a template) or "from" (a field with many principals)',
            'e.g. "value": "{team}" or "from": "allowedUsers"',
          ),
        );
      }
      if (r.value !== undefined) checkTemplate(r.value, `${p}.value`, out);
      if (r.from !== undefined) checkField(r.from, `${p}.from`, out);
    }
    if (r.split !== undefined && (typeof r.split !== 'string' || r.split.length === 0)) {
      out.push(problem(`${p}.split`, 'must be a non-empty delimiter', 'e.g. ";"'));
    }
    if (r.when !== undefined) {
      const w = r.when;
      if (!isObj(w)) {
        out.push(problem(`${p}.when`, 'must be an object', 'write {"field": "visibility", "equals": "team"}'));
      } else {
        out.push(...unknownKeyProblems(w, ['field', 'equals', 'notEquals', 'in', 'exists'], `${p}.when`));
        checkField(w.field, `${p}.when.field`, out);
        const ops = ['equals', 'notEquals', 'in', 'exists'].filter((k) => w[k] !== undefined);
        if (ops.length !== 1) {
          out.push(problem(`${p}.when`, 'needs exactly one of equals, notEquals, in, exists', 'e.g. "equals": "team"'));
        }
        if (w.equals !== undefined && !checkLiteral(w.equals))
          out.push(problem(`${p}.when.equals`, 'must be a string, number or boolean', 'fix the value'));
        if (w.notEquals !== undefined && !checkLiteral(w.notEquals))
          out.push(problem(`${p}.when.notEquals`, 'must be a string, number or boolean', 'fix the value'));
        if (w.in !== undefined && (!Array.isArray(w.in) || !w.in.every(checkLiteral))) {
          out.push(
            problem(`${p}.when.in`, 'must be an array of strings, numbers or booleans', 'e.g. ["team", "internal"]'),
          );
        }
        if (w.exists !== undefined && typeof w.exists !== 'boolean')
          out.push(problem(`${p}.when.exists`, 'must be true or false', 'fix the value'));
      }
    }
  });
  if (grants === 0) {
    out.push(
      problem(
        `${path}.rules`,
        'has no grant rule, so no item could ever be visible to anyone',
        'add at least one {"access": "grant", ...} rule',
      ),
    );
  }
}

/** Every property type the declarative mapping can coerce: all of Graph's, except principals (use a module). */
const SUPPORTED_TYPES = new Set<string>(PROPERTY_TYPES.filter((t) => t !== 'principal' && t !== 'principalCollection'));

/**
 * Validate the `mapping` section against the schema properties. Returns every problem with its JSON path
 * (e.g. `mapping.properties.priority`) and the fix; an empty list (or warnings only) means createMapper() can use it.
 */
export function validateMappingDefinition(
  value: unknown,
  schema: SchemaProperty[],
  path = 'mapping',
  context: MappingCheckContext = {},
): ConfigProblem[] {
  const out = checkMapping(value, schema, path);
  if (context.urlToItemResolvers !== undefined)
    out.push(...checkUrlToItemResolvers(context.urlToItemResolvers, value, schema));
  return out;
}

/** What the mapping checks need from the rest of the definition. */
export interface MappingCheckContext {
  /** `connection.activitySettings.urlToItemResolvers`: each must build the ids the mapping gives its URLs. */
  urlToItemResolvers?: unknown;
}

function checkMapping(value: unknown, schema: SchemaProperty[], path: string): ConfigProblem[] {
  const out: ConfigProblem[] = [];
  if (!isObj(value)) {
    out.push(
      problem(
        path,
        'is missing or not an object',
        'add a "mapping" object with id, properties and acl (see docs/mapping.md)',
      ),
    );
    return out;
  }
  const known = new Set([
    'module',
    'id',
    'properties',
    'content',
    'url',
    'iconUrl',
    'acl',
    'contentOverflow',
    'maxItemBytes',
    'attachments',
    'activities',
  ]);
  for (const k of Object.keys(value)) {
    if (!known.has(k))
      out.push(
        warning(
          `${path}.${k}`,
          `unknown key "${k}" is ignored`,
          `remove it or fix the name (known: ${[...known].join(', ')})`,
        ),
      );
  }
  if (
    value.contentOverflow !== undefined &&
    value.contentOverflow !== 'reject' &&
    value.contentOverflow !== 'truncate'
  ) {
    out.push(
      problem(
        `${path}.contentOverflow`,
        `must be "reject" or "truncate" (got ${JSON.stringify(value.contentOverflow)})`,
        'use "reject" (default) or "truncate"',
      ),
    );
  }
  if (
    value.maxItemBytes !== undefined &&
    (typeof value.maxItemBytes !== 'number' ||
      !Number.isInteger(value.maxItemBytes) ||
      value.maxItemBytes < 1024 ||
      value.maxItemBytes > MAX_ITEM_BYTES)
  ) {
    out.push(
      problem(
        `${path}.maxItemBytes`,
        `must be an integer between 1024 and ${MAX_ITEM_BYTES} (Graph's 4 MB item cap)`,
        `remove it to use ${MAX_ITEM_BYTES}`,
      ),
    );
  }

  // Activities are read from the record whichever mapper builds the item (declarative or a module).
  if (value.activities !== undefined) {
    checkActivities(value.activities, `${path}.activities`, out);
    if (!(isObj(value.acl) && value.acl.directory !== undefined))
      out.push(
        warning(
          `${path}.activities`,
          `without ${path}.acl.directory only Entra object ids resolve: an activity whose user is a UPN or email is skipped`,
          `set ${path}.acl.directory to a directory file that lists the users`,
        ),
      );
  }

  if (value.module !== undefined) {
    if (!isNonEmptyString(value.module) || !/\.(m?js)$/.test(value.module)) {
      out.push(
        problem(
          `${path}.module`,
          'must be a path to a .js or .mjs module',
          'e.g. "./my-mapper.js" (relative to connector.json), exporting map(record, helpers)',
        ),
      );
    }
    for (const k of ['id', 'properties', 'content', 'url', 'iconUrl', 'attachments']) {
      if (value[k] !== undefined)
        out.push(
          warning(
            `${path}.${k}`,
            `ignored because ${path}.module replaces the declarative mapping`,
            `remove "${k}" or "module"`,
          ),
        );
    }
    // The ACL policy flags still apply to what the module returns.
    if (isObj(value.acl)) {
      if (value.acl.onUnresolved !== 'reject' && value.acl.onUnresolved !== 'denyAll') {
        out.push(
          problem(
            `${path}.acl.onUnresolved`,
            'must be set to "reject" or "denyAll"',
            'choose what happens when the module returns no grant',
          ),
        );
      }
    } else {
      out.push(
        problem(
          `${path}.acl`,
          'is required with a module too: it sets allowEveryone and onUnresolved',
          'add "acl": {"onUnresolved": "reject", "rules": []}',
        ),
      );
    }
    return out;
  }

  const byName = new Map(schema.map((p) => [p.name, p]));
  const labelled = (label: string) => schema.find((p) => p.labels?.includes(label as never));

  if (value.id === undefined) {
    out.push(problem(`${path}.id`, 'is missing: every item needs an id', 'add e.g. "id": "{ticketId}"'));
  } else {
    checkValueRef(value.id, `${path}.id`, out);
  }

  const mapped = new Set<string>();
  if (value.properties !== undefined && !isObj(value.properties)) {
    out.push(
      problem(
        `${path}.properties`,
        'must be an object of schema property → field/template',
        'write e.g. {"title": "title"}',
      ),
    );
  } else if (isObj(value.properties)) {
    for (const [name, m] of Object.entries(value.properties)) {
      const p = `${path}.properties.${name}`;
      const sp = byName.get(name);
      if (!sp) {
        out.push(
          problem(
            p,
            `there is no schema property named "${name}"`,
            `add "${name}" to schema.properties or remove this mapping (schema has: ${[...byName.keys()].join(', ')})`,
          ),
        );
        continue;
      }
      mapped.add(name);
      if (!SUPPORTED_TYPES.has(sp.type)) {
        out.push(
          problem(
            p,
            `schema type "${sp.type}" is not supported by the declarative mapping`,
            'use a mapping.module for principal properties',
          ),
        );
        continue;
      }
      if (typeof m === 'string') {
        checkValueRef(m, p, out);
        continue;
      }
      if (!isObj(m)) {
        out.push(
          problem(
            p,
            'must be a field path, a template, or {field|template, split, required}',
            'e.g. "title" or {"field": "tags", "split": ";"}',
          ),
        );
        continue;
      }
      const hasF = m.field !== undefined;
      const hasT = m.template !== undefined;
      if (hasF === hasT)
        out.push(problem(p, 'needs exactly one of "field" or "template"', 'e.g. {"field": "priority"}'));
      if (hasF) checkField(m.field, `${p}.field`, out);
      if (hasT) checkTemplate(m.template, `${p}.template`, out);
      if (m.split !== undefined) {
        if (typeof m.split !== 'string' || m.split.length === 0)
          out.push(problem(`${p}.split`, 'must be a non-empty delimiter', 'e.g. ";"'));
        else if (!sp.type.endsWith('Collection'))
          out.push(
            problem(
              `${p}.split`,
              `"split" only applies to collection properties; "${name}" is ${sp.type}`,
              'remove split',
            ),
          );
      }
      if (m.required !== undefined && typeof m.required !== 'boolean')
        out.push(problem(`${p}.required`, 'must be true or false', 'fix the value'));
      out.push(...unknownKeyProblems(m, ['field', 'template', 'split', 'required'], p));
    }
  }

  for (const label of ['url', 'iconUrl'] as const) {
    if (value[label] === undefined) continue;
    checkUrlTemplate(value[label], `${path}.${label}`, out);
    const sp = labelled(label);
    if (!sp) {
      out.push(
        problem(
          `${path}.${label}`,
          `no schema property carries the label "${label}"`,
          `add "labels": ["${label}"] to a retrievable string property, or remove ${path}.${label}`,
        ),
      );
    } else if (mapped.has(sp.name)) {
      out.push(
        problem(
          `${path}.${label}`,
          `"${sp.name}" (labelled ${label}) is mapped twice: here and in ${path}.properties.${sp.name}`,
          'keep one of them',
        ),
      );
    } else if (sp.type !== 'string') {
      out.push(
        problem(
          `${path}.${label}`,
          `the property labelled ${label} ("${sp.name}") must be a string, not ${sp.type}`,
          'fix the schema',
        ),
      );
    } else mapped.add(sp.name);
  }

  if (value.attachments !== undefined) checkAttachments(value.attachments, `${path}.attachments`, schema, mapped, out);

  for (const sp of schema) {
    if (!mapped.has(sp.name)) {
      out.push(
        warning(
          `${path}.properties.${sp.name}`,
          `schema property "${sp.name}" is not mapped, so it is never set`,
          `map it, e.g. "${sp.name}": "<field>"`,
        ),
      );
    }
  }
  if (mapped.size === 0) {
    out.push(
      problem(
        `${path}.properties`,
        'maps no property; Graph requires at least one property per item',
        'map at least the title property',
      ),
    );
  }

  if (value.content !== undefined) {
    const c = value.content;
    const p = `${path}.content`;
    if (!isObj(c)) {
      out.push(problem(p, 'must be an object', 'write {"type": "text", "template": "{description}"}'));
    } else {
      out.push(...unknownKeyProblems(c, ['type', 'template', 'field'], p));
      checkContentType(c.type, `${p}.type`, out);
      const hasF = c.field !== undefined;
      const hasT = c.template !== undefined;
      if (hasF === hasT)
        out.push(
          problem(p, 'needs exactly one of "template" or "field"', 'e.g. "template": "{title}\\n{description}"'),
        );
      if (hasF) checkField(c.field, `${p}.field`, out);
      if (hasT) checkTemplate(c.template, `${p}.template`, out);
    }
  }

  checkAcl(value.acl, `${path}.acl`, out);
  return out;
}

/** mapping.activities: an array of {type, user, time, from?}; every problem names its index and key. */
function checkActivities(value: unknown, path: string, out: ConfigProblem[]): void {
  const example = '[{"type": "created", "user": "createdBy", "time": "createdDate"}]';
  if (!Array.isArray(value) || value.length === 0) {
    out.push(problem(path, 'must be a non-empty array of activity rules', `e.g. ${example}`));
    return;
  }
  if (value.length > MAX_ACTIVITY_RULES)
    out.push(
      problem(path, `has ${value.length} rules; at most ${MAX_ACTIVITY_RULES} are allowed`, 'merge or remove rules'),
    );
  value.forEach((r: unknown, i) => {
    const p = `${path}[${i}]`;
    if (!isObj(r)) {
      out.push(problem(p, 'must be an object', `e.g. ${example.slice(1, -1)}`));
      return;
    }
    for (const k of Object.keys(r))
      if (!['type', 'user', 'time', 'from'].includes(k))
        out.push(problem(`${p}.${k}`, `unknown key "${k}"`, 'use type, user, time and (for an array field) from'));
    if (!(ACTIVITY_TYPES as readonly unknown[]).includes(r.type))
      out.push(
        problem(
          `${p}.type`,
          `must be one of ${ACTIVITY_TYPES.join(', ')} (got ${JSON.stringify(r.type)})`,
          'e.g. "type": "commented"',
        ),
      );
    const inside = r.from !== undefined ? ' (a path inside each element of "from")' : '';
    if (r.user === undefined)
      out.push(
        problem(
          `${p}.user`,
          'is missing: every activity needs the user who performed it',
          `name the field${inside} holding an Entra object id or a UPN, e.g. "user": "createdBy"`,
        ),
      );
    else checkField(r.user, `${p}.user`, out);
    if (r.time === undefined)
      out.push(
        problem(
          `${p}.time`,
          'is missing: every activity needs the time it happened',
          `name the field${inside} holding an ISO 8601 date-time, e.g. "time": "createdDate"`,
        ),
      );
    else checkField(r.time, `${p}.time`, out);
    if (r.from !== undefined) checkField(r.from, `${p}.from`, out);
  });
}

/** `"text"`, `"html"`, a template (`"{bodyType}"`), or `{field|template, default?}`. */
function checkContentType(t: unknown, path: string, out: ConfigProblem[]): void {
  const fix =
    'write "text" or "html", or take it from the record: "{bodyType}" or {"field": "bodyType", "default": "text"}';
  if (typeof t === 'string') {
    if (isContentType(t)) return;
    if (t.includes('{')) checkTemplate(t, path, out);
    else
      out.push(
        problem(path, `must be "text" or "html", or a template or field of the record (got ${JSON.stringify(t)})`, fix),
      );
    return;
  }
  if (!isObj(t)) {
    out.push(
      problem(path, `must be "text" or "html", or a template or field of the record (got ${JSON.stringify(t)})`, fix),
    );
    return;
  }
  const hasF = t.field !== undefined;
  const hasT = t.template !== undefined;
  if (hasF === hasT) out.push(problem(path, 'needs exactly one of "field" or "template"', fix));
  if (hasF) checkField(t.field, `${path}.field`, out);
  if (hasT) checkTemplate(t.template, `${path}.template`, out);
  if (t.default !== undefined && !isContentType(t.default))
    out.push(
      problem(
        `${path}.default`,
        `must be "text" or "html" (got ${JSON.stringify(t.default)})`,
        'write "text" or "html"',
      ),
    );
  out.push(...unknownKeyProblems(t, ['field', 'template', 'default'], path));
}

const METADATA_TYPES: Record<(typeof ATTACHMENT_METADATA_KEYS)[number], string[]> = {
  fileName: ['string', 'stringCollection'],
  fileExtension: ['string', 'stringCollection'],
  author: ['string', 'stringCollection'],
  sizeBytes: ['int64', 'double', 'int64Collection', 'doubleCollection'],
  pageCount: ['int64', 'double', 'int64Collection', 'doubleCollection'],
  modified: ['dateTime', 'dateTimeCollection'],
};

function positiveInt(v: unknown, max: number): boolean {
  return typeof v === 'number' && Number.isInteger(v) && v > 0 && v <= max;
}

/**
 * What is wrong with a host entry of mapping.attachments.allowHosts (`name`, `*.suffix`) or privateHosts
 * (`name`, `name:port`, an IP address, `[v6]:port`), or undefined.
 */
function hostPatternProblem(v: unknown, wildcard: boolean): string | undefined {
  if (typeof v !== 'string' || v === '') return 'must be a host name';
  if (/[/?#@\s]/.test(v)) return `"${v.slice(0, 80)}" must be a bare host name, not a URL`;
  const body = wildcard && v.startsWith('*.') ? v.slice(2) : v;
  let u: URL;
  try {
    u = new URL(`http://${body}`);
  } catch {
    return `"${v.slice(0, 80)}" is not a host name`;
  }
  if (wildcard && u.port !== '') return `"${v}" must be a host name without a port (allowHosts names hosts)`;
  if (u.hostname === '' || u.pathname !== '/') return `"${v.slice(0, 80)}" is not a host name`;
  return undefined;
}

function checkAttachments(
  a: unknown,
  path: string,
  schema: SchemaProperty[],
  mapped: Set<string>,
  out: ConfigProblem[],
): void {
  if (!isObj(a)) {
    out.push(problem(path, 'must be an object', 'write {"field": "attachments", "join": "append"}'));
    return;
  }
  const known = [
    'field',
    'join',
    'separator',
    'folder',
    'container',
    'containers',
    'allowHttp',
    'allowHosts',
    'privateHosts',
    'ocr',
    'maxFileBytes',
    'timeoutMs',
    'html',
    'metadata',
  ];
  for (const k of Object.keys(a)) {
    if (k === 'blobContainer')
      out.push(problem(`${path}.${k}`, 'unknown key "blobContainer"', 'rename it to "container"'));
    else if (!known.includes(k))
      out.push(problem(`${path}.${k}`, `unknown key "${k}"`, `remove it or fix its name (known: ${known.join(', ')})`));
  }
  const containerNames: [string, unknown][] = [[`${path}.container`, a.container]];
  if (a.containers !== undefined) {
    if (!Array.isArray(a.containers) || a.containers.length === 0)
      out.push(problem(`${path}.containers`, 'must be a non-empty array of container names', 'e.g. ["ticket-files"]'));
    else a.containers.forEach((c, i) => containerNames.push([`${path}.containers[${i}]`, c]));
  }
  for (const [p, c] of containerNames) {
    if (c === undefined) continue;
    if (!isBlobContainerName(c))
      out.push(
        problem(
          p,
          `${JSON.stringify(c)} is not a valid blob container name`,
          'use 3-63 lowercase letters, digits and single hyphens, starting and ending with a letter or digit (e.g. "ticket-files")',
        ),
      );
    else if (reservedContainerReason(c))
      out.push(
        problem(p, reservedContainerReason(c)!, 'keep attachments in a container of their own, e.g. "ticket-files"'),
      );
  }
  if (a.allowHttp !== undefined && typeof a.allowHttp !== 'boolean')
    out.push(problem(`${path}.allowHttp`, 'must be true or false', 'remove it to allow https only'));
  for (const key of ['allowHosts', 'privateHosts'] as const) {
    const v = a[key];
    if (v === undefined) continue;
    const example =
      key === 'allowHosts' ? '["files.contoso.com", "*.blob.core.windows.net"]' : '["files.intranet.contoso.com:8443"]';
    if (!Array.isArray(v) || v.length === 0) {
      out.push(problem(`${path}.${key}`, 'must be a non-empty array of host names', `e.g. ${example}`));
      continue;
    }
    v.forEach((h, i) => {
      const why = hostPatternProblem(h, key === 'allowHosts');
      if (why) out.push(problem(`${path}.${key}[${i}]`, why, `e.g. ${example}`));
    });
  }
  checkField(a.field, `${path}.field`, out);
  if (a.join !== 'append' && a.join !== 'replace')
    out.push(
      problem(
        `${path}.join`,
        `must be "append" or "replace" (got ${JSON.stringify(a.join)})`,
        'choose "append" (record content, then the files) or "replace" (the files only)',
      ),
    );
  if (a.separator !== undefined && typeof a.separator !== 'string')
    out.push(problem(`${path}.separator`, 'must be a string', 'e.g. "\\n\\n"'));
  if (a.folder !== undefined && !isNonEmptyString(a.folder))
    out.push(
      problem(
        `${path}.folder`,
        'must be a folder path',
        'e.g. "samples/contoso-tasks/attachments" (relative to connector.json)',
      ),
    );
  if (a.ocr !== undefined && typeof a.ocr !== 'boolean')
    out.push(problem(`${path}.ocr`, 'must be true or false', 'set "ocr": true to read images and scanned pages'));
  if (a.maxFileBytes !== undefined && !positiveInt(a.maxFileBytes, 1 << 30))
    out.push(
      problem(
        `${path}.maxFileBytes`,
        'must be a positive integer of at most 1 GiB',
        `remove it to use ${DEFAULT_ATTACHMENT_MAX_FILE_BYTES}`,
      ),
    );
  if (a.timeoutMs !== undefined && !positiveInt(a.timeoutMs, 600_000))
    out.push(
      problem(
        `${path}.timeoutMs`,
        'must be a positive integer of at most 600000 (10 minutes)',
        `remove it to use ${DEFAULT_ATTACHMENT_TIMEOUT_MS}`,
      ),
    );
  if (a.html !== undefined && a.html !== 'text' && a.html !== 'keep')
    out.push(problem(`${path}.html`, `must be "text" or "keep" (got ${JSON.stringify(a.html)})`, 'use "text"'));
  if (a.metadata === undefined) return;
  if (!isObj(a.metadata)) {
    out.push(problem(`${path}.metadata`, 'must be an object', 'write {"fileName": "<schema property>"}'));
    return;
  }
  const byName = new Map(schema.map((p) => [p.name, p]));
  for (const [k, v] of Object.entries(a.metadata)) {
    const p = `${path}.metadata.${k}`;
    if (!(ATTACHMENT_METADATA_KEYS as readonly string[]).includes(k)) {
      out.push(problem(p, `unknown metadata "${k}"`, `use ${ATTACHMENT_METADATA_KEYS.join(', ')}`));
      continue;
    }
    if (!isNonEmptyString(v)) {
      out.push(problem(p, 'must name a schema property', `e.g. "${k}": "${k}"`));
      continue;
    }
    const sp = byName.get(v);
    if (!sp) {
      out.push(
        problem(
          p,
          `there is no schema property named "${v}"`,
          `add "${v}" to schema.properties (type ${METADATA_TYPES[k as keyof typeof METADATA_TYPES][0]})`,
        ),
      );
      continue;
    }
    if (mapped.has(v)) {
      out.push(problem(p, `"${v}" is also mapped in mapping.properties (or url/iconUrl)`, 'keep one of them'));
      continue;
    }
    mapped.add(v);
    const types = METADATA_TYPES[k as keyof typeof METADATA_TYPES];
    if (!types.includes(sp.type))
      out.push(problem(p, `"${v}" is ${sp.type}, but ${k} needs ${types.join(' or ')}`, `change the type of "${v}"`));
    if ((k === 'fileName' || k === 'fileExtension') && !sp.labels?.includes(k))
      out.push(
        warning(p, `"${v}" does not carry the "${k}" label`, `add "labels": ["${k}"] to "${v}" so Copilot knows it`),
      );
  }
}
