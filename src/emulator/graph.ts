/** The Graph surface: routing, then auth → faults → limits → roles → visibility → handler (v1.0 and beta). */
import { requireRole, requireVisible, type Family } from './access.js';
import {
  advanceOperations,
  createConnection,
  deleteConnection,
  getConnection,
  listConnections,
  readConnection,
  readOperation,
  readQuota,
  readSchema,
  updateConnection,
  writeSchema,
} from './connections.js';
import type { Emu } from './context.js';
import { checkTicket, ticketHeader } from './enablement.js';
import { faultError } from './faults.js';
import { addMember, createGroup, deleteGroup, getGroup, removeMember, updateGroup } from './groups.js';
import { errorBody, GraphError, parseJsonObject, readBody, sleep, type Ctx, type Reply } from './http.js';
import { addActivities, deleteItem, getItem, putItem } from './items.js';
import { searchQuery } from './query.js';

export const MAX_BODY_BYTES = 4_000_000;

export interface RouteMatch {
  route: string;
  version: string;
  methods: string[];
  family: Family | 'search';
  cid?: string;
  iid?: string;
  gid?: string;
  mid?: string;
  opId?: string;
}

const ADD_ACTIVITIES = ['addActivities', 'microsoft.graph.externalConnectors.addActivities'];

/** Map a path to a route, or undefined when no route exists. */
export function matchGraphRoute(path: string): RouteMatch | undefined {
  const segs = path
    .split('/')
    .filter((s) => s.length > 0)
    .map((s) => {
      try {
        return decodeURIComponent(s);
      } catch {
        return s;
      }
    });
  const [version, ext, conns, cid, sub, a, b, c2] = segs;
  if (version !== 'v1.0' && version !== 'beta') return undefined;
  const base = { version };
  if (ext === 'search' && conns === 'query' && segs.length === 3)
    return { ...base, route: 'search', methods: ['POST'], family: 'search' };
  if (ext !== 'external' || conns !== 'connections') return undefined;
  const n = segs.length;
  if (n === 3) return { ...base, route: 'connections', methods: ['GET', 'POST'], family: 'connection' };
  if (n === 4) return { ...base, route: 'connection', methods: ['GET', 'PATCH', 'DELETE'], family: 'connection', cid };
  if (sub === 'schema' && n === 5)
    return { ...base, route: 'schema', methods: ['GET', 'PATCH', 'POST'], family: 'connection', cid };
  if (sub === 'operations' && n === 6)
    return { ...base, route: 'operation', methods: ['GET'], family: 'connection', cid, opId: a };
  if (sub === 'quota' && n === 5 && version === 'beta')
    return { ...base, route: 'quota', methods: ['GET'], family: 'connection', cid };
  if (sub === 'items' && n === 5) return { ...base, route: 'items', methods: [], family: 'item', cid };
  if (sub === 'items' && n === 6)
    return { ...base, route: 'item', methods: ['GET', 'PUT', 'DELETE'], family: 'item', cid, iid: a };
  if (sub === 'items' && n === 7 && ADD_ACTIVITIES.includes(b!))
    return { ...base, route: 'activities', methods: ['POST'], family: 'item', cid, iid: a };
  if (sub === 'groups' && n === 5) return { ...base, route: 'groups', methods: ['POST'], family: 'item', cid };
  if (sub === 'groups' && n === 6)
    return { ...base, route: 'group', methods: ['GET', 'PATCH', 'DELETE'], family: 'item', cid, gid: a };
  if (sub === 'groups' && n === 7 && b === 'members')
    return { ...base, route: 'members', methods: ['POST'], family: 'item', cid, gid: a };
  if (sub === 'groups' && n === 8 && b === 'members')
    return { ...base, route: 'member', methods: ['DELETE'], family: 'item', cid, gid: a, mid: c2 };
  return undefined;
}

function noRoute(ctx: Ctx, m: RouteMatch): GraphError {
  return new GraphError(
    405,
    'No method match route template',
    `No OData route exists that match template ~/singleton/navigation${m.route === 'connections' ? '' : '/key/navigation'}... with http verb ${ctx.method} for request ${ctx.path}.`,
  );
}

