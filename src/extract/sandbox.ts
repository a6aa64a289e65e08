/**
 * The extraction sandbox: every file is extracted in a worker thread that can be stopped for real. The parent
 * thread only posts the bytes and waits, so no file can block its event loop.
 *
 * - Time: at `timeoutMs` the worker is terminated (`Worker.terminate()` stops even a synchronous loop) and so is the
 *   tesseract worker running an OCR job of the file.
 * - Memory: the worker's V8 heap is capped with `resourceLimits` (`maxMemoryMb`); decoded buffers live outside that
 *   heap, so each worker also reports its heap and buffers every 100 ms, and the parent samples the process's RSS.
 *   A worker over `maxMemoryMb`, or the process grown past the sum of the running jobs' `maxMemoryMb` (plus a fixed
 *   slack), gets the job stopped as `too-large`.
 * - Concurrency: at most `concurrency` workers run at once (default 2, or 1 on a one-core machine); idle workers are
 *   kept for `idleMs` (default 30 s) for the next file, unreferenced so that they never keep a process alive.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { Semaphore } from '../core/async.js';
import { recognize } from './ocr.js';
import type { Extracted, RunInput, RunOptions } from './run.js';
import type { SandboxReply, SandboxRequest } from './sandbox-protocol.js';
// Type-only, so that `tsc` emits the worker's entry beside this file wherever this file is compiled.
import type {} from './sandbox-worker.js';
import { ExtractError } from './types.js';
import type { ExtractErrorCode } from './types.js';

export type SandboxOutcome = { ok: true; result: Extracted } | { ok: false; code: ExtractErrorCode; reason: string };

export interface SandboxSettings {
  /** workers extracting at the same time (the rest wait their turn); default min(2, cores) */
  concurrency: number;
  /** an idle worker is terminated after this long; default 30 s */
  idleMs: number;
}

/** Process growth allowed on top of the running jobs' `maxMemoryMb`: a worker's own footprint (isolate, code). */
export const RSS_SLACK_MB = 128;
/** A worker that has not reported for this long is inside one synchronous step. */
const STALE_BEAT_MS = 300;
const MB = 1024 * 1024;

const settings: SandboxSettings = { concurrency: Math.max(1, Math.min(2, availableParallelism())), idleMs: 30_000 };
let slots = new Semaphore(settings.concurrency);

/** Change the sandbox's concurrency or idle time (takes effect for the next files). */
export function configureSandbox(change: Partial<SandboxSettings>): void {
  if (change.idleMs !== undefined) settings.idleMs = change.idleMs;
  if (change.concurrency !== undefined && change.concurrency !== settings.concurrency) {
    settings.concurrency = change.concurrency;
    slots = new Semaphore(change.concurrency);
  }
}

interface Job {
  jobId: number;
  file: string;
  memoryMb: number;
  languages: readonly string[];
  /** aborts this job's OCR calls */
  ocr: AbortController;
  finish(outcome: SandboxOutcome, reusable: boolean): void;
}

interface Thread {
  worker: Worker;
  memoryMb: number;
  job?: Job;
  beatAt: number;
  /** heap + external bytes at the last report */
  beatBytes: number;
  idleTimer?: NodeJS.Timeout;
  dead: boolean;
}

const idle: Thread[] = [];
const busy = new Set<Thread>();
let nextJob = 1;

let entry: Promise<URL> | undefined;
/** The worker's entry: the compiled sibling, or (running from TypeScript sources, as the tests do) a transpiled copy. */
function workerEntry(): Promise<URL> {
  entry ??= (async () => {
    if (import.meta.url.endsWith('.ts')) {
      const { transpiledEntry } = await import('./sandbox-source.js');
      return transpiledEntry(new URL('./sandbox-worker.ts', import.meta.url));
    }
    return new URL('./sandbox-worker.js', import.meta.url);
  })();
  entry.catch(() => (entry = undefined));
  return entry;
}

function kill(thread: Thread): void {
  if (thread.dead) return;
  thread.dead = true;
  clearTimeout(thread.idleTimer);
  busy.delete(thread);
  const i = idle.indexOf(thread);
  if (i >= 0) idle.splice(i, 1);
  void thread.worker.terminate().catch(() => undefined);
}

function park(thread: Thread): void {
  if (thread.dead) return;
  if (idle.length >= settings.concurrency) return kill(thread);
  thread.worker.unref();
  idle.push(thread);
  thread.idleTimer = setTimeout(() => kill(thread), settings.idleMs);
  thread.idleTimer.unref();
}

/**
 * The parent's Node flags, less those that describe how the parent's own entry was given (`-e`, `--input-type`):
 * a worker started from a file fails on them.
 */
