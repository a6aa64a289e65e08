/**
 * Benchmark work that must be measured in a process of its own (peak RSS is per process):
 *
 *   node dist/bench/child.js recrawl        — a full crawl with the runtime from the environment; the snapshot was
 *                                             seeded by the parent, so every record is unchanged
 *   node dist/bench/child.js enumerate LOG  — run the enumeration slices of the started crawl (control queue only,
 *                                             no ingest) until it is enumerated; every page the source hands out is
 *                                             appended to LOG synchronously (so a SIGKILL loses no count)
 *   node dist/bench/child.js extract P I    — benchExtraction with P PDF pages and I OCR images
 *
 * Prints one JSON line on stdout. Peak RSS is the kernel's (process.resourceUsage().maxRSS), not a sample.
 */
import { appendFileSync } from 'node:fs';
import { runSlice } from '../src/crawl/enumerate.js';
import { benchExtraction } from '../src/extract/bench.js';
import { silentLogger } from '../src/log.js';
import { crawlLocally } from '../src/local/crawl-locally.js';
import { createRuntime } from '../src/host/runtime.js';

const peakRssMb = () => process.resourceUsage().maxRSS / 1024;

async function recrawl(): Promise<Record<string, unknown>> {
  let storageCalls = 0;
  const rt = await createRuntime({
    env: process.env,
    logger: silentLogger,
    settings: { finalizeDelayMs: 100, maxFinalizeDelayMs: 250 },
    onStorageRequest: () => storageCalls++,
  });
  const baselineMb = peakRssMb();
  // Live JS heap, sampled: tells retained memory apart from what V8 merely has not given back yet.
  let peakHeap = process.memoryUsage().heapUsed;
  const sampler = setInterval(() => (peakHeap = Math.max(peakHeap, process.memoryUsage().heapUsed)), 50);
  const phases: Record<string, number> = {};
  const t0 = performance.now();
  rt.pipeline.onProgress = (p) => {
    phases[p.phase] ??= (performance.now() - t0) / 1000;
  };
  const r = await crawlLocally(
    rt.pipeline,
    { mode: 'full', trigger: 'cli' },
    { concurrency: 25, pollMs: 20, visibilityTimeoutMs: 30_000 },
  );
  const seconds = (performance.now() - t0) / 1000;
  clearInterval(sampler);
  if (r.start.status !== 'started') throw new Error(`the crawl did not start: ${JSON.stringify(r.start)}`);
  return {
    seconds,
    phases,
    status: r.job?.status,
    error: r.job?.error,
    counts: r.job?.counts,
    baselineRssMb: baselineMb,
    peakRssMb: peakRssMb(),
    peakHeapUsedMb: peakHeap / 2 ** 20,
    storageCalls,
  };
}

/** The enumeration only: run crawl slices from the control queue until the crawl is enumerated. */
async function enumerate(log: string): Promise<Record<string, unknown>> {
  const rt = await createRuntime({ env: process.env, logger: silentLogger });
  const { pipeline } = rt;
  const make = pipeline.source;
  pipeline.source = () => {
    const s = make();
    const readPages = s.readPages.bind(s);
    s.readPages = async function* (o) {
      for await (const p of readPages(o)) {
        appendFileSync(log, `${p.records.length}\n`);
        yield p;
      }
    };
    return s;
  };
  for (;;) {
    // A short visibility, renewed while the slice runs: after a kill the message is back within seconds.
    const [m] = await pipeline.control.receive(1, 4_000);
    if (!m) {
      await new Promise((r) => setTimeout(r, 100));
      continue;
    }
    if (!m.message) {
      await pipeline.control.delete(m);
      continue;
    }
    if (m.message.kind !== 'crawl') {
      // The finalize message: the enumeration is over (the parent checks the job).
      await pipeline.control.extend(m, 0);
      return { done: true };
    }
    const handle = { messageId: m.messageId, popReceipt: m.popReceipt };
    const keep = setInterval(() => {
      pipeline.control.extend(handle, 4_000).then(
        (pr) => (handle.popReceipt = pr),
        () => undefined,
      );
    }, 1_000);
    try {
      const r = await runSlice(pipeline, m.message.crawlId, { slice: m.message.slice, dequeueCount: m.dequeueCount });
      await pipeline.control.delete(handle);
      if (r.status === 'enumerated') return { done: true, counts: r.counts };
      if (r.status === 'failed') throw new Error(`the crawl failed: ${r.reason}`);
    } finally {
      clearInterval(keep);
    }
  }
}

async function main(): Promise<void> {
  const [task, a, b] = process.argv.slice(2);
  let out: Record<string, unknown>;
  if (task === 'recrawl') out = await recrawl();
  else if (task === 'enumerate') out = await enumerate(a ?? 'pages.log');
  else if (task === 'extract') {
    const r = await benchExtraction({ pdfPages: Number(a ?? 50), images: Number(b ?? 5) });
    out = { ...r, peakRssMb: Math.max(r.peakRssMb, peakRssMb()) };
  } else throw new Error(`unknown bench task "${task}" (recrawl | enumerate LOG | extract PAGES IMAGES)`);
  process.stdout.write(JSON.stringify(out) + '\n');
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`bench child failed: ${(err as Error)?.stack ?? String(err)}\n`);
    process.exit(1);
  },
);
