/**
 * A whole crawl in one process: start it, then run the local worker until the crawl's job is finished.
 * Used by `graph-connector run` / `crawl`, the end-to-end tests and the benchmarks.
 */
import { withLiveCounts } from '../crawl/counts.js';
import type { PipelineDeps } from '../crawl/deps.js';
import { startCrawl, type StartCrawlRequest, type StartCrawlResult } from '../crawl/start.js';
import type { CrawlJob } from '../state/jobs.js';
import { runWorker, type WorkerOptions, type WorkerStats } from './worker.js';

export interface LocalCrawlResult {
  start: StartCrawlResult;
  /** The finished job (absent when the crawl did not start). */
  job?: CrawlJob;
  stats?: WorkerStats;
}

const FINISHED = new Set(['completed', 'failed', 'cancelled']);

export async function crawlLocally(
  deps: PipelineDeps,
  request: StartCrawlRequest,
  options: Omit<WorkerOptions, 'stopWhen'>,
): Promise<LocalCrawlResult> {
  const start = await startCrawl(deps, request, options.abortSignal ? { abortSignal: options.abortSignal } : {});
  if (start.status !== 'started') return { start };
  return { start, ...(await drainCrawl(deps, start.crawlId, options)) };
}

/** Run the worker until crawl `crawlId` finished (or the signal aborts). */
export async function drainCrawl(
  deps: PipelineDeps,
  crawlId: string,
  options: Omit<WorkerOptions, 'stopWhen'>,
): Promise<{ job?: CrawlJob; stats: WorkerStats }> {
  let job: CrawlJob | undefined;
  const stats = await runWorker(deps, {
    ...options,
    stopWhen: async () => {
      job = await deps.state.jobs.get(deps.connectionId, crawlId);
      return !job || FINISHED.has(job.status);
    },
  });
  job = await deps.state.jobs.get(deps.connectionId, crawlId);
  if (job) job = await withLiveCounts(deps.state, job);
  return { ...(job ? { job } : {}), stats };
}
