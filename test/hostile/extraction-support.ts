/**
 * Measuring one extraction from the outside, in the same process: wall time, how long the event loop was kept
 * busy in one stretch, how late a 10 ms ticking timer fired, and the peak memory: this process's RSS growth over
 * its value just before the file was handed over, plus the RSS of every sandbox worker process alive.
 *
 * "Blocked" is measured with `performance.eventLoopUtilization()` between ticks: the loop's active time, which a
 * synchronous step on this thread (a regex, a parser, inflating) fills, while time the OS did not schedule an idle
 * thread counts as idle. The timer's lateness (also `monitorEventLoopDelay`) includes that scheduling delay too: on
 * a machine shared by many busy processes it is not a property of the code, so it is reported and bounded loosely.
 */
import { readFileSync } from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { expect } from 'vitest';
import { hostileCorpus } from '../../src/extract/fixtures/hostile.js';
import type { HostileFile } from '../../src/extract/fixtures/hostile.js';
import { extractFile, sandboxPids } from '../../src/extract/index.js';
import type { ExtractOptions, ExtractResult } from '../../src/extract/index.js';

export interface Measured {
  result: ExtractResult;
  ms: number;
  /** the longest stretch the event loop was busy (not waiting), in ms */
  maxLoopDelayMs: number;
  /** the latest the 10 ms timer fired (scheduling delay included), in ms */
  maxTimerLatenessMs: number;
  /** how many times the timer fired */
  ticks: number;
  /** peak of (this process's RSS growth + the sandbox worker processes' RSS), in MB */
  peakRssGrowthMb: number;
}

/** Resident bytes of a process from /proc (these tests run on Linux). */
function residentBytes(pid: number): number {
  try {
    return Number(readFileSync(`/proc/${pid}/statm`, 'latin1').split(' ')[1]) * 4096;
  } catch {
    return 0; // exited between listing and reading
  }
}

/** This process's RSS plus that of every sandbox worker process. */
export function totalRss(): number {
  return process.memoryUsage.rss() + sandboxPids().reduce((n, pid) => n + residentBytes(pid), 0);
}

export async function measure(run: () => Promise<ExtractResult>): Promise<Measured> {
  const histogram = monitorEventLoopDelay({ resolution: 10 });
  const before = process.memoryUsage.rss();
  let peak = before;
  let last = performance.now();
  let elu = performance.eventLoopUtilization();
  let maxLate = 0;
  let maxBusy = 0;
  let ticks = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    maxLate = Math.max(maxLate, now - last - 10);
    last = now;
    const since = performance.eventLoopUtilization(elu);
    elu = performance.eventLoopUtilization();
    maxBusy = Math.max(maxBusy, since.active);
    ticks++;
    peak = Math.max(peak, totalRss());
  }, 10);
  histogram.enable();
  const started = performance.now();
  try {
    const result = await run();
    const ms = performance.now() - started;
    peak = Math.max(peak, totalRss());
    maxBusy = Math.max(maxBusy, performance.eventLoopUtilization(elu).active);
    return {
      result,
      ms,
      maxLoopDelayMs: maxBusy,
      maxTimerLatenessMs: Math.max(maxLate, histogram.max / 1e6 - 10),
      ticks,
      peakRssGrowthMb: (peak - before) / (1024 * 1024),
    };
  } finally {
    histogram.disable();
    clearInterval(timer);
  }
}

/** The limits the hostile tests run with (small, so that a bound that fails shows up fast). */
export const HOSTILE_OPTIONS: ExtractOptions = {
  ocr: false,
  maxBytes: 64 * 1024 * 1024,
  timeoutMs: 4_000,
  maxMemoryMb: 256,
};

export function extractHostile(file: HostileFile, options: Partial<ExtractOptions> = {}): Promise<Measured> {
  return measure(() => extractFile({ bytes: file.bytes, fileName: file.name }, { ...HOSTILE_OPTIONS, ...options }));
}

/**
 * This process may grow, plus its sandbox workers hold, at most the job's memory limit (a worker process is killed
 * above it) plus what stays here: the copy of the file being sent and one idle worker kept for the next file.
 */
export const PARENT_SLACK_MB = 128;
export const RSS_CAP_MB = (HOSTILE_OPTIONS.maxMemoryMb ?? 0) + PARENT_SLACK_MB;
/** The event loop may never be busy longer than this in one stretch. */
export const MAX_LOOP_DELAY_MS = 200;
/**
 * A timer may fire at most this late: far above what blocking would need to stay hidden (blocking shows in the
 * busy time above), loose enough for the scheduling delays of a shared, overloaded machine.
 */
export const MAX_TIMER_LATENESS_MS = 1_000;

/**
 * The contract for every hostile file: a result within the time limit + 1 s, a failure that names the file, the
 * event loop never blocked > 200 ms, and the process's RSS growth under {@link RSS_CAP_MB}.
 */
export function expectContained(file: HostileFile, m: Measured, timeoutMs = HOSTILE_OPTIONS.timeoutMs): void {
  const what = `${file.name} (${file.description})`;
  expect(m.ms, `${what}: took ${Math.round(m.ms)} ms`).toBeLessThanOrEqual(timeoutMs + 1_000);
  expect(m.maxLoopDelayMs, `${what}: the event loop was blocked ${Math.round(m.maxLoopDelayMs)} ms`).toBeLessThan(
    MAX_LOOP_DELAY_MS,
  );
  expect(m.ticks, `${what}: the timer stopped ticking`).toBeGreaterThanOrEqual(Math.floor(m.ms / 100));
  expect(m.maxTimerLatenessMs, `${what}: the timer fired ${Math.round(m.maxTimerLatenessMs)} ms late`).toBeLessThan(
    MAX_TIMER_LATENESS_MS,
  );
  expect(m.peakRssGrowthMb, `${what}: RSS grew ${Math.round(m.peakRssGrowthMb)} MB`).toBeLessThan(RSS_CAP_MB);
  if (!m.result.ok) expect(m.result.reason, what).toContain(`"${file.name}"`);
}

let built: HostileFile[] | undefined;
/** The corpus files that pass `filter` (the corpus is built once per test file). */
export function corpus(filter: (f: HostileFile) => boolean): HostileFile[] {
  built ??= hostileCorpus();
  return built.filter(filter);
}
