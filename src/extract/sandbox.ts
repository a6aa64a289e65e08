/**
 * The extraction sandbox: every file is extracted in a worker process (`child_process.fork`) that can be stopped for
 * real. This process only sends the bytes (a megabyte per message) and waits, so no file can block its event loop,
 * and all memory a file made the worker use goes back to the OS when that worker exits.
 *
 * - Time: at `timeoutMs` the worker is killed (SIGKILL stops even a synchronous loop) and so is the tesseract worker
 *   running an OCR job of the file.
 * - Memory: the worker's V8 heap is capped (`--max-old-space-size`), and its resident memory is read every 100 ms
 *   (from /proc on Linux, else from the worker's own reports); a worker whose RSS passes `maxMemoryMb` is killed and
 *   the file fails as `too-large`. A worker that grew past {@link RECYCLE_ABOVE_MB} is not kept for the next file.
 * - Priority: workers run at a lower scheduling priority (nice 10) than this process, so extraction yields the CPU
 *   to queue triggers and lease renewals.
 * - Concurrency: at most `concurrency` workers run at once (default 2, or 1 on a one-core machine); idle workers are
 *   kept for `idleMs` (default 30 s) for the next file, unreferenced so that they never keep a process alive.
 */
import { fork } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { availableParallelism, setPriority } from 'node:os';
import { fileURLToPath } from 'node:url';
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
  /** an idle worker is stopped after this long; default 30 s */
  idleMs: number;
}

/** A worker whose RSS ever reached this is stopped after its job instead of being kept idle (its memory returns). */
export const RECYCLE_ABOVE_MB = 160;
const MB = 1024 * 1024;
const PAGE_SIZE = 4096;

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

interface Sandbox {
  child: ChildProcess;
  memoryMb: number;
  job?: Job;
  /** RSS by the worker's last report, and the most it has been */
  rss: number;
  peakRss: number;
  idleTimer?: NodeJS.Timeout;
  dead: boolean;
}

const idle: Sandbox[] = [];
const busy = new Set<Sandbox>();
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

function kill(box: Sandbox): void {
  clearTimeout(box.idleTimer);
  busy.delete(box);
  const i = idle.indexOf(box);
  if (i >= 0) idle.splice(i, 1);
  if (box.dead) return;
  box.dead = true;
  box.child.kill('SIGKILL');
}

function setReferenced(box: Sandbox, referenced: boolean): void {
  const channel = box.child.channel as { ref?: () => void; unref?: () => void } | null | undefined;
  if (referenced) {
    box.child.ref();
    channel?.ref?.();
  } else {
    box.child.unref();
    channel?.unref?.();
  }
}

function park(box: Sandbox): void {
  if (box.dead) return;
  if (idle.length >= settings.concurrency) return kill(box);
  setReferenced(box, false);
  idle.push(box);
  box.idleTimer = setTimeout(() => kill(box), settings.idleMs);
  box.idleTimer.unref();
}

/**
 * The parent's Node flags, less those that describe how the parent's own entry was given (`-e`, `--input-type`)
 * and memory flags the sandbox sets itself.
 */
function workerExecArgv(): string[] {
  const out: string[] = [];
  const argv = process.execArgv;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '-e' || a === '--eval' || a === '-p' || a === '--print') i++;
    else if (!/^--(input-type|eval=|print=|max-old-space-size|max-semi-space-size|inspect)/.test(a)) out.push(a);
  }
  return out;
}

/** Resident memory of a process from /proc (Linux); undefined elsewhere or when it is gone. */
function residentBytes(pid: number | undefined): number | undefined {
  if (!pid) return undefined;
  try {
    const pages = Number(readFileSync(`/proc/${pid}/statm`, 'latin1').split(' ')[1]);
    return Number.isFinite(pages) ? pages * PAGE_SIZE : undefined;
  } catch {
    return undefined;
  }
}

