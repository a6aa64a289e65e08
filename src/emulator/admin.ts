/** The admin API under /_emulator/ (no token; not part of Graph): state, requests, faults, apps, directory, search. */
import { X509Certificate } from 'node:crypto';
import { getConnection, isDeleting } from './connections.js';
import { buildNotification, deliverNotification, parseNotificationRequest } from './enablement.js';
import type { Emu, RequestLogEntry } from './context.js';
import { GraphError, isObject, parseJsonObject, readBody, GUID_RE, type Ctx, type Reply } from './http.js';
import { renderItem } from './items.js';
import { canSee, entraGroupsOf, externalGroupsOf, findUser, matchesQuery, searchableText } from './search.js';
import { DEFAULT_DELEGATED_SCOPES, KNOWN_ROLES, OWNED_BY_ROLES } from './identity.js';
import type { AppRegistration, Directory, FederatedCredential, ManagedIdentity } from './store.js';

const STATES = ['draft', 'ready', 'obsolete', 'limitExceeded'];

function bad(message: string): GraphError {
  return new GraphError(400, 'BadRequest', message);
}

function ok(body: unknown, status = 200): Reply {
  return { status, body };
}

function roleList(raw: unknown, field: string): string[] {
  if (raw === undefined) return [...OWNED_BY_ROLES];
  if (!Array.isArray(raw) || raw.some((r) => typeof r !== 'string'))
    throw bad(`${field} must be an array of role names.`);
  const unknown = (raw as string[]).filter((r) => !KNOWN_ROLES.includes(r));
  if (unknown.length) throw bad(`${field}: unknown role(s) ${unknown.join(', ')}; use ${KNOWN_ROLES.join(', ')}.`);
  return raw as string[];
}

function certificates(raw: unknown): string[] {
  const list = raw === undefined ? [] : Array.isArray(raw) ? raw : [raw];
  const out: string[] = [];
  for (const pem of list) {
    if (typeof pem !== 'string') throw bad('certificatePem must be a PEM string (or an array of them).');
    const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g);
    if (!blocks) throw bad('certificatePem holds no "-----BEGIN CERTIFICATE-----" block.');
    for (const b of blocks) {
      try {
        new X509Certificate(b);
      } catch (err) {
        throw bad(`certificatePem is not a valid certificate: ${(err as Error).message}`);
      }
      out.push(b + '\n');
    }
  }
  return out;
}

function federated(raw: unknown): FederatedCredential[] {
  if (raw === undefined) return [];
  if (!Array.isArray(raw)) throw bad('federatedCredentials must be an array of {subject, issuer?, audiences?}.');
  return raw.map((f, i) => {
    if (!isObject(f) || typeof f.subject !== 'string' || !f.subject)
      throw bad(`federatedCredentials[${i}].subject is required (the managed identity's object id).`);
    const out: FederatedCredential = { subject: f.subject };
    if (typeof f.issuer === 'string') out.issuer = f.issuer;
    if (Array.isArray(f.audiences)) out.audiences = f.audiences.map(String);
    if (typeof f.name === 'string') out.name = f.name;
    return out;
  });
}

export function publicApp(a: AppRegistration): Record<string, unknown> {
  return {
    clientId: a.clientId,
    objectId: a.objectId,
    displayName: a.displayName,
    roles: a.roles,
    delegatedScopes: a.delegatedScopes ?? DEFAULT_DELEGATED_SCOPES,
    secretCount: a.secrets.length,
    certificateCount: a.certificates.length,
    federatedCredentials: a.federatedCredentials,
  };
}

