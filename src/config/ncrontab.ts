/**
 * NCRONTAB (Azure Functions timer trigger) validation: six fields
 * `{second} {minute} {hour} {day} {month} {day-of-week}`, each `*`, a value, a range `a-b`, a step `x/n`
 * and comma-separated lists of those; months and weekdays also by three-letter English name.
 */

interface FieldSpec {
  name: string;
  min: number;
  max: number;
  names?: string[];
}

const MONTHS = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];
const DAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'];

const FIELDS: FieldSpec[] = [
  { name: 'second', min: 0, max: 59 },
  { name: 'minute', min: 0, max: 59 },
  { name: 'hour', min: 0, max: 23 },
  { name: 'day of month', min: 1, max: 31 },
  { name: 'month', min: 1, max: 12, names: MONTHS },
  { name: 'day of week', min: 0, max: 6, names: DAYS },
];

function parseValue(text: string, spec: FieldSpec): number | string {
  if (/^\d+$/.test(text)) {
    const n = Number(text);
    if (n < spec.min || n > spec.max) return `${spec.name} value ${n} is outside ${spec.min}-${spec.max}`;
    return n;
  }
  if (spec.names) {
    const index = spec.names.indexOf(text.toLowerCase());
    if (index >= 0) return spec.names === MONTHS ? index + 1 : index;
  }
  return `'${text}' is not a valid ${spec.name}${spec.names ? ` (use ${spec.min}-${spec.max} or a name such as ${spec.names[1]})` : ` (use ${spec.min}-${spec.max})`}`;
}

function checkField(text: string, spec: FieldSpec): string[] {
  const errors: string[] = [];
  if (text === '') return [`${spec.name} field is empty`];
  for (const part of text.split(',')) {
    if (part === '') {
      errors.push(`${spec.name} field has an empty list element`);
      continue;
    }
    const [range, step, extra] = part.split('/');
    if (extra !== undefined) {
      errors.push(`'${part}' has more than one '/' in the ${spec.name} field`);
      continue;
    }
    if (step !== undefined) {
      if (!/^\d+$/.test(step) || Number(step) === 0) {
        errors.push(`step '/${step}' in the ${spec.name} field must be a positive whole number`);
      } else if (Number(step) > spec.max - spec.min + 1) {
        errors.push(`step '/${step}' is larger than the ${spec.name} range ${spec.min}-${spec.max}`);
      }
    }
    if (range === '*' || range === undefined) continue;
    const bounds = range.split('-');
    if (bounds.length > 2) {
      errors.push(`'${range}' is not a valid range in the ${spec.name} field`);
      continue;
    }
    const values = bounds.map((b) => parseValue(b, spec));
    const bad = values.filter((v): v is string => typeof v === 'string');
    if (bad.length) {
      errors.push(...bad);
      continue;
    }
    if (values.length === 2 && (values[0] as number) > (values[1] as number)) {
      errors.push(`range '${range}' in the ${spec.name} field runs backwards`);
    }
  }
  return errors;
}

/**
 * Validates a six-field NCRONTAB expression. Returns the problems found (empty when valid).
 * Timer triggers also accept a TimeSpan (`hh:mm:ss`) on dedicated plans; the connector requires NCRONTAB.
 */
export function validateNcrontab(expression: string): string[] {
  const fields = expression.trim().split(/\s+/);
  if (fields.length !== 6 || expression.trim() === '') {
    return [
      `expected 6 fields (second minute hour day month day-of-week), got ${expression.trim() === '' ? 0 : fields.length}`,
    ];
  }
  return fields.flatMap((f, i) => checkField(f, FIELDS[i]!));
}

export function isValidNcrontab(expression: string): boolean {
  return validateNcrontab(expression).length === 0;
}
