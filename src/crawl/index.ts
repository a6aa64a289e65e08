/** A crawl's steps: start, enumerate in resumable slices, finalize (sweep, watermark, snapshot). */
export {
  startCrawl,
  failCrawl,
  CrawlError,
  type StartCrawlRequest,
  type StartCrawlResult,
  type CrawlRequestOptions,
} from './start.js';
export { runSlice, type SliceResult } from './enumerate.js';
export { finalizeCrawl, type FinalizeResult } from './finalize.js';
export { liveCounts, withLiveCounts, outstandingOf } from './counts.js';
export { rebuildSnapshot } from './snapshot.js';
export { DEFAULT_SETTINGS, type PipelineDeps, type PipelineSettings, type CrawlProgress } from './deps.js';
