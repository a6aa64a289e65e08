/**
 * The next occurrence of a six-field NCRONTAB expression (the Azure Functions timer trigger syntax), in UTC.
 * Semantics follow NCrontab, which the Functions host uses: a time matches when every field matches, so a
 * restricted day-of-month and a restricted day-of-week must BOTH match (unlike Vixie cron's "either").
 * Validation (and its messages) is {@link validateNcrontab}'s job; this only expands valid expressions.
 */
import { validateNcrontab } from '../config/ncrontab.js';

const MONTHS = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];
const DAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'];
const RANGES: [number, number, string[]?][] = [
  [0, 59],
  [0, 59],
  [0, 23],
  [1, 31],
  [1, 12, MONTHS],
  [0, 6, DAYS],
];

function value(text: string, names: string[] | undefined, offset: number): number {
  if (/^\d+$/.test(text)) return Number(text);
  return names!.indexOf(text.toLowerCase()) + offset;
}

/** The set of values one field allows. */
function expand(field: string, min: number, max: number, names?: string[]): Set<number> {
  const out = new Set<number>();
  const offset = names === MONTHS ? 1 : 0;
  for (const part of field.split(',')) {
    const [range, stepText] = part.split('/');
    const step = stepText === undefined ? 1 : Number(stepText);
    let lo = min;
    let hi = max;
    if (range !== '*' && range !== undefined) {
      const [a, b] = range.split('-');
      lo = value(a!, names, offset);
      // `a/n` runs from a to the end of the field (NCrontab); a bare `a` is just a.
      hi = b !== undefined ? value(b, names, offset) : stepText !== undefined ? max : lo;
    }
    for (let v = lo; v <= hi; v += step) out.add(v);
  }
  return out;
}

const sorted = (s: Set<number>) => [...s].sort((a, b) => a - b);

/**
 * The first time strictly after `from` that the expression fires (UTC), or `undefined` when it never fires
 * within `horizonYears` (e.g. `0 0 0 30 2 *`, February 30th). Throws on an invalid expression.
 */
export function nextOccurrence(expression: string, from: Date = new Date(), horizonYears = 5): Date | undefined {
  const problems = validateNcrontab(expression);
  if (problems.length) throw new Error(`'${expression}' is not a valid NCRONTAB expression: ${problems.join('; ')}`);
  const fields = expression.trim().split(/\s+/);
  const [seconds, minutes, hours, days, months, weekdays] = fields.map((f, i) =>
    expand(f, RANGES[i]![0], RANGES[i]![1], RANGES[i]![2]),
  ) as [Set<number>, Set<number>, Set<number>, Set<number>, Set<number>, Set<number>];
  const secondList = sorted(seconds);
  const minuteList = sorted(minutes);
  const hourList = sorted(hours);

  const start = new Date(Math.floor(from.getTime() / 1000) * 1000 + 1000);
  const startDay = Date.UTC(start.getUTCFullYear(), start.getUTCMonth(), start.getUTCDate());
  const lastDay = startDay + horizonYears * 366 * 86_400_000;
  for (let day = startDay; day <= lastDay; day += 86_400_000) {
    const d = new Date(day);
    if (!months.has(d.getUTCMonth() + 1) || !days.has(d.getUTCDate()) || !weekdays.has(d.getUTCDay())) continue;
    for (const h of hourList) {
      for (const m of minuteList) {
        for (const s of secondList) {
          const t = day + ((h * 60 + m) * 60 + s) * 1000;
          if (t >= start.getTime()) return new Date(t);
        }
      }
    }
  }
  return undefined;
}
