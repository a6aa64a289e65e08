/** Request context, replies and Graph's error envelope (reference §8). */
import type { IncomingMessage, ServerResponse } from 'node:http';

export interface Reply {
  status: number;
  /** JSON body; undefined = no body. */
  body?: unknown;
  headers?: Record<string, string>;
}

/** An error answered in Graph's envelope: {"error":{"code","message","innerError":{...}}}. */
export class GraphError extends Error {
  constructor(
    public readonly status: number,
    public readonly code: string,
    message: string,
    public readonly inner?: { code: string; message?: string },
    public readonly headers?: Record<string, string>,
  ) {
    super(message);
  }
}

export interface Ctx {
  req: IncomingMessage;
  res: ServerResponse;
  method: string;
  url: URL;
  path: string;
  requestId: string;
  clientRequestId: string;
  start: number;
  /** Filled in while handling, for the request log. */
  route: string;
  connectionId?: string;
  itemId?: string;
  appId?: string;
  retryAfter?: number;
  fault?: string;
  warnings: string[];
  /** Response already written or socket dropped. */
  done: boolean;
}

export function graphDate(d = new Date()): string {
  return d.toISOString().slice(0, 19);
}

export function errorBody(
  ctx: Ctx,
  code: string,
  message: string,
  inner?: { code: string; message?: string },
): unknown {
  return {
    error: {
      code,
      message,
      innerError: {
        ...(inner ?? {}),
        date: graphDate(),
        'request-id': ctx.requestId,
        'client-request-id': ctx.clientRequestId,
      },
    },
  };
}

export function errorReply(ctx: Ctx, err: GraphError): Reply {
  return { status: err.status, body: errorBody(ctx, err.code, err.message, err.inner), headers: err.headers };
}

/** Write a reply with the headers Graph puts on every response. */
export function send(ctx: Ctx, reply: Reply): void {
  if (ctx.done || ctx.res.headersSent || ctx.res.destroyed) return;
  ctx.done = true;
  const headers: Record<string, string> = {
    'request-id': ctx.requestId,
    'client-request-id': ctx.clientRequestId,
    Date: new Date().toUTCString(),
    'x-ms-ags-diagnostic':
      '{"ServerInfo":{"DataCenter":"Emulator","Slice":"E","Ring":"0","ScaleUnit":"000","RoleInstance":"emulator"}}',
    ...(reply.headers ?? {}),
  };
  if (reply.body === undefined) {
    headers['Content-Length'] = '0';
    ctx.res.writeHead(reply.status, headers);
    ctx.res.end();
    return;
  }
  const payload = Buffer.from(JSON.stringify(reply.body));
  headers['Content-Type'] ??=
    'application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8';
  headers['Content-Length'] = String(payload.length);
  ctx.res.writeHead(reply.status, headers);
  ctx.res.end(payload);
}

/** Read the body up to `limit` bytes. Over the limit → 413 (the rest is drained). */
export async function readBody(ctx: Ctx, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  let over = false;
  for await (const chunk of ctx.req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) over = true;
    if (!over) chunks.push(chunk);
  }
  if (over)
    throw new GraphError(
      413,
      'RequestEntityTooLarge',
      `The request body is ${size} bytes; the limit is ${limit} bytes (4 MB per item). Shorten the content (send parsed text, not the original file).`,
    );
  return Buffer.concat(chunks);
}

/** Parse a JSON object body, with Graph's message for unreadable payloads. */
export function parseJsonObject(buf: Buffer): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(buf.toString('utf8'));
  } catch {
    throw new GraphError(
      400,
      'BadRequest',
      'Unable to read JSON request payload. Please ensure Content-Type header is set and payload is of valid JSON format.',
    );
  }
  if (!value || typeof value !== 'object' || Array.isArray(value))
    throw new GraphError(400, 'BadRequest', 'The request body must be a JSON object.');
  return value as Record<string, unknown>;
}

export function isObject(v: unknown): v is Record<string, unknown> {
  return !!v && typeof v === 'object' && !Array.isArray(v);
}

export const GUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
export const ALNUM_RE = /^[A-Za-z0-9]+$/;

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
