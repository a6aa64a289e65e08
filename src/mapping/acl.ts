/**
 * ACL rules → Graph ACL entries, fail closed:
 * - users are object ids, or UPNs resolved through the directory (upn → object id);
 * - an unresolvable grant principal is dropped with a warning; an unresolvable DENY principal makes the whole
 *   ACL unresolved (ingesting without that deny would show the item to someone it must be hidden from);
 * - no grant left → unresolved: the mapper rejects the record or writes a deny-everyone ACL (onUnresolved);
 * - everyone / everyoneExceptGuests grants only when allowEveryone is set;
 * - when the connector syncs external groups, an externalGroup value must name a synced group (./external-groups.ts).
 */
import type { AclCondition, AclMapping } from '../config/mapping-definition.js';
import { parseFieldPath, parseTemplate, type TemplatePart } from '../config/mapping-template.js';
import type { AclEntry, AclType } from '../config/model.js';
import type { ExternalGroupIndex } from './external-groups.js';
import { encodeExternalGroupId } from './item-id.js';
import { readFieldPath, isMissingValue, renderTemplate, stringifyForTemplate } from './values.js';

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export interface AclContext {
  /** upn (lower-case) → Entra object id; may also hold group display names → object ids. */
  directory?: Map<string, string>;
  /** The value for everyone / everyoneExceptGuests entries. */
  everyoneValue: string;
  allowEveryone: boolean;
  /**
   * The synced external groups (when the connector syncs them): externalGroup values must name one. Undefined:
   * the connector does not sync groups, and values are sent as written (encoded).
   */
  externalGroups?: ExternalGroupIndex;
}

export type AclOutcome =
  | { resolved: true; entries: AclEntry[]; warnings: string[] }
  | { resolved: false; field: string; rule: string; message: string; warnings: string[] };

interface CompiledRule {
  index: number;
  access: 'grant' | 'deny';
  type: AclType;
  value?: TemplatePart[];
  from?: string[];
  split: string;
  when?: { path: string[]; cond: AclCondition };
}

export function compileAclRules(acl: AclMapping): CompiledRule[] {
  return acl.rules.map((r, index) => ({
    index,
    access: r.access,
    type: r.type,
    value: r.value !== undefined ? parseTemplate(r.value) : undefined,
    from: r.from !== undefined ? parseFieldPath(r.from) : undefined,
    split: r.split ?? ',',
    when: r.when ? { path: parseFieldPath(r.when.field), cond: r.when } : undefined,
  }));
}

function matches(data: unknown, w: CompiledRule['when']): boolean {
  if (!w) return true;
  const v = readFieldPath(data, w.path);
  const c = w.cond;
  const eq = (a: unknown, b: unknown) =>
    a === b ||
    (typeof a === 'string' && typeof b === 'string' && a.trim().toLowerCase() === b.trim().toLowerCase()) ||
    ((typeof a === 'number' || typeof a === 'boolean') && String(a) === String(b));
  if (c.exists !== undefined)
    return c.exists ? !isMissingValue(v) && !(Array.isArray(v) && v.length === 0) : isMissingValue(v);
  if (c.equals !== undefined) return eq(v, c.equals);
  if (c.notEquals !== undefined) return !eq(v, c.notEquals);
  if (c.in !== undefined) return c.in.some((x) => eq(v, x));
  return true;
}

/** Resolve one principal to its ACL value, or say why it cannot be resolved. */
export function resolvePrincipal(type: AclType, raw: string, ctx: AclContext): { value: string } | { why: string } {
  const v = raw.trim();
  if (!v) return { why: `${type} value is empty` };
  switch (type) {
    case 'user':
    case 'group': {
      if (GUID.test(v)) return { value: v.toLowerCase() };
      const id = ctx.directory?.get(v.toLowerCase());
      return id
        ? { value: id }
        : { why: `${type} "${v}" is not in the directory (not an Entra object id or a known UPN)` };
    }
    case 'externalGroup':
      return ctx.externalGroups ? ctx.externalGroups.resolve(v) : { value: encodeExternalGroupId(v) };
    default:
      return { value: ctx.everyoneValue };
  }
}

export function buildAcl(rules: CompiledRule[], data: unknown, ctx: AclContext): AclOutcome {
  const entries: AclEntry[] = [];
  const seen = new Set<string>();
  const warnings: string[] = [];
  const add = (e: AclEntry) => {
    const k = `${e.accessType}|${e.type}|${e.value}`;
    if (!seen.has(k)) {
      seen.add(k);
      entries.push(e);
    }
  };
  for (const r of rules) {
    if (!matches(data, r.when)) continue;
    const field = `acl.rules[${r.index}]`;
    if (r.type === 'everyone' || r.type === 'everyoneExceptGuests') {
      if (r.access === 'grant' && !ctx.allowEveryone) {
        return {
          resolved: false,
          field,
          rule: 'acl.everyone',
          message: `a ${r.type} grant needs mapping.acl.allowEveryone: true`,
          warnings,
        };
      }
      add({ type: r.type, value: ctx.everyoneValue, accessType: r.access });
      continue;
    }
    const raws: string[] = [];
    if (r.value) {
      const rendered = renderTemplate(r.value, data, { strict: true });
      if ('missing' in rendered) {
        if (r.access === 'deny') {
          // A deny rule whose field is empty denies nobody; that is not a failure.
          continue;
        }
        warnings.push(`${field}: no value for "${rendered.missing}", grant skipped`);
        continue;
      }
      raws.push(rendered.value);
    } else if (r.from) {
      const v = readFieldPath(data, r.from);
      if (Array.isArray(v)) raws.push(...v.filter((x) => !isMissingValue(x)).map(stringifyForTemplate));
      else if (!isMissingValue(v)) raws.push(...stringifyForTemplate(v).split(r.split));
    }
    for (const raw of raws) {
      if (raw.trim() === '') continue;
      const principal = resolvePrincipal(r.type, raw, ctx);
      if ('why' in principal) {
        if (r.access === 'deny') {
          return {
            resolved: false,
            field,
            rule: 'acl.unresolvedDeny',
            message: `cannot resolve a deny entry: ${principal.why}; without it the item would show to someone it must be hidden from`,
            warnings,
          };
        }
        warnings.push(`${field}: ${principal.why}; grant skipped`);
        continue;
      }
      add({ type: r.type, value: principal.value, accessType: r.access });
    }
  }
  if (!entries.some((e) => e.accessType === 'grant')) {
    return {
      resolved: false,
      field: 'acl',
      rule: 'acl.noGrant',
      message: `the ACL resolves to no grant${warnings.length ? ` (${warnings.join('; ')})` : ''}`,
      warnings,
    };
  }
  return { resolved: true, entries, warnings };
}

/** The fail-closed ACL: visible to nobody. */
export function denyAllAcl(everyoneValue: string): AclEntry[] {
  return [{ type: 'everyone', value: everyoneValue, accessType: 'deny' }];
}
