/** Schema validation (reference §4.1–§4.4): the synchronous 400 matrix, update rules and the read shape. */
import { GraphError, isObject } from './http.js';
import type { Schema, SchemaProperty } from './store.js';

export const PROPERTY_TYPES = [
  'string',
  'int64',
  'double',
  'dateTime',
  'boolean',
  'stringCollection',
  'int64Collection',
  'doubleCollection',
  'dateTimeCollection',
  'unknownFutureValue',
  'principal',
  'principalCollection',
];
/** Members after unknownFutureValue: evolvable, hidden on reads without `Prefer: include-unknown-enum-members`. */
const EVOLVABLE_TYPES = new Set(['principal', 'principalCollection']);

const LABELS_BEFORE = [
  'title',
  'url',
  'createdBy',
  'lastModifiedBy',
  'authors',
  'createdDateTime',
  'lastModifiedDateTime',
  'fileName',
  'fileExtension',
  'unknownFutureValue',
];
const LABELS_AFTER = [
  'containerName',
  'containerUrl',
  'iconUrl',
  'assignedToPeople',
  'closedBy',
  'closedDate',
  'priority',
  'sprintName',
  'tags',
  'severity',
  'state',
  'dueDate',
  'itemParentId',
  'itemPath',
  'itemType',
  'numberOfReactions',
  'parentUrl',
  'priorityNormalized',
  'reportedBy',
  'secondaryId',
  'personEmails',
  'personAddresses',
  'personAnniversaries',
  'personName',
  'personNote',
  'personPhones',
  'personCurrentPosition',
  'personWebAccounts',
  'personWebSite',
  'personSkills',
  'personProjects',
  'personAccount',
  'personAwards',
  'personCertifications',
  'personAssistants',
  'personColleagues',
  'personManager',
  'personAlternateContacts',
  'personEmergencyContacts',
  'personEducationalActivities',
  'personInterests',
  'personLanguages',
  'personPublications',
  'personPatents',
  'personWorkPositions',
];
const ALL_LABELS = [...LABELS_BEFORE, ...LABELS_AFTER];
const EVOLVABLE_LABELS = new Set(LABELS_AFTER);

/** Data type each well-known semantic label requires (reference §4.2). */
const LABEL_TYPES: Record<string, string[]> = {
  title: ['string'],
  url: ['string'],
  createdBy: ['string'],
  lastModifiedBy: ['string'],
  authors: ['stringCollection'],
  createdDateTime: ['dateTime'],
  lastModifiedDateTime: ['dateTime'],
  fileName: ['string'],
  fileExtension: ['string'],
  iconUrl: ['string'],
  containerName: ['string'],
  containerUrl: ['string'],
};

