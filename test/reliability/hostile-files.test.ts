/**
 * Hostile files do not take the worker down and do not touch other files: the whole hostile-file corpus
 * (src/extract/fixtures/hostile.ts: zip bombs, quadratic-parse bait, 100,000-page and deeply nested PDFs, huge
 * images, truncated and random files) is extracted in this process, interleaved with good files, through the
 * sandbox (two workers at a time, as in production). Every hostile file ends within its time limit + 1 s, as
 * extracted text or a failure whose reason names the file (the item would be dead-lettered); every good file is
 * extracted to exactly its own text (lost 0: none failed or went missing; leaked 0: no text crossed between files
 * through a reused worker, and no worker is left running); the event loop is never busy > 200 ms; this process's
 * RSS growth plus its worker processes' RSS stays under the running jobs' memory limits plus a fixed slack and OCR.
 */
import { performance } from 'node:perf_hooks';
import { afterAll, describe, expect, it } from 'vitest';
import { makeDocx, makePdf, makePptx, makeXlsx } from '../../src/extract/fixtures/index.js';
import { hostileCorpus } from '../../src/extract/fixtures/hostile.js';
import {
  closeExtraction,
  configureSandbox,
  extractFile,
  sandboxWorkerCount,
  warmUpExtraction,
} from '../../src/extract/index.js';
import type { ExtractOptions, ExtractResult } from '../../src/extract/index.js';
import { PARENT_SLACK_MB, totalRss } from '../hostile/extraction-support.js';
import { reportFigures, sized } from './support.js';

const OPTIONS: ExtractOptions = { ocr: true, maxBytes: 64 * 1024 * 1024, timeoutMs: 4_000, maxMemoryMb: 256 };
const CONCURRENCY = 2;
/** The tesseract worker thread runs in this process; its images are at most 12 MP (larger ones are scaled down). */
const OCR_MB = 256;
/** Busy workers at their limit, this process's own slack, and OCR. */
const CAP_MB = CONCURRENCY * (OPTIONS.maxMemoryMb ?? 0) + PARENT_SLACK_MB + OCR_MB;

/** A good file whose whole text is known: `good-<n>` with a format that rotates. */
function goodFile(n: number): { name: string; bytes: Uint8Array; text: string } {
  const text = `good file ${n} carries its own words`;
  switch (n % 4) {
    case 0:
      return { name: `good-${n}.pdf`, bytes: makePdf({ pages: [{ lines: [text] }] }), text };
    case 1:
      return { name: `good-${n}.docx`, bytes: makeDocx([text]), text };
    case 2:
      return { name: `good-${n}.pptx`, bytes: makePptx([[text]]), text };
    default:
      return { name: `good-${n}.xlsx`, bytes: makeXlsx([{ name: 'S', rows: [[text]] }]), text: `S\n${text}` };
  }
}

afterAll(() => closeExtraction());

describe('hostile files among good ones', () => {
  it('each hostile file is contained, each good file is extracted to its own text', async () => {
    configureSandbox({ concurrency: CONCURRENCY });
    await warmUpExtraction(OPTIONS);
    const hostile = hostileCorpus();
    const rounds = sized(2, 1);
    const jobs: { name: string; bytes: Uint8Array; hostile: boolean; text?: string }[] = [];
    let n = 0;
    for (let r = 0; r < rounds; r++)
      for (const f of hostile) {
        jobs.push({ name: f.name, bytes: f.bytes, hostile: true });
        const g = goodFile(n++);
        jobs.push({ ...g, hostile: false });
      }

    // The process from the outside: loop busy time, timer, RSS.
    const before = process.memoryUsage.rss();
    let peak = before;
    let maxBusy = 0;
    let elu = performance.eventLoopUtilization();
    const timer = setInterval(() => {
      maxBusy = Math.max(maxBusy, performance.eventLoopUtilization(elu).active);
      elu = performance.eventLoopUtilization();
      peak = Math.max(peak, totalRss());
    }, 10);

    const outcomes: { job: (typeof jobs)[number]; result: ExtractResult; ms: number }[] = [];
    let next = 0;
    const lane = async () => {
      while (next < jobs.length) {
        const job = jobs[next++]!;
        const started = performance.now();
        const result = await extractFile({ bytes: job.bytes, fileName: job.name }, OPTIONS);
        outcomes.push({ job, result, ms: performance.now() - started });
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, lane));
    clearInterval(timer);

    const slowest = Math.max(...outcomes.map((o) => o.ms));
    const deadLetters = outcomes.filter((o) => o.job.hostile && !o.result.ok);
    const lost =
      outcomes.filter((o) => !o.job.hostile && !(o.result.ok && o.result.text === o.job.text)).length +
      (jobs.length - outcomes.length);
    // Text of one file in another file's result (a reused worker keeping state), or a worker still running after
    // the sandbox was closed.
    const crossed = outcomes.filter(
      (o) => o.result.ok && /good file \d+/.test(o.result.text) && o.result.text !== o.job.text,
    ).length;
    await closeExtraction();
    const workersLeft = sandboxWorkerCount();
    const leaked = crossed + workersLeft;
    const peakMb = (peak - before) / 2 ** 20;

    await reportFigures('hostile files (extraction sandbox)', {
      items: jobs.length,
      faultsInjected: hostile.length * rounds,
      retries: 0,
      deadLetters: deadLetters.length,
      lost,
      note:
        `leaked ${leaked}; slowest file ${Math.round(slowest)} ms (limit ${OPTIONS.timeoutMs} + 1000); ` +
        `event loop busy at most ${Math.round(maxBusy)} ms; peak RSS +${Math.round(peakMb)} MB ` +
        `with its worker processes (cap ${CONCURRENCY} × ${OPTIONS.maxMemoryMb} + ${PARENT_SLACK_MB} + OCR ${OCR_MB} = ${CAP_MB} MB)`,
    });

    expect(outcomes).toHaveLength(jobs.length);
    for (const o of outcomes) {
      expect(o.ms, o.job.name).toBeLessThanOrEqual(OPTIONS.timeoutMs + 1_000);
      if (!o.result.ok) expect(o.result.reason, o.job.name).toContain(`"${o.job.name}"`);
    }
    expect(lost).toBe(0);
    expect(leaked).toBe(0);
    expect(deadLetters.length).toBeGreaterThan(hostile.length / 2);
    expect(maxBusy).toBeLessThan(200);
    expect(peakMb).toBeLessThan(CAP_MB);
  });
});
