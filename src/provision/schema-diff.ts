/**
 * Compares the declared schema with the one Graph holds.
 * Graph allows adding properties, aliases and labels (and toggling most flags) on an existing schema;
 * removing or retyping a property, or adding `isRefinable` to an existing one, is not possible:
 * such a change needs a new connection id and a full crawl.
 */
import type { SchemaProperty } from '../config/model.js';

export interface SchemaDiff {
  /** Nothing to PATCH. */
  same: boolean;
  /** Changes that can be PATCHed (human-readable). */
  additive: string[];
  /** Changes Graph refuses; provisioning stops on them. */
  breaking: { property: string; change: string }[];
  /** Changes that need items re-ingested to take effect. */
  reingest: string[];
}

const norm = (s: string) => s.toLowerCase();
const flags = ['isSearchable', 'isQueryable', 'isRetrievable', 'isRefinable'] as const;

export function diffSchema(current: SchemaProperty[], desired: SchemaProperty[]): SchemaDiff {
  const diff: SchemaDiff = { same: true, additive: [], breaking: [], reingest: [] };
  const byName = new Map(current.map((p) => [norm(p.name), p]));
  const desiredNames = new Set(desired.map((p) => norm(p.name)));
  for (const c of current) {
    if (!desiredNames.has(norm(c.name))) {
      diff.breaking.push({
        property: c.name,
        change: 'is registered in Graph but no longer declared (properties cannot be removed)',
      });
    }
  }
  for (const d of desired) {
    const c = byName.get(norm(d.name));
    if (!c) {
      diff.additive.push(`add property ${d.name} (${d.type})`);
      diff.reingest.push(`${d.name} is new: items need re-ingesting to fill it`);
      continue;
    }
    if (norm(c.type) !== norm(d.type)) {
      diff.breaking.push({
        property: d.name,
        change: `changes type from ${c.type} to ${d.type} (types cannot be changed)`,
      });
      continue;
    }
    for (const f of flags) {
      const was = c[f] === true;
      const now = d[f] === true;
      if (was === now) continue;
      if (f === 'isRefinable' && now) {
        diff.breaking.push({
          property: d.name,
          change: 'becomes refinable (isRefinable can only be set when the property is created)',
        });
      } else {
        diff.additive.push(`${now ? 'set' : 'clear'} ${f} on ${d.name}`);
        diff.reingest.push(`${d.name}.${f} changed`);
      }
    }
    // `unknownFutureValue` is how Graph shows a newer label to a client that did not ask for it: not comparable.
    const cLabels = new Set((c.labels ?? []).filter((l) => (l as string) !== 'unknownFutureValue'));
    const dLabels = new Set(d.labels ?? []);
    for (const l of dLabels) if (!cLabels.has(l)) diff.additive.push(`add label ${l} to ${d.name}`);
    for (const l of cLabels) if (!dLabels.has(l)) diff.additive.push(`remove label ${l} from ${d.name}`);
    if ([...dLabels].some((l) => !cLabels.has(l)) || [...cLabels].some((l) => !dLabels.has(l))) {
      diff.reingest.push(`${d.name} labels changed`);
    }
    // Graph may add aliases of its own (refinable properties); only declared aliases that are missing count.
    const cAliases = new Set((c.aliases ?? []).map(norm));
    for (const a of d.aliases ?? []) if (!cAliases.has(norm(a))) diff.additive.push(`add alias ${a} to ${d.name}`);
    if (d.description !== undefined && (c.description ?? '') !== d.description) {
      diff.additive.push(`update the description of ${d.name}`);
    }
  }
  diff.same = diff.additive.length === 0 && diff.breaking.length === 0;
  return diff;
}