async function spawn(memoryMb: number): Promise<Sandbox> {
  const url = await workerEntry();
  const child = fork(fileURLToPath(url), [], {
    execArgv: [
      ...workerExecArgv(),
      `--max-old-space-size=${memoryMb}`,
      `--max-semi-space-size=${Math.max(1, Math.min(16, Math.floor(memoryMb / 32)))}`,
    ],
    serialization: 'advanced',
    // A hostile file can make a library log without end: the worker's console goes nowhere.
    stdio: ['ignore', 'ignore', 'ignore', 'ipc'],
  });
  try {
    if (child.pid) setPriority(child.pid, 10);
  } catch {
    // not permitted here: same priority as this process
  }
  const box: Sandbox = { child, memoryMb, rss: 0, peakRss: 0, dead: false };
  child.on('message', (m: SandboxReply) => onReply(box, m));
  child.on('error', (err) => {
    box.job?.finish({ ok: false, code: 'corrupt', reason: `the extraction worker failed: ${err.message}` }, false);
    kill(box);
  });
  child.on('exit', (code, signal) => {
    box.dead = true; // nothing left to kill
    const job = box.job;
    if (job) {
      // V8 aborts the process when the heap limit is reached.
      if (signal === 'SIGABRT' || code === 134) job.finish(memoryExceeded(job, 'its heap reached the limit'), false);
      else
        job.finish(
          {
            ok: false,
            code: 'corrupt',
            reason: `the extraction worker exited unexpectedly (${signal ?? `exit code ${code}`})`,
          },
          false,
        );
    }
    kill(box);
  });
  return box;
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

function noteRss(box: Sandbox, rss: number): void {
  box.rss = rss;
  box.peakRss = Math.max(box.peakRss, rss);
  const job = box.job;
  if (job && rss > job.memoryMb * MB)
    job.finish(memoryExceeded(job, `its worker process reached ${Math.round(rss / MB)} MB`), false);
}

function send(box: Sandbox, message: SandboxRequest): Promise<void> {
  return new Promise((resolve) => {
    if (box.dead || !box.child.connected) return resolve();
    box.child.send(message, () => resolve());
  });
}

function onReply(box: Sandbox, m: SandboxReply): void {
  if (m.type === 'beat') return noteRss(box, residentBytes(box.child.pid) ?? m.rss);
  const job = box.job;
  if (!job || m.jobId !== job.jobId) return;
  if (m.type === 'done') job.finish({ ok: true, result: m.result }, true);
  else if (m.type === 'failed') job.finish({ ok: false, code: m.code, reason: m.message }, true);
  else if (m.type === 'ocr') {
    const reply = (message: SandboxRequest) => {
      if (!box.dead && box.job === job) void send(box, message);
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

// ---- the memory watchdog: each busy worker's RSS, read from /proc even while it is stuck in one step ----

let watchdog: NodeJS.Timeout | undefined;

function watch(): void {
  if (watchdog) return;
  watchdog = setInterval(() => {
    for (const box of busy) {
      const rss = residentBytes(box.child.pid);
      if (rss !== undefined) noteRss(box, rss);
    }
  }, 100);
  watchdog.unref();
}

function unwatchIfIdle(): void {
  if (busy.size || !watchdog) return;
  clearInterval(watchdog);
  watchdog = undefined;
}

/** Bytes are sent a megabyte per message: serialising one message never holds this event loop for long. */
const SLICE = 1 << 20;

async function take(memoryMb: number): Promise<Sandbox> {
  for (let i = idle.length - 1; i >= 0; i--) {
    const box = idle[i]!;
    if (box.memoryMb !== memoryMb || box.dead) continue;
    idle.splice(i, 1);
    clearTimeout(box.idleTimer);
    return box;
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
    let box: Sandbox;
    try {
      box = await take(options.maxMemoryMb);
    } catch (err) {
      return {
        ok: false,
        code: 'corrupt',
        reason: `the extraction sandbox could not start: ${(err as Error).message}`,
      };
    }
    if (signal?.aborted) {
      park(box);
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
        box.job = undefined;
        busy.delete(box);
        // A worker that grew large is not kept: its memory goes back to the OS, the next file starts small.
        if (reusable && box.peakRss < RECYCLE_ABOVE_MB * MB) park(box);
        else kill(box);
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
                'stopped (its worker process killed); if the file is genuine, raise timeoutMs',
            },
            false,
          ),
        limits.timeoutMs,
      );
      const onAbort = () => finish(cancelled, false);
      signal?.addEventListener('abort', onAbort, { once: true });
      box.job = {
        jobId,
        file: limits.file,
        memoryMb: options.maxMemoryMb,
        languages: options.ocrLanguages,
        ocr,
        finish,
      };
      setReferenced(box, true);
      busy.add(box);
      watch();
      void (async () => {
        const { bytes, ...rest } = input;
        await send(box, { type: 'job', jobId, input: rest, size: bytes.length, options, file: limits.file });
        for (let at = 0; at < bytes.length && !done; at += SLICE)
          await send(box, { type: 'bytes', jobId, bytes: bytes.slice(at, at + SLICE) });
      })();
    });
  } finally {
    release();
  }
}

/**
 * Start a sandbox worker ahead of the first file (it stays idle for `idleMs`), so that the first extraction does
 * not pay for the worker's start-up.
 */
export async function warmUpSandbox(maxMemoryMb: number): Promise<void> {
  if (idle.some((box) => box.memoryMb === maxMemoryMb && !box.dead)) return;
  const box = await spawn(maxMemoryMb);
  // Ready when it first reports (its modules are loaded).
  await new Promise<void>((resolve) => {
    const ready = () => resolve();
    box.child.once('message', ready);
    box.child.once('exit', ready);
  });
  park(box);
}

/** Worker processes alive (busy and idle). */
export function sandboxWorkerCount(): number {
  return busy.size + idle.length;
}

/** Resident memory of the worker processes alive, in bytes (Linux; 0 where /proc is not available). */
export function sandboxResidentBytes(): number {
  return [...busy, ...idle].reduce((n, box) => n + (residentBytes(box.child.pid) ?? 0), 0);
}

/** Process ids of the worker processes alive (busy and idle), for monitoring their memory. */
export function sandboxPids(): number[] {
  return [...busy, ...idle].map((box) => box.child.pid).filter((pid): pid is number => pid !== undefined);
}

/** Stop every sandbox worker now; running extractions end as `timeout` (call on shutdown and in tests). */
export async function closeSandbox(): Promise<void> {
  const all = [...busy, ...idle];
  for (const box of all)
    box.job?.finish(
      { ok: false, code: 'timeout', reason: `extraction of ${box.job.file} was stopped: the sandbox closed` },
      false,
    );
  const exited = all.map(
    (box) =>
      new Promise<void>((resolve) => {
        if (box.child.exitCode !== null || box.child.signalCode !== null) return resolve();
        box.child.once('exit', () => resolve());
      }),
  );
  for (const box of all) {
    box.child.ref(); // idle workers are unreferenced: wait for their exit all the same
    kill(box);
  }
  await Promise.all(exited);
}