function workerExecArgv(): string[] {
  const out: string[] = [];
  const argv = process.execArgv;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '-e' || a === '--eval' || a === '-p' || a === '--print') i++;
    else if (!a.startsWith('--input-type') && !a.startsWith('--eval=') && !a.startsWith('--print=')) out.push(a);
  }
  return out;
}

async function spawn(memoryMb: number): Promise<Thread> {
  const url = await workerEntry();
  const worker = new Worker(url, {
    execArgv: workerExecArgv(),
    resourceLimits: {
      maxOldGenerationSizeMb: memoryMb,
      maxYoungGenerationSizeMb: Math.max(4, Math.min(32, Math.floor(memoryMb / 8))),
      stackSizeMb: 4,
    },
    // A hostile file can make a library log without end: the worker's console is drained, never shown.
    stdout: true,
    stderr: true,
  });
  worker.stdout.resume();
  worker.stderr.resume();
  const thread: Thread = { worker, memoryMb, beatAt: Date.now(), beatBytes: 0, dead: false };
  worker.on('message', (m: SandboxReply) => onReply(thread, m));
  worker.on('error', (err: Error & { code?: string }) => {
    const job = thread.job;
    if (job) {
      if (err.code === 'ERR_WORKER_OUT_OF_MEMORY') job.finish(memoryExceeded(job, 'its heap'), false);
      else job.finish({ ok: false, code: 'corrupt', reason: `the extractor failed: ${err.message}` }, false);
    }
    kill(thread);
  });
  worker.on('exit', (code) => {
    thread.job?.finish(
      { ok: false, code: 'corrupt', reason: `the extraction worker exited unexpectedly (exit code ${code})` },
      false,
    );
    thread.dead = true;
    kill(thread);
  });
  return thread;
}

function memoryExceeded(job: Job, what: string): SandboxOutcome {
  return {
    ok: false,
    code: 'too-large',
    reason:
      `${job.file} needed more memory than the ${job.memoryMb} MB limit (maxMemoryMb) — ${what}; ` +
      'the extraction was stopped; if the file is genuine, raise maxMemoryMb',
  };
}

function onReply(thread: Thread, m: SandboxReply): void {
  if (m.type === 'beat') {
    thread.beatAt = Date.now();
    thread.beatBytes = m.heapUsed + Math.max(m.external, m.arrayBuffers);
    const job = thread.job;
    if (job && thread.beatBytes > job.memoryMb * MB)
      job.finish(memoryExceeded(job, `its worker held ${Math.round(thread.beatBytes / MB)} MB`), false);
    return;
  }
  const job = thread.job;
  if (!job || m.jobId !== job.jobId) return;
  if (m.type === 'done') job.finish({ ok: true, result: m.result }, true);
  else if (m.type === 'failed') job.finish({ ok: false, code: m.code, reason: m.message }, true);
  else if (m.type === 'ocr') {
    const reply = (message: SandboxRequest) => {
      if (!thread.dead && thread.job === job) thread.worker.postMessage(message);
    };
    recognize(m.png, job.languages, { abortSignal: job.ocr.signal }).then(
      ({ text, confidence }) => reply({ type: 'ocr-result', callId: m.callId, ok: true, text, confidence }),
      (err: unknown) =>
        reply({
          type: 'ocr-result',
          callId: m.callId,
          ok: false,
          code: err instanceof ExtractError ? err.code : 'corrupt',
          message: err instanceof Error ? err.message : String(err),
        }),
    );
  }
}

// ---- the memory watchdog: the process's RSS against what the running jobs may use ----

let watchdog: NodeJS.Timeout | undefined;
let baselineRss = 0;

function watch(): void {
  if (watchdog) return;
  baselineRss = process.memoryUsage.rss();
  watchdog = setInterval(checkMemory, 100);
  watchdog.unref();
}

function unwatchIfIdle(): void {
  if (busy.size || !watchdog) return;
  clearInterval(watchdog);
  watchdog = undefined;
}

function checkMemory(): void {
  const growth = process.memoryUsage.rss() - baselineRss;
  let allowed = RSS_SLACK_MB * MB;
  for (const t of busy) allowed += t.memoryMb * MB;
  if (growth <= allowed) return;
  // The culprit: a worker stuck in one synchronous step (no recent report), else the one holding the most.
  const now = Date.now();
  let victim: Thread | undefined;
  let score = -1;
  for (const t of busy) {
    const s = (now - t.beatAt > STALE_BEAT_MS ? Number.MAX_SAFE_INTEGER / 2 : 0) + t.beatBytes;
    if (t.job && s > score) {
      victim = t;
      score = s;
    }
  }
  const job = victim?.job;
  if (job) job.finish(memoryExceeded(job, `the process grew by ${Math.round(growth / MB)} MB while it ran`), false);
}

const COPY_SLICE = 1 << 20;

