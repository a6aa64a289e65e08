/**
 * Offline OCR with tesseract.js. Everything is local: the worker script and wasm core come from the installed
 * `tesseract.js` / `tesseract.js-core` packages, and `langPath` is the local folder of `@tesseract.js-data/<lang>`,
 * so tesseract reads the trained data from disk and has no URL to fetch. Workers run in worker threads; a worker is
 * terminated when a file's time limit expires during its job, and after an idle period (30 s).
 */
import { existsSync, mkdtempSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createRequire } from 'node:module';
import path from 'node:path';
import Tesseract from 'tesseract.js';
import { ExtractError } from './types.js';

const require = createRequire(import.meta.url);

export interface OcrText {
  text: string;
  /** 0–100, tesseract's mean word confidence */
  confidence: number;
}

/**
 * The local folder holding `<lang>.traineddata.gz` (LSTM "best_int" model) for a language, or an error naming the
 * package to install.
 */
export function trainedDataDir(lang: string): string {
  if (!/^[a-z_]{3,16}$/i.test(lang))
    throw new ExtractError('unsupported', `OCR language "${lang}" is not a tesseract language code (e.g. "eng")`);
  let dir: string;
  try {
    dir = path.join(path.dirname(require.resolve(`@tesseract.js-data/${lang}/package.json`)), '4.0.0_best_int');
  } catch {
    throw new ExtractError(
      'unsupported',
      `OCR language "${lang}" is not installed; add the npm package @tesseract.js-data/${lang} or remove it from ocrLanguages`,
    );
  }
  if (!existsSync(path.join(dir, `${lang}.traineddata.gz`)))
    throw new ExtractError('unsupported', `OCR language "${lang}": ${dir} has no ${lang}.traineddata.gz`);
  return dir;
}

/**
 * One folder holding `<lang>.traineddata.gz` for every language: the package folder itself when there is one
 * language, else a temporary folder of symlinks (tesseract.js takes a single `langPath`).
 */
export function combinedLangPath(entries: readonly { lang: string; dir: string }[]): string {
  const dirs = new Set(entries.map((e) => e.dir));
  if (dirs.size === 1) return entries[0]!.dir;
  const tmp = mkdtempSync(path.join(tmpdir(), 'gc-ocr-lang-'));
  for (const { lang, dir } of entries)
    symlinkSync(path.join(dir, `${lang}.traineddata.gz`), path.join(tmp, `${lang}.traineddata.gz`));
  return tmp;
}

function langPathFor(languages: readonly string[]): string {
  return combinedLangPath(languages.map((lang) => ({ lang, dir: trainedDataDir(lang) })));
}

interface Slot {
  worker: Promise<Tesseract.Worker>;
  /** set once the worker is ready, so it can be terminated without awaiting */
  ready?: Tesseract.Worker;
  queue: Promise<unknown>;
  /** jobs queued or running */
  pending: number;
  idleTimer?: NodeJS.Timeout;
}

/** An idle worker is terminated after this long (it holds memory and keeps a CLI process alive). */
let idleMs = 30_000;

/** Change the idle time after which OCR workers are terminated (default 30 s). */
export function setOcrIdleMs(ms: number): void {
  idleMs = ms;
}

/** Number of OCR workers alive or starting. */
export function ocrWorkerCount(): number {
  return slots.size;
}

function scheduleIdle(key: string, slot: Slot): void {
  clearTimeout(slot.idleTimer);
  if (slot.pending > 0 || slots.get(key) !== slot) return;
  slot.idleTimer = setTimeout(() => retire(key, slot), idleMs);
  slot.idleTimer.unref();
}

function retire(key: string, slot: Slot): void {
  clearTimeout(slot.idleTimer);
  if (slots.get(key) === slot) slots.delete(key);
  if (slot.ready) void slot.ready.terminate().catch(() => undefined);
}
const slots = new Map<string, Slot>();

