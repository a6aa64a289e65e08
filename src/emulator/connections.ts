/** Connections (C1–C5), schema (S1, S2), operations (O1) and the beta quota (reference §2.1–§2.3, §3). */
import { requireState, requireVisible, owns } from './access.js';
import type { Emu } from './context.js';
import type { TicketClaims } from './enablement.js';
import { ALNUM_RE, GraphError, isObject, type Ctx, type Reply } from './http.js';
import type { Principal } from './identity.js';
import { renderSchema, schemaKey, updateProblem, validateSchema } from './schema.js';
import type { Connection, Operation } from './store.js';

export const RESERVED_IDS = [
  'None',
  'Directory',
  'Exchange',
  'ExchangeArchive',
  'LinkedIn',
  'Mailbox',
  'OneDriveBusiness',
  'SharePoint',
  'Teams',
  'Yammer',
  'Connectors',
  'TaskFabric',
  'PowerBI',
  'Assistant',
  'TopicEngine',
  'MSFT_All_Connectors',
];

export const CONTENT_CATEGORIES = [
  'uncategorized',
  'knowledgeBase',
  'wikis',
  'fileRepository',
  'qna',
  'crm',
  'dashboard',
  'people',
  'media',
  'email',
  'messaging',
  'meetingTranscripts',
  'taskManagement',
  'learningManagement',
];

const WRITABLE_V1 = [
  'id',
  'name',
  'description',
  'configuration',
  'activitySettings',
  'searchSettings',
  'contentCategory',
  'connectorId',
];
const WRITABLE_BETA = [...WRITABLE_V1, 'enabledContentExperiences', 'complianceSettings'];
const COMPUTED = ['state', 'ingestedItemsCount', '@odata.context', '@odata.type', '@odata.etag'];

function invalid(message: string, inner = 'InvalidRequest'): GraphError {
  return new GraphError(400, 'InvalidRequest', message, { code: inner, message });
}

export function notFound(what: string): GraphError {
  return new GraphError(404, 'itemNotFound', `${what} was not found.`);
}

export function checkConnectionId(id: unknown): string {
  if (typeof id !== 'string' || id.length === 0)
    throw invalid('The connection id is required (3–32 alphanumeric characters).', 'InvalidConnectionId');
  if (id.length < 3 || id.length > 32 || !ALNUM_RE.test(id))
    throw new GraphError(400, 'InvalidRequest', 'The request is malformed or incorrect.', {
      code: 'InvalidConnectionId',
      message: `Connection id '${id}' is invalid: it must be 3–32 characters, letters and digits only (no hyphens or other symbols).`,
    });
  if (/^microsoft/i.test(id))
    throw invalid(`Connection id '${id}' may not begin with 'Microsoft'.`, 'InvalidConnectionId');
  const reserved = RESERVED_IDS.find((r) => r.toLowerCase() === id.toLowerCase());
  if (reserved)
    throw invalid(`Connection id '${id}' is reserved (${reserved}); choose another id.`, 'InvalidConnectionId');
  return id;
}

