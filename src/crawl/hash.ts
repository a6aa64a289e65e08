import { createHash } from 'node:crypto';
import type { ExternalItem } from '../config/model.js';

/**
 * JSON with object keys sorted at every level, so two equal items always serialise identically
 * whatever order the mapping built their properties in. Arrays keep their order (order is data).
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') {
    // Strings without characters JSON escapes need no JSON.stringify (most values of an item).
    if (typeof value === 'string' && !NEEDS_ESCAPE.test(value)) return `"${value}"`;
    return JSON.stringify(value) ?? 'null';
  }
  if (Array.isArray(value)) {
    let out = '[';
    for (let i = 0; i < value.length; i++) {
      if (i) out += ',';
      const v: unknown = value[i];
      out += canonicalJson(v === undefined ? null : v);
    }
    return out + ']';
  }
  const obj = value as Record<string, unknown>;
  const keys = Object.keys(obj).sort();
  let out = '{';
  let first = true;
  for (const k of keys) {
    const v = obj[k];
    if (v === undefined) continue;
    if (!first) out += ',';
    first = false;
    out += canonicalJson(k) + ':' + canonicalJson(v);
  }
  return out + '}';
}

/** Characters JSON.stringify escapes (quote, backslash, control characters, lone surrogates). */
// eslint-disable-next-line no-control-regex
const NEEDS_ESCAPE = /["\\\u0000-\u001f\ud800-\udfff]/;

/**
 * The hash that decides "unchanged": it covers the whole final item — id, properties, content and the
 * ACL (so a permission-only change is a change) — plus any extra inputs that shape the item without being
 * in it (for example an attachment's fingerprint). ACL entry order is not significant, so it is sorted.
 */
export function itemHash(item: ExternalItem, extra?: Record<string, string>): string {
  return itemDigest(item, extra).hash;
}

/**
 * The item's hash, and its reduction to the 8 bytes a snapshot keeps (two unsigned 32-bit numbers, never (0, 0)),
 * from one digest.
 */
export function itemDigest(
  item: ExternalItem,
  extra?: Record<string, string>,
): { hash: string; reduced: [number, number] } {
  const acl = [...item.acl]
    .map((e) => `${e.accessType}:${e.type}:${e.value}`)
    .sort()
    .join('|');
  const d = createHash('sha256')
    .update(canonicalJson({ id: item.id, properties: item.properties, content: item.content ?? null, acl, extra }))
    .digest();
  const a = d.readUInt32BE(0);
  const b = d.readUInt32BE(4);
  return { hash: d.toString('base64url'), reduced: a === 0 && b === 0 ? [0, 1] : [a, b] };
}
