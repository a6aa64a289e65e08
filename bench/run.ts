/**
 * `npm run bench [-- --quick] [-- --out FILE]`: the real pipeline (source → crawl → Azurite queue → ingest
 * worker → emulator over HTTPS), measured as ratios side by side in one run, printed as a table and written
 * to bench/results.json. See README "Benchmarks and reliability".
 */
import { spawn } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { cpus, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import type { ExternalItem } from '../src/config/model.js';
import { itemHash } from '../src/crawl/hash.js';
import type { Runtime } from '../src/host/runtime.js';
import { crawlLocally } from '../src/local/crawl-locally.js';
import { hashKeyOf, itemKeyOf } from '../src/state/keys.js';
import { benchPackage, packageTable } from './package.js';
import { ingestCallsScenario, resumeScenario, type IngestCallsFigures, type ResumeFigures } from './scale.js';
import { ROOT, startWorld, writeTickets, type World } from './world.js';

const LATENCY_MS = 100;
const GRAPH_CONCURRENCY = 25;
const ITEMS_PER_SEC = 25;

interface Sizes {
  rateItems: number;
  concurrencyItems: number;
  sequentialItems: number;
  recrawlBig: number;
  recrawlSmall: number;
  resumeRecords: number;
  resumeKills: number;
  callsItems: number;
  pdfPages: number;
  images: number;
}
const FULL: Sizes = {
  rateItems: 3000,
  concurrencyItems: 3000,
  sequentialItems: 300,
  recrawlBig: 1_000_000,
  recrawlSmall: 100_000,
  resumeRecords: 200_000,
  resumeKills: 3,
  callsItems: 2000,
  pdfPages: 200,
  images: 20,
};
const QUICK: Sizes = {
  rateItems: 500,
  concurrencyItems: 1000,
  sequentialItems: 100,
  recrawlBig: 10_000,
  recrawlSmall: 1_000,
  resumeRecords: 20_000,
  resumeKills: 3,
  callsItems: 500,
  pdfPages: 40,
  images: 4,
};

interface IngestFigures {
  items: number;
  ingested: number;
  status: string | undefined;
  requests: number;
  throttled: number;
  throttledShare: number;
  /** first item request sent → last successful item response, seconds */
  graphSeconds: number;
  itemsPerSec: number;
  /** crawl start → job completed (enumeration, finalize checks included) */
  wallSeconds: number;
  endToEndItemsPerSec: number;
}

async function ingestScenario(
  world: World,
  prefix: string,
  n: number,
  settings: { rateLimit: number; itemsPerSecond?: number; workerConcurrency?: number },
): Promise<{ figures: IngestFigures; rt: Runtime }> {
  const path = join(world.dir, `${prefix}.jsonl`);
  await writeTickets(path, prefix, n);
  const rt = await world.runtime(await world.envFor(path));
  await world.admin('settings', {
    method: 'PATCH',
    body: { latencyMs: LATENCY_MS, rateLimit: settings.rateLimit, maxConcurrency: GRAPH_CONCURRENCY, faultRate: 0 },
  });
  await world.takeItemRequests();
  const t0 = performance.now();
  const r = await crawlLocally(
    rt.pipeline,
    { mode: 'full', trigger: 'cli' },
    {
      concurrency: settings.workerConcurrency ?? GRAPH_CONCURRENCY,
      graphConcurrency: GRAPH_CONCURRENCY,
      pollMs: 20,
      visibilityTimeoutMs: 30_000,
      ...(settings.itemsPerSecond ? { itemsPerSecond: settings.itemsPerSecond } : {}),
    },
  );
  const wallSeconds = (performance.now() - t0) / 1000;
  const reqs = (await world.takeItemRequests()).filter((q) => q.method === 'PUT');
  const ok = reqs.filter((q) => q.status >= 200 && q.status < 300);
  const first = Math.min(...reqs.map((q) => Date.parse(q.time)));
  const last = Math.max(...ok.map((q) => Date.parse(q.time) + q.durationMs));
  const graphSeconds = (last - first) / 1000;
  const throttled = reqs.filter((q) => q.status === 429).length;
  return {
    rt,
    figures: {
      items: n,
      ingested: r.job?.counts.ingested ?? 0,
      status: r.job?.status,
      requests: reqs.length,
      throttled,
      throttledShare: reqs.length ? throttled / reqs.length : 0,
      graphSeconds,
      itemsPerSec: graphSeconds > 0 ? ok.length / graphSeconds : 0,
      wallSeconds,
      endToEndItemsPerSec: r.job?.counts.ingested ? r.job.counts.ingested / wallSeconds : 0,
    },
  };
}

/**
 * What the storage emulator can do on this machine, measured in the same run: point reads (its cheapest
 * operation) from 25 concurrent callers for 3 s. The ingest of one new item costs about
 * STORAGE_REQUESTS_PER_ITEM storage requests (enumeration: ledger read, pending mark, enqueue; ingest:
 * receive share, ledger read, settle = read + counter read + transaction, message delete).
 */
const STORAGE_REQUESTS_PER_ITEM = 8;
async function storageCeiling(rt: Runtime): Promise<{ pointReadsPerSec: number; itemsPerSecCeiling: number }> {
  const table = rt.pipeline.state.cursors.table;
  await table.upsertEntity({ partitionKey: 'benchprobe', rowKey: 'probe', v: 1 });
  let ops = 0;
  const t0 = performance.now();
  const until = t0 + 3_000;
  await Promise.all(
    Array.from({ length: GRAPH_CONCURRENCY }, async () => {
      while (performance.now() < until) {
        await table.getEntity('benchprobe', 'probe');
        ops++;
      }
    }),
  );
  const pointReadsPerSec = ops / ((performance.now() - t0) / 1000);
  return { pointReadsPerSec, itemsPerSecCeiling: pointReadsPerSec / STORAGE_REQUESTS_PER_ITEM };
}

/** The samples' loop: map each record, then `await` one PUT after another. */
async function sequentialScenario(world: World, rt: Runtime, n: number) {
  await world.admin('settings', {
    method: 'PATCH',
    body: { latencyMs: LATENCY_MS, rateLimit: 0, maxConcurrency: GRAPH_CONCURRENCY, faultRate: 0 },
  });
  const items: ExternalItem[] = [];
  for await (const record of rt.pipeline.source().read()) {
    const m = rt.pipeline.mapper.map(record);
    if (m.ok) items.push(m.item);
    if (items.length >= n) break;
  }
  const t0 = performance.now();
  for (const item of items) await rt.graph.putItem(rt.pipeline.connectionId, item);
  const seconds = (performance.now() - t0) / 1000;
  await world.takeItemRequests();
  return { items: items.length, seconds, itemsPerSec: items.length / seconds };
}

function runChild(args: string[], env: Record<string, string>): Promise<Record<string, any>> {
  return new Promise((resolve, reject) => {
    // BENCH_CPU_PROF=DIR: write a V8 CPU profile of each child (open it in Chrome DevTools).
    const prof = process.env.BENCH_CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}`] : [];
    const child = spawn(process.execPath, [...prof, join(import.meta.dirname, 'child.js'), ...args], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('exit', (code) => {
      if (code !== 0) return reject(new Error(`bench child ${args.join(' ')} exited ${code}: ${err.slice(-2000)}`));
      try {
        resolve(JSON.parse(out.trim().split('\n').pop() ?? '') as Record<string, any>);
      } catch {
        reject(new Error(`bench child ${args.join(' ')} printed no JSON: ${out.slice(-500)} ${err.slice(-500)}`));
      }
    });
  });
}

/**
 * Recrawl with no change. The first crawl's end state is written straight into the snapshot (what the fold of
 * 100,000 settled PUTs would leave behind: every item with the hash of its mapped item), without the hour those
 * PUTs would take here; the snapshot is written by the same writer the crawl uses. The second crawl is the real
 * pipeline in a child process of its own.
 */
async function recrawlScenario(world: World, prefix: string, n: number) {
  const path = join(world.dir, `${prefix}.jsonl`);
  await writeTickets(path, prefix, n);
  const env = await world.envFor(path);
  const rt = await world.runtime(env);
  const { connectionId, state } = rt.pipeline;
  const entries: { hi: number; lo: number; a: number; b: number; id: string }[] = [];
  for await (const record of rt.pipeline.source().read()) {
    const m = rt.pipeline.mapper.map(record);
    if (!m.ok) throw new Error(`bench record ${record.key} was rejected: ${m.reason.message}`);
    const k = itemKeyOf(m.item.id);
    const [a, b] = hashKeyOf(itemHash(m.item));
    entries.push({ hi: k.hi, lo: k.lo, a, b, id: m.item.id });
  }
  entries.sort((x, y) => x.hi - y.hi || x.lo - y.lo);
  const writer = state.snapshots.writer(connectionId, 1);
  for (const e of entries) await writer.add(e.hi, e.lo, e.a, e.b, e.id);
  const ref = await writer.finish();
  await state.snapshots.commit(connectionId, ref, undefined);
  entries.length = 0;
  await world.takeItemRequests();
  const r = await runChild(['recrawl'], env);
  const reqs = await world.takeItemRequests();
  const writes = reqs.filter((q) => (q.method === 'PUT' || q.method === 'DELETE') && q.status < 300).length;
  return {
    records: n,
    status: r.status as string,
    unchanged: Number(r.counts?.unchanged ?? 0),
    graphWrites: writes,
    seconds: Number(r.seconds),
    /** seconds from the crawl's start to the first progress report of each phase */
    phases: r.phases as Record<string, number>,
    recordsPerSec: n / Number(r.seconds),
    peakRssMb: Number(r.peakRssMb),
    baselineRssMb: Number(r.baselineRssMb),
    peakHeapUsedMb: Number(r.peakHeapUsedMb),
    storageCalls: Number(r.storageCalls ?? NaN),
    storageCallsPerRecord: Number(r.storageCalls ?? NaN) / n,
  };
}

const SKIPPED_INGEST: IngestFigures = {
  items: 0,
  ingested: 0,
  status: 'skipped',
  requests: 0,
  throttled: 0,
  throttledShare: NaN,
  graphSeconds: NaN,
  itemsPerSec: NaN,
  wallSeconds: NaN,
  endToEndItemsPerSec: NaN,
};
const SKIPPED_RECRAWL = {
  records: 0,
  status: 'skipped',
  unchanged: 0,
  graphWrites: NaN,
  seconds: NaN,
  recordsPerSec: NaN,
  peakRssMb: NaN,
  baselineRssMb: NaN,
  peakHeapUsedMb: NaN,
  storageCalls: NaN,
  storageCallsPerRecord: NaN,
  phases: {} as Record<string, number>,
};

const f = (x: number, d = 2) => (Number.isFinite(x) ? x.toFixed(d) : String(x));
const mark = (ok: boolean) => (ok ? 'met' : 'MISSED');

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: {
      quick: { type: 'boolean', default: false },
      out: { type: 'string', default: join(ROOT, 'bench', 'results.json') },
      /** Comma-separated subset: rate, concurrency, recrawl, resume, calls, extraction, package. */
      only: { type: 'string' },
      /** The recrawl's size (and a tenth of it, for the memory ratio). */
      records: { type: 'string' },
    },
    strict: true,
  });
  const sizes = { ...(values.quick ? QUICK : FULL) };
  if (values.records !== undefined) {
    const n = Number(values.records);
    if (!Number.isInteger(n) || n < 10)
      throw new Error(`--records must be a whole number of at least 10 (got ${values.records})`);
    sizes.recrawlBig = n;
    sizes.recrawlSmall = Math.round(n / 10);
  }
  const only = values.only ? new Set(values.only.split(',').map((x) => x.trim())) : undefined;
  const want = (name: string) => !only || only.has(name);
  const started = performance.now();
  const log = (m: string) =>
    process.stderr.write(`[bench ${((performance.now() - started) / 1000).toFixed(0)}s] ${m}\n`);
  log(`${values.quick ? 'quick' : 'full'} run: ${JSON.stringify(sizes)}`);
  const header = `graph-connector bench (${values.quick ? 'quick' : 'full'}) — node ${process.version}, ${cpus().length} cores, ${f(totalmem() / 2 ** 30, 1)} GiB`;
  // The deploy artifact needs no Azurite or emulator: measured first, on its own.
  const pkg = want('package') ? await benchPackage(ROOT, { log }) : undefined;
  const pkgLines = pkg
    ? [
        '',
        `deploy artifact, before and after \`npm run package\` (median of ${pkg.runs} fresh processes)`,
        ...packageTable(pkg),
      ]
    : [];
  if (only && [...only].every((x) => x === 'package')) {
    process.stdout.write(
      [header, ...pkgLines, `total ${f((performance.now() - started) / 1000, 1)} s`].join('\n') + '\n',
    );
    await mkdir(dirname(values.out), { recursive: true });
    const results = {
      generatedAt: new Date().toISOString(),
      node: process.version,
      cores: cpus().length,
      figures: { package: pkg },
    };
    await writeFile(values.out, JSON.stringify(results, null, 2) + '\n');
    log(`wrote ${values.out}`);
    return;
  }
  const world = await startWorld();
  try {
    if (want('rate'))
      log(`rate-bound ingest: ${sizes.rateItems} items, ${ITEMS_PER_SEC} items/s cap, ${LATENCY_MS} ms latency`);
    const rate = want('rate')
      ? (
          await ingestScenario(world, 'RATE', sizes.rateItems, {
            rateLimit: ITEMS_PER_SEC,
            itemsPerSecond: ITEMS_PER_SEC,
          })
        ).figures
      : SKIPPED_INGEST;
    let conc = { figures: SKIPPED_INGEST, workerConcurrency: 0 };
    let seq = { items: 0, seconds: NaN, itemsPerSec: NaN };
    let storage = { pointReadsPerSec: NaN, itemsPerSecCeiling: NaN };
    if (want('concurrency')) {
      log(`concurrency-bound ingest: ${sizes.concurrencyItems} items, no items/s cap`);
      const c = await ingestScenario(world, 'CONC', sizes.concurrencyItems, {
        rateLimit: 0,
        workerConcurrency: Number(process.env.BENCH_WORKER_CONCURRENCY ?? 2 * GRAPH_CONCURRENCY),
      });
      conc = { ...c, workerConcurrency: Number(process.env.BENCH_WORKER_CONCURRENCY ?? 2 * GRAPH_CONCURRENCY) };
      log(`sequential PUTs (the samples' loop): ${sizes.sequentialItems} of the same items`);
      seq = await sequentialScenario(world, c.rt, sizes.sequentialItems);
      log('storage ceiling: Azurite point reads, 25 concurrent, 3 s');
      storage = await storageCeiling(c.rt);
    }
    let small = SKIPPED_RECRAWL;
    let big = SKIPPED_RECRAWL;
    if (want('recrawl')) {
      log(`recrawl with no change: ${sizes.recrawlSmall} records`);
      small = await recrawlScenario(world, 'RCS', sizes.recrawlSmall);
      log(`recrawl with no change: ${sizes.recrawlBig} records`);
      big = await recrawlScenario(world, 'RCB', sizes.recrawlBig);
    }
    let resume: ResumeFigures | undefined;
    if (want('resume')) {
      log(`resume: ${sizes.resumeRecords}-record first enumeration, its worker SIGKILLed ${sizes.resumeKills} times`);
      resume = await resumeScenario(world, sizes.resumeRecords, sizes.resumeKills, log);
    }
    let calls: IngestCallsFigures | undefined;
    if (want('calls')) {
      log(`storage calls per item operation: ${sizes.callsItems} items`);
      calls = await ingestCallsScenario(world, sizes.callsItems);
    }
    let extraction: Record<string, any> | undefined;
    if (want('extraction')) {
      log(`extraction: ${sizes.pdfPages} PDF pages, ${sizes.images} OCR images`);
      extraction = await runChild(['extract', String(sizes.pdfPages), String(sizes.images)], {});
    }

    const concIdeal = GRAPH_CONCURRENCY / (LATENCY_MS / 1000);
    const figures = {
      rateBound: { ratio: rate.itemsPerSec / ITEMS_PER_SEC, ...rate },
      concurrencyBound: {
        ratio: conc.figures.itemsPerSec / concIdeal,
        ideal: concIdeal,
        ...conc.figures,
        storage,
        ratioToStorageCeiling: conc.figures.itemsPerSec / storage.itemsPerSecCeiling,
      },
      versusSequential: { ratio: conc.figures.itemsPerSec / seq.itemsPerSec, sequential: seq },
      recrawl: {
        records: big.records,
        recordsPerSecond: big.recordsPerSec,
        peakRssMb: big.peakRssMb,
        graphWrites: big.graphWrites,
        storageCallsPerRecord: big.storageCallsPerRecord,
        small,
        big,
        rssRatio: big.peakRssMb / small.peakRssMb,
      },
      resume,
      storageCallsPerItem: calls,
      extraction,
    };
    const targets = {
      rateBound: figures.rateBound.ratio >= 0.95 && rate.throttledShare <= 0.01,
      concurrencyBound: figures.concurrencyBound.ratio >= 0.9,
      versusSequential: figures.versusSequential.ratio >= 5,
      recrawlWrites: big.graphWrites === 0 && small.graphWrites === 0,
      recrawlRate: big.recordsPerSec >= 20_000,
      recrawlCalls: big.storageCallsPerRecord <= 0.01,
      recrawlRss: big.peakRssMb <= 300,
      recrawlRssRatio: figures.recrawl.rssRatio <= 1.3,
      resume:
        !!resume &&
        resume.completed &&
        resume.pagesReRead <= resume.kills &&
        resume.lost === 0 &&
        resume.duplicated === 0 &&
        resume.countsExact,
      // The receive is one call per batch of 16 (the host's batchSize): its share rides on top of the per-item three.
      calls: !!calls && calls.perItem - (calls.byKind['queue GET message'] ?? 0) / calls.items <= 3,
    };
    const allRows: [string, string, string, string][] = [
      [
        `1 rate-bound ingest (${rate.items} items, ${ITEMS_PER_SEC}/s cap, ${LATENCY_MS} ms, ${GRAPH_CONCURRENCY} concurrent)`,
        `${f(rate.itemsPerSec, 1)} items/s ÷ ${ITEMS_PER_SEC} = ${f(figures.rateBound.ratio)}; 429s ${f(rate.throttledShare * 100, 2)}% (${rate.throttled}/${rate.requests})`,
        '≥ 0.95, ≤ 1% 429',
        mark(targets.rateBound),
      ],
      [
        `2 concurrency-bound ingest (${conc.figures.items} items, no cap; ${conc.workerConcurrency} operations in flight, ${GRAPH_CONCURRENCY} in Graph)`,
        `${f(conc.figures.itemsPerSec, 1)} items/s ÷ ${f(concIdeal, 0)} = ${f(figures.concurrencyBound.ratio)}; 429s ${conc.figures.throttled}`,
        '≥ 0.9',
        mark(targets.concurrencyBound),
      ],
      [
        `3 vs the samples' sequential loop (${seq.items} PUTs)`,
        `${f(conc.figures.itemsPerSec, 1)} ÷ ${f(seq.itemsPerSec, 1)} items/s = ${f(figures.versusSequential.ratio, 1)}×`,
        '≥ 5',
        mark(targets.versusSequential),
      ],
      [
        `4 recrawl, no change (${big.records} records)`,
        `${f(big.recordsPerSec, 0)} records/s; ${big.graphWrites} Graph writes; ${f(big.storageCallsPerRecord, 4)} storage calls/record (${big.storageCalls}); peak RSS ${f(big.peakRssMb, 0)} MB (JS heap ${f(big.peakHeapUsedMb, 0)} MB)`,
        '≥ 20,000/s; 0 / ≤ 0.01; ≤ 300 MB',
        `${mark(targets.recrawlRate)} / ${mark(targets.recrawlWrites && targets.recrawlCalls)} / ${mark(targets.recrawlRss)}`,
      ],
      [
        `4 peak RSS ${big.records} ÷ ${small.records} records`,
        `${f(big.peakRssMb, 0)} ÷ ${f(small.peakRssMb, 0)} MB = ${f(figures.recrawl.rssRatio)} (at ${small.records}: ${f(small.recordsPerSec, 0)} records/s, ${small.graphWrites} writes)`,
        '≤ 1.3',
        mark(targets.recrawlRssRatio),
      ],
      [
        `5 first enumeration of ${resume?.records ?? 0} records, worker SIGKILLed ${resume?.kills ?? 0}×`,
        resume
          ? `${resume.completed ? 'completed' : 'NOT completed'} in ${f(resume.seconds, 0)} s; pages re-read ${resume.pagesReRead}; lost ${resume.lost}, duplicated ${resume.duplicated}; counts ${resume.countsExact ? 'exact' : 'WRONG'} (${resume.enumerated} read, ${resume.enqueued} operations; ${resume.extraMessages} messages sent twice, dropped at the fence)`
          : '',
        'completes; ≤ kills; 0, 0, exact',
        mark(targets.resume),
      ],
      [
        `6 storage calls per item operation (${calls?.items ?? 0} items)`,
        calls
          ? `${f(calls.perItem, 2)} (${Object.entries(calls.byKind)
              .map(([k, v]) => `${k} ${f(v / calls.items, 2)}`)
              .join(', ')})`
          : '',
        '≤ 3 + the batch receive',
        mark(targets.calls),
      ],
    ];
    // With --only, the figures that did not run are left out rather than shown as NaN and MISSED.
    const groups = ['rate', 'concurrency', 'concurrency', 'recrawl', 'recrawl', 'resume', 'calls'];
    const rows = allRows.filter((_, i) => want(groups[i]!));
    if (extraction) {
      rows.push([
        `extraction (${sizes.pdfPages} PDF pages, ${sizes.images} images)`,
        `${f(Number(extraction.pdfPagesPerSec), 1)} pages/s; ${f(Number(extraction.ocrImagesPerSec), 2)} images/s OCR; peak RSS ${f(Number(extraction.peakRssMb), 0)} MB`,
        '—',
        '',
      ]);
    }
    const widths = [0, 1, 2, 3].map((i) => Math.max(...rows.map((r) => r[i]!.length), 6));
    const line = (r: string[]) => r.map((c, i) => c.padEnd(widths[i]!)).join(' │ ');
    const out: string[] = [];
    out.push(header);
    out.push(line(['figure', 'measured', 'target', '']));
    out.push(widths.map((w) => '─'.repeat(w)).join('─┼─'));
    for (const r of rows) out.push(line(r));
    const endToEnd = [
      ...(want('rate') ? [`rate-bound ${f(rate.endToEndItemsPerSec, 1)} items/s in ${f(rate.wallSeconds, 1)} s`] : []),
      ...(want('concurrency')
        ? [`concurrency-bound ${f(conc.figures.endToEndItemsPerSec, 1)} items/s in ${f(conc.figures.wallSeconds, 1)} s`]
        : []),
    ];
    if (endToEnd.length) out.push(`end to end (crawl start → job completed): ${endToEnd.join('; ')}`);
    out.push(...pkgLines);
    out.push(`total ${f((performance.now() - started) / 1000, 1)} s`);
    process.stdout.write(out.join('\n') + '\n');
    const results = {
      generatedAt: new Date().toISOString(),
      mode: values.quick ? 'quick' : 'full',
      node: process.version,
      cores: cpus().length,
      sizes,
      settings: { latencyMs: LATENCY_MS, concurrency: GRAPH_CONCURRENCY, itemsPerSecond: ITEMS_PER_SEC },
      figures: { ...figures, ...(pkg ? { package: pkg } : {}) },
      targets,
      seconds: (performance.now() - started) / 1000,
    };
    await mkdir(dirname(values.out), { recursive: true });
    await writeFile(values.out, JSON.stringify(results, null, 2) + '\n');
    log(`wrote ${values.out}`);
  } finally {
    await world.close();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`bench failed: ${(err as Error)?.stack ?? String(err)}\n`);
    process.exit(1);
  },
);