export function parseDirectory(raw: unknown, source: string): Directory {
  if (!isObject(raw)) throw new Error(`${source}: the directory must be an object {users: [...], groups: [...]}.`);
  const users = raw.users ?? [];
  const groups = raw.groups ?? [];
  if (!Array.isArray(users)) throw new Error(`${source}: users must be an array.`);
  if (!Array.isArray(groups)) throw new Error(`${source}: groups must be an array.`);
  const ids = new Set<string>();
  const dir: Directory = { users: [], groups: [] };
  users.forEach((u, i) => {
    if (!isObject(u) || typeof u.id !== 'string' || !GUID_RE.test(u.id))
      throw new Error(`${source}: users[${i}].id must be an object id (GUID).`);
    if (typeof u.userPrincipalName !== 'string' || !u.userPrincipalName.includes('@'))
      throw new Error(`${source}: users[${i}].userPrincipalName must be a UPN like adele@contoso.com.`);
    if (ids.has(u.id.toLowerCase())) throw new Error(`${source}: users[${i}].id ${u.id} is used twice.`);
    ids.add(u.id.toLowerCase());
    if (u.password !== undefined && (typeof u.password !== 'string' || u.password.length === 0))
      throw new Error(
        `${source}: users[${i}].password must be a non-empty string (or left out: the emulator's userPassword).`,
      );
    dir.users.push({
      id: u.id,
      userPrincipalName: u.userPrincipalName,
      displayName: typeof u.displayName === 'string' ? u.displayName : undefined,
      guest: u.guest === true,
      ...(typeof u.password === 'string' ? { password: u.password } : {}),
    });
  });
  groups.forEach((g, i) => {
    if (!isObject(g) || typeof g.id !== 'string' || !GUID_RE.test(g.id))
      throw new Error(`${source}: groups[${i}].id must be an object id (GUID).`);
    if (ids.has(g.id.toLowerCase())) throw new Error(`${source}: groups[${i}].id ${g.id} is used twice.`);
    ids.add(g.id.toLowerCase());
    const members = g.members ?? [];
    if (!Array.isArray(members) || members.some((m) => typeof m !== 'string'))
      throw new Error(`${source}: groups[${i}].members must be an array of user or group object ids.`);
    dir.groups.push({
      id: g.id,
      displayName: typeof g.displayName === 'string' ? g.displayName : undefined,
      members: members as string[],
    });
  });
  for (const g of dir.groups)
    for (const m of g.members)
      if (!ids.has(m.toLowerCase()))
        throw new Error(
          `${source}: group ${g.id} lists member ${m}, which is neither a user nor a group of the directory.`,
        );
  return dir;
}

function summary(entries: RequestLogEntry[]): Record<string, unknown> {
  const count = (key: (e: RequestLogEntry) => string) => {
    const out: Record<string, number> = {};
    for (const e of entries) out[key(e)] = (out[key(e)] ?? 0) + 1;
    return out;
  };
  return {
    total: entries.length,
    byMethod: count((e) => e.method),
    byRoute: count((e) => e.route),
    byStatus: count((e) => String(e.status)),
    byRouteMethodStatus: count((e) => `${e.method} ${e.route} ${e.status}`),
  };
}

function filterRequests(emu: Emu, q: URLSearchParams): RequestLogEntry[] {
  let list = emu.requests;
  const f = (k: string) => q.get(k) ?? undefined;
  const method = f('method');
  const route = f('route');
  const status = f('status');
  const cid = f('connectionId');
  const since = f('since');
  if (method) list = list.filter((e) => e.method === method.toUpperCase());
  if (route) list = list.filter((e) => e.route === route);
  if (status) list = list.filter((e) => String(e.status) === status);
  if (cid) list = list.filter((e) => e.connectionId === cid);
  if (since) list = list.filter((e) => e.time >= since);
  if (q.get('graphOnly') === 'true')
    list = list.filter((e) => !['token', 'msi', 'openid', 'jwks', 'discovery', 'admin'].includes(e.route));
  return list;
}

export interface AdminHooks {
  reset(all: boolean): void;
}

