/**
 * Benchmark work that must be measured in a process of its own (peak RSS is per process):
 *
 *   node dist/bench/child.js recrawl      — a full crawl with the runtime from the environment; the ledger was
 *                                           seeded by the parent, so every record is unchanged
 *   node dist/bench/child.js extract P I  — benchExtraction with P PDF pages and I OCR images
 *
 * Prints one JSON line on stdout. Peak RSS is the kernel's (process.resourceUsage().maxRSS), not a sample.
 */
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

async function main(): Promise<void> {
  const [task, a, b] = process.argv.slice(2);
  let out: Record<string, unknown>;
  if (task === 'recrawl') out = await recrawl();
  else if (task === 'extract') {
    const r = await benchExtraction({ pdfPages: Number(a ?? 50), images: Number(b ?? 5) });
    out = { ...r, peakRssMb: Math.max(r.peakRssMb, peakRssMb()) };
  } else throw new Error(`unknown bench task "${task}" (recrawl | extract PAGES IMAGES)`);
  process.stdout.write(JSON.stringify(out) + '\n');
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`bench child failed: ${(err as Error)?.stack ?? String(err)}\n`);
    process.exit(1);
  },
);
