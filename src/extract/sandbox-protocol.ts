/** Messages between the sandbox (parent process) and a sandbox worker process. */
import type { Extracted, RunInput, RunOptions } from './run.js';
import type { ExtractErrorCode } from './types.js';

/** Parent → worker. A job's bytes follow it in `bytes` messages, a slice each, until `size` bytes arrived. */
export type SandboxRequest =
  | { type: 'job'; jobId: number; input: Omit<RunInput, 'bytes'>; size: number; options: RunOptions; file: string }
  | { type: 'bytes'; jobId: number; bytes: Uint8Array }
  | { type: 'ocr-result'; callId: number; ok: true; text: string; confidence: number }
  | { type: 'ocr-result'; callId: number; ok: false; code: ExtractErrorCode; message: string };

/** Worker → parent. */
export type SandboxReply =
  | { type: 'beat'; rss: number; heapUsed: number }
  | { type: 'ocr'; jobId: number; callId: number; png: Uint8Array }
  | { type: 'done'; jobId: number; result: Extracted }
  | { type: 'failed'; jobId: number; code: ExtractErrorCode; message: string };
