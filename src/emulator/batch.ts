/**
 * JSON batching (https://learn.microsoft.com/graph/json-batching): POST /{version}/$batch with 1–20 sub-requests.
 * Each sub-request runs through the same pipeline as a direct call (token, throttling, faults, limits, roles), so
 * a throttled one gets its own 429 + Retry-After inside the batch. "Batch should be either fully sequential or
 * fully parallel": either no request names `dependsOn` (they run concurrently, answered in the order they finish),
 * or every request but one names exactly one other and together they form a single chain (run in chain order; after
 * a failure the rest get 424 Failed Dependency). Anything in between is a 400 naming the request and the fix.
 */
import type { IncomingMessage } from 'node:http';
import { Readable } from 'node:stream';
import type { Emu } from './context.js';
import { handleGraph } from './graph.js';
import { errorBody, GraphError, isObject, parseJsonObject, readBody, type Ctx, type Reply } from './http.js';

interface SubRequest {
  id: string;
  method: string;
  url: string;
  dependsOn?: string;
  headers?: Record<string, unknown>;
  body?: unknown;
}

function bad(message: string): GraphError {
  return new GraphError(400, 'BadRequest', `Invalid batch payload: ${message}`);
}

/** Validate the payload; returns the requests in the order they must run, and whether that order is a chain. */
function plan(requests: unknown): { order: SubRequest[]; sequential: boolean } {
  if (!Array.isArray(requests) || requests.length === 0) throw bad('requests must be a non-empty array.');
  if (requests.length > 20) throw bad(`at most 20 requests per batch; got ${requests.length}. Split the batch.`);
  const byId = new Map<string, SubRequest>();
  for (const [i, r] of requests.entries()) {
    if (!isObject(r) || typeof r.id !== 'string' || typeof r.method !== 'string' || typeof r.url !== 'string')
      throw bad(`requests[${i}] needs id, method and url (strings).`);
    if (byId.has(r.id.toLowerCase()))
      throw bad(`requests[${i}].id '${r.id}' is used twice (ids are not case-sensitive).`);
    let dependsOn: string | undefined;
    if (r.dependsOn !== undefined && r.dependsOn !== null) {
      if (!Array.isArray(r.dependsOn) || r.dependsOn.some((d) => typeof d !== 'string'))
        throw bad(`requests[${i}].dependsOn must be an array of request ids.`);
      if (r.dependsOn.length > 1)
        throw bad(
          `requests[${i}] ('${r.id}') depends on ${r.dependsOn.length} requests; in a sequence each request depends on exactly one other.`,
        );
      dependsOn = r.dependsOn[0] as string | undefined;
    }
    byId.set(r.id.toLowerCase(), {
      id: r.id,
      method: r.method,
      url: r.url,
      ...(dependsOn !== undefined ? { dependsOn } : {}),
      ...(isObject(r.headers) ? { headers: r.headers } : {}),
      ...(r.body !== undefined ? { body: r.body } : {}),
    });
  }
  const all = [...byId.values()];
  const dependent = all.filter((r) => r.dependsOn !== undefined);
  if (dependent.length === 0) return { order: all, sequential: false };
  const rule =
    'dependsOn must be on no request (they run in parallel) or chain every request into one sequence (each but the first depends on exactly one other)';
  const roots = all.filter((r) => r.dependsOn === undefined);
  if (roots.length !== 1)
    throw bad(
      `${rule}; ${roots.length} requests (${roots.map((r) => `'${r.id}'`).join(', ')}) depend on nothing, so the chain is partial.`,
    );
  const next = new Map<string, SubRequest>();
  for (const r of dependent) {
    const target = byId.get(r.dependsOn!.toLowerCase());
    if (!target) throw bad(`request '${r.id}' depends on '${r.dependsOn}', which is not in the batch.`);
    const key = target.id.toLowerCase();
    if (next.has(key))
      throw bad(`${rule}; '${next.get(key)!.id}' and '${r.id}' both depend on '${target.id}', so the chain branches.`);
    next.set(key, r);
  }
  const order: SubRequest[] = [];
  for (let cur: SubRequest | undefined = roots[0]; cur; cur = next.get(cur.id.toLowerCase())) order.push(cur);
  if (order.length !== all.length)
    throw bad(`${rule}; the dependsOn references form a cycle that ${all.length - order.length} request(s) belong to.`);
  return { order, sequential: true };
}

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
  const { order, sequential } = plan(body.requests);

  const run = async (r: SubRequest): Promise<{ id: string; reply: Reply }> => {
    let rawUrl = r.url.startsWith('/') ? r.url : `/${r.url}`;
    // The Graph SDKs send the path of an absolute request URL, version included (`/v1.0/...`).
    if (rawUrl.toLowerCase().startsWith(`/${version.toLowerCase()}/`)) rawUrl = rawUrl.slice(version.length + 1);
    const url = new URL(`/${version}${rawUrl}`, 'http://127.0.0.1');
    const headers: Record<string, string> = {
      authorization: String(ctx.req.headers.authorization ?? ''),
      'content-type': 'application/json',
    };
    for (const [k, v] of Object.entries(r.headers ?? {})) headers[k.toLowerCase()] = String(v);
    const payload =
      r.body === undefined ? [] : [Buffer.from(typeof r.body === 'string' ? r.body : JSON.stringify(r.body))];
    const req = Object.assign(Readable.from(payload), {
      headers,
      socket: ctx.req.socket,
    }) as unknown as IncomingMessage;
    const sub: Ctx = {
      ...ctx,
      req,
      method: r.method.toUpperCase(),
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
    return { id: r.id, reply };
  };
  const render = ({ id, reply }: { id: string; reply: Reply }) => ({
    id,
    status: reply.status,
    headers: {
      ...(reply.headers ?? {}),
      ...(reply.body !== undefined ? { 'Content-Type': 'application/json' } : {}),
    },
    ...(reply.body !== undefined ? { body: reply.body } : {}),
  });

  const responses: unknown[] = [];
  if (sequential) {
    let failed: string | undefined;
    for (const r of order) {
      if (failed !== undefined) {
        responses.push({
          id: r.id,
          status: 424,
          body: errorBody(
            ctx,
            'FailedDependency',
            `Request depends on '${r.dependsOn}', which failed or did not run ('${failed}' failed).`,
          ),
        });
        continue;
      }
      const done = await run(r);
      responses.push(render(done));
      if (done.reply.status < 200 || done.reply.status >= 300) failed = r.id;
    }
  } else {
    // Unordered: every sub-request starts at once; answers are listed as they finish.
    await Promise.all(order.map(async (r) => responses.push(render(await run(r)))));
  }
  return { status: 200, body: { responses } };
}