function localPaths(): { workerPath: string; corePath: string } {
  const tesseractRoot = path.dirname(require.resolve('tesseract.js/package.json'));
  const coreRoot = path.dirname(require.resolve('tesseract.js-core/package.json'));
  return { workerPath: path.join(tesseractRoot, 'src', 'worker-script', 'node', 'index.js'), corePath: coreRoot };
}

/** Worker start-up (wasm + trained data) normally takes 1-3 s; past this it is treated as failed. */
const STARTUP_LIMIT_MS = 60_000;

function slotFor(languages: readonly string[]): Slot {
  const key = languages.join('+');
  if (new Set(languages).size !== languages.length)
    throw new ExtractError('unsupported', `ocrLanguages lists a language twice: ${key}`);
  let slot = slots.get(key);
  if (!slot) {
    const langPath = langPathFor(languages);
    const created = Tesseract.createWorker([...languages], Tesseract.OEM.LSTM_ONLY, {
      ...localPaths(),
      langPath, // a local folder: tesseract reads it from disk and never builds a URL
      cacheMethod: 'none', // never write <lang>.traineddata into the working directory
      gzip: true,
      errorHandler: () => undefined, // failures surface through the rejected job promise
    });
    const s: Slot = { worker: created, queue: Promise.resolve(), pending: 0 };
    let timer: NodeJS.Timeout | undefined;
    s.worker = Promise.race([
      created,
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`the OCR worker did not start within ${STARTUP_LIMIT_MS} ms`)),
          STARTUP_LIMIT_MS,
        );
        timer.unref();
      }),
    ]).finally(() => clearTimeout(timer));
    created.then(
      (w) => {
        s.ready = w;
        if (slots.get(key) !== s) void w.terminate().catch(() => undefined); // closed or replaced meanwhile
      },
      () => undefined,
    );
    s.worker.catch(() => {
      if (slots.get(key) === s) slots.delete(key);
    });
    slot = s;
    slots.set(key, slot);
  }
  return slot;
}

function abortable<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(new ExtractError('timeout', 'OCR was aborted'));
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(new ExtractError('timeout', 'OCR was aborted'));
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e instanceof Error ? e : new Error(String(e)));
      },
    );
  });
}

/** Start (or reuse) the worker for these languages and wait until it is ready. */
export async function warmUpOcr(languages: readonly string[] = ['eng']): Promise<void> {
  const slot = slotFor(languages);
  await slot.worker;
  scheduleIdle(languages.join('+'), slot);
}

/**
 * Recognise one image (PNG/JPEG bytes). Jobs for one language set run one at a time on one worker; when `signal`
 * aborts while this job runs, the worker thread is terminated (and replaced on the next call).
 */
export async function recognize(
  image: Uint8Array,
  languages: readonly string[],
  signal: AbortSignal,
): Promise<OcrText> {
  const key = languages.join('+');
  const slot = slotFor(languages);
  clearTimeout(slot.idleTimer);
  slot.pending++;
  const run = slot.queue.then(async () => {
    if (signal.aborted) throw new ExtractError('timeout', 'OCR was aborted before it started');
    try {
      const worker = await abortable(slot.worker, signal);
      const result = await abortable(
        worker.recognize(Buffer.from(image.buffer, image.byteOffset, image.byteLength)),
        signal,
      );
      return { text: result.data.text, confidence: result.data.confidence };
    } catch (err) {
      if (signal.aborted) retire(key, slot); // the job may still be running inside the worker: stop it
      throw err;
    }
  });
  slot.queue = run
    .catch(() => undefined)
    .finally(() => {
      slot.pending--;
      scheduleIdle(key, slot);
    });
  return run;
}

/** Terminate every OCR worker now (call on shutdown and in test teardown). */
export async function closeOcr(): Promise<void> {
  const all = [...slots.values()];
  slots.clear();
  await Promise.all(
    all.map((s) => {
      clearTimeout(s.idleTimer);
      return s.ready ? s.ready.terminate().catch(() => undefined) : Promise.resolve();
    }),
  );
}
