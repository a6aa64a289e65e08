/**
 * Turning parsed values into records: the key (the keyField's value, else the position), and the error record for
 * a value that is not a JSON object.
 */
import type { SourceRecord } from '../types.js';

export const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** The record's key: the `keyField` value (a field name, else a dotted path) when it is a string or number. */
export function keyOf(data: Record<string, unknown>, keyField: string | undefined, fallback: string): string {
  if (!keyField) return fallback;
  let v: unknown = Object.prototype.hasOwnProperty.call(data, keyField) ? data[keyField] : undefined;
  if (v === undefined) {
    v = data;
    for (const seg of keyField.split('.')) v = isPlainObject(v) ? v[seg] : undefined;
  }
  return typeof v === 'string' || typeof v === 'number' ? String(v) : fallback;
}

/** A parsed value → a record, or an error record when it is not an object. */
export function recordFromValue(value: unknown, position: string, keyField: string | undefined): SourceRecord {
  if (!isPlainObject(value)) {
    return {
      key: position,
      position,
      error: `${position}: expected a JSON object, got ${Array.isArray(value) ? 'an array' : value === null ? 'null' : typeof value}`,
    };
  }
  return { key: keyOf(value, keyField, position), data: value, position };
}

/** One JSON text → a record, or an error record that names the position and the problem. */
export function recordFromJson(text: string, position: string, keyField: string | undefined): SourceRecord {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    return { key: position, position, error: `${position}: invalid JSON (${(e as Error).message})` };
  }
  return recordFromValue(value, position, keyField);
}
