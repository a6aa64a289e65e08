/**
 * The entry point of a sandbox worker process (forked by src/extract/sandbox.ts with a heap limit). It runs one
 * extraction at a time: the job arrives, then its bytes in slices; it answers with the result or the failure. OCR
 * requests go to the parent, which owns the tesseract workers. Every 100 ms it reports its resident memory (the
 * parent also reads it from /proc, which works while this process is inside one long synchronous step).
 */
import { runExtraction } from './run.js';
import type { RunInput, RunOptions } from './run.js';
import type { SandboxReply, SandboxRequest } from './sandbox-protocol.js';
import { ExtractError } from './types.js';

if (!process.send) throw new Error('src/extract/sandbox-worker.ts runs as a forked worker process only');

const send = (message: SandboxReply) => {
  if (process.connected) process.send!(message);
};

// The parent is gone (it exited or killed the channel): so is the reason to live.
process.on('disconnect', () => process.exit(0));

const pendingOcr = new Map<
  number,
  { resolve(v: { text: string; confidence: number }): void; reject(e: Error): void }
>();
let nextCall = 1;

const beat = () => send({ type: 'beat', rss: process.memoryUsage.rss(), heapUsed: process.memoryUsage().heapUsed });
setInterval(beat, 100).unref();
beat();

interface Receiving {
  jobId: number;
  input: Omit<RunInput, 'bytes'>;
  options: RunOptions;
  file: string;
  bytes: Uint8Array;
  received: number;
}
let receiving: Receiving | undefined;

function run(job: Receiving): void {
  const { jobId } = job;
  void runExtraction(
    { ...job.input, bytes: job.bytes },
    {
      options: job.options,
      file: job.file,
      recognize(png) {
        const callId = nextCall++;
        return new Promise((resolve, reject) => {
          pendingOcr.set(callId, { resolve, reject });
          send({ type: 'ocr', jobId, callId, png });
        });
      },
    },
  ).then(
    (result) => {
      send({ type: 'done', jobId, result });
      beat();
    },
    (err: unknown) => {
      if (err instanceof ExtractError) send({ type: 'failed', jobId, code: err.code, message: err.message });
      else
        send({
          type: 'failed',
          jobId,
          code: 'corrupt',
          message: `the file could not be read: ${err instanceof Error ? err.message : String(err)}`,
        });
      beat();
    },
  );
}

process.on('message', (message: SandboxRequest) => {
  if (message.type === 'ocr-result') {
    const call = pendingOcr.get(message.callId);
    pendingOcr.delete(message.callId);
    if (!call) return;
    if (message.ok) call.resolve({ text: message.text, confidence: message.confidence });
    else call.reject(new ExtractError(message.code, message.message));
    return;
  }
  if (message.type === 'job') {
    const { jobId, input, options, file, size } = message;
    receiving = { jobId, input, options, file, bytes: new Uint8Array(size), received: 0 };
  } else if (receiving && message.jobId === receiving.jobId) {
    receiving.bytes.set(message.bytes, receiving.received);
    receiving.received += message.bytes.length;
  } else return;
  if (receiving.received === receiving.bytes.length) {
    const job = receiving;
    receiving = undefined;
    run(job);
  }
});
