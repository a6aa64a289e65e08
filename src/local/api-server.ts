/**
 * The status page and the read/replay API on this machine, for `graph-connector run --dashboard`: a loopback HTTP
 * server that calls the same handlers as the HTTP functions, with a real HttpRequest and InvocationContext, at the
 * same routes (`/api/dashboard`, `/api/status`, `/api/jobs`, `/api/jobs/{id}`, `/api/deadletters`,
 * `POST /api/deadletters/replay`).
 *
 * It listens on 127.0.0.1 only and answers only requests whose Host is a loopback name (a page of another site
 * cannot reach it through DNS rebinding). With `functionKey` set it requires the key as the Functions host does
 * (`?code=` or `x-functions-key`), which is how the tests check that the page passes its key on.
 */
import { randomUUID, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import type * as AzureFunctions from '@azure/functions';
import { ConnectorError } from '../core/errors.js';
import type { Handlers } from '../host/handlers.js';
import { MAX_BODY_BYTES } from '../host/http.js';
import type { Logger } from '../log.js';

// @azure/functions is a CommonJS bundle whose named exports do not all load under plain Node ESM: require it.
const functions = createRequire(import.meta.url)('@azure/functions') as typeof AzureFunctions;

export interface ApiServerOptions {
  /** Default 0: any free port. */
  port?: number;
  /** Require this key (`?code=` or `x-functions-key`) on every route, as `authLevel: function` does. */
  functionKey?: string;
  logger?: Logger;
}

export interface ApiServer {
  /** `http://127.0.0.1:<port>` */
  origin: string;
  /** The status page's address. */
  dashboardUrl: string;
  close(): Promise<void>;
}

type HttpHandler = (
  request: AzureFunctions.HttpRequest,
  context: AzureFunctions.InvocationContext,
) => Promise<AzureFunctions.HttpResponseInit>;

interface Route {
  method: 'GET' | 'POST';
  pattern: RegExp;
  name: keyof Handlers;
  params?: string[];
}

const ROUTES: Route[] = [
  { method: 'GET', pattern: /^\/api\/dashboard$/, name: 'dashboard' },
  { method: 'GET', pattern: /^\/api\/status$/, name: 'status' },
  { method: 'GET', pattern: /^\/api\/jobs$/, name: 'jobs' },
  { method: 'GET', pattern: /^\/api\/jobs\/([^/]+)$/, name: 'job', params: ['id'] },
  { method: 'GET', pattern: /^\/api\/deadletters$/, name: 'deadLetters' },
  { method: 'POST', pattern: /^\/api\/deadletters\/replay$/, name: 'replay' },
];

const LOOPBACK_HOST = /^(?:127\.0\.0\.1|localhost|\[::1\])(?::\d+)?$/i;

export class PortInUseError extends ConnectorError {
  override name = 'PortInUseError';
  constructor(port: number) {
    super(`port ${port} is in use: pick another with --dashboard-port, or 0 for any free port`, {
      code: 'PortInUse',
    });
  }
}

function sameKey(given: string | null, expected: string): boolean {
  if (given === null) return false;
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  res.writeHead(status, {
    'content-type': typeof body === 'string' ? 'text/plain; charset=utf-8' : 'application/json',
    ...headers,
  });
  res.end(text);
}

/** The request body, cut off past the API's limit (the handler then answers 413 from the declared length). */
async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES + 1) break;
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

export async function startApiServer(handlers: Handlers, options: ApiServerOptions = {}): Promise<ApiServer> {
  const log = options.logger?.child({ component: 'dashboard' });
  const server = createServer((req, res) => {
    void handle(req, res).catch((err: unknown) => {
      log?.error('dashboard request failed', { error: (err as Error).message });
      if (!res.headersSent) send(res, 500, { error: { code: 'InternalError', message: 'the request failed' } });
      else res.end();
    });
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const host = req.headers.host ?? '';
    if (!LOOPBACK_HOST.test(host)) return send(res, 421, 'this server answers only to 127.0.0.1 and localhost');
    const url = new URL(req.url ?? '/', `http://${host}`);
    if (url.pathname === '/' || url.pathname === '/api' || url.pathname === '/api/') {
      res.writeHead(302, { location: `/api/dashboard${url.search}` });
      return void res.end();
    }
    const matches = ROUTES.filter((r) => r.pattern.test(url.pathname));
    if (!matches.length) return send(res, 404, { error: { code: 'NotFound', message: `no route ${url.pathname}` } });
    const route = matches.find((r) => r.method === req.method);
    if (!route)
      return send(res, 405, { error: { code: 'MethodNotAllowed', message: `${req.method} ${url.pathname}` } });
    if (
      options.functionKey &&
      !sameKey(url.searchParams.get('code'), options.functionKey) &&
      !sameKey((req.headers['x-functions-key'] as string | undefined) ?? null, options.functionKey)
    )
      return send(res, 401, '');
    const m = route.pattern.exec(url.pathname)!;
    const params = Object.fromEntries((route.params ?? []).map((p, i) => [p, decodeURIComponent(m[i + 1] ?? '')]));
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.headers)) if (typeof v === 'string') headers[k] = v;
    const body = req.method === 'POST' ? await readBody(req) : undefined;
    const request = new functions.HttpRequest({
      method: route.method,
      url: url.toString(),
      headers,
      params,
      ...(body ? { body: { bytes: body } } : {}),
    });
    const context = new functions.InvocationContext({
      invocationId: randomUUID(),
      functionName: route.name,
      logHandler: () => {},
    });
    const handler = handlers[route.name] as unknown as HttpHandler;
    const out = await handler(request, context);
    const status = out.status ?? 200;
    const responseHeaders: Record<string, string> = {};
    for (const [k, v] of Object.entries(out.headers ?? {})) responseHeaders[k] = String(v);
    if (out.jsonBody !== undefined) return send(res, status, out.jsonBody, responseHeaders);
    res.writeHead(status, responseHeaders);
    res.end(typeof out.body === 'string' ? out.body : '');
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(err.code === 'EADDRINUSE' ? new PortInUseError(options.port ?? 0) : err),
    );
    server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const origin = `http://127.0.0.1:${port}`;
  return {
    origin,
    dashboardUrl: `${origin}/api/dashboard`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
