/**
 * Field access, templates and type coercion to Graph property types.
 */
import type { PropertyType } from '../config/model.js';
import { renderTemplateParts, type RenderOptions, type TemplatePart } from '../config/mapping-template.js';

/** Read a dotted path; a literal key containing dots (`"a.b"`) wins over nesting. */
export function readFieldPath(data: unknown, path: string[]): unknown {
  if (path.length > 1 && typeof data === 'object' && data !== null) {
    const joined = path.join('.');
    if (Object.prototype.hasOwnProperty.call(data, joined)) return (data as Record<string, unknown>)[joined];
  }
  let cur: unknown = data;
  for (const seg of path) {
    if (cur === null || cur === undefined) return undefined;
    if (Array.isArray(cur)) {
      if (!/^\d+$/.test(seg)) return undefined;
      cur = cur[Number(seg)];
    } else if (typeof cur === 'object') {
      if (!Object.prototype.hasOwnProperty.call(cur, seg)) return undefined;
      cur = (cur as Record<string, unknown>)[seg];
    } else return undefined;
  }
  return cur;
}

export function isMissingValue(v: unknown): boolean {
  return v === undefined || v === null || (typeof v === 'string' && v.trim() === '');
}

/** How a value appears inside a template. */
export function stringifyForTemplate(v: unknown): string {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return String(v);
  if (Array.isArray(v)) return v.map(stringifyForTemplate).join(', ');
  if (v instanceof Date) return v.toISOString();
  return JSON.stringify(v) ?? '';
}

const HTML_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => HTML_ESCAPES[c] ?? c);
}

/**
 * Render a parsed template against a record. With `strict`, a placeholder without a value makes the result
 * missing (used for ids, properties, URLs and ACL values); otherwise it renders as an empty string (content).
 * `encode` writes each value (HTML escaping for html content, percent-encoding for URL templates).
 */
export function renderTemplate(
  parts: TemplatePart[],
  data: unknown,
  options: RenderOptions,
): { value: string } | { missing: string } {
  return renderTemplateParts(
    parts,
    (placeholder) => {
      const v = readFieldPath(data, placeholder.path);
      return isMissingValue(v) ? undefined : stringifyForTemplate(v);
    },
    options,
  );
}

export type CoercionResult =
  | { ok: true; value: string | number | boolean | string[] | number[] }
  | { ok: true; missing: true }
  | { ok: false; rule: string; message: string };

const INT = /^[+-]?\d+$/;
const NUM = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;
// Date, or date + time with optional fraction and optional offset.
const ISO =
  /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?(Z|[+-]\d{2}(?::?\d{2})?)?)?$/i;

function describe(v: unknown): string {
  const s = JSON.stringify(v);
  if (s === undefined) return String(v);
  return s.length > 60 ? s.slice(0, 57) + '...' : s;
}

function toInt64(v: unknown): CoercionResult {
  let n: number;
  if (typeof v === 'number') n = v;
  else if (typeof v === 'bigint') n = Number(v);
  else if (typeof v === 'string' && INT.test(v.trim())) {
    const t = v.trim();
    const big = BigInt(t);
    if (big > BigInt(Number.MAX_SAFE_INTEGER) || big < BigInt(Number.MIN_SAFE_INTEGER)) {
      return {
        ok: false,
        rule: 'range',
        message: `int64 value ${t} is outside the exactly representable range ±${Number.MAX_SAFE_INTEGER}`,
      };
    }
    n = Number(big);
  } else return { ok: false, rule: 'type', message: `expected int64, got ${describe(v)}` };
  if (!Number.isFinite(n) || !Number.isInteger(n))
    return { ok: false, rule: 'type', message: `expected int64, got ${describe(v)} (not an integer)` };
  if (!Number.isSafeInteger(n)) {
    return {
      ok: false,
      rule: 'range',
      message: `int64 value ${describe(v)} is outside the exactly representable range ±${Number.MAX_SAFE_INTEGER}`,
    };
  }
  return { ok: true, value: n };
}

