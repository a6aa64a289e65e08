/**
 * createMapper: a source record → a Graph externalItem, or a reject reason. Never throws per record.
 *
 * Two mappers share one tail: the declarative mapping of connector.json (./declarative-mapper.ts) or a code hook
 * (`mapping.module`, ./module-mapper.ts), both finished by {@link finishItem} (./finish-item.ts).
 */
import type { MappingDefinition } from '../config/mapping-definition.js';
import type { SchemaProperty } from '../config/model.js';
import type { AclContext } from './acl.js';
import { buildActivities, compileActivityRules } from './activities.js';
import { createDeclarativeMapper } from './declarative-mapper.js';
import { loadDirectoryFile } from './directory.js';
import { itemPolicy } from './finish-item.js';
import { loadModuleMapper } from './module-mapper.js';
import type { Mapper, MapperDeps } from './types.js';

export { directoryFromJson } from './directory.js';
export type {
  MapContext,
  MapResult,
  MappableRecord,
  Mapper,
  MapperDeps,
  MapperHelpers,
  ModuleMapOutput,
  RejectReason,
} from './types.js';
export { MappingSetupError } from './types.js';

/**
 * Build the mapper for a validated mapping definition (run validateMappingDefinition first; what does not compile
 * throws {@link MappingSetupError} here, at start-up). Async because `mapping.module` is imported and
 * `mapping.acl.directory` is read.
 */
export async function createMapper(
  def: MappingDefinition,
  schema: SchemaProperty[],
  deps: MapperDeps,
): Promise<Mapper> {
  const policy = itemPolicy(def, schema, deps);
  const directory =
    deps.directory ?? (def.acl?.directory ? await loadDirectoryFile(def.acl.directory, deps.baseDir) : undefined);
  const aclContext: AclContext = {
    directory,
    everyoneValue: policy.everyoneValue,
    allowEveryone: policy.allowEveryone,
  };
  const options = { baseDir: deps.baseDir, syncsExternalGroups: deps.syncsExternalGroups === true };
  const mapper = def.module
    ? await loadModuleMapper({ ...def, module: def.module }, policy, aclContext, options)
    : createDeclarativeMapper(def, policy, aclContext, options);
  return def.activities?.length ? withActivities(mapper, def.activities, directory) : mapper;
}

/** The same mapper, with each mapped record's activities (mapping.activities) added to its result. */
function withActivities(
  inner: Mapper,
  rules: NonNullable<MappingDefinition['activities']>,
  directory: AclContext['directory'],
): Mapper {
  const compiled = compileActivityRules(rules);
  return {
    map(record, context) {
      const result = inner.map(record, context);
      if (!result.ok) return result;
      const { activities, warnings } = buildActivities(compiled, record.data, directory);
      if (warnings.length) result.warnings.push(...warnings);
      return activities.length ? { ...result, activities } : result;
    },
  };
}
