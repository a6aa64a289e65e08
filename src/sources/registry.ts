/**
 * The source types, each declaring its own configuration: `validate` (the type's part of the `source` section,
 * every problem at once with its JSON path and fix), `create` (the Source for a validated definition) and
 * `capabilities` (what it can do, known from the definition alone). Adding a source type is one folder here plus
 * one line in {@link SOURCE_REGISTRY}; connector.json's checks and createSource follow from it.
 */
import type { ConfigProblem } from '../config/problems.js';
import { problem } from '../config/problems.js';
import type { FileSourceDefinition } from './files/definition.js';
import { fileSourceType } from './files/index.js';
import { checkGroups } from './groups.js';
import type { RestSourceDefinition } from './rest/definition.js';
import { restSourceType } from './rest/index.js';
import type { SourceValidationContext } from './shared/common.js';
import type { Obj } from './shared/validate.js';
import { isNonEmptyString, isObj, scanForLiteralSecrets } from './shared/validate.js';
import type { Source, SourceCapabilities, SourceDeps } from './types.js';

/** One source type: what its part of connector.json must look like, and how to build it. */
export interface SourceTypeEntry<D> {
  /**
   * The type's own fields. The registry has already checked that the section is an object with this type, the
   * keyField, the groups and that no literal secret appears anywhere.
   */
  validate(value: Obj, path: string, ctx: SourceValidationContext): ConfigProblem[];
  /** The Source for a definition that validated without errors. Nothing is read until it is iterated. */
  create(def: D, deps: SourceDeps): Source;
  /** What a source of this definition can do (incremental reads, groups), without creating it. */
  capabilities(def: D): SourceCapabilities;
}

/** Every definition the registry accepts (one member per source type folder). */
export type SourceDefinition = FileSourceDefinition | RestSourceDefinition;
export type SourceType = SourceDefinition['type'];

export const SOURCE_REGISTRY: { [T in SourceType]: SourceTypeEntry<Extract<SourceDefinition, { type: T }>> } = {
  csv: fileSourceType('csv'),
  jsonLines: fileSourceType('jsonLines'),
  jsonArray: fileSourceType('jsonArray'),
  rest: restSourceType,
};

export const SOURCE_TYPES = Object.keys(SOURCE_REGISTRY) as SourceType[];

const isSourceType = (t: unknown): t is SourceType => typeof t === 'string' && Object.hasOwn(SOURCE_REGISTRY, t);

function entryOf<T extends SourceType>(type: T): SourceTypeEntry<Extract<SourceDefinition, { type: T }>> {
  return SOURCE_REGISTRY[type];
}

/**
 * Validate the `source` section. Returns every problem (errors and warnings) with its JSON path and the fix;
 * an empty list of errors means the definition is usable by {@link createSource}.
 */
export function validateSourceDefinition(
  value: unknown,
  path = 'source',
  ctx: SourceValidationContext = { env: process.env },
): ConfigProblem[] {
  const out: ConfigProblem[] = [];
  if (!isObj(value)) {
    out.push(
      problem(
        path,
        'is missing or not an object',
        'add a "source" object, e.g. {"type": "jsonLines", "path": "./data.jsonl"}',
      ),
    );
    return out;
  }
  scanForLiteralSecrets(value, path, out);
  const type = value.type;
  if (!isSourceType(type)) {
    out.push(
      problem(
        `${path}.type`,
        `unknown source type ${JSON.stringify(type)}`,
        `use one of ${SOURCE_TYPES.map((t) => `"${t}"`).join(', ')}`,
      ),
    );
    return out;
  }
  if (value.keyField !== undefined && !isNonEmptyString(value.keyField)) {
    out.push(problem(`${path}.keyField`, 'must be a field name or dotted path', 'e.g. "ticketId"'));
  }
  checkGroups(value.groups, `${path}.groups`, out, type, ctx);
  out.push(...entryOf(type).validate(value, path, ctx));
  return out;
}

/** What the source of a validated definition can do, without creating it. */
export function sourceCapabilities(def: SourceDefinition): SourceCapabilities {
  return (entryOf(def.type) as SourceTypeEntry<SourceDefinition>).capabilities(def);
}

/** Build the source for a validated definition. Nothing is read until read()/readPages()/groups() is iterated. */
export function createSource(def: SourceDefinition, deps: SourceDeps): Source {
  const logger = deps.logger.child({ source: def.type });
  return (entryOf(def.type) as SourceTypeEntry<SourceDefinition>).create(def, { ...deps, logger });
}
