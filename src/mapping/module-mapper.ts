/**
 * The code-hook mapper: `mapping.module` exports a synchronous `map(record, helpers)` that returns the source id,
 * raw property values, content and ACL entries. Its output is coerced to the schema types, annotated, and goes
 * through the same {@link finishItem} tail as the declarative mapping.
 */
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { MappingDefinition } from '../config/mapping-definition.js';
import { parseFieldPath } from '../config/mapping-template.js';
import type { AclEntry, ExternalItemProperties } from '../config/model.js';
import type { AclContext } from './acl.js';
import { resolvePrincipal } from './acl.js';
import { externalGroupsForCall, type ExternalGroupIndex } from './external-groups.js';
import { finishItem, setTypedProperty, type ItemPolicy, type UnresolvedAcl } from './finish-item.js';
import { encodeItemId } from './item-id.js';
import {
  MappingSetupError,
  rejectRecord,
  type Mapper,
  type MapperHelpers,
  type MapResult,
  type ModuleMapOutput,
} from './types.js';
import { coerceToPropertyType, escapeHtml, readFieldPath } from './values.js';

type ModuleMap = (record: Record<string, unknown>, helpers: MapperHelpers) => ModuleMapOutput | null | undefined;

/** Thrown by `helpers.reject()` inside a module; caught per record. */
class RejectSignal extends Error {
  constructor(
    readonly field: string,
    readonly rule: string,
    message: string,
  ) {
    super(message);
  }
}

/** Import `mapping.module` (resolved against connector.json's folder) and wrap its `map` export. */
export async function loadModuleMapper(
  def: MappingDefinition & { module: string },
  policy: ItemPolicy,
  aclContext: AclContext,
  options: { baseDir: string; syncsExternalGroups: boolean },
): Promise<Mapper> {
  const { baseDir } = options;
  const url = pathToFileURL(resolve(baseDir, def.module)).href;
  const mod = (await import(url)) as { map?: unknown; default?: { map?: unknown } };
  const fn = (typeof mod.map === 'function' ? mod.map : mod.default?.map) as ModuleMap | undefined;
  if (typeof fn !== 'function') {
    throw new MappingSetupError(
      `mapping.module "${def.module}" (${url}) does not export a function map(record, helpers); export one`,
    );
  }
  const helpers: MapperHelpers = {
    encodeItemId,
    escapeHtml,
    get: (r, p) => readFieldPath(r, parseFieldPath(p)),
    resolveUser: (v) => {
      const principal = resolvePrincipal('user', v, aclContext);
      return 'value' in principal ? principal.value : undefined;
    },
    reject: (field, rule, message) => {
      throw new RejectSignal(field, rule, message);
    },
  };
  const byName = new Map(policy.schema.map((p) => [p.name, p]));

  return {
    map(record, context): MapResult {
      if (record.error !== undefined || !record.data)
        return rejectRecord(record.key, '(record)', 'parse', record.error ?? 'no data');
      let out: ModuleMapOutput | null | undefined;
      try {
        out = fn(record.data, helpers);
        if (out && typeof (out as unknown as Promise<unknown>).then === 'function') {
          return rejectRecord(
            record.key,
            '(module)',
            'module',
            'map() returned a Promise; mapping modules must be synchronous',
          );
        }
      } catch (e) {
        if (e instanceof RejectSignal) return rejectRecord(record.key, e.field, e.rule, e.message);
        return rejectRecord(record.key, '(module)', 'module', `map() threw: ${(e as Error)?.message ?? String(e)}`);
      }
      if (!out || typeof out !== 'object')
        return rejectRecord(record.key, '(module)', 'module', 'map() returned nothing');
      if (typeof out.id !== 'string' || out.id === '')
        return rejectRecord(record.key, 'id', 'required', 'map() returned no id');
      const props: ExternalItemProperties = {};
      for (const [name, raw] of Object.entries(out.properties ?? {})) {
        const sp = byName.get(name);
        if (!sp) return rejectRecord(record.key, name, 'schema', `"${name}" is not a property of the schema`);
        const c = coerceToPropertyType(raw, sp.type);
        if (!c.ok) return rejectRecord(record.key, name, c.rule, c.message);
        if ('value' in c) setTypedProperty(props, sp, c.value);
      }
      const acl = Array.isArray(out.acl) ? out.acl : [];
      const everyoneGrant = acl.find(
        (e) => (e.type === 'everyone' || e.type === 'everyoneExceptGuests') && e.accessType === 'grant',
      );
      if (everyoneGrant && !policy.allowEveryone) {
        return rejectRecord(
          record.key,
          'acl',
          'acl.everyone',
          `a ${everyoneGrant.type} grant needs mapping.acl.allowEveryone: true`,
        );
      }
      const checked = checkExternalGroups(acl, externalGroupsForCall(context, options.syncsExternalGroups));
      const noGrant: UnresolvedAcl = {
        unresolved: {
          field: 'acl',
          rule: 'acl.noGrant',
          message: `map() returned an ACL with no grant${checked.warnings.length ? ` (${checked.warnings.join('; ')})` : ''}`,
        },
      };
      return finishItem(
        {
          recordKey: record.key,
          sourceId: out.id,
          properties: props,
          content: out.content,
          acl:
            'unresolved' in checked
              ? checked
              : checked.entries.some((e) => e.accessType === 'grant')
                ? checked.entries
                : noGrant,
          warnings: checked.warnings,
        },
        policy,
      );
    },
  };
}

/**
 * A module's externalGroup entries, when the connector syncs groups: each must name a synced group (its Graph
 * id, compared ignoring case; the entry takes the synced spelling). An unknown group in a grant is dropped with a
 * warning; in a deny it makes the ACL unresolved (fail closed), as in the declarative mapping.
 */
function checkExternalGroups(
  acl: AclEntry[],
  groups: ExternalGroupIndex | undefined,
): { entries: AclEntry[]; warnings: string[] } | (UnresolvedAcl & { warnings: string[] }) {
  const warnings: string[] = [];
  if (!groups) return { entries: acl, warnings };
  const entries: AclEntry[] = [];
  for (const [i, e] of acl.entries()) {
    if (e.type !== 'externalGroup') {
      entries.push(e);
      continue;
    }
    const group = groups.resolveGraphId(String(e.value ?? ''));
    if ('value' in group) entries.push({ ...e, value: group.value });
    else if (e.accessType === 'deny')
      return {
        unresolved: {
          field: `acl[${i}]`,
          rule: 'acl.unresolvedDeny',
          message: `cannot resolve a deny entry: ${group.why}; without it the item would show to someone it must be hidden from`,
        },
        warnings,
      };
    else warnings.push(`acl[${i}]: ${group.why}; grant skipped`);
  }
  return { entries, warnings };
}
