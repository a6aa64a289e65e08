/**
 * The local worker: what the Functions host does in Azure, done in one process for `graph-connector run`,
 * the tests and the benchmarks. It drains the control queue (crawl, finalize) and the item queue with at most
 * `concurrency` item operations in flight, calling the very same handlers the functions call. Messages that
 * fail are left to reappear (as the host does) and go to the poison path after `maxDequeueCount` deliveries.
 */
import { Semaphore, sleep as sleepFor } from '../core/async.js';
import { messageOf } from '../core/errors.js';
import type { PipelineDeps } from '../crawl/deps.js';
import { runSlice } from '../crawl/enumerate.js';
import { finalizeCrawl } from '../crawl/finalize.js';
import { GraphError } from '../graph/errors.js';
import { ingestItem, ingestPoison, type IngestOutcome } from '../ingest/ingest.js';

export interface WorkerOptions {
  /** Item operations in flight at once (Graph allows 25 concurrent operations per connection). */
  concurrency: number;
  /** Stop when both queues are empty, nothing is in flight, and this says so (e.g. the crawl finished). */
  stopWhen: () => Promise<boolean>;
  abortSignal?: AbortSignal;
  /** How long a received item message stays hidden before it is redelivered (host: visibilityTimeout). */
  visibilityTimeoutMs?: number;
  /**
   * How long a received crawl control message stays hidden (renewed every third of it while its slice runs):
   * after a crash, how soon the slice is picked up again from its checkpoint. Default 30 s.
   */
  controlVisibilityMs?: number;
  /** Deliveries before a message goes to the poison path (host.json maxDequeueCount). */
  maxDequeueCount?: number;
  /** Wait between polls of empty queues. */
  pollMs?: number;
  /**
   * Start at most this many item operations per second (evenly spaced), to stay under a per-connection
   * items/s limit instead of running into 429s. Default: no pacing (concurrency is the only bound).
   */
  itemsPerSecond?: number;
  /**
   * At most this many Graph calls at once (Graph allows 25 concurrent operations per connection). Each item
   * operation also makes several storage round trips (ledger read, settle, message delete); with this set,
   * `concurrency` may exceed it so those round trips overlap other items' Graph calls instead of holding a
   * Graph slot. Default: `concurrency` (every operation may call Graph at once).
   */
  graphConcurrency?: number;
  onOutcome?: (o: IngestOutcome) => void;
}

export interface WorkerStats {
  operations: number;
  ingested: number;
  deleted: number;
  throttled: number;
  deadLettered: number;
  superseded: number;
  /** Redeliveries of operations that had already settled (no Graph call). */
  duplicates: number;
  /** Operations put back for later (another version's write in flight, or too early). */
  deferred: number;
  transientFailures: number;
  controlMessages: number;
  /** Attachment files extracted into items, and files that failed (their items were dead-lettered). */
  attachments: { extracted: number; failed: number };
}

/**
 * How long a control message (a crawl slice, a finalize check) stays hidden; renewed every third of it while it
 * runs. Short, so a slice whose worker was killed is delivered again — and resumes — within seconds.
 */
const CONTROL_VISIBILITY_MS = 30_000;

/** Missed pacing slots that may be caught up at once (see WorkerOptions.itemsPerSecond). */
const PACING_BURST = 5;

/** Wait, but end early (without an error) when the worker is stopped. */
const sleep = (ms: number, abortSignal?: AbortSignal) =>
  sleepFor(ms, abortSignal ? { abortSignal } : {}).catch(() => undefined);