function checkBody(body: Record<string, unknown>, version: string): void {
  const allowed = version === 'beta' ? WRITABLE_BETA : WRITABLE_V1;
  for (const key of Object.keys(body)) {
    if (allowed.includes(key) || COMPUTED.includes(key)) continue;
    throw new GraphError(
      400,
      'BadRequest',
      `The property '${key}' does not exist on type 'microsoft.graph.externalConnectors.externalConnection'${version === 'beta' ? '' : ' (v1.0)'}. Make sure to only use property names that are defined by the type.`,
    );
  }
  if (body.name !== undefined) {
    if (typeof body.name !== 'string' || body.name.trim().length === 0)
      throw invalid('name must be a non-empty string.', 'InvalidConnectionName');
    if (body.name.length > 128)
      throw invalid(`name is ${body.name.length} characters; the maximum is 128.`, 'InvalidConnectionName');
  }
  if (body.description !== undefined && body.description !== null && typeof body.description !== 'string')
    throw invalid('description must be a string.');
  if (body.configuration !== undefined && body.configuration !== null) {
    if (!isObject(body.configuration)) throw invalid('configuration must be an object {authorizedAppIds: [...]}.');
    const ids = body.configuration.authorizedAppIds;
    if (ids !== undefined && ids !== null && (!Array.isArray(ids) || ids.some((x) => typeof x !== 'string')))
      throw invalid('configuration.authorizedAppIds must be an array of app id strings.');
  }
  if (body.contentCategory !== undefined && !CONTENT_CATEGORIES.includes(body.contentCategory as string))
    throw new GraphError(400, 'InvalidRequest', 'The request is malformed or incorrect.', {
      code: 'DeserializationError',
      message: `Requested value '${JSON.stringify(body.contentCategory)}' was not found.`,
    });
  if (body.searchSettings !== undefined && body.searchSettings !== null) {
    if (!isObject(body.searchSettings)) throw invalid('searchSettings must be an object.');
    const templates = body.searchSettings.searchResultTemplates;
    if (templates !== undefined && templates !== null) {
      if (!Array.isArray(templates)) throw invalid('searchSettings.searchResultTemplates must be an array.');
      if (templates.length > 2)
        throw invalid(`A connection can have at most 2 search result templates; got ${templates.length}.`);
      for (const t of templates) {
        if (!isObject(t)) throw invalid('Each search result template must be an object.');
        if (typeof t.id !== 'string' || !ALNUM_RE.test(t.id) || t.id.length > 16)
          throw invalid(
            `Search result template id ${JSON.stringify(t.id)} must be alphanumeric, at most 16 characters.`,
          );
        if (!isObject(t.layout))
          throw invalid(`Search result template '${t.id}': layout must be an Adaptive Card object.`);
        if (!Number.isInteger(t.priority) || (t.priority as number) < 1)
          throw invalid(`Search result template '${t.id}': priority must be a positive integer.`);
      }
    }
  }
  if (body.activitySettings !== undefined && body.activitySettings !== null && !isObject(body.activitySettings))
    throw invalid('activitySettings must be an object.');
  if (body.connectorId !== undefined && body.connectorId !== null && typeof body.connectorId !== 'string')
    throw invalid('connectorId must be a string.');
}

export function renderConnection(emu: Emu, c: Connection, version: string): Record<string, unknown> {
  const out: Record<string, unknown> = {
    id: c.id,
    name: c.name,
    description: c.description ?? null,
    state: c.state,
    contentCategory: c.contentCategory,
    connectorId: c.connectorId ?? null,
    configuration: { ...c.configuration, authorizedAppIds: [...c.configuration.authorizedAppIds] },
    activitySettings: c.activitySettings ?? { urlToItemResolvers: [] },
    searchSettings: c.searchSettings ?? { searchResultTemplates: [] },
  };
  if (version === 'beta') {
    out.enabledContentExperiences = c.enabledContentExperiences ?? 'search';
    out.complianceSettings = c.complianceSettings ?? null;
    out.ingestedItemsCount = c.state === 'draft' ? null : c.items.size;
  }
  return out;
}

function ctxUrl(emu: Emu, version: string, fragment: string): string {
  return `${emu.baseUrl}/${version}/$metadata#${fragment}`;
}

/** Move finished schema operations to completed/failed; completing one makes the connection ready. */
export function advanceOperations(emu: Emu, now = Date.now()): void {
  for (const c of [...emu.store.state.connections.values()]) {
    if (c.deleteAt !== undefined && c.deleteAt <= now) {
      emu.store.state.connections.delete(c.id.toLowerCase());
      emu.log(`emulator: connection '${c.id}' deleted (${c.items.size} items removed); its id is free again`);
      emu.changed();
      continue;
    }
    for (const op of c.operations.values()) {
      if (op.status !== 'inprogress' || op.completesAt > now) continue;
      if (op.failure) {
        op.status = 'failed';
        op.error = op.failure;
        emu.log(`emulator: schema operation ${op.id} on '${c.id}' failed: ${op.failure.message}`);
      } else {
        op.status = 'completed';
        c.schema = op.schema;
        if (c.state === 'draft') c.state = 'ready';
        emu.log(`emulator: schema operation ${op.id} on '${c.id}' completed; connection is ${c.state}`);
      }
      emu.changed();
    }
  }
}