function toDouble(v: unknown): CoercionResult {
  let n: number;
  if (typeof v === 'number') n = v;
  else if (typeof v === 'string' && NUM.test(v.trim())) n = Number(v.trim());
  else return { ok: false, rule: 'type', message: `expected double, got ${describe(v)}` };
  if (!Number.isFinite(n)) return { ok: false, rule: 'range', message: `double value ${describe(v)} is not finite` };
  return { ok: true, value: n };
}

function toBoolean(v: unknown): CoercionResult {
  if (typeof v === 'boolean') return { ok: true, value: v };
  if (v === 1 || v === 0) return { ok: true, value: v === 1 };
  if (typeof v === 'string') {
    const t = v.trim().toLowerCase();
    if (['true', 'yes', 'y', '1'].includes(t)) return { ok: true, value: true };
    if (['false', 'no', 'n', '0'].includes(t)) return { ok: true, value: false };
  }
  return { ok: false, rule: 'type', message: `expected boolean, got ${describe(v)}` };
}

/** ISO 8601 → UTC `...Z`. A value without an offset is taken as UTC. Calendar-checked. */
export function normaliseDateTime(v: unknown): CoercionResult {
  if (typeof v === 'string') {
    const fast = canonicalUtc(v);
    if (fast !== undefined) return { ok: true, value: fast };
  }
  if (v instanceof Date) {
    return Number.isNaN(v.getTime())
      ? { ok: false, rule: 'type', message: 'invalid Date' }
      : { ok: true, value: v.toISOString() };
  }
  if (typeof v !== 'string')
    return { ok: false, rule: 'type', message: `expected an ISO 8601 dateTime string, got ${describe(v)}` };
  const m = ISO.exec(v.trim());
  if (!m) return { ok: false, rule: 'type', message: `expected an ISO 8601 dateTime, got ${describe(v)}` };
  const [, y, mo, d, h = '00', mi = '00', s = '00', frac = '', off] = m;
  const year = Number(y);
  const month = Number(mo);
  const day = Number(d);
  const hour = Number(h);
  const minute = Number(mi);
  const second = Number(s);
  const daysIn = new Date(Date.UTC(year, month, 0)).getUTCDate();
  if (month < 1 || month > 12 || day < 1 || day > daysIn || hour > 23 || minute > 59 || second > 59) {
    return { ok: false, rule: 'type', message: `dateTime ${describe(v)} is not a real calendar date/time` };
  }
  const ms = Number((frac + '000').slice(0, 3));
  let t = Date.UTC(year, month - 1, day, hour, minute, second, ms);
  if (year < 100) t = new Date(t).setUTCFullYear(year);
  if (off && off.toUpperCase() !== 'Z') {
    const sign = off.startsWith('-') ? -1 : 1;
    const digits = off.slice(1).replace(':', '');
    const oh = Number(digits.slice(0, 2));
    const om = Number(digits.slice(2, 4) || '0');
    if (oh > 23 || om > 59)
      return { ok: false, rule: 'type', message: `dateTime ${describe(v)} has an invalid offset` };
    t -= sign * (oh * 60 + om) * 60_000;
  }
  const date = new Date(t);
  if (Number.isNaN(date.getTime()))
    return { ok: false, rule: 'range', message: `dateTime ${describe(v)} is out of range` };
  return { ok: true, value: date.toISOString() };
}

const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/** Two decimal digits at `i` (or NaN). */
function two(s: string, i: number): number {
  const a = s.charCodeAt(i) - 48;
  const b = s.charCodeAt(i + 1) - 48;
  return a >= 0 && a <= 9 && b >= 0 && b <= 9 ? a * 10 + b : NaN;
}

/**
 * The common case without a regular expression or a Date: a UTC timestamp already in `toISOString` form
 * (`YYYY-MM-DDTHH:MM:SS.sssZ`, or without milliseconds) with a real calendar date gives itself back (with `.000`
 * added). Anything else (offsets, other precisions, years before 1000) returns undefined: the full parser decides.
 */
