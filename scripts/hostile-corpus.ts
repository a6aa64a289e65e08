/**
 * Writes the hostile-file corpus (src/extract/fixtures/hostile.ts) to a folder, with a manifest.json naming each
 * file's bug class and what it does; with --extract, also extracts each file in this process and prints the outcome,
 * the time, the longest the event loop was busy in one stretch, and the peak RSS growth (with the worker processes).
 * Node 20 cannot run TypeScript directly; compile this one script and run it:
 *   npx tsc scripts/hostile-corpus.ts --outDir .local/scripts --module nodenext --target es2022 --strict --skipLibCheck \
 *     && node .local/scripts/scripts/hostile-corpus.js .local/hostile [--extract]
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { hostileCorpus } from '../src/extract/fixtures/hostile.js';
import { closeExtraction, extractFile, sandboxResidentBytes, warmUpExtraction } from '../src/extract/index.js';

const out = process.argv[2];
if (!out) {
  console.error('usage: hostile-corpus <output folder> [--extract]');
  process.exit(2);
}
const corpus = hostileCorpus();
mkdirSync(out, { recursive: true });
for (const f of corpus) writeFileSync(path.join(out, f.name), f.bytes);
writeFileSync(
  path.join(out, 'manifest.json'),
  JSON.stringify(
    corpus.map(({ name, class: cls, description, bytes }) => ({ name, class: cls, description, bytes: bytes.length })),
    null,
    2,
  ) + '\n',
);
console.log(`${corpus.length} files written to ${out}`);

if (process.argv.includes('--extract')) {
  const options = { ocr: true, maxBytes: 64 * 1024 * 1024, timeoutMs: 4_000, maxMemoryMb: 256 };
  await warmUpExtraction(options);
  for (const f of corpus) {
    const before = process.memoryUsage.rss();
    let peak = before;
    let busy = 0;
    let elu = performance.eventLoopUtilization();
    const timer = setInterval(() => {
      busy = Math.max(busy, performance.eventLoopUtilization(elu).active);
      elu = performance.eventLoopUtilization();
      peak = Math.max(peak, process.memoryUsage.rss() + sandboxResidentBytes());
    }, 10);
    const started = performance.now();
    const r = await extractFile({ bytes: f.bytes, fileName: f.name }, options);
    const ms = performance.now() - started;
    clearInterval(timer);
    const outcome = r.ok ? `ok (${r.text.length} chars)` : `${r.code}: ${r.reason}`;
    console.log(
      [
        f.name.padEnd(32),
        `${Math.round(ms)} ms`.padStart(8),
        `busy ${Math.round(busy)} ms`.padStart(12),
        `rss +${Math.round((peak - before) / 2 ** 20)} MB`.padStart(12),
        outcome.slice(0, 160),
      ].join('  '),
    );
  }
  await closeExtraction();
}