export async function runWorker(pipelineDeps: PipelineDeps, options: WorkerOptions): Promise<WorkerStats> {
  let deps = pipelineDeps;
  if (options.graphConcurrency && options.graphConcurrency < options.concurrency) {
    const gate = new Semaphore(options.graphConcurrency);
    const graph = pipelineDeps.graph;
    deps = {
      ...pipelineDeps,
      graph: {
        putItem: (...a: Parameters<typeof graph.putItem>) => gate.run(() => graph.putItem(...a)),
        deleteItem: (...a: Parameters<typeof graph.deleteItem>) => gate.run(() => graph.deleteItem(...a)),
        addActivities: (...a: Parameters<typeof graph.addActivities>) => gate.run(() => graph.addActivities(...a)),
      },
    };
  }
  const { state, control, logger } = deps;
  const visibility = options.visibilityTimeoutMs ?? 30_000;
  const controlVisibility = options.controlVisibilityMs ?? CONTROL_VISIBILITY_MS;
  const maxDequeue = options.maxDequeueCount ?? 5;
  const pollMs = options.pollMs ?? 250;
  const signal = options.abortSignal;
  const opts = signal ? { abortSignal: signal } : {};
  const stats: WorkerStats = {
    operations: 0,
    ingested: 0,
    deleted: 0,
    throttled: 0,
    deadLettered: 0,
    superseded: 0,
    duplicates: 0,
    deferred: 0,
    transientFailures: 0,
    controlMessages: 0,
    attachments: { extracted: 0, failed: 0 },
  };
  // Pacing: each item operation takes the next start slot, 1/itemsPerSecond apart. Slots missed while no
  // message was at hand (a queue round trip) may be caught up, at most PACING_BURST of them at once — far below
  // the burst a per-connection token bucket of itemsPerSecond tokens allows.
  const gapMs = options.itemsPerSecond && options.itemsPerSecond > 0 ? 1000 / options.itemsPerSecond : 0;
  let nextSlot = 0;
  const pace = async () => {
    if (!gapMs) return;
    const now = performance.now();
    const at = Math.max(now - PACING_BURST * gapMs, nextSlot);
    nextSlot = at + gapMs;
    if (at > now) await sleep(at - now, signal);
  };
  const items = new Set<Promise<void>>();
  const controls = new Set<Promise<void>>();
  const track = (set: Set<Promise<void>>, p: Promise<void>) => {
    const q = p.finally(() => set.delete(q));
    set.add(q);
  };
  try {
    while (!signal?.aborted) {
      let received = 0;
      if (controls.size < 2) {
        const batch = await control.receive(2 - controls.size, controlVisibility, opts);
        received += batch.length;
        for (const m of batch) {
          stats.controlMessages++;
          track(
            controls,
            (async () => {
              if (!m.message) {
                logger.error('worker: unreadable control message dropped', { error: m.error?.message });
                await control.delete(m);
                return;
              }
              const handle = { messageId: m.messageId, popReceipt: m.popReceipt };
              const keepAlive = setInterval(() => {
                control.extend(handle, controlVisibility).then(
                  (pr) => (handle.popReceipt = pr),
                  () => undefined,
                );
              }, controlVisibility / 3);
              try {
                if (m.message.kind === 'crawl') {
                  const r = await runSlice(deps, m.message.crawlId, {
                    slice: m.message.slice,
                    dequeueCount: m.dequeueCount,
                    ...opts,
                  });
                  // Interrupted (we are stopping): leave the message; it comes back and the slice resumes.
                  if (r.status === 'interrupted') return;
                } else {
                  await finalizeCrawl(deps, m.message.crawlId, m.message.checks, opts);
                }
                await control.delete(handle);
              } finally {
                clearInterval(keepAlive);
              }
            })().catch((err: unknown) => {
              logger.error('worker: control message failed; it will be redelivered', { error: messageOf(err) });
            }),
          );
        }
      }
      const room = options.concurrency - items.size;
      if (room > 0) {
        const batch = await state.queue.receive(Math.min(32, room), visibility, opts);
        received += batch.length;
        for (const m of batch) {
          stats.operations++;
          track(
            items,
            (async () => {
              try {
                await pace();
                const payload = m.message ?? m.text;
                const outcome =
                  m.dequeueCount > maxDequeue
                    ? await ingestPoison(deps, payload, { dequeueCount: m.dequeueCount, messageId: m.messageId })
                    : await ingestItem(deps, {
                        payload,
                        dequeueCount: m.dequeueCount,
                        messageId: m.messageId,
                        ...opts,
                      });
                count(stats, outcome);
                options.onOutcome?.(outcome);
                await state.queue.delete(m);
              } catch (err) {
                // Left in the queue: it reappears after the visibility timeout, as under the Functions host.
                stats.transientFailures++;
                // ingestItem already logged a Graph failure it rethrows; anything else (storage, a bug) is new here.
                logger[err instanceof GraphError ? 'debug' : 'warn'](
                  'worker: operation failed; it will be redelivered',
                  {
                    messageId: m.messageId,
                    dequeueCount: m.dequeueCount,
                    error: messageOf(err),
                  },
                );
              }
            })(),
          );
        }
      }
      if (received === 0) {
        if (items.size === 0 && controls.size === 0 && (await options.stopWhen())) break;
        if (items.size > 0) await Promise.race([...items, sleep(pollMs, signal)]);
        else await sleep(pollMs, signal);
      } else if (options.concurrency - items.size <= 0) {
        await Promise.race(items);
      }
    }
  } catch (err) {
    // Stopping (SIGTERM, Ctrl-C) aborts a queue poll in flight: that is a normal stop, not a failure. Operations
    // already started are awaited below; a message they did not finish reappears after its visibility timeout.
    if (!signal?.aborted) throw err;
  }

  await Promise.allSettled([...items, ...controls]);
  return stats;
}

function count(stats: WorkerStats, o: IngestOutcome): void {
  if (o.outcome === 'ingested') stats.ingested++;
  else if (o.outcome === 'deleted') stats.deleted++;
  else if (o.outcome === 'throttled') stats.throttled++;
  else if (o.outcome === 'deadLettered') stats.deadLettered++;
  else if (o.outcome === 'superseded') stats.superseded++;
  else if (o.outcome === 'duplicate') stats.duplicates++;
  else if (o.outcome === 'deferred') stats.deferred++;
  if ((o.outcome === 'ingested' || o.outcome === 'deadLettered') && o.attachments) {
    stats.attachments.extracted += o.attachments.extracted;
    stats.attachments.failed += o.attachments.failed;
  }
}
