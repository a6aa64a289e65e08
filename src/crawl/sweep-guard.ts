/**
 * The sweep deletes items that a full crawl did not see — but only when it is safe. This decides.
 * Reasons are written for the person reading the job record, not for a developer.
 */
export interface SweepGuardInput {
  /** The crawl enumerated its source to the end (no error, no cancellation). */
  enumerationComplete: boolean;
  /** Item operations of the crawl not yet settled (ingested, dead-lettered). */
  outstanding: number;
  /** Items of the crawl that failed for good (dead letters); they are not deleted, but they show the crawl was unhealthy. */
  deadLettered: number;
  /** Items the ledger held before the crawl (settled, not deleted). */
  ledgerCount: number;
  /** Items the sweep would delete (in the ledger, not seen by this crawl). */
  candidates: number;
  /** The largest share of ledgerCount that may be deleted at once, in (0, 1]. */
  maxDeleteRatio: number;
  /** An operator override (resync with force=true). */
  force: boolean;
}

export type SweepDecision = { allowed: true; reason: string } | { allowed: false; reason: string };

export function decideSweep(input: SweepGuardInput): SweepDecision {
  if (!input.enumerationComplete) {
    return {
      allowed: false,
      reason: 'the crawl did not read the source to the end, so a missing item may only be unread; nothing is deleted',
    };
  }
  if (input.outstanding > 0) {
    return {
      allowed: false,
      reason: `${input.outstanding} item operation(s) of this crawl have not settled yet; the sweep waits for them`,
    };
  }
  if (input.candidates === 0) return { allowed: true, reason: 'nothing to delete' };
  const ratio = input.ledgerCount > 0 ? input.candidates / input.ledgerCount : 1;
  if (ratio > input.maxDeleteRatio && !input.force) {
    const pct = (ratio * 100).toFixed(1);
    const max = (input.maxDeleteRatio * 100).toFixed(1);
    return {
      allowed: false,
      reason:
        `the sweep would delete ${input.candidates} of ${input.ledgerCount} items (${pct}%), more than the ` +
        `guard allows (${max}%, SWEEP_MAX_DELETE_RATIO). If the source really lost that many records, run ` +
        `a full resync with force=true; otherwise check the source (a truncated read looks exactly like this)`,
    };
  }
  return {
    allowed: true,
    reason: input.force && ratio > input.maxDeleteRatio ? 'forced past the ratio guard' : 'within the ratio guard',
  };
}
