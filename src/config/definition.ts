/**
 * The connector definition (`connector.json`): the connection, its schema, the source and the mapping.
 * Validated at start-up; every problem is reported at once with its JSON path and the fix.
 */
import { readFile } from 'node:fs/promises';
import { ConfigError, problem, unknownKeyProblems, warning, type ConfigProblem } from './problems.js';
import { validateMappingDefinition, type MappingCheckContext, type MappingDefinition } from './mapping-definition.js';
import { validateSourceDefinition, type SourceDefinition } from '../sources/registry.js';
import {
  CONTENT_CATEGORIES,
  LABELS,
  PROPERTY_TYPES,
  type ContentCategory,
  type Label,
  type PropertyType,
  type Schema,
  type SchemaProperty,
} from './model.js';

export interface PropertyRule {
  property: string;
  operation: 'equals' | 'notEquals' | 'contains' | 'notContains' | 'lessThan' | 'greaterThan' | 'startsWith';
  values: string[];
  valuesJoinedBy: 'or' | 'and';
}

export interface DisplayTemplate {
  /** Alphanumeric, at most 16 characters. */
  id: string;
  /** An Adaptive Card (JSON object). */
  layout: Record<string, unknown>;
  /** Positive; lower numbers are evaluated first. */
  priority: number;
  rules?: PropertyRule[];
}

export interface ItemIdResolver {
  itemId: string;
  priority: number;
  urlMatchInfo: { baseUrls: string[]; urlPattern: string };
}

export interface ConnectionDefinition {
  id: string;
  name: string;
  description: string;
  contentCategory?: ContentCategory;
  searchSettings?: { searchResultTemplates?: DisplayTemplate[] };
  activitySettings?: { urlToItemResolvers?: ItemIdResolver[] };
  /** Other app ids allowed to manage the connection (Graph `configuration.authorizedAppIds`). */
  authorizedAppIds?: string[];
}

export interface SchemaDefinition {
  properties: SchemaProperty[];
}

export interface ConnectorDefinition {
  $schema?: string;
  connection: ConnectionDefinition;
  schema: SchemaDefinition;
  /** Validated by the source type's own validator (src/sources/registry.ts). */
  source: SourceDefinition;
  /** Validated by src/config/mapping-definition.ts. */
  mapping: MappingDefinition;
}

/** Hooks for the parts of the definition owned by other modules (source, mapping). */
export interface DefinitionValidators {
  source?: (value: unknown, path: string) => ConfigProblem[];
  mapping?: (value: unknown, schema: SchemaProperty[], path: string, context: MappingCheckContext) => ConfigProblem[];
}

export const RESERVED_CONNECTION_IDS = [
  'None',
  'Directory',
  'Exchange',
  'ExchangeArchive',
  'LinkedIn',
  'Mailbox',
  'OneDriveBusiness',
  'SharePoint',
  'Teams',
  'Yammer',
  'Connectors',
  'TaskFabric',
  'PowerBI',
  'Assistant',
  'TopicEngine',
  'MSFT_All_Connectors',
];

/** Characters Graph forbids in property names and aliases (besides control characters and whitespace). */
const FORBIDDEN_NAME_CHARS = new Set(':;,()[]{}%$+!*=&?@#\\~\'"<>`^'.split(''));

/** Label → property types it may be placed on. Labels not listed accept any type. */
const LABEL_TYPES: Partial<Record<Label, PropertyType[]>> = {
  title: ['string'],
  url: ['string'],
  iconUrl: ['string'],
  createdBy: ['string', 'principal'],
  lastModifiedBy: ['string', 'principal'],
  authors: ['stringCollection', 'principalCollection'],
  createdDateTime: ['dateTime'],
  lastModifiedDateTime: ['dateTime'],
  fileName: ['string'],
  fileExtension: ['string'],
  containerName: ['string'],
  containerUrl: ['string'],
  parentUrl: ['string'],
  closedDate: ['dateTime'],
  dueDate: ['dateTime'],
  tags: ['stringCollection'],
  assignedToPeople: ['stringCollection', 'principalCollection'],
  numberOfReactions: ['int64'],
};

