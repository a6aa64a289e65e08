/** Messages between the sandbox (parent thread) and a sandbox worker thread. */
import type { Extracted, RunInput, RunOptions } from './run.js';
import type { ExtractErrorCode } from './types.js';

/** Parent → worker. */
export type SandboxRequest =
  | { type: 'job'; jobId: number; input: RunInput; options: RunOptions; file: string }
  | { type: 'ocr-result'; callId: number; ok: true; text: string; confidence: number }
  | { type: 'ocr-result'; callId: number; ok: false; code: ExtractErrorCode; message: string };

/** Worker → parent. */
export type SandboxReply =
  | { type: 'beat'; heapUsed: number; external: number; arrayBuffers: number }
  | { type: 'ocr'; jobId: number; callId: number; png: Uint8Array }
  | { type: 'done'; jobId: number; result: Extracted }
  | { type: 'failed'; jobId: number; code: ExtractErrorCode; message: string };
