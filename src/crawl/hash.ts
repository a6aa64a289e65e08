import { createHash } from 'node:crypto';
import type { ExternalItem } from '../config/model.js';

/**
 * JSON with object keys sorted at every level, so two equal items always serialise identically
 * whatever order the mapping built their properties in. Arrays keep their order (order is data).
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map((v) => canonicalJson(v === undefined ? null : v)).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
}

/**
 * The hash that decides "unchanged": it covers the whole final item — id, properties, content and the
 * ACL (so a permission-only change is a change) — plus any extra inputs that shape the item without being
 * in it (for example an attachment's fingerprint). ACL entry order is not significant, so it is sorted.
 */
export function itemHash(item: ExternalItem, extra?: Record<string, string>): string {
  const acl = [...item.acl]
    .map((e) => `${e.accessType}:${e.type}:${e.value}`)
    .sort()
    .join('|');
  return createHash('sha256')
    .update(canonicalJson({ id: item.id, properties: item.properties, content: item.content ?? null, acl, extra }))
    .digest('base64url');
}
