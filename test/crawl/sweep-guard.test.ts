import { describe, expect, it } from 'vitest';
import { decideSweep, type SweepGuardInput } from '../../src/crawl/sweep-guard.js';

const healthy: SweepGuardInput = {
  enumerationComplete: true,
  outstanding: 0,
  deadLettered: 0,
  ledgerCount: 1000,
  candidates: 20,
  maxDeleteRatio: 0.1,
  force: false,
};

describe('sweep guard', () => {
  it('allows a small sweep after a complete, settled crawl', () => {
    expect(decideSweep(healthy).allowed).toBe(true);
  });
  it('refuses after a partial enumeration, whatever the numbers', () => {
    const d = decideSweep({ ...healthy, enumerationComplete: false, candidates: 1, force: true });
    expect(d.allowed).toBe(false);
    expect(d.reason).toMatch(/did not read the source to the end/);
  });
  it('waits while operations are outstanding', () => {
    const d = decideSweep({ ...healthy, outstanding: 3 });
    expect(d).toEqual({ allowed: false, reason: expect.stringContaining('3 item operation(s)') });
  });
  it('refuses a mass delete above the ratio and says how to override', () => {
    const d = decideSweep({ ...healthy, candidates: 950 });
    expect(d.allowed).toBe(false);
    expect(d.reason).toMatch(/950 of 1000 items \(95\.0%\).*SWEEP_MAX_DELETE_RATIO.*force=true/);
    expect(decideSweep({ ...healthy, candidates: 950, force: true }).allowed).toBe(true);
  });
});