/** Whether the connection is being deleted (a DELETE was accepted and the deletion has not finished). */
export function isDeleting(c: Connection): boolean {
  return c.deleteAt !== undefined;
}

function secondsLeft(c: Connection, now = Date.now()): number {
  return Math.max(1, Math.ceil(((c.deleteAt ?? now) - now) / 1000));
}

/**
 * The connection named in the URL. One being deleted is gone for every call (404, saying so), except a second
 * DELETE (409) and, for the admin API, `includeDeleting`.
 */
export function getConnection(emu: Emu, id: string, options: { includeDeleting?: boolean } = {}): Connection {
  const c = emu.store.state.connections.get(id.toLowerCase());
  if (!c) throw notFound(`The connection '${id}'`);
  if (isDeleting(c) && !options.includeDeleting)
    throw new GraphError(404, 'itemNotFound', `The connection '${c.id}' was not found: it is being deleted.`, {
      code: 'ConnectionDeletionInProgress',
      message: `A delete operation on connection '${c.id}' is in progress (about ${secondsLeft(c)} s left).`,
    });
  return c;
}

export function listConnections(emu: Emu, ctx: Ctx, p: Principal, scope: 'all' | 'owned', version: string): Reply {
  const visible = [...emu.store.state.connections.values()].filter(
    (c) => !isDeleting(c) && (scope === 'all' || owns(p, c)),
  );
  const select = ctx.url.searchParams.get('$select');
  const fields = select ? select.split(',').map((s) => s.trim()) : undefined;
  const value = visible.map((c) => {
    const full = renderConnection(emu, c, version);
    if (!fields) return full;
    return Object.fromEntries(Object.entries(full).filter(([k]) => k === 'id' || fields.includes(k)));
  });
  return { status: 200, body: { '@odata.context': ctxUrl(emu, version, 'external/connections'), value } };
}

export function createConnection(
  emu: Emu,
  body: Record<string, unknown>,
  p: Principal,
  version: string,
  ticket?: TicketClaims,
): Reply {
  checkBody(body, version);
  if (ticket) {
    // A create that carries the admin center's ticket names the connector it was issued for
    // (https://learn.microsoft.com/graph/connecting-external-content-deploy-teams).
    if (typeof body.connectorId !== 'string' || body.connectorId === '')
      throw invalid(
        'connectorId is required with a GraphConnectors-Ticket header: the app package id (resourceData.id of the notification).',
        'InvalidConnectorsTicket',
      );
    if (body.connectorId.toLowerCase() !== ticket.connectorId.toLowerCase())
      throw invalid(
        `connectorId '${body.connectorId}' is not the connector the GraphConnectors-Ticket was issued for ('${ticket.connectorId}').`,
        'InvalidConnectorsTicket',
      );
  }
  const id = checkConnectionId(body.id);
  if (body.name === undefined)
    throw invalid('name is required (the display name, at most 128 characters).', 'InvalidConnectionName');
  // The v1.0 create page marks description "Required" (the resource page calls it optional).
  if (typeof body.description !== 'string' || body.description.trim() === '')
    throw invalid(
      'description is required when creating a connection: a non-empty string saying what the content is (Copilot uses it).',
      'InvalidConnectionDescription',
    );
  const existing = emu.store.state.connections.get(id.toLowerCase());
  if (existing && isDeleting(existing))
    throw new GraphError(
      409,
      'Conflict',
      `The connection id '${existing.id}' is still in use: the connection is being deleted. Create it again once the deletion has finished (about ${secondsLeft(existing)} s).`,
      { code: 'ConnectionDeletionInProgress' },
    );
  if (existing)
    throw new GraphError(409, 'Conflict', `A connection with the id '${existing.id}' already exists in this tenant.`, {
      code: 'ConnectionAlreadyExists',
      message: `A connection with the same id '${existing.id}' (name '${existing.name}') already exists.`,
    });
  const config = isObject(body.configuration) ? body.configuration : {};
  const c: Connection = {
    id,
    name: body.name as string,
    description: body.description ?? undefined,
    configuration: {
      ...config,
      authorizedAppIds: Array.isArray(config.authorizedAppIds) ? (config.authorizedAppIds as string[]) : [],
    },
    activitySettings: body.activitySettings ?? undefined,
    searchSettings: body.searchSettings ?? undefined,
    contentCategory: (body.contentCategory as string | undefined) ?? 'uncategorized',
    connectorId: (body.connectorId as string | undefined) ?? undefined,
    ...(ticket ? { ticket: { id: ticket.id, connectorId: ticket.connectorId, usedAt: new Date().toISOString() } } : {}),
    enabledContentExperiences: (body.enabledContentExperiences as string | undefined) ?? undefined,
    complianceSettings: body.complianceSettings ?? undefined,
    state: 'draft',
    createdBy: p.appId,
    createdDateTime: new Date().toISOString(),
    operations: new Map(),
    items: new Map(),
    groups: new Map(),
  };
  emu.store.state.connections.set(id.toLowerCase(), c);
  emu.changed();
  emu.log(
    `emulator: connection '${id}' created by ${p.appId}${ticket ? ` with the ticket of connector ${ticket.connectorId}` : ''}`,
  );
  return {
    status: 201,
    body: {
      '@odata.context': ctxUrl(emu, version, 'external/connections/$entity'),
      ...renderConnection(emu, c, version),
    },
    headers: { Location: `${emu.baseUrl}/${version}/external/connections('${id}')` },
  };
}

