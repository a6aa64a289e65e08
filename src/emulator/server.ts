/** The HTTP(S) front: request context, routing between identity, admin and Graph, the request log. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AdminHooks } from './admin.js';
import { handleAdmin } from './admin.js';
import { handleBatch } from './batch.js';
import type { Emu } from './context.js';
import { handleGraph } from './graph.js';
import { errorBody, GraphError, readBody, send, type Ctx, type Reply } from './http.js';
import { OAuthError } from './identity.js';

const MAX_LOG = 50_000;

function oauthReply(ctx: Ctx, err: OAuthError): Reply {
  const timestamp = new Date().toISOString().replace('T', ' ').slice(0, 19) + 'Z';
  return {
    status: err.status,
    body: {
      error: err.error,
      error_description: `AADSTS${err.aadsts}: ${err.message} Trace ID: ${ctx.requestId} Correlation ID: ${ctx.clientRequestId} Timestamp: ${timestamp}`,
      error_codes: [err.aadsts],
      timestamp,
      trace_id: ctx.requestId,
      correlation_id: ctx.clientRequestId,
      error_uri: `https://login.microsoftonline.com/error?code=${err.aadsts}`,
    },
  };
}

async function handleIdentity(emu: Emu, ctx: Ctx): Promise<Reply | undefined> {
  const segs = ctx.path.split('/').filter(Boolean);
  if (segs[0] === 'msi' && segs[1] === 'token' && segs.length === 2) {
    ctx.route = 'msi';
    const h = ctx.req.headers['x-identity-header'];
    return emu.identity.managedIdentityToken(ctx.url, Array.isArray(h) ? h[0] : h);
  }
  const [tenant, s1, s2, s3] = segs;
  if (!tenant) return undefined;
  const tail = segs.slice(1).join('/');
  if (ctx.method === 'GET' && tail === 'discovery/instance') {
    ctx.route = 'discovery';
    return emu.identity.instanceDiscovery(ctx.url);
  }
  if (
    ctx.method === 'GET' &&
    (tail === 'v2.0/.well-known/openid-configuration' || tail === '.well-known/openid-configuration')
  ) {
    ctx.route = 'openid';
    return emu.identity.openidConfiguration(tenant, tail.startsWith('v2.0/') ? 'v2' : 'v1');
  }
  if (ctx.method === 'GET' && (tail === 'discovery/v2.0/keys' || tail === 'discovery/keys')) {
    ctx.route = 'jwks';
    return emu.identity.jwks();
  }
  if (s1 === 'oauth2' && ((s2 === 'v2.0' && s3 === 'token') || (s2 === 'token' && !s3))) {
    ctx.route = 'token';
    if (ctx.method !== 'POST')
      throw new OAuthError(405, 'invalid_request', 900561, 'The endpoint only accepts POST requests.');
    const form = new URLSearchParams((await readBody(ctx, 1_000_000)).toString('utf8'));
    return emu.identity.token(tenant, form);
  }
  return undefined;
}

export function createHandler(emu: Emu, hooks: AdminHooks): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    // Never let one bad request take the emulator down (an unhandled rejection would end the process).
    handle(emu, hooks, req, res).catch((err: unknown) => {
      emu.log(`emulator: unexpected failure on ${req.method} ${req.url}: ${(err as Error)?.stack ?? String(err)}`);
      if (!res.headersSent && !res.destroyed) {
        res.writeHead(500, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify({ error: { code: 'InternalServerError', message: 'Emulator bug; see its log.' } }));
      } else res.destroy();
    });
  };
}

async function handle(emu: Emu, hooks: AdminHooks, req: IncomingMessage, res: ServerResponse): Promise<void> {
  let url: URL;
  try {
    url = new URL(req.url ?? '/', 'http://127.0.0.1');
  } catch {
    url = new URL('http://127.0.0.1/_invalid');
  }
  const crid = req.headers['client-request-id'];
  const ctx: Ctx = {
    req,
    res,
    method: (req.method ?? 'GET').toUpperCase(),
    url,
    path: url.pathname.replace(/\/+$/, '') || '/',
    requestId: emu.ids.guid(),
    clientRequestId: (Array.isArray(crid) ? crid[0] : crid) ?? '',
    start: Date.now(),
    route: 'unknown',
    warnings: [],
    done: false,
  };
  if (!ctx.clientRequestId) ctx.clientRequestId = ctx.requestId;
  let status = 0;
  try {
    let reply: Reply | undefined;
    if (ctx.path === '/_emulator' || ctx.path.startsWith('/_emulator/')) reply = await handleAdmin(emu, ctx, hooks);
    else if (/^\/(v1\.0|beta)\/(\$|%24)batch$/i.test(ctx.path))
      reply = await handleBatch(emu, ctx, ctx.path.split('/')[1]!, (sub, status) => record(emu, sub, status));
    else if (/^\/(v1\.0|beta)(\/|$)/.test(ctx.path)) reply = await handleGraph(emu, ctx);
    else {
      const decision = emu.faults.decide(
        { method: ctx.method, route: routeOfIdentity(ctx.path), path: ctx.path },
        false,
      );
      if (decision) {
        ctx.fault = decision.label;
        if (decision.kind === 'drop') reply = undefined;
        else if (decision.kind === 'delay') await new Promise((r) => setTimeout(r, decision.ms ?? 0));
      }
      if (decision?.kind === 'status') {
        ctx.route = routeOfIdentity(ctx.path);
        reply = {
          status: decision.status!,
          body: { error: 'temporarily_unavailable', error_description: decision.message ?? 'Injected failure.' },
        };
        if (decision.retryAfter !== undefined) reply.headers = { 'Retry-After': String(decision.retryAfter) };
      } else if (decision?.kind !== 'drop') {
        reply = await handleIdentity(emu, ctx);
        if (reply) reply.headers = { 'Content-Type': 'application/json; charset=utf-8', ...(reply.headers ?? {}) };
        if (!reply)
          reply = {
            status: 404,
            body: errorBody(
              ctx,
              'NotFound',
              `No route ${ctx.method} ${ctx.path}. Graph lives under /v1.0 and /beta, identity under /{tenant}/oauth2/v2.0/token, the admin API under /_emulator.`,
            ),
          };
      }
    }
    if (reply === undefined) {
      ctx.fault ??= 'drop';
      req.socket.destroy();
      return;
    }
    status = reply.status;
    send(ctx, reply);
  } catch (err) {
    let reply: Reply;
    if (err instanceof GraphError)
      reply = { status: err.status, body: errorBody(ctx, err.code, err.message, err.inner), headers: err.headers };
    else if (err instanceof OAuthError)
      reply = { ...oauthReply(ctx, err), headers: { 'Content-Type': 'application/json; charset=utf-8' } };
    else if (req.destroyed || res.destroyed) {
      ctx.fault ??= 'client-aborted';
      return;
    } else {
      emu.log(`emulator: internal error on ${ctx.method} ${ctx.path}: ${(err as Error)?.stack ?? String(err)}`);
      reply = {
        status: 500,
        body: errorBody(ctx, 'InternalServerError', `Emulator bug: ${(err as Error)?.message ?? String(err)}`),
      };
    }
    status = reply.status;
    send(ctx, reply);
  } finally {
    if (ctx.route !== 'admin') record(emu, ctx, status);
  }
}

function routeOfIdentity(path: string): string {
  if (path.startsWith('/msi/')) return 'msi';
  if (path.includes('/oauth2/')) return 'token';
  if (path.includes('openid-configuration')) return 'openid';
  if (path.endsWith('/discovery/instance')) return 'discovery';
  if (path.includes('/discovery/')) return 'jwks';
  return 'unknown';
}

function record(emu: Emu, ctx: Ctx, status: number): void {
  const entry = {
    time: new Date(ctx.start).toISOString(),
    method: ctx.method,
    path: ctx.path,
    route: ctx.route,
    status,
    connectionId: ctx.connectionId,
    itemId: ctx.itemId,
    retryAfter: ctx.retryAfter,
    appId: ctx.appId,
    requestId: ctx.requestId,
    clientRequestId: ctx.clientRequestId,
    durationMs: Date.now() - ctx.start,
    fault: ctx.fault,
    warnings: ctx.warnings.length ? ctx.warnings : undefined,
  };
  emu.requests.push(entry);
  if (emu.requests.length > MAX_LOG) emu.requests.splice(0, emu.requests.length - MAX_LOG);
  if (status >= 400 || status === 0 || ctx.fault || ctx.warnings.length)
    emu.log(
      `emulator: ${ctx.method} ${ctx.path} → ${status || 'dropped'}${ctx.fault ? ` [${ctx.fault}]` : ''}${ctx.retryAfter !== undefined ? ` retry-after=${ctx.retryAfter}` : ''}${ctx.warnings.length ? ` (${ctx.warnings.join('; ')})` : ''}`,
    );
}
