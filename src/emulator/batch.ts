/**
 * JSON batching (reference §7.3): POST /{version}/$batch with up to 20 sub-requests. Each sub-request runs
 * through the same pipeline as a direct call (token, faults, limits, roles), so a throttled one gets its own
 * 429 + Retry-After inside the batch. Sub-requests run in order; one whose dependsOn failed gets 424.
 */
import type { IncomingMessage } from 'node:http';
import { Readable } from 'node:stream';
import type { Emu } from './context.js';
import { handleGraph } from './graph.js';
import { errorBody, GraphError, isObject, parseJsonObject, readBody, type Ctx, type Reply } from './http.js';

export async function handleBatch(
  emu: Emu,
  ctx: Ctx,
  version: string,
  record: (sub: Ctx, status: number) => void,
): Promise<Reply> {
  ctx.route = 'batch';
  if (ctx.method !== 'POST')
    throw new GraphError(405, 'No method match route template', 'The $batch endpoint only accepts POST.');
  emu.identity.authenticate(ctx);
  const body = parseJsonObject(await readBody(ctx, 4_000_000));
  const requests = body.requests;
  if (!Array.isArray(requests) || requests.length === 0)
    throw new GraphError(400, 'BadRequest', 'Invalid batch payload: requests must be a non-empty array.');
  if (requests.length > 20)
    throw new GraphError(400, 'BadRequest', `Invalid batch payload: at most 20 requests; got ${requests.length}.`);
  const ids = new Set<string>();
  for (const [i, r] of requests.entries()) {
    if (!isObject(r) || typeof r.id !== 'string' || typeof r.method !== 'string' || typeof r.url !== 'string')
      throw new GraphError(400, 'BadRequest', `Invalid batch payload: requests[${i}] needs id, method and url.`);
    if (ids.has(r.id))
      throw new GraphError(400, 'BadRequest', `Invalid batch payload: duplicate request id '${r.id}'.`);
    ids.add(r.id);
  }
  const statuses = new Map<string, number>();
  const responses: unknown[] = [];
  for (const r of requests as Record<string, unknown>[]) {
    const id = r.id as string;
    const deps = Array.isArray(r.dependsOn) ? (r.dependsOn as string[]) : [];
    const failedDep = deps.find((d) => !(statuses.get(d)! >= 200 && statuses.get(d)! < 300));
    if (failedDep !== undefined) {
      statuses.set(id, 424);
      responses.push({
        id,
        status: 424,
        body: errorBody(ctx, 'FailedDependency', `Request depends on '${failedDep}', which failed.`),
      });
      continue;
    }
    const rawUrl = (r.url as string).startsWith('/') ? (r.url as string) : `/${r.url as string}`;
    const url = new URL(`/${version}${rawUrl}`, 'http://127.0.0.1');
    const headers: Record<string, string> = {
      authorization: String(ctx.req.headers.authorization ?? ''),
      'content-type': 'application/json',
    };
    if (isObject(r.headers)) for (const [k, v] of Object.entries(r.headers)) headers[k.toLowerCase()] = String(v);
    const payload =
      r.body === undefined ? [] : [Buffer.from(typeof r.body === 'string' ? r.body : JSON.stringify(r.body))];
    const req = Object.assign(Readable.from(payload), {
      headers,
      socket: ctx.req.socket,
    }) as unknown as IncomingMessage;
    const sub: Ctx = {
      ...ctx,
      req,
      method: (r.method as string).toUpperCase(),
      url,
      path: url.pathname.replace(/\/+$/, ''),
      requestId: emu.ids.guid(),
      start: Date.now(),
      route: 'unknown',
      connectionId: undefined,
      itemId: undefined,
      appId: undefined,
      retryAfter: undefined,
      fault: undefined,
      warnings: [],
      done: false,
    };
    let reply: Reply;
    try {
      reply = (await handleGraph(emu, sub)) ?? {
        status: 502,
        body: errorBody(sub, 'BadGateway', 'The sub-request lost its connection (injected drop).'),
      };
    } catch (err) {
      if (!(err instanceof GraphError)) throw err;
      reply = { status: err.status, body: errorBody(sub, err.code, err.message, err.inner), headers: err.headers };
    }
    record(sub, reply.status);
    statuses.set(id, reply.status);
    responses.push({
      id,
      status: reply.status,
      headers: {
        ...(reply.headers ?? {}),
        ...(reply.body !== undefined ? { 'Content-Type': 'application/json' } : {}),
      },
      ...(reply.body !== undefined ? { body: reply.body } : {}),
    });
  }
  return { status: 200, body: { responses } };
}