/** Handle a Graph call end to end; returns the reply or undefined when the socket was dropped. */
export async function handleGraph(emu: Emu, ctx: Ctx): Promise<Reply | undefined> {
  const m = matchGraphRoute(ctx.path);
  if (!m) {
    const segs = ctx.path.split('/').filter(Boolean);
    if (segs[0] !== 'v1.0' && segs[0] !== 'beta')
      throw new GraphError(400, 'BadRequest', `Invalid version: ${segs[0] ?? ''}. Use v1.0 or beta.`);
    ctx.route = 'unknown';
    throw new GraphError(400, 'BadRequest', `Resource not found for the segment '${segs[segs.length - 1] ?? ''}'.`);
  }
  ctx.route = m.route;
  ctx.connectionId = m.cid;
  ctx.itemId = m.iid;
  const principal = emu.identity.authenticate(ctx);
  ctx.appId = principal.appId;

  // Throttling windows and 503 storms refuse the call before anything else happens.
  const window = emu.throttling.decide(m.cid);
  if (window) {
    ctx.fault = window.label;
    if (window.status === 429) return throttled(ctx, window.retryAfter, window.reason);
    return faultReply(ctx, 503, 'ServiceUnavailable', window.reason, window.retryAfter);
  }

  const decision = emu.faults.decide(
    { method: ctx.method, route: m.route, path: ctx.path, connectionId: m.cid, itemId: m.iid },
    true,
  );
  if (decision) ctx.fault = decision.label;
  if (decision && !decision.after) {
    if (decision.kind === 'drop') return undefined;
    if (decision.kind === 'delay') await sleep(decision.ms ?? 0);
    if (decision.kind === 'status')
      return faultReply(ctx, decision.status!, decision.code, decision.message, decision.retryAfter);
  }

  let release = () => {};
  try {
    if (m.cid) {
      // 25 concurrent operations per app per connection (reference §6.1).
      const slot = emu.limits.enter(m.cid.toLowerCase(), principal.appId.toLowerCase());
      if (!slot.admission.ok) return throttled(ctx, slot.admission.retryAfter!, slot.admission.reason!);
      release = slot.release;
    }
    if (m.route === 'item' && (ctx.method === 'PUT' || ctx.method === 'DELETE') && m.cid) {
      const adm = emu.limits.takeItem(m.cid.toLowerCase());
      if (!adm.ok) return throttled(ctx, adm.retryAfter!, adm.reason!);
    }
    if (['groups', 'group', 'members', 'member'].includes(m.route) && ctx.method !== 'GET' && m.cid) {
      const adm = emu.limits.takeGroup(m.cid.toLowerCase());
      if (!adm.ok) return throttled(ctx, adm.retryAfter!, adm.reason!);
    }
    let reply: Reply;
    try {
      reply = await dispatch(emu, ctx, m, principal);
    } catch (err) {
      if (!(err instanceof GraphError)) throw err;
      reply = { status: err.status, body: errorBody(ctx, err.code, err.message, err.inner), headers: err.headers };
    }
    if (emu.settings.latencyMs > 0) await sleep(emu.settings.latencyMs);
    if (decision?.after) {
      if (decision.kind === 'drop') return undefined;
      if (decision.kind === 'status')
        return faultReply(ctx, decision.status!, decision.code, decision.message, decision.retryAfter);
    }
    return reply;
  } finally {
    release();
  }
}

function throttled(ctx: Ctx, retryAfter: number, reason: string): Reply {
  ctx.retryAfter = retryAfter;
  return {
    status: 429,
    body: errorBody(ctx, 'TooManyRequests', `Too many requests. ${reason} Retry after ${retryAfter} seconds.`, {
      code: 'throttledRequest',
    }),
    headers: { 'Retry-After': String(retryAfter) },
  };
}

function faultReply(ctx: Ctx, status: number, code?: string, message?: string, retryAfter?: number): Reply {
  const e = faultError(status, code, message);
  const headers: Record<string, string> = {};
  if (retryAfter !== undefined) {
    headers['Retry-After'] = String(retryAfter);
    ctx.retryAfter = retryAfter;
  }
  return { status, body: errorBody(ctx, e.code, e.message), headers };
}

async function body(ctx: Ctx): Promise<Record<string, unknown>> {
  return parseJsonObject(await readBody(ctx, MAX_BODY_BYTES));
}

async function dispatch(
  emu: Emu,
  ctx: Ctx,
  m: RouteMatch,
  p: ReturnType<Emu['identity']['authenticate']>,
): Promise<Reply> {
  if (!m.methods.includes(ctx.method)) throw noRoute(ctx, m);
  advanceOperations(emu);
  const v = m.version;
  if (m.route === 'search') return searchQuery(emu, ctx, p, await body(ctx), v);
  const write = ctx.method !== 'GET';
  const scope = requireRole(p, m.family as Family, write);
  if (m.route === 'connections') {
    if (ctx.method === 'GET') return listConnections(emu, ctx, p, scope, v);
    const ticket = ticketHeader(ctx.req.headers);
    return createConnection(emu, await body(ctx), p, v, ticket === undefined ? undefined : checkTicket(emu, ticket));
  }
  // A second DELETE reaches the connection being deleted (and gets 409); every other call gets 404.
  const c = getConnection(emu, m.cid!, { includeDeleting: m.route === 'connection' && ctx.method === 'DELETE' });
  requireVisible(p, scope, c);
  switch (m.route) {
    case 'connection':
      if (ctx.method === 'GET') return readConnection(emu, c, v);
      if (ctx.method === 'PATCH') return updateConnection(emu, c, await body(ctx), v);
      {
        const ticket = ticketHeader(ctx.req.headers);
        if (ticket !== undefined) checkTicket(emu, ticket);
        return deleteConnection(emu, c);
      }
    case 'schema':
      if (ctx.method === 'GET') return readSchema(emu, ctx, c, v);
      return writeSchema(emu, ctx, c, await body(ctx), v, ctx.method === 'POST');
    case 'operation':
      return readOperation(emu, c, m.opId!, v);
    case 'quota':
      return readQuota(emu, c, v);
    case 'item':
      if (ctx.method === 'PUT') return putItem(emu, ctx, c, m.iid!, await body(ctx), p, v);
      if (ctx.method === 'GET') return getItem(emu, c, m.iid!, v);
      return deleteItem(emu, c, m.iid!);
    case 'activities':
      if (!p.roles.some((r) => r.startsWith('ExternalItem.ReadWrite.')))
        throw new GraphError(
          403,
          'Authorization_RequestDenied',
          'addActivities needs ExternalItem.ReadWrite.OwnedBy or ExternalItem.ReadWrite.All (application).',
        );
      return addActivities(emu, c, m.iid!, await body(ctx));
    case 'groups':
      return createGroup(emu, c, await body(ctx), v);
    case 'group':
      if (ctx.method === 'GET') return getGroup(emu, c, m.gid!, v);
      if (ctx.method === 'PATCH') return updateGroup(emu, c, m.gid!, await body(ctx));
      return deleteGroup(emu, c, m.gid!);
    case 'members':
      return addMember(emu, c, m.gid!, await body(ctx), v);
    case 'member':
      return removeMember(emu, c, m.gid!, m.mid!);
  }
  throw noRoute(ctx, m);
}
