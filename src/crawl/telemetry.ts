/**
 * The crawl's and the ingest's metrics (names in src/core/telemetry.ts, described in docs/operations.md). Reporting
 * never fails the work it reports on.
 */
import type { OperationOptions } from '../core/async.js';
import { messageOf } from '../core/errors.js';
import { METRICS, noTelemetry, type Telemetry } from '../core/telemetry.js';
import type { CrawlJob } from '../state/jobs.js';
import type { PipelineDeps } from './deps.js';

export function telemetryOf(deps: Pick<PipelineDeps, 'telemetry'>): Telemetry {
  return deps.telemetry ?? noTelemetry;
}

/** The item queue's approximate depth as a gauge (one storage call; skipped when telemetry is off). */
export async function observeQueueDepth(deps: PipelineDeps, options: OperationOptions = {}): Promise<void> {
  const telemetry = telemetryOf(deps);
  if (!telemetry.enabled) return;
  try {
    telemetry.gauge(METRICS.queueDepth, await deps.state.queue.approximateCount(options));
  } catch (err) {
    deps.logger.debug('telemetry: the item queue depth could not be read', { error: messageOf(err) });
  }
}

/** A finished job's duration (start to finish, in seconds), with its status and mode. */
export function recordCrawlEnd(deps: PipelineDeps, job: CrawlJob): void {
  const started = Date.parse(job.startedAt);
  const finished = Date.parse(job.finishedAt ?? new Date(deps.now()).toISOString());
  if (!Number.isFinite(started) || !Number.isFinite(finished)) return;
  telemetryOf(deps).record(METRICS.crawlDuration, Math.max(0, finished - started) / 1000, {
    status: job.status,
    mode: job.mode,
  });
}
