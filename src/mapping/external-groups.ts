/**
 * External groups in ACLs, when the connector syncs them (the source has `groups`): an `externalGroup` value must
 * name one of the synced groups, or it is unresolved (fail closed: a deny that names no group would deny nobody).
 *
 * The case rule, one for both sides (docs/mapping.md "External groups"): group ids compare ignoring case
 * ({@link externalGroupKey}). A value resolves to the synced group whose id equals it ignoring case, and the ACL
 * entry carries that group's id exactly as it was synced, encoded by {@link encodeExternalGroupId} — the id the
 * group has in Graph. Two synced groups whose ids differ only in case are one id to the connector: a value naming
 * them is unresolved until the groups source tells them apart.
 */
import { encodeExternalGroupId } from './item-id.js';

/** The form group ids are compared in: trimmed, lower case. */
export function externalGroupKey(id: string): string {
  return id.trim().toLowerCase();
}

export type GroupResolution = { value: string } | { why: string };

/** The synced groups of one crawl, ready to resolve ACL values against. */
export interface ExternalGroupIndex {
  /** A rule value (the source's spelling of a group id) → the ACL value, or why it names no synced group. */
  resolve(name: string): GroupResolution;
  /** A Graph id a mapping module returned in an `externalGroup` entry → the synced group's Graph id, or why not. */
  resolveGraphId(id: string): GroupResolution;
  /** Synced ids that differ only in case: each set is one id to the connector, and unusable until fixed. */
  readonly collisions: readonly string[][];
}

/** Index the ids of the synced groups (`ExternalGroup.id` as the groups source yields them). */
export function indexExternalGroups(ids: Iterable<string>): ExternalGroupIndex {
  const byKey = new Map<string, string[]>();
  const byGraphKey = new Map<string, string[]>();
  let count = 0;
  for (const id of new Set(ids)) {
    count++;
    const list = byKey.get(externalGroupKey(id)) ?? [];
    list.push(id);
    byKey.set(externalGroupKey(id), list);
    const graphId = encodeExternalGroupId(id);
    byGraphKey.set(graphId.toLowerCase(), [...(byGraphKey.get(graphId.toLowerCase()) ?? []), graphId]);
  }
  const collisions = [...byKey.values()].filter((l) => l.length > 1);
  const describe = `the ${count} external group${count === 1 ? '' : 's'} the connector syncs`;
  const pick = (found: string[] | undefined, shown: string, toValue: (id: string) => string): GroupResolution => {
    if (!found) return { why: `externalGroup "${shown}" is not one of ${describe} (ids compare ignoring case)` };
    if (found.length > 1)
      return {
        why: `externalGroup "${shown}" matches ${found.length} synced groups whose ids differ only in case (${found.join(', ')}); make the group ids unique ignoring case in the groups source`,
      };
    return { value: toValue(found[0]!) };
  };
  return {
    collisions,
    resolve: (name) => pick(byKey.get(externalGroupKey(name)), name.trim(), encodeExternalGroupId),
    resolveGraphId: (id) => pick(byGraphKey.get(id.trim().toLowerCase()), id.trim(), (graphId) => graphId),
  };
}

/** Used when the connector syncs groups but the crawl did not say which: every value is unresolved. */
export const UNKNOWN_EXTERNAL_GROUPS: ExternalGroupIndex = {
  collisions: [],
  resolve: (name) => ({ why: unknownWhy(name) }),
  resolveGraphId: (id) => ({ why: unknownWhy(id) }),
};
function unknownWhy(name: string): string {
  return `externalGroup "${name.trim()}" cannot be checked: the crawl did not pass the synced group ids (MapContext.externalGroups)`;
}

const cache = new WeakMap<ReadonlySet<string>, ExternalGroupIndex>();

/** The index of a crawl's Set of synced ids, built once per Set object. */
export function externalGroupIndexFor(ids: ReadonlySet<string>): ExternalGroupIndex {
  let index = cache.get(ids);
  if (!index) cache.set(ids, (index = indexExternalGroups(ids)));
  return index;
}

/**
 * The external-group index one `map()` call uses: the crawl's synced ids when it passed them; "unknown" when the
 * connector syncs groups but the crawl passed none; undefined when the connector does not sync groups.
 */
export function externalGroupsForCall(
  context: { externalGroups?: ReadonlySet<string> } | undefined,
  syncsExternalGroups: boolean,
): ExternalGroupIndex | undefined {
  if (context?.externalGroups) return externalGroupIndexFor(context.externalGroups);
  return syncsExternalGroups ? UNKNOWN_EXTERNAL_GROUPS : undefined;
}
