/**
 * Offline OCR with tesseract.js, an optional dependency loaded on first use. Everything is local: the worker
 * script and wasm core come from the installed `tesseract.js` / `tesseract.js-core` packages, and `langPath` is the
 * local folder of `@tesseract.js-data/<lang>`, so tesseract reads the trained data from disk and has no URL to
 * fetch. Workers run in worker threads; a worker is terminated when a file's time limit expires during its job,
 * and after an idle period (30 s).
 */
import { existsSync, mkdtempSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createRequire } from 'node:module';
import path from 'node:path';
import type Tesseract from 'tesseract.js';
import { raceAbort } from '../core/async.js';
import type { OperationOptions } from '../core/async.js';
import { ExtractError } from './types.js';

type TesseractModule = typeof Tesseract;

const require = createRequire(import.meta.url);

/** The packages OCR needs, as `npm install` takes them (the versions package.json pins). */
export const OCR_PACKAGES = 'tesseract.js@~7.0.0 tesseract.js-core@~7.0.0 @tesseract.js-data/eng@~1.0.0';

let tesseractPromise: Promise<TesseractModule> | undefined;

function notInstalled(err: unknown): ExtractError {
  return new ExtractError(
    'unsupported',
    `OCR is not installed (${(err as Error).message.split('\n')[0]}); it is an optional dependency: run ` +
      `"npm install ${OCR_PACKAGES}" (and do not install with --omit=optional), or turn ocr off`,
    { cause: err },
  );
}

/** Throws `unsupported`, saying what to install, when tesseract.js or its wasm core is missing. */
export function assertOcrInstalled(): void {
  try {
    require.resolve('tesseract.js');
    require.resolve('tesseract.js-core/package.json');
  } catch (err) {
    throw notInstalled(err);
  }
}

/**
 * tesseract.js, imported on first use. It is an optional dependency: when it (or its wasm core) is not installed,
 * every file that needs OCR fails with `unsupported` and a reason that says what to install.
 */
export function loadTesseract(): Promise<TesseractModule> {
  tesseractPromise ??= (async () => {
    try {
      assertOcrInstalled();
      const mod = (await import('tesseract.js')) as { default?: TesseractModule } & TesseractModule;
      return mod.default ?? mod;
    } catch (err) {
      tesseractPromise = undefined; // installing the packages later works without a restart
      throw err instanceof ExtractError ? err : notInstalled(err);
    }
  })();
  return tesseractPromise;
}

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

/** OCR jobs queued or running, over all workers. */
export function ocrJobCount(): number {
  let n = 0;
  for (const slot of slots.values()) n += slot.pending;
  return n;
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
    assertOcrInstalled();
    const langPath = langPathFor(languages);
    const created = loadTesseract().then((tesseract) =>
      tesseract.createWorker([...languages], tesseract.OEM.LSTM_ONLY, {
        ...localPaths(),
        langPath, // a local folder: tesseract reads it from disk and never builds a URL
        cacheMethod: 'none', // never write <lang>.traineddata into the working directory
        gzip: true,
        errorHandler: () => undefined, // failures surface through the rejected job promise
      }),
    );
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

/** Start (or reuse) the worker for these languages and wait until it is ready. */
export async function warmUpOcr(languages: readonly string[] = ['eng']): Promise<void> {
  const slot = slotFor(languages);
  await slot.worker;
  scheduleIdle(languages.join('+'), slot);
}

const ocrAborted = () => new ExtractError('timeout', 'OCR was aborted');

/**
 * Recognise one image (PNG/JPEG bytes). Jobs for one language set run one at a time on one worker; when
 * `abortSignal` fires while this job runs, the worker thread is terminated (and replaced on the next call).
 */
export async function recognize(
  image: Uint8Array,
  languages: readonly string[],
  options: OperationOptions = {},
): Promise<OcrText> {
  const signal = options.abortSignal;
  const key = languages.join('+');
  const slot = slotFor(languages);
  clearTimeout(slot.idleTimer);
  slot.pending++;
  const run = slot.queue.then(async () => {
    if (signal?.aborted) throw new ExtractError('timeout', 'OCR was aborted before it started');
    try {
      const worker = await raceAbort(slot.worker, signal, ocrAborted);
      const result = await raceAbort(
        worker.recognize(Buffer.from(image.buffer, image.byteOffset, image.byteLength)),
        signal,
        ocrAborted,
      );
      return { text: result.data.text, confidence: result.data.confidence };
    } catch (err) {
      if (signal?.aborted) retire(key, slot); // the job may still be running inside the worker: stop it
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
