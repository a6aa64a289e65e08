/** Units of doctor: the NCRONTAB next-occurrence and the check runner (time limits, skips, isolation). */
import { describe, expect, it } from 'vitest';
import { nextOccurrence } from '../../src/doctor/schedule.js';
import { runChecks, type Check } from '../../src/doctor/runner.js';
import { decodeJwtPayload } from '../../src/doctor/checks.js';

const at = (iso: string) => new Date(iso);
const next = (expr: string, from: string) => nextOccurrence(expr, at(from))?.toISOString();

describe('nextOccurrence (NCRONTAB, UTC)', () => {
  it('every 6 hours: the next multiple of 6 h, strictly after now', () => {
    expect(next('0 0 */6 * * *', '2026-11-22T02:02:49Z')).toBe('2026-11-22T06:00:00.000Z');
    expect(next('0 0 */6 * * *', '2026-11-22T06:00:00Z')).toBe('2026-11-22T12:00:00.000Z');
    expect(next('0 0 */6 * * *', '2026-12-31T18:00:01Z')).toBe('2027-01-01T00:00:00.000Z');
  });

  it('seconds, lists, ranges and a/n steps', () => {
    expect(next('*/15 * * * * *', '2026-01-01T00:00:07Z')).toBe('2026-01-01T00:00:15.000Z');
    expect(next('30 5/20 * * * *', '2026-01-01T00:06:00Z')).toBe('2026-01-01T00:25:30.000Z');
    expect(next('0 0 8,17 * * *', '2026-01-01T09:00:00Z')).toBe('2026-01-01T17:00:00.000Z');
    expect(next('0 0 22-23 * * *', '2026-01-01T23:30:00Z')).toBe('2026-01-02T22:00:00.000Z');
  });

  it('weekdays by number and name (Saturday 2026-11-21 → Monday)', () => {
    expect(next('0 30 9 * * 1-5', '2026-11-21T12:00:00Z')).toBe('2026-11-23T09:30:00.000Z');
    expect(next('0 30 9 * * mon-fri', '2026-11-21T12:00:00Z')).toBe('2026-11-23T09:30:00.000Z');
    expect(next('0 0 0 1 jan *', '2026-03-01T00:00:00Z')).toBe('2027-01-01T00:00:00.000Z');
  });

  it('day-of-month AND day-of-week must both match (NCrontab, not Vixie cron): the next Friday the 13th', () => {
    expect(next('0 0 0 13 * 5', '2026-01-01T00:00:00Z')).toBe('2026-02-13T00:00:00.000Z');
    expect(next('0 0 0 13 * 5', '2026-02-14T00:00:00Z')).toBe('2026-03-13T00:00:00.000Z');
  });

  it('February 29th is found years ahead; February 30th never fires', () => {
    expect(next('0 0 0 29 2 *', '2026-03-01T00:00:00Z')).toBe('2028-02-29T00:00:00.000Z');
    expect(nextOccurrence('0 0 0 30 2 *', at('2026-01-01T00:00:00Z'))).toBeUndefined();
  });

  it('throws with the validator message for an invalid expression', () => {
    expect(() => nextOccurrence('0 */5 * * *')).toThrow(/expected 6 fields/);
  });
});

describe('runChecks', () => {
  type Ctx = { log: string[] };
  const check = (id: string, run: Check<Ctx>['run'], needs?: string[]): Check<Ctx> => ({
    id,
    title: `check ${id}`,
    ...(needs ? { needs } : {}),
    run,
  });

  it('a check that ignores its abort signal is ended at its time limit, and the next checks still run', async () => {
    const ctx: Ctx = { log: [] };
    let sawAbort = false;
    const started = Date.now();
    const results = await runChecks(
      [
        check('hang', (_c, { abortSignal }) => {
          abortSignal.addEventListener('abort', () => (sawAbort = true));
          return new Promise(() => {}); // never settles
        }),
        check('after', async (c) => {
          c.log.push('after ran');
          return { status: 'pass', message: 'ok' };
        }),
      ],
      ctx,
      { timeoutMs: 300 },
    );
    expect(Date.now() - started).toBeLessThan(3000);
    expect(results[0]).toMatchObject({ id: 'hang', status: 'fail' });
    expect(results[0]!.message).toMatch(/did not finish within 0\.3 s/);
    expect(results[0]!.fix).toMatch(/--timeout/);
    expect(sawAbort).toBe(true);
    expect(results[1]).toMatchObject({ id: 'after', status: 'pass' });
    expect(ctx.log).toEqual(['after ran']);
  });

  it('dependents of a failed or skipped check are skipped with the reason; a thrown error is a failure', async () => {
    const ran: string[] = [];
    const results = await runChecks(
      [
        check('a', async () => {
          ran.push('a');
          throw new Error('boom');
        }),
        check(
          'b',
          async () => {
            ran.push('b');
            return { status: 'pass', message: 'b' };
          },
          ['a'],
        ),
        check(
          'c',
          async () => {
            ran.push('c');
            return { status: 'pass', message: 'c' };
          },
          ['b'],
        ),
        check('d', async () => {
          ran.push('d');
          return { status: 'warn', message: 'd', fix: 'x' };
        }),
        check(
          'e',
          async () => {
            ran.push('e');
            return { status: 'pass', message: 'e' };
          },
          ['d'],
        ),
      ],
      { log: [] },
    );
    expect(ran).toEqual(['a', 'd', 'e']);
    expect(results.map((r) => [r.id, r.status])).toEqual([
      ['a', 'fail'],
      ['b', 'skip'],
      ['c', 'skip'],
      ['d', 'warn'],
      ['e', 'pass'],
    ]);
    expect(results[0]!.message).toContain('boom');
    expect(results[1]!.message).toBe('skipped: check a failed');
    expect(results[2]!.message).toBe('skipped: check b was skipped');
  });

  it('an interrupted run skips the remaining checks', async () => {
    const ac = new AbortController();
    const results = await runChecks(
      [
        check('first', async () => {
          ac.abort(new Error('SIGINT'));
          return { status: 'pass', message: 'ok' };
        }),
        check('second', async () => ({ status: 'pass', message: 'never' })),
      ],
      { log: [] },
      { abortSignal: ac.signal },
    );
    expect(results[1]).toMatchObject({ status: 'skip', message: 'skipped: doctor was interrupted' });
  });
});

describe('decodeJwtPayload', () => {
  it('reads the claims of a JWT without verifying it, and refuses what is not one', () => {
    const part = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
    const token = `${part({ alg: 'RS256' })}.${part({ roles: ['A', 'B'], appid: 'x' })}.sig`;
    expect(decodeJwtPayload(token)).toEqual({ roles: ['A', 'B'], appid: 'x' });
    expect(decodeJwtPayload('opaque-token')).toBeUndefined();
    expect(decodeJwtPayload('a.!!!.c')).toBeUndefined();
  });
});