function canonicalUtc(s: string): string | undefined {
  const n = s.length;
  if (n !== 20 && n !== 24) return undefined;
  if (s[4] !== '-' || s[7] !== '-' || s[10] !== 'T' || s[13] !== ':' || s[16] !== ':' || s[n - 1] !== 'Z')
    return undefined;
  if (n === 24 && s[19] !== '.') return undefined;
  const year = two(s, 0) * 100 + two(s, 2);
  const month = two(s, 5);
  const day = two(s, 8);
  const hour = two(s, 11);
  const minute = two(s, 14);
  const second = two(s, 17);
  if (!(year >= 1000) || !(month >= 1 && month <= 12) || !(hour <= 23) || !(minute <= 59) || !(second <= 59))
    return undefined;
  const leap = (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
  const days = month === 2 && leap ? 29 : DAYS_IN_MONTH[month - 1]!;
  if (!(day >= 1 && day <= days)) return undefined;
  if (n === 20) return `${s.slice(0, 19)}.000Z`;
  const ms = s.charCodeAt(20) - 48;
  const ms2 = two(s, 21);
  if (!(ms >= 0 && ms <= 9) || Number.isNaN(ms2)) return undefined;
  return s;
}

function scalar(v: unknown, type: PropertyType): CoercionResult {
  switch (type) {
    case 'string':
      if (typeof v === 'string') return { ok: true, value: v };
      if (typeof v === 'number' || typeof v === 'boolean') return { ok: true, value: String(v) };
      return { ok: false, rule: 'type', message: `expected string, got ${describe(v)}` };
    case 'int64':
      return toInt64(v);
    case 'double':
      return toDouble(v);
    case 'boolean':
      return toBoolean(v);
    case 'dateTime':
      return normaliseDateTime(v);
    default:
      return { ok: false, rule: 'type', message: `property type ${type} is not supported by the declarative mapping` };
  }
}

const ELEMENT: Partial<Record<PropertyType, PropertyType>> = {
  stringCollection: 'string',
  int64Collection: 'int64',
  doubleCollection: 'double',
  dateTimeCollection: 'dateTime',
};

/** Coerce a record value to the schema type. Missing values (null, undefined, blank) are reported as missing. */
export function coerceToPropertyType(v: unknown, type: PropertyType, options: { split?: string } = {}): CoercionResult {
  const element = ELEMENT[type];
  if (!element) {
    if (isMissingValue(v)) return { ok: true, missing: true };
    if (Array.isArray(v)) return { ok: false, rule: 'type', message: `expected ${type}, got an array` };
    return scalar(typeof v === 'string' && type !== 'string' ? v.trim() : v, type);
  }
  if (v === undefined || v === null) return { ok: true, missing: true };
  let items: unknown[];
  if (Array.isArray(v)) items = v;
  else if (typeof v === 'string') {
    if (v.trim() === '') return { ok: true, missing: true };
    items = options.split !== undefined ? v.split(options.split) : [v];
  } else items = [v];
  const out: (string | number)[] = [];
  for (let i = 0; i < items.length; i++) {
    let it = items[i];
    if (typeof it === 'string') {
      it = it.trim();
      if (it === '') continue;
    } else if (it === null || it === undefined) continue;
    const c = scalar(it, element);
    if (!c.ok) return { ok: false, rule: c.rule, message: `element ${i}: ${c.message}` };
    if ('value' in c) out.push(c.value as string | number);
  }
  return { ok: true, value: out as string[] | number[] };
}

/** The `@odata.type` annotation Graph needs for this property value, if any. */
export function odataAnnotation(type: PropertyType, value: unknown): string | undefined {
  switch (type) {
    case 'stringCollection':
      return 'Collection(String)';
    case 'int64Collection':
      return 'Collection(Int64)';
    case 'doubleCollection':
      return 'Collection(Double)';
    case 'dateTimeCollection':
      return 'Collection(DateTimeOffset)';
    case 'string':
      // eslint-disable-next-line no-control-regex
      return typeof value === 'string' && /[^\x00-\x7f]/.test(value) ? 'String' : undefined;
    default:
      return undefined;
  }
}

// Earlier names, kept while code outside src/mapping (attachments) moves to the names above.
/** @deprecated use {@link readFieldPath} */
export const getPath = readFieldPath;
/** @deprecated use {@link isMissingValue} */
export const isMissing = isMissingValue;
/** @deprecated use {@link coerceToPropertyType} */
export const coerce = coerceToPropertyType;
