/**
 * The entry point of a sandbox worker thread (started by src/extract/sandbox.ts with a heap limit). It runs one
 * extraction at a time and answers with the result or the failure; OCR requests go to the parent thread, which
 * owns the tesseract workers. Every 100 ms the thread reports its own memory, so the parent can tell which worker
 * grows; a worker busy in one long synchronous step misses its reports, and the parent stops it when its time or
 * the process's memory runs out.
 */
import { parentPort } from 'node:worker_threads';
import { runExtraction } from './run.js';
import type { SandboxReply, SandboxRequest } from './sandbox-protocol.js';
import { ExtractError } from './types.js';

const port = parentPort;
if (!port) throw new Error('src/extract/sandbox-worker.ts runs as a worker thread only');

const send = (message: SandboxReply, transfer: ArrayBuffer[] = []) => port.postMessage(message, transfer);

const pendingOcr = new Map<
  number,
  { resolve(v: { text: string; confidence: number }): void; reject(e: Error): void }
>();
let nextCall = 1;

const beat = () => {
  const m = process.memoryUsage();
  send({ type: 'beat', heapUsed: m.heapUsed, external: m.external, arrayBuffers: m.arrayBuffers });
};
setInterval(beat, 100).unref();

port.on('message', (message: SandboxRequest) => {
  if (message.type === 'ocr-result') {
    const call = pendingOcr.get(message.callId);
    pendingOcr.delete(message.callId);
    if (!call) return;
    if (message.ok) call.resolve({ text: message.text, confidence: message.confidence });
    else call.reject(new ExtractError(message.code, message.message));
    return;
  }
  const { jobId, input, options, file } = message;
  void runExtraction(input, {
    options,
    file,
    recognize(png) {
      const callId = nextCall++;
      return new Promise((resolve, reject) => {
        pendingOcr.set(callId, { resolve, reject });
        const copy = png.slice();
        send({ type: 'ocr', jobId, callId, png: copy }, [copy.buffer]);
      });
    },
  }).then(
    (result) => {
      beat();
      send({ type: 'done', jobId, result });
    },
    (err: unknown) => {
      beat();
      if (err instanceof ExtractError) send({ type: 'failed', jobId, code: err.code, message: err.message });
      else
        send({
          type: 'failed',
          jobId,
          code: 'corrupt',
          message: `the file could not be read: ${err instanceof Error ? err.message : String(err)}`,
        });
    },
  );
});