export async function handleAdmin(emu: Emu, ctx: Ctx, hooks: AdminHooks): Promise<Reply> {
  const segs = ctx.path
    .split('/')
    .filter(Boolean)
    .slice(1)
    .map((s) => {
      try {
        return decodeURIComponent(s);
      } catch {
        return s;
      }
    });
  const [a, b, c, d] = segs;
  const M = ctx.method;
  const q = ctx.url.searchParams;
  const body = async () => (M === 'GET' || M === 'DELETE' ? {} : parseJsonObject(await readBody(ctx, 50_000_000)));
  const state = emu.store.state;
  ctx.route = 'admin';

  if (!a && M === 'GET')
    return ok({
      emulator: 'Microsoft Graph connectors API emulator (see docs/emulator.md)',
      graph: [`${emu.baseUrl}/v1.0`, `${emu.baseUrl}/beta`],
      tokenEndpoint: emu.identity.tokenEndpoint(),
      tenantId: state.tenantId,
      clientId: state.defaultAppId,
      userPassword: state.userPassword,
      admin: [
        'GET state',
        'GET connections/{cid}/items[/{iid}]',
        'GET connections/{cid}/groups',
        'PATCH connections/{cid} {state, itemQuota}',
        'GET requests[?method&route&status&connectionId&since&graphOnly]',
        'GET requests/summary',
        'DELETE requests',
        'POST reset {all?}',
        'GET|POST|DELETE faults[/{id}]',
        'GET|POST|DELETE throttle[/{id}] {status, seconds, startInSeconds?, connectionId?, share?, retryAfter?}',
        'PATCH settings',
        'GET|POST apps, PATCH|DELETE apps/{clientId}',
        'GET|POST managed-identities',
        'GET|POST directory',
        'GET search?connectionId&user&q',
        'POST tokens {clientId?, roles?, audience?, lifetimeSeconds?, user?, scopes?}',
        'POST connector-notifications {url, connectorId, audience, state?, send?, token?}',
      ].map((r) => `${emu.baseUrl}/_emulator/ ${r}`),
    });

  if (a === 'state' && M === 'GET' && !b)
    return ok({
      tenantId: state.tenantId,
      settings: emu.settings,
      connections: [...state.connections.values()].map((conn) => ({
        id: conn.id,
        name: conn.name,
        state: conn.state,
        deleting: isDeleting(conn),
        ...(conn.deleteAt !== undefined ? { deletedAt: new Date(conn.deleteAt).toISOString() } : {}),
        createdBy: conn.createdBy,
        connectorId: conn.connectorId ?? null,
        ticket: conn.ticket ?? null,
        authorizedAppIds: conn.configuration.authorizedAppIds,
        contentCategory: conn.contentCategory,
        schema: conn.schema ?? null,
        operations: [...conn.operations.values()].map((o) => ({ id: o.id, status: o.status, error: o.error ?? null })),
        itemCount: conn.items.size,
        groupCount: conn.groups.size,
        itemQuota: conn.itemQuota ?? null,
      })),
      apps: [...state.apps.values()].map(publicApp),
      managedIdentities: [...state.managedIdentities.values()],
      directory: { users: state.directory.users.length, groups: state.directory.groups.length },
      faults: emu.faults.view(),
      throttling: emu.throttling.view(),
    });

  if (a === 'connections' && b) {
    const conn = getConnection(emu, b, { includeDeleting: true });
    if (c === 'items' && !d && M === 'GET')
      return ok({
        value: [...conn.items.values()].map((i) => ({
          ...renderItem(i),
          activities: i.activities,
          lastModifiedDateTime: i.lastModifiedDateTime,
        })),
      });
    if (c === 'items' && d && M === 'GET') {
      const item = conn.items.get(d);
      if (!item) throw new GraphError(404, 'itemNotFound', `No item '${d}' in connection '${conn.id}'.`);
      return ok({ ...renderItem(item), activities: item.activities });
    }
    if (c === 'groups' && M === 'GET') return ok({ value: [...conn.groups.values()] });
    if (!c && M === 'PATCH') {
      const input = await body();
      if (input.state !== undefined) {
        if (!STATES.includes(input.state as string)) throw bad(`state must be one of ${STATES.join(', ')}.`);
        conn.state = input.state as string;
      }
      if (input.itemQuota !== undefined) {
        if (input.itemQuota === null) delete conn.itemQuota;
        else if (!Number.isInteger(input.itemQuota) || (input.itemQuota as number) < 0)
          throw bad('itemQuota must be a non-negative integer or null.');
        else conn.itemQuota = input.itemQuota as number;
      }
      emu.changed();
      return ok({ id: conn.id, state: conn.state, itemQuota: conn.itemQuota ?? null });
    }
  }

  if (a === 'requests' && !b && M === 'GET') return ok({ value: filterRequests(emu, q) });
  if (a === 'requests' && b === 'summary' && M === 'GET') return ok(summary(filterRequests(emu, q)));
  if (a === 'requests' && !b && M === 'DELETE') {
    emu.requests.length = 0;
    return { status: 204 };
  }

  if (a === 'reset' && M === 'POST') {
    const input = await body();
    hooks.reset(input.all === true);
    return ok({ reset: true, all: input.all === true });
  }

  if (a === 'faults') {
    if (M === 'GET' && !b) return ok({ value: emu.faults.view() });
    if (M === 'POST' && !b) {
      const input = await body();
      const list = Array.isArray(input.faults) ? input.faults : [input];
      const added = list.map((f) => emu.faults.add(f));
      return ok(added.length === 1 ? { id: added[0]!.id } : { ids: added.map((r) => r.id) }, 201);
    }
    if (M === 'DELETE') return ok({ removed: emu.faults.remove(b) });
  }

  if (a === 'throttle') {
    if (M === 'GET' && !b) return ok({ value: emu.throttling.view() });
    if (M === 'POST' && !b) {
      const input = await body();
      const list = Array.isArray(input.windows) ? input.windows : [input];
      const added = list.map((w) => emu.throttling.add(w));
      return ok(
        { value: emu.throttling.view().filter((w) => added.some((x) => x.id === (w as { id: string }).id)) },
        201,
      );
    }
    if (M === 'DELETE') return ok({ removed: emu.throttling.remove(b) });
  }

  if (a === 'settings' && M === 'PATCH') {
    const input = await body();
    const next = { ...emu.settings } as unknown as Record<string, number>;
    for (const [k, v] of Object.entries(input)) {
      if (!(k in emu.settings)) throw bad(`Unknown setting '${k}'; use ${Object.keys(emu.settings).join(', ')}.`);
      if (typeof v !== 'number' || v < 0) throw bad(`${k} must be a non-negative number.`);
      next[k] = v;
    }
    if (next.retryAfterMax! > 0 && next.retryAfterMin! > next.retryAfterMax!)
      throw bad(`retryAfterMin (${next.retryAfterMin}) is above retryAfterMax (${next.retryAfterMax}); set both.`);
    Object.assign(emu.settings, next);
    emu.limits.maxConcurrency = emu.settings.maxConcurrency;
    emu.limits.rateLimit = emu.settings.rateLimit;
    emu.limits.groupRateLimit = emu.settings.groupRateLimit;
    emu.faults.rate = emu.settings.faultRate;
    return ok(emu.settings);
  }

  if (a === 'apps') {
    if (M === 'GET' && !b) return ok({ value: [...state.apps.values()].map(publicApp) });
    if (M === 'POST' && !b) {
      const input = await body();
      const clientId = typeof input.clientId === 'string' ? input.clientId : emu.ids.guid();
      if (state.apps.has(clientId.toLowerCase()))
        throw new GraphError(409, 'Conflict', `App '${clientId}' is already registered.`);
      const certs = certificates(input.certificatePem ?? input.certificates);
      const fics = federated(input.federatedCredentials);
      let secrets: string[] = [];
      if (typeof input.secret === 'string') secrets = [input.secret];
      else if (input.secret === undefined && certs.length === 0 && fics.length === 0) secrets = [emu.ids.hex(20)];
      const app: AppRegistration = {
        clientId,
        objectId: emu.ids.guid(),
        displayName: typeof input.displayName === 'string' ? input.displayName : `app ${clientId.slice(0, 8)}`,
        secrets,
        roles: roleList(input.roles, 'roles'),
        certificates: certs,
        federatedCredentials: fics,
        ...(input.delegatedScopes !== undefined
          ? { delegatedScopes: roleList(input.delegatedScopes, 'delegatedScopes') }
          : {}),
      };
      state.apps.set(clientId.toLowerCase(), app);
      emu.changed();
      return ok({ ...publicApp(app), clientSecret: secrets[0] ?? null, tenantId: state.tenantId }, 201);
    }
    const app = b ? state.apps.get(b.toLowerCase()) : undefined;
    if (b && !app) throw new GraphError(404, 'itemNotFound', `No app '${b}' is registered.`);
    if (app && M === 'PATCH') {
      const input = await body();
      if (input.roles !== undefined) app.roles = roleList(input.roles, 'roles');
      if (input.delegatedScopes !== undefined) app.delegatedScopes = roleList(input.delegatedScopes, 'delegatedScopes');
      if (typeof input.secret === 'string') app.secrets.push(input.secret);
      if (input.certificatePem !== undefined) app.certificates.push(...certificates(input.certificatePem));
      if (input.federatedCredentials !== undefined)
        app.federatedCredentials.push(...federated(input.federatedCredentials));
      emu.changed();
      return ok(publicApp(app));
    }
    if (app && M === 'DELETE') {
      state.apps.delete(app.clientId.toLowerCase());
      emu.changed();
      return { status: 204 };
    }
  }

  if (a === 'managed-identities') {
    if (M === 'GET') return ok({ value: [...state.managedIdentities.values()] });
    if (M === 'POST') {
      const input = await body();
      const mi: ManagedIdentity = {
        clientId: typeof input.clientId === 'string' ? input.clientId : emu.ids.guid(),
        objectId: typeof input.objectId === 'string' ? input.objectId : emu.ids.guid(),
        displayName: typeof input.displayName === 'string' ? input.displayName : 'managed-identity',
        roles: roleList(input.roles, 'roles'),
        systemAssigned: input.systemAssigned === true,
      };
      if (mi.systemAssigned) for (const m of state.managedIdentities.values()) m.systemAssigned = false;
      state.managedIdentities.set(mi.clientId, mi);
      emu.changed();
      return ok(mi, 201);
    }
  }

  if (a === 'directory') {
    if (M === 'GET') return ok(state.directory);
    if (M === 'POST') {
      try {
        state.directory = parseDirectory(await body(), 'POST /_emulator/directory');
      } catch (err) {
        if (err instanceof GraphError) throw err;
        throw bad((err as Error).message);
      }
      emu.changed();
      return ok({ users: state.directory.users.length, groups: state.directory.groups.length });
    }
  }

  if (a === 'search' && M === 'GET') {
    const who = q.get('user');
    if (!who) throw bad('user is required: an object id or UPN from the directory (GET /_emulator/directory).');
    const user = findUser(state.directory, who);
    if (!user)
      throw new GraphError(
        404,
        'itemNotFound',
        `User '${who}' is not in the emulator's directory. Seed it with --directory or POST /_emulator/directory.`,
      );
    const view = { user, groups: entraGroupsOf(state.directory, user.id) };
    const cid = q.get('connectionId');
    const conns = cid ? [getConnection(emu, cid)] : [...state.connections.values()].filter((c) => !isDeleting(c));
    const words = q.get('q') ?? '';
    const value: unknown[] = [];
    for (const conn of conns) {
      const external = externalGroupsOf(conn, view);
      for (const item of conn.items.values()) {
        if (!canSee(item, view, external)) continue;
        if (words && !matchesQuery(searchableText(conn, item), words)) continue;
        value.push({ connectionId: conn.id, ...renderItem(item) });
      }
    }
    return ok({
      user: { id: user.id, userPrincipalName: user.userPrincipalName, guest: !!user.guest },
      count: value.length,
      value,
    });
  }

  if (a === 'tokens' && M === 'POST') {
    const input = await body();
    const clientId = typeof input.clientId === 'string' ? input.clientId : state.defaultAppId;
    if (input.user !== undefined) {
      // A delegated token for a directory user, without a sign-in (tests of the search API's edges).
      const user = typeof input.user === 'string' ? findUser(state.directory, input.user) : undefined;
      if (!user) throw bad(`user ${JSON.stringify(input.user)} is not in the directory (an object id or UPN).`);
      const scopes = input.scopes === undefined ? [...DEFAULT_DELEGATED_SCOPES] : roleList(input.scopes, 'scopes');
      const t = emu.identity.issueUser({
        app: { clientId },
        user,
        scopes,
        lifetime: typeof input.lifetimeSeconds === 'number' ? input.lifetimeSeconds : undefined,
      });
      return ok({ access_token: t.token, expires_on: t.expiresOn });
    }
    const app = state.apps.get(clientId.toLowerCase());
    const mi = state.managedIdentities.get(clientId);
    if (!app && !mi) throw bad(`clientId '${clientId}' is neither a registered app nor a managed identity.`);
    const t = emu.identity.issue({
      appId: clientId,
      objectId: app?.objectId ?? mi!.objectId,
      roles: input.roles === undefined ? [...(app?.roles ?? mi!.roles)] : roleList(input.roles, 'roles'),
      audience: typeof input.audience === 'string' ? input.audience : 'https://graph.microsoft.com',
      appidacr: '1',
      lifetime: typeof input.lifetimeSeconds === 'number' ? input.lifetimeSeconds : undefined,
    });
    return ok({ access_token: t.token, expires_on: t.expiresOn });
  }

  if (a === 'connector-notifications' && M === 'POST' && !b) {
    // What the admin center does when an admin turns the connector on or off: sign and POST a notification.
    const request = parseNotificationRequest(await body());
    const { body: notification, ticket } = buildNotification(emu, request);
    const delivered = request.send ? await deliverNotification(request.url, notification) : undefined;
    emu.log(
      `emulator: connector ${request.connectorId} ${request.state} notification ${request.send ? `sent to ${request.url.split('?')[0]}` : 'built'}`,
    );
    return ok({ notification, ticket, ...(delivered ? { delivered } : {}) });
  }

  throw new GraphError(404, 'itemNotFound', `No admin route ${M} ${ctx.path}. See docs/emulator.md for the admin API.`);
}