async function copyInSlices(bytes: Uint8Array): Promise<Uint8Array<ArrayBuffer>> {
  const copy = new Uint8Array(bytes.length);
  for (let at = 0; at < bytes.length; at += COPY_SLICE) {
    if (at > 0) await new Promise((resolve) => setImmediate(resolve));
    copy.set(bytes.subarray(at, at + COPY_SLICE), at);
  }
  return copy;
}

async function take(memoryMb: number): Promise<Thread> {
  for (let i = idle.length - 1; i >= 0; i--) {
    const t = idle[i]!;
    if (t.memoryMb !== memoryMb || t.dead) continue;
    idle.splice(i, 1);
    clearTimeout(t.idleTimer);
    return t;
  }
  return spawn(memoryMb);
}

/**
 * Run one extraction in a sandbox worker. Resolves with the worker's result, or a failure when the worker fails,
 * overruns `timeoutMs` or its memory, or the caller aborts. Never rejects.
 */
export async function runInSandbox(
  input: RunInput,
  options: RunOptions,
  limits: { timeoutMs: number; file: string },
  abort: { abortSignal?: AbortSignal } = {},
): Promise<SandboxOutcome> {
  const signal = abort.abortSignal;
  const cancelled: SandboxOutcome = {
    ok: false,
    code: 'timeout',
    reason: `extraction of ${limits.file} was cancelled by the caller`,
  };
  let release: () => void;
  try {
    release = await slots.acquire({ abortSignal: signal });
  } catch {
    return cancelled;
  }
  try {
    let thread: Thread;
    try {
      thread = await take(options.maxMemoryMb);
    } catch (err) {
      return {
        ok: false,
        code: 'corrupt',
        reason: `the extraction sandbox could not start: ${(err as Error).message}`,
      };
    }
    if (signal?.aborted) {
      park(thread);
      return cancelled;
    }
    return await new Promise<SandboxOutcome>((resolve) => {
      const jobId = nextJob++;
      const ocr = new AbortController();
      let done = false;
      const finish = (outcome: SandboxOutcome, reusable: boolean) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        ocr.abort(); // an OCR job of this file still running is stopped (its tesseract worker terminated)
        thread.job = undefined;
        busy.delete(thread);
        // A worker that ended holding a lot is not kept: the next file starts from a small heap.
        if (reusable && thread.beatBytes < (thread.memoryMb * MB) / 2) park(thread);
        else kill(thread);
        unwatchIfIdle();
        resolve(outcome);
      };
      const timer = setTimeout(
        () =>
          finish(
            {
              ok: false,
              code: 'timeout',
              reason:
                `extraction took longer than ${limits.timeoutMs} ms (timeoutMs); the work on ${limits.file} was ` +
                'stopped (its worker thread terminated); if the file is genuine, raise timeoutMs',
            },
            false,
          ),
        limits.timeoutMs,
      );
      const onAbort = () => finish(cancelled, false);
      signal?.addEventListener('abort', onAbort, { once: true });
      thread.job = {
        jobId,
        file: limits.file,
        memoryMb: options.maxMemoryMb,
        languages: options.ocrLanguages,
        ocr,
        finish,
      };
      thread.beatAt = Date.now();
      thread.worker.ref();
      busy.add(thread);
      watch();
      // The worker gets its own copy (the caller's buffer stays usable), made a megabyte at a time so that
      // copying a large file never holds this thread's event loop.
      void copyInSlices(input.bytes).then((bytes) => {
        if (done) return;
        const message: SandboxRequest = {
          type: 'job',
          jobId,
          input: { ...input, bytes },
          options,
          file: limits.file,
        };
        thread.worker.postMessage(message, [bytes.buffer]);
      });
    });
  } finally {
    release();
  }
}

/**
 * Start a sandbox worker ahead of the first file (it stays idle for `idleMs`), so that the first extraction does
 * not pay for the thread's start-up.
 */
export async function warmUpSandbox(maxMemoryMb: number): Promise<void> {
  if (idle.some((t) => t.memoryMb === maxMemoryMb && !t.dead)) return;
  park(await spawn(maxMemoryMb));
}

/** Workers alive (busy and idle). */
export function sandboxWorkerCount(): number {
  return busy.size + idle.length;
}

/** Terminate every sandbox worker now; running extractions end as `timeout` (call on shutdown and in tests). */
export async function closeSandbox(): Promise<void> {
  const all = [...busy, ...idle];
  for (const t of all)
    t.job?.finish(
      { ok: false, code: 'timeout', reason: `extraction of ${t.job.file} was stopped: the sandbox closed` },
      false,
    );
  await Promise.all(all.map((t) => t.worker.terminate().catch(() => undefined)));
  for (const t of all) kill(t);
}