export function readConnection(emu: Emu, c: Connection, version: string): Reply {
  return {
    status: 200,
    body: {
      '@odata.context': ctxUrl(emu, version, 'external/connections/$entity'),
      ...renderConnection(emu, c, version),
    },
  };
}

export function updateConnection(emu: Emu, c: Connection, body: Record<string, unknown>, version: string): Reply {
  requireState(c, 'updateConnection');
  checkBody(body, version);
  if (body.id !== undefined && body.id !== c.id)
    throw invalid(`The connection id cannot be changed (body id '${JSON.stringify(body.id)}' ≠ '${c.id}').`);
  if (body.name !== undefined) c.name = body.name as string;
  if (body.description !== undefined) c.description = (body.description as string | null) ?? undefined;
  if (body.configuration !== undefined) {
    const config = isObject(body.configuration) ? body.configuration : {};
    c.configuration = {
      ...config,
      authorizedAppIds: Array.isArray(config.authorizedAppIds) ? (config.authorizedAppIds as string[]) : [],
    };
  }
  if (body.activitySettings !== undefined) c.activitySettings = body.activitySettings ?? undefined;
  if (body.searchSettings !== undefined) c.searchSettings = body.searchSettings ?? undefined;
  if (body.contentCategory !== undefined) c.contentCategory = body.contentCategory as string;
  if (body.connectorId !== undefined) c.connectorId = (body.connectorId as string | null) ?? undefined;
  if (body.enabledContentExperiences !== undefined)
    c.enabledContentExperiences = (body.enabledContentExperiences as string | null) ?? undefined;
  if (body.complianceSettings !== undefined) c.complianceSettings = body.complianceSettings ?? undefined;
  emu.changed();
  return { status: 204 };
}

export function deleteConnection(emu: Emu, c: Connection): Reply {
  if (isDeleting(c))
    throw new GraphError(
      409,
      'Conflict',
      `The connection '${c.id}' is already being deleted: the delete operation is in progress (about ${secondsLeft(c)} s left).`,
      { code: 'DeleteOperationInProgress' },
    );
  if (emu.settings.deleteDelayMs > 0) {
    // Deletion is long-running in Graph (reference §2.1 C5): the id stays taken until it finishes.
    c.deleteAt = Date.now() + emu.settings.deleteDelayMs;
    emu.changed();
    emu.log(`emulator: connection '${c.id}' is being deleted (done in ${emu.settings.deleteDelayMs} ms)`);
    const t = setTimeout(() => advanceOperations(emu), emu.settings.deleteDelayMs + 5);
    t.unref();
    return { status: 202 };
  }
  emu.store.state.connections.delete(c.id.toLowerCase());
  emu.changed();
  emu.log(`emulator: connection '${c.id}' deleted (${c.items.size} items removed)`);
  return { status: 202 };
}

function newOperationId(emu: Emu): string {
  return `1.neu.${emu.ids.hex(16).toUpperCase()}.${emu.ids.hex(16).toUpperCase()}`;
}