const COPILOT_LABELS: Label[] = ['title', 'url', 'iconUrl'];
const SEARCHABLE_TYPES: PropertyType[] = ['string', 'stringCollection'];

export function checkPropertyName(name: string): string | undefined {
  if (name.length === 0) return 'is empty';
  if (name.length > 32) return `is ${name.length} characters long (at most 32)`;
  for (const ch of name) {
    if (/[\s\p{Cc}]/u.test(ch)) return 'contains whitespace or a control character';
    if (FORBIDDEN_NAME_CHARS.has(ch)) return `contains the forbidden character '${ch}'`;
  }
  return undefined;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function checkConnection(c: unknown, problems: ConfigProblem[]): void {
  const at = 'connection';
  if (!isObject(c)) {
    problems.push(
      problem(at, 'is missing or not an object', 'add a "connection" object with id, name and description'),
    );
    return;
  }
  problems.push(
    ...unknownKeyProblems(
      c,
      ['id', 'name', 'description', 'contentCategory', 'authorizedAppIds', 'searchSettings', 'activitySettings'],
      at,
    ),
  );
  const id = c.id;
  if (typeof id !== 'string') {
    problems.push(
      problem(`${at}.id`, 'is missing', 'set connection.id to 3-32 letters and digits, e.g. "contosotasks"'),
    );
  } else if (!/^[A-Za-z0-9]{3,32}$/.test(id)) {
    problems.push(
      problem(
        `${at}.id`,
        `'${id}' must be 3-32 letters and digits only (no hyphens, spaces or underscores)`,
        `use e.g. "${id.replace(/[^A-Za-z0-9]/g, '').slice(0, 32) || 'contosotasks'}"`,
      ),
    );
  } else if (/^microsoft/i.test(id)) {
    problems.push(
      problem(
        `${at}.id`,
        `'${id}' starts with "Microsoft", which Graph reserves`,
        'choose an id that does not start with Microsoft',
      ),
    );
  } else if (RESERVED_CONNECTION_IDS.some((r) => r.toLowerCase() === id.toLowerCase())) {
    problems.push(
      problem(
        `${at}.id`,
        `'${id}' is a reserved connection id`,
        `choose another id (reserved: ${RESERVED_CONNECTION_IDS.join(', ')})`,
      ),
    );
  }
  if (typeof c.name !== 'string' || c.name.trim() === '') {
    problems.push(
      problem(
        `${at}.name`,
        'is missing',
        'set connection.name to the display name shown in the Microsoft 365 admin center',
      ),
    );
  } else if (c.name.length > 128) {
    problems.push(
      problem(`${at}.name`, `is ${c.name.length} characters long`, 'shorten connection.name to at most 128 characters'),
    );
  }
  if (typeof c.description !== 'string' || c.description.trim() === '') {
    problems.push(
      problem(
        `${at}.description`,
        'is missing',
        'describe the content in one or two sentences: Copilot uses it to decide when to search this connection',
      ),
    );
  }
  if (c.contentCategory !== undefined && !(CONTENT_CATEGORIES as readonly unknown[]).includes(c.contentCategory)) {
    problems.push(
      problem(
        `${at}.contentCategory`,
        `${JSON.stringify(c.contentCategory)} is not a content category`,
        `use one of ${CONTENT_CATEGORIES.join(', ')}`,
      ),
    );
  }
  if (c.authorizedAppIds !== undefined) {
    if (
      !Array.isArray(c.authorizedAppIds) ||
      c.authorizedAppIds.some((a) => typeof a !== 'string' || !/^[0-9a-f-]{36}$/i.test(a))
    ) {
      problems.push(
        problem(
          `${at}.authorizedAppIds`,
          'must be an array of application (client) ids (GUIDs)',
          'list the app ids that may manage this connection, or remove the field',
        ),
      );
    }
  }
  if (c.searchSettings !== undefined) {
    if (!isObject(c.searchSettings)) {
      problems.push(
        problem(`${at}.searchSettings`, 'is not an object', 'use {"searchResultTemplates": [...]} or remove it'),
      );
    } else {
      const templates = c.searchSettings.searchResultTemplates;
      if (templates !== undefined) {
        const tp = `${at}.searchSettings.searchResultTemplates`;
        if (!Array.isArray(templates)) {
          problems.push(problem(tp, 'is not an array', 'list at most 2 display templates'));
        } else {
          if (templates.length > 2)
            problems.push(
              problem(tp, `has ${templates.length} templates`, 'keep at most 2 result templates per connection'),
            );
          const seen = new Set<string>();
          templates.forEach((t, i) => {
            const p = `${tp}[${i}]`;
            if (!isObject(t))
              return problems.push(problem(p, 'is not an object', 'use {id, layout, priority, rules?}'));
            if (typeof t.id !== 'string' || !/^[A-Za-z0-9]{1,16}$/.test(t.id))
              problems.push(
                problem(`${p}.id`, 'must be 1-16 letters and digits', 'give the template a short alphanumeric id'),
              );
            else if (seen.has(t.id))
              problems.push(problem(`${p}.id`, `'${t.id}' is used twice`, 'give each template its own id'));
            else seen.add(t.id);
            if (!isObject(t.layout))
              problems.push(
                problem(
                  `${p}.layout`,
                  'must be an Adaptive Card JSON object',
                  'paste the Adaptive Card JSON (from the designer) as an object',
                ),
              );
            if (typeof t.priority !== 'number' || !Number.isInteger(t.priority) || t.priority < 1)
              problems.push(
                problem(
                  `${p}.priority`,
                  'must be a positive whole number',
                  'set priority to 1 or more (lower is evaluated first)',
                ),
              );
            return undefined;
          });
        }
      }
    }
  }
  if (c.activitySettings !== undefined) {
    const ap = `${at}.activitySettings`;
    const resolvers = isObject(c.activitySettings) ? c.activitySettings.urlToItemResolvers : undefined;
    if (!isObject(c.activitySettings) || (resolvers !== undefined && !Array.isArray(resolvers))) {
      problems.push(problem(ap, 'must be {"urlToItemResolvers": [...]}', 'fix the shape or remove activitySettings'));
    } else {
      problems.push(...unknownKeyProblems(c.activitySettings, ['urlToItemResolvers'], ap));
    }
    if (Array.isArray(resolvers)) {
      resolvers.forEach((r, i) => {
        const p = `${ap}.urlToItemResolvers[${i}]`;
        if (!isObject(r))
          return problems.push(
            problem(p, 'is not an object', 'use {itemId, priority, urlMatchInfo: {baseUrls, urlPattern}}'),
          );
        problems.push(...unknownKeyProblems(r, ['itemId', 'priority', 'urlMatchInfo'], p));
        if (typeof r.itemId !== 'string' || !r.itemId)
          problems.push(
            problem(
              `${p}.itemId`,
              'is missing',
              'set itemId, e.g. "{ticketId}" referencing a named group of urlPattern',
            ),
          );
        if (typeof r.priority !== 'number' || !Number.isInteger(r.priority) || r.priority < 1)
          problems.push(problem(`${p}.priority`, 'must be a positive whole number', 'set priority to 1 or more'));
        const m = r.urlMatchInfo;
        if (!isObject(m) || !Array.isArray(m.baseUrls) || m.baseUrls.length === 0 || typeof m.urlPattern !== 'string') {
          problems.push(
            problem(
              `${p}.urlMatchInfo`,
              'must have baseUrls (non-empty array) and urlPattern',
              'e.g. {"baseUrls":["https://tasks.contoso.com"],"urlPattern":"/tickets/(?<ticketId>[A-Za-z0-9_-]+)(?:[/?#]|$)"}',
            ),
          );
        } else {
          problems.push(...unknownKeyProblems(m, ['baseUrls', 'urlPattern'], `${p}.urlMatchInfo`));
          m.baseUrls.forEach((b: unknown, j) => {
            if (typeof b !== 'string' || !/^https?:\/\/[^/?#\s]+/i.test(b))
              problems.push(
                problem(
                  `${p}.urlMatchInfo.baseUrls[${j}]`,
                  `must be an absolute http(s) URL (got ${JSON.stringify(b)})`,
                  'e.g. "https://tasks.contoso.com"',
                ),
              );
          });
          let groups: string[] = [];
          try {
            const re = new RegExp(m.urlPattern);
            groups = [...(re.source.matchAll(/\(\?<([A-Za-z][A-Za-z0-9_]*)>/g) ?? [])].map((g) => g[1]!);
          } catch (e) {
            problems.push(
              problem(
                `${p}.urlMatchInfo.urlPattern`,
                `is not a valid regular expression: ${(e as Error).message}`,
                'fix the ECMAScript regular expression',
              ),
            );
          }
          if (typeof r.itemId === 'string') {
            for (const ref of r.itemId.matchAll(/\{([^}]+)\}/g)) {
              if (groups.length && !groups.includes(ref[1]!))
                problems.push(
                  problem(
                    `${p}.itemId`,
                    `references {${ref[1]}} which urlPattern does not capture`,
                    `add a named group (?<${ref[1]}>...) to urlPattern`,
                  ),
                );
            }
          }
        }
        return undefined;
      });
    }
  }
}

/** The keys of a schema property (Graph's `property` resource, as connector.schema.json lists them). */
const PROPERTY_KEYS = [
  'name',
  'type',
  'isSearchable',
  'isQueryable',
  'isRetrievable',
  'isRefinable',
  'labels',
  'aliases',
  'description',
];

function checkSchema(s: unknown, problems: ConfigProblem[]): SchemaProperty[] {
  const at = 'schema.properties';
  if (!isObject(s) || !Array.isArray(s.properties)) {
    problems.push(
      problem(
        isObject(s) ? at : 'schema',
        'is missing',
        'add "schema": {"properties": [{"name": "title", "type": "string", ...}]}',
      ),
    );
    return [];
  }
  problems.push(...unknownKeyProblems(s, ['properties'], 'schema'));
  const props = s.properties as unknown[];
  if (props.length < 1 || props.length > 128) {
    problems.push(problem(at, `has ${props.length} properties`, 'declare between 1 and 128 properties'));
  }
  const names = new Map<string, number>();
  const aliases = new Map<string, string>();
  const labels = new Map<string, string>();
  const valid: SchemaProperty[] = [];
  props.forEach((raw, i) => {
    const p = `${at}[${i}]`;
    if (!isObject(raw)) {
      problems.push(problem(p, 'is not an object', 'use {"name": ..., "type": ...}'));
      return;
    }
    problems.push(...unknownKeyProblems(raw, PROPERTY_KEYS, p));
    const name = typeof raw.name === 'string' ? raw.name : undefined;
    const where = name ? `${p} (${name})` : p;
    if (name === undefined) {
      problems.push(problem(`${p}.name`, 'is missing', 'give the property a name (letters and digits, at most 32)'));
    } else {
      const bad = checkPropertyName(name);
      if (bad) problems.push(problem(`${where}.name`, `'${name}' ${bad}`, 'use at most 32 letters and digits'));
      const key = name.toLowerCase();
      if (names.has(key))
        problems.push(
          problem(
            `${where}.name`,
            `'${name}' is declared twice (also at ${at}[${names.get(key)}])`,
            'give every property a unique name',
          ),
        );
      else names.set(key, i);
      if (key === 'content')
        problems.push(
          problem(
            `${where}.name`,
            "'content' is implicit and cannot be declared",
            'remove it: item content is sent in the item payload, not as a property',
          ),
        );
    }
    const type = raw.type;
    if (!(PROPERTY_TYPES as readonly unknown[]).includes(type)) {
      problems.push(
        problem(`${where}.type`, `'${String(type)}' is not a property type`, `use one of ${PROPERTY_TYPES.join(', ')}`),
      );
    }
    const flags = ['isSearchable', 'isQueryable', 'isRetrievable', 'isRefinable'] as const;
    for (const f of flags) {
      if (raw[f] !== undefined && typeof raw[f] !== 'boolean')
        problems.push(
          problem(`${where}.${f}`, 'must be true or false', `write ${f}: true (a JSON boolean, not a string)`),
        );
    }
    const t = type as PropertyType;
    if (raw.isSearchable === true && !SEARCHABLE_TYPES.includes(t)) {
      problems.push(
        problem(
          `${where}.isSearchable`,
          `a ${String(type)} property cannot be searchable`,
          'set isSearchable to false (only string and stringCollection are searchable); use isQueryable instead',
        ),
      );
    }
    if (raw.isSearchable === true && raw.isRefinable === true) {
      problems.push(
        problem(
          `${where}`,
          'is both searchable and refinable, which Graph forbids',
          'choose one: refinable (filters/refiners) or searchable (full text)',
        ),
      );
    }
    if (raw.isRefinable === true && t === 'boolean') {
      problems.push(
        problem(
          `${where}.isRefinable`,
          'a boolean property cannot be refinable (RefinerShouldNotBeOfType)',
          'set isRefinable to false, or model the value as a string',
        ),
      );
    }
    if (raw.aliases !== undefined) {
      if (!Array.isArray(raw.aliases))
        problems.push(problem(`${where}.aliases`, 'is not an array', 'list aliases as strings'));
      else
        raw.aliases.forEach((a, j) => {
          if (typeof a !== 'string')
            return problems.push(problem(`${where}.aliases[${j}]`, 'is not a string', 'use a string'));
          const bad = checkPropertyName(a);
          if (bad)
            problems.push(problem(`${where}.aliases[${j}]`, `'${a}' ${bad}`, 'use at most 32 letters and digits'));
          const k = a.toLowerCase();
          if (aliases.has(k))
            problems.push(
              problem(
                `${where}.aliases[${j}]`,
                `'${a}' is already an alias of ${aliases.get(k)}`,
                'use each alias once',
              ),
            );
          else aliases.set(k, name ?? `#${i}`);
          return undefined;
        });
    }
    if (raw.description !== undefined && (typeof raw.description !== 'string' || raw.description.length > 200)) {
      problems.push(
        problem(`${where}.description`, 'must be a string of at most 200 characters', 'shorten the description'),
      );
    }
    if (raw.labels !== undefined) {
      if (!Array.isArray(raw.labels))
        problems.push(problem(`${where}.labels`, 'is not an array', 'list labels such as ["title"]'));
      else {
        if (raw.labels.length && raw.isRetrievable !== true) {
          problems.push(
            problem(
              `${where}.labels`,
              'a label is only allowed on a retrievable property',
              'set isRetrievable: true on this property or remove its labels',
            ),
          );
        }
        raw.labels.forEach((l, j) => {
          const lp = `${where}.labels[${j}]`;
          if (!(LABELS as readonly unknown[]).includes(l))
            return problems.push(problem(lp, `'${String(l)}' is not a label`, `use one of ${LABELS.join(', ')}`));
          const label = l as Label;
          const types = LABEL_TYPES[label];
          if (types && (PROPERTY_TYPES as readonly unknown[]).includes(type) && !types.includes(t)) {
            problems.push(
              problem(
                lp,
                `label '${label}' needs a ${types.join(' or ')} property, but this one is ${t}`,
                `change the type to ${types[0]} or put '${label}' on a ${types[0]} property`,
              ),
            );
          }
          if (labels.has(label))
            problems.push(
              problem(
                lp,
                `label '${label}' is already on property ${labels.get(label)}`,
                'put each label on exactly one property',
              ),
            );
          else labels.set(label, name ?? `#${i}`);
          return undefined;
        });
      }
    }
    valid.push(raw as unknown as SchemaProperty);
  });
  for (const [alias, owner] of aliases) {
    if (names.has(alias)) {
      problems.push(
        problem(
          `${at}[${names.get(alias)}]`,
          `'${alias}' is both a property name and an alias of ${owner}`,
          'rename the alias or the property: a name must mean one property',
        ),
      );
    }
  }
  for (const l of COPILOT_LABELS) {
    if (!labels.has(l) && props.length) {
      problems.push(
        warning(
          'schema.properties',
          `no property carries the '${l}' label; Copilot needs title, url and iconUrl to cite results`,
          `add "labels": ["${l}"] to a retrievable string property`,
        ),
      );
    }
  }
  return valid;
}

/** Validates a parsed definition; returns every problem (errors and warnings). */
export function validateConnectorDefinition(value: unknown, validators: DefinitionValidators = {}): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  if (!isObject(value)) {
    return [
      problem(
        '(root)',
        'is not a JSON object',
        'the definition must be an object with connection, schema, source and mapping',
      ),
    ];
  }
  problems.push(...unknownKeyProblems(value, ['$schema', 'connection', 'schema', 'source', 'mapping'], '(root)'));
  checkConnection(value.connection, problems);
  const props = checkSchema(value.schema, problems);
  if (validators.source) problems.push(...validators.source(value.source, 'source'));
  const connection = isObject(value.connection) ? value.connection : {};
  const urlToItemResolvers = isObject(connection.activitySettings)
    ? connection.activitySettings.urlToItemResolvers
    : undefined;
  if (validators.mapping) problems.push(...validators.mapping(value.mapping, props, 'mapping', { urlToItemResolvers }));
  return problems;
}

/** The Graph wire schema body for a definition. */
export function toGraphSchema(def: ConnectorDefinition): Schema {
  return { baseType: 'microsoft.graph.externalItem', properties: def.schema.properties };
}

/** Position (0-based offset) → 1-based line and column. */
function lineColumn(text: string, pos: number): { line: number; column: number } {
  const before = text.slice(0, pos);
  const line = before.split('\n').length;
  return { line, column: pos - before.lastIndexOf('\n') };
}

/** Parses JSON; a syntax error becomes a ConfigProblem with the line and column. */
export function parseJsonWithPosition(text: string, file: string): { value?: unknown; problem?: ConfigProblem } {
  try {
    return { value: JSON.parse(text) as unknown };
  } catch (e) {
    const msg = (e as Error).message;
    let line: number | undefined;
    let column: number | undefined;
    const lc = /line (\d+) column (\d+)/.exec(msg);
    const pos = /position (\d+)/.exec(msg);
    if (lc) {
      line = Number(lc[1]);
      column = Number(lc[2]);
    } else if (pos) {
      ({ line, column } = lineColumn(text, Number(pos[1])));
    } else if (/Unexpected end of JSON/.test(msg)) {
      ({ line, column } = lineColumn(text, text.length));
    }
    const where = line !== undefined ? `${file}:${line}:${column}` : file;
    return {
      problem: problem(
        where,
        `is not valid JSON: ${msg}`,
        `fix the JSON syntax at line ${line ?? '?'}, column ${column ?? '?'} (look for a missing comma, quote or bracket)`,
      ),
    };
  }
}

export interface LoadedDefinition {
  definition: ConnectorDefinition;
  /** Warnings (the load throws on errors). */
  warnings: ConfigProblem[];
}

/** Everything found in a definition file, without throwing (for `validate`). */
export async function checkConnectorDefinitionFile(
  path: string,
  validators: DefinitionValidators = defaultValidators,
): Promise<{ value?: unknown; problems: ConfigProblem[] }> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return {
      problems: [
        problem(
          path,
          code === 'ENOENT' ? 'does not exist' : `cannot be read (${code ?? (e as Error).message})`,
          'pass --config <file> or set CONNECTOR_CONFIG to the connector definition (see connector.json)',
        ),
      ],
    };
  }
  const parsed = parseJsonWithPosition(text, path);
  if (parsed.problem) return { problems: [parsed.problem] };
  const problems = validateConnectorDefinition(parsed.value, validators).map((p) => ({
    ...p,
    path: `${path}: ${p.path}`,
  }));
  return { value: parsed.value, problems };
}

/** Reads and validates the connector definition; throws ConfigError listing every error. */
export async function loadConnectorDefinition(
  path: string,
  validators: DefinitionValidators = defaultValidators,
): Promise<LoadedDefinition> {
  const { value, problems } = await checkConnectorDefinitionFile(path, validators);
  if (problems.some((p) => p.severity === 'error')) throw new ConfigError(problems, path);
  return { definition: value as ConnectorDefinition, warnings: problems };
}

/** Validators for `source` and `mapping` (owned by the source registry, src/sources/registry.ts, and mapping-definition.ts). */
export const defaultValidators: DefinitionValidators = {
  source: (value, path) => validateSourceDefinition(value, path),
  mapping: validateMappingDefinition,
};