const REFINABLE_TYPES = new Set([
  'string',
  'int64',
  'double',
  'dateTime',
  'stringCollection',
  'int64Collection',
  'doubleCollection',
  'dateTimeCollection',
]);
const SEARCHABLE_TYPES = new Set(['string', 'stringCollection']);
// eslint-disable-next-line no-control-regex
const FORBIDDEN_NAME = /[\s\u0000-\u001f\u007f:;,()[\]{}%$+!*=&?@#\\~'"<>`^]/;

const EDM_NAMES: Record<string, string> = {
  string: 'String',
  int64: 'Int64',
  double: 'Double',
  dateTime: 'DateTime',
  boolean: 'Boolean',
  stringCollection: 'StringCollection',
  int64Collection: 'Int64Collection',
  doubleCollection: 'DoubleCollection',
  dateTimeCollection: 'DateTimeCollection',
  principal: 'Principal',
  principalCollection: 'PrincipalCollection',
};

function bad(message: string, innerCode?: string, innerMessage?: string): GraphError {
  return new GraphError(
    400,
    'InvalidRequest',
    'The request is malformed or incorrect.',
    innerCode ? { code: innerCode, message: innerMessage ?? message } : { code: 'InvalidRequest', message },
  );
}

function deserialization(value: string): GraphError {
  return bad(`Requested value '${value}' was not found.`, 'DeserializationError');
}

function enumValue(list: string[], raw: unknown, field: string): string {
  if (typeof raw !== 'string') throw bad(`'${field}' must be a string enum value.`, 'DeserializationError');
  const found = list.find((x) => x.toLowerCase() === raw.toLowerCase());
  if (!found || found === 'unknownFutureValue') throw deserialization(raw);
  return found;
}

function flag(raw: unknown, field: string, name: string): boolean {
  if (raw === undefined || raw === null) return false;
  if (typeof raw === 'boolean') return raw;
  if (raw === 'true' || raw === 'false') return raw === 'true';
  throw bad(`Property '${name}': '${field}' must be a boolean.`, 'DeserializationError');
}

function checkName(value: unknown, what: string): string {
  if (typeof value !== 'string' || value.length === 0) throw bad(`${what} is required and must be a non-empty string.`);
  if (value.length > 32) throw bad(`${what} '${value}' is longer than 32 characters.`, 'InvalidPropertyName');
  if (FORBIDDEN_NAME.test(value))
    throw bad(
      `${what} '${value}' contains a character that is not allowed (whitespace, control characters or one of : ; , ( ) [ ] { } % $ + ! * = & ? @ # \\ ~ ' " < > \` ^).`,
      'InvalidPropertyName',
    );
  return value;
}

const PROPERTY_KEYS_V1 = new Set([
  'name',
  'type',
  'isSearchable',
  'isQueryable',
  'isRetrievable',
  'isRefinable',
  'labels',
  'aliases',
  'description',
  '@odata.type',
]);
const PROPERTY_KEYS_BETA = new Set([...PROPERTY_KEYS_V1, 'isExactMatchRequired', 'rankingHint']);

/** Validate a schema body; throws the documented synchronous 400s. */
export function validateSchema(body: Record<string, unknown>, version: string): Schema {
  for (const key of Object.keys(body))
    if (!['baseType', 'properties', '@odata.type', 'id'].includes(key))
      throw bad(
        `The property '${key}' does not exist on type 'microsoft.graph.externalConnectors.schema'.`,
        'DeserializationError',
      );
  if (body.baseType !== 'microsoft.graph.externalItem')
    throw bad(
      `baseType must be 'microsoft.graph.externalItem' (got ${JSON.stringify(body.baseType ?? null)}).`,
      'InvalidBaseType',
    );
  const props = body.properties;
  if (!Array.isArray(props) || props.length === 0)
    throw bad('properties must be a non-empty array (at least 1 property).', 'InvalidPropertyCount');
  if (props.length > 128)
    throw bad(`A schema can have at most 128 properties; this one has ${props.length}.`, 'InvalidPropertyCount');
  const allowed = version === 'beta' ? PROPERTY_KEYS_BETA : PROPERTY_KEYS_V1;
  const seen = new Set<string>();
  const labelOwner = new Map<string, string>();
  const out: SchemaProperty[] = [];
  for (const raw of props) {
    if (!isObject(raw)) throw bad('Each entry of properties must be an object.', 'DeserializationError');
    for (const key of Object.keys(raw))
      if (!allowed.has(key))
        throw bad(
          `The property '${key}' does not exist on type 'microsoft.graph.externalConnectors.property'${version === 'beta' ? '' : ' in v1.0'}.`,
          'DeserializationError',
        );
    const name = checkName(raw.name, 'Property name');
    if (seen.has(name.toLowerCase()))
      throw bad(`Property name '${name}' appears more than once.`, 'DuplicatePropertyName');
    seen.add(name.toLowerCase());
    if (raw.type === undefined) throw bad(`Property '${name}' has no type.`, 'DeserializationError');
    const type = enumValue(PROPERTY_TYPES, raw.type, 'type');
    const p: SchemaProperty = {
      name,
      type,
      isSearchable: flag(raw.isSearchable, 'isSearchable', name),
      isQueryable: flag(raw.isQueryable, 'isQueryable', name),
      isRetrievable: flag(raw.isRetrievable, 'isRetrievable', name),
      isRefinable: flag(raw.isRefinable, 'isRefinable', name),
      labels: [],
      aliases: [],
    };
    if (version === 'beta') p.isExactMatchRequired = flag(raw.isExactMatchRequired, 'isExactMatchRequired', name);
    if (raw.rankingHint !== undefined) p.rankingHint = raw.rankingHint as { importanceScore: string };
    if (raw.description !== undefined && raw.description !== null) {
      if (typeof raw.description !== 'string') throw bad(`Property '${name}': description must be a string.`);
      if (raw.description.length > 200)
        throw bad(`Property '${name}': description is ${raw.description.length} characters; the maximum is 200.`);
      p.description = raw.description;
    }
    if (raw.aliases !== undefined && raw.aliases !== null) {
      if (!Array.isArray(raw.aliases)) throw bad(`Property '${name}': aliases must be an array of strings.`);
      p.aliases = raw.aliases.map((a) => checkName(a, `Alias of property '${name}'`));
    }
    if (raw.labels !== undefined && raw.labels !== null) {
      if (!Array.isArray(raw.labels)) throw bad(`Property '${name}': labels must be an array.`);
      p.labels = raw.labels.map((l) => enumValue(ALL_LABELS, l, 'labels'));
    }
    if (p.isSearchable && !SEARCHABLE_TYPES.has(type))
      throw bad(
        `Property '${name}' of type '${type}' cannot be searchable; only string and stringCollection properties can.`,
        'SearchableShouldNotBeOfType',
      );
    if (p.isSearchable && p.isRefinable)
      throw bad(
        `Property '${name}' cannot be both searchable and refinable; they are mutually exclusive.`,
        'SearchableAndRefinableNotAllowed',
      );
    if (p.isRefinable && !REFINABLE_TYPES.has(type))
      throw bad(
        `Refiner property '${name}' cannot be of type '${EDM_NAMES[type] ?? type}'.`,
        'RefinerShouldNotBeOfType',
      );
    if (p.isExactMatchRequired && (p.isSearchable || !SEARCHABLE_TYPES.has(type)))
      throw bad(
        `Property '${name}': isExactMatchRequired is allowed only on non-searchable string or stringCollection properties.`,
        'ExactMatchNotAllowed',
      );
    for (const label of p.labels) {
      if (!p.isRetrievable)
        throw bad(
          `Property '${name}' carries label '${label}' but is not retrievable; labelled properties must be retrievable.`,
          'LabelRequiresRetrievable',
        );
      const other = labelOwner.get(label);
      if (other)
        throw bad(
          `Label '${label}' is on both '${other}' and '${name}'; a label maps to exactly one property.`,
          'DuplicateLabel',
        );
      labelOwner.set(label, name);
      const want = LABEL_TYPES[label];
      if (want && !want.includes(type))
        throw bad(
          `Label '${label}' needs a property of type ${want.join(' or ')}; '${name}' is '${type}'.`,
          'LabelTypeMismatch',
        );
    }
    out.push(p);
  }
  return { baseType: 'microsoft.graph.externalItem', properties: out };
}

/**
 * Additive-only updates (reference §4.4). Returns the reason the update is rejected, or undefined.
 * The emulator reports these through a failed operation (not a synchronous 400).
 */
export function updateProblem(current: Schema, next: Schema): string | undefined {
  const nextByName = new Map(next.properties.map((p) => [p.name.toLowerCase(), p]));
  for (const old of current.properties) {
    const p = nextByName.get(old.name.toLowerCase());
    if (!p)
      return `Property '${old.name}' was removed. Removing or renaming schema properties is not supported; keep every existing property (you may add new ones).`;
    if (p.type !== old.type)
      return `Property '${old.name}' changed type from '${old.type}' to '${p.type}'. Changing a property's type is not supported.`;
    if (p.isRefinable && !old.isRefinable)
      return `Property '${old.name}' became refinable. A refinable attribute can only be set when the property is created.`;
  }
  return undefined;
}

/** The schema as GET returns it. */
export function renderSchema(schema: Schema, version: string, includeUnknown: boolean): Record<string, unknown> {
  return {
    baseType: schema.baseType,
    properties: schema.properties.map((p) => {
      const out: Record<string, unknown> = {
        name: p.name,
        type: !includeUnknown && EVOLVABLE_TYPES.has(p.type) ? 'unknownFutureValue' : p.type,
        isSearchable: p.isSearchable,
        isQueryable: p.isQueryable,
        isRetrievable: p.isRetrievable,
        isRefinable: p.isRefinable,
        labels: p.labels.map((l) => (!includeUnknown && EVOLVABLE_LABELS.has(l) ? 'unknownFutureValue' : l)),
        aliases: p.aliases,
      };
      if (p.description !== undefined) out.description = p.description;
      if (version === 'beta') {
        out.isExactMatchRequired = p.isExactMatchRequired ?? false;
        if (p.rankingHint) out.rankingHint = p.rankingHint;
      }
      return out;
    }),
  };
}

/** A stable key for comparing schema requests (idempotent retries). */
export function schemaKey(schema: Schema): string {
  return JSON.stringify(schema);
}