/** PATCH (or legacy POST) schema. */
export function writeSchema(
  emu: Emu,
  ctx: Ctx,
  c: Connection,
  body: Record<string, unknown>,
  version: string,
  legacyPost: boolean,
): Reply {
  const pending = [...c.operations.values()].find((o) => o.status === 'inprogress');
  requireState(c, c.schema || (pending && c.state !== 'draft') ? 'updateSchema' : 'createSchema');
  const schema = validateSchema(body, version);
  const key = schemaKey(schema);
  const location = (op: Operation) => `${emu.baseUrl}/${version}/external/connections/${c.id}/operations/${op.id}`;
  const async = !legacyPost || /respond-async/i.test(String(ctx.req.headers.prefer ?? ''));
  if (pending) {
    if (pending.requestKey === key && async) return { status: 202, headers: { Location: location(pending) } };
    throw new GraphError(
      409,
      'Conflict',
      `A schema operation (${pending.id}) is still in progress on connection '${c.id}'. Poll it until it is completed or failed before sending a different schema.`,
      { code: 'SchemaOperationInProgress' },
    );
  }
  const now = Date.now();
  const op: Operation = {
    id: newOperationId(emu),
    kind: 'schema',
    status: 'inprogress',
    createdAt: now,
    completesAt: now + emu.settings.schemaDelayMs,
    schema,
    requestKey: key,
  };
  const scripted = emu.faults.takeSchemaFailure(c.id);
  const problem = c.schema ? updateProblem(c.schema, schema) : undefined;
  if (problem) op.failure = { code: 'SchemaUpdateNotSupported', message: problem };
  else if (scripted) op.failure = { code: 'InternalServerError', message: scripted };
  c.operations.set(op.id, op);
  emu.changed();
  emu.log(`emulator: schema operation ${op.id} on '${c.id}' started (${schema.properties.length} properties)`);
  if (!async) {
    // Legacy synchronous POST: finish now and answer 201 with the schema.
    op.completesAt = now;
    advanceOperations(emu, now);
    if (op.status === 'failed')
      throw new GraphError(400, 'InvalidRequest', op.error?.message ?? 'Schema registration failed.');
    return {
      status: 201,
      body: {
        '@odata.context': ctxUrl(emu, version, `external/connections('${c.id}')/schema/$entity`),
        ...renderSchema(schema, version, true),
      },
    };
  }
  if (emu.settings.schemaDelayMs > 0) {
    const t = setTimeout(() => advanceOperations(emu), emu.settings.schemaDelayMs + 5);
    t.unref();
  } else advanceOperations(emu, now);
  return { status: 202, headers: { Location: location(op) } };
}

export function readSchema(emu: Emu, ctx: Ctx, c: Connection, version: string): Reply {
  if (c.state === 'draft' || !c.schema)
    throw new GraphError(
      404,
      'itemNotFound',
      `The schema of connection '${c.id}' is not registered yet (state '${c.state}').`,
    );
  requireState(c, 'readSchema');
  const includeUnknown = /include-unknown-enum-members/i.test(String(ctx.req.headers.prefer ?? ''));
  return {
    status: 200,
    body: {
      '@odata.context': ctxUrl(emu, version, `external/connections('${c.id}')/schema/$entity`),
      ...renderSchema(c.schema, version, includeUnknown),
    },
  };
}

export function readOperation(emu: Emu, c: Connection, opId: string, version: string): Reply {
  const op = c.operations.get(opId);
  if (!op) throw notFound(`The operation '${opId}' of connection '${c.id}'`);
  return {
    status: 200,
    body: {
      '@odata.context': ctxUrl(emu, version, `external/connections('${c.id}')/operations/$entity`),
      id: op.id,
      status: op.status,
      error: op.status === 'failed' ? (op.error ?? { message: 'failed' }) : null,
    },
  };
}

export function readQuota(emu: Emu, c: Connection, version: string): Reply {
  const capacity = c.itemQuota ?? 5_000_000;
  return {
    status: 200,
    body: {
      '@odata.context': ctxUrl(emu, version, `external/connections('${c.id}')/quota/$entity`),
      id: c.id,
      itemsRemaining: Math.max(0, capacity - c.items.size),
    },
  };
}

export { requireVisible };
