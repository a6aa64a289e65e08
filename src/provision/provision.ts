/**
 * Provisioning as a resumable state machine: connection → schema → polling → groups → ready.
 * Each `runProvisionStep` does a little work and says when to come back, so under Azure Functions
 * no invocation blocks for minutes (the next step is a queue message with a visibility delay);
 * the CLI drives the same steps in a loop with `runProvisionToCompletion`.
 */
import { sleep, type OperationOptions } from '../core/async.js';
import { ConnectorError } from '../core/errors.js';
import type { ExternalGroup, ExternalGroupMember } from '../config/model.js';
import type { ConnectorDefinition } from '../config/definition.js';
import { toGraphSchema } from '../config/definition.js';
import type { GraphConnectorClient } from '../graph/client.js';
import { GraphAuthError, GraphError, permissionFor } from '../graph/errors.js';
import type { ExternalConnection, ExternalConnectionCreate } from '../graph/types.js';
import { redact, type Logger } from '../log.js';
import { encodeExternalGroupId } from '../mapping/item-id.js';
import type { ProvisionState, ProvisionStore, SyncedGroup } from '../state/provision-store.js';
import { diffSchema } from './schema-diff.js';

export interface ProvisionOptions {
  /** How long to poll the schema operation (default 20 min). */
  operationTimeoutMs?: number;
  /** First poll delay; doubles up to maxPollIntervalMs (defaults 5 s → 60 s). */
  pollIntervalMs?: number;
  maxPollIntervalMs?: number;
  /** How long 401/403 are retried after admin consent (default 10 min) and how often (15 s). */
  consentTimeoutMs?: number;
  consentRetryMs?: number;
  /** Transient failures (429/5xx/network) tolerated in a row before failing (default 8). */
  maxTransientAttempts?: number;
  /** Backoff base for transient failures without Retry-After (default 2 s). */
  transientDelayMs?: number;
  /**
   * How long to wait for a connection id that is still taken although the connection cannot be read — a deletion in
   * progress (Graph deletes connections over minutes) — before concluding another app owns it (default 15 min).
   */
  deletionTimeoutMs?: number;
}

export interface ProvisionDeps {
  graph: Pick<
    GraphConnectorClient,
    | 'getConnection'
    | 'createConnection'
    | 'updateConnection'
    | 'getSchema'
    | 'patchSchema'
    | 'getOperation'
    | 'createGroup'
    | 'updateGroup'
    | 'deleteGroup'
    | 'addMember'
    | 'removeMember'
  > &
    Partial<Pick<GraphConnectorClient, 'refreshToken' | 'deleteConnection'>>;
  definition: ConnectorDefinition;
  /** The external groups wanted (e.g. teams). Undefined = group sync is not part of this provisioning. */
  groups?: ExternalGroup[];
  logger: Logger;
  clock?: { now(): number };
  options?: ProvisionOptions;
}

export type ProvisionNext = { delayMs: number } | 'done';

export interface ProvisionStepResult {
  state: ProvisionState;
  next: ProvisionNext;
}

/** Where a failed provisioning stood, beyond its code. */
export interface ProvisionErrorDetails {
  operationUrl?: string;
  status?: number;
  requestId?: string;
  permission?: string;
}

/**
 * Provisioning failed and will not succeed by trying again unchanged: `code` says why (Graph's error code,
 * `NonAdditiveSchemaChange`, `SchemaOperationTimeout`, `AuthenticationFailed` …; `ProvisionFailed` when unknown).
 */
export class ProvisionError extends ConnectorError {
  override name = 'ProvisionError';
  readonly connectionId: string;
  /** The phase that failed. */
  readonly phase: string;
  readonly details: ProvisionErrorDetails;
  constructor(
    message: string,
    options: { connectionId: string; phase: string; code?: string; details?: ProvisionErrorDetails; cause?: unknown },
  ) {
    super(message, {
      code: options.code ?? 'ProvisionFailed',
      ...(options.cause !== undefined ? { cause: options.cause } : {}),
    });
    this.connectionId = options.connectionId;
    this.phase = options.phase;
    this.details = options.details ?? {};
  }
}

const DEFAULTS: Required<ProvisionOptions> = {
  operationTimeoutMs: 20 * 60_000,
  pollIntervalMs: 5_000,
  maxPollIntervalMs: 60_000,
  consentTimeoutMs: 10 * 60_000,
  consentRetryMs: 15_000,
  maxTransientAttempts: 8,
  transientDelayMs: 2_000,
  deletionTimeoutMs: 15 * 60_000,
};

/** Graph's answer names a deletion in progress (the emulator's inner code; Graph's wording is not documented). */
function namesDeletion(e: GraphError): boolean {
  return /deletion|being deleted|in progress/i.test(`${e.innerCode ?? ''} ${e.message}`);
}

export function initialProvisionState(connectionId: string, now: number, previous?: ProvisionState): ProvisionState {
  const at = new Date(now).toISOString();
  return {
    connectionId,
    phase: 'connection',
    attempts: 0,
    progress: 'starting',
    startedAt: at,
    updatedAt: at,
    ...(previous?.groups ? { groups: previous.groups } : {}),
    ...(previous?.connectorId ? { connectorId: previous.connectorId } : {}),
    ...(previous?.enablement ? { enablement: previous.enablement } : {}),
    ...(previous?.enablementAt ? { enablementAt: previous.enablementAt } : {}),
  };
}

/** A step found a condition that ends provisioning (caught in the step; the state records `code`). */
class StepFailure extends ConnectorError {
  override name = 'StepFailure';
  constructor(message: string, code: string) {
    super(message, { code });
  }
}

function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v && typeof v === 'object') {
    return `{${Object.keys(v)
      .filter((k) => !k.startsWith('@odata') && (v as Record<string, unknown>)[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v ?? null);
}

function connectionBody(def: ConnectorDefinition, connectorId: string | undefined): ExternalConnectionCreate {
  const c = def.connection;
  return {
    id: c.id,
    // The app package id, when the admin center enabled the connector
    // (https://learn.microsoft.com/graph/connecting-external-content-deploy-teams).
    ...(connectorId ? { connectorId } : {}),
    name: c.name,
    description: c.description,
    ...(c.contentCategory ? { contentCategory: c.contentCategory } : {}),
    ...(c.searchSettings ? { searchSettings: c.searchSettings } : {}),
    ...(c.activitySettings?.urlToItemResolvers
      ? {
          activitySettings: {
            urlToItemResolvers: c.activitySettings.urlToItemResolvers.map((r) => ({
              '@odata.type': '#microsoft.graph.externalConnectors.itemIdResolver',
              ...r,
            })),
          },
        }
      : {}),
    ...(c.authorizedAppIds?.length ? { configuration: { authorizedAppIds: c.authorizedAppIds } } : {}),
  };
}

function drift(current: ExternalConnection, def: ConnectorDefinition): Partial<ExternalConnection> {
  const c = def.connection;
  const patch: Partial<ExternalConnection> = {};
  if (current.name !== c.name) patch.name = c.name;
  if ((current.description ?? '') !== c.description) patch.description = c.description;
  if (c.searchSettings && canonical(current.searchSettings ?? {}) !== canonical(c.searchSettings)) {
    patch.searchSettings = c.searchSettings;
  }
  return patch;
}

const memberKey = (m: { id: string; type: string }) => `${m.type}:${m.id}`;

/** One step of provisioning. Never throws for Graph failures: a failure is phase 'failed' with lastError. */
export async function runProvisionStep(
  input: ProvisionState,
  deps: ProvisionDeps,
  options: OperationOptions = {},
): Promise<ProvisionStepResult> {
  const opts = { ...DEFAULTS, ...deps.options };
  const now = () => (deps.clock ?? Date).now();
  const state: ProvisionState = { ...input };
  const cid = deps.definition.connection.id;
  const log = deps.logger.child({ connectionId: cid, phase: state.phase });
  const o: OperationOptions = { abortSignal: options.abortSignal };
  const touch = (progress: string) => {
    state.progress = progress;
    state.updatedAt = new Date(now()).toISOString();
  };
  const advance = (phase: ProvisionState['phase'], progress: string): ProvisionStepResult => {
    state.phase = phase;
    state.attempts = 0;
    delete state.consentDeadline;
    delete state.lastError;
    delete state.lastErrorCode;
    delete state.failedPhase;
    touch(progress);
    log.info(progress);
    return { state, next: phase === 'ready' || phase === 'disabled' ? 'done' : { delayMs: 0 } };
  };
  /** The admin center's ticket rides on the connection create and delete only. */
  const ticketHeaders = (): OperationOptions & { headers?: Record<string, string> } =>
    state.ticket ? { ...o, headers: { 'GraphConnectors-Ticket': state.ticket } } : o;
  const fail = (message: string, code: string): ProvisionStepResult => {
    state.failedPhase = state.phase;
    state.phase = 'failed';
    state.lastError = redact(message);
    state.lastErrorCode = code;
    touch(`failed: ${state.lastError}`);
    log.error('provisioning failed', { error: state.lastError, code });
    return { state, next: 'done' };
  };

  try {
    switch (state.phase) {
      case 'ready':
      case 'failed':
      case 'disabled':
        return { state, next: 'done' };

      case 'deleting': {
        // Turned off in the admin center: delete the connection, as documented
        // (https://learn.microsoft.com/graph/connecting-external-content-deploy-teams). Graph finishes the deletion
        // over minutes; a later create waits for the id to free up (the 'connection' phase handles that).
        touch(`deleting connection ${cid} (the connector was turned off in the Microsoft 365 admin center)`);
        if (!deps.graph.deleteConnection)
          throw new Error('provisioning was given a Graph client without deleteConnection');
        try {
          await deps.graph.deleteConnection(cid, ticketHeaders());
        } catch (e) {
          if (!(e instanceof GraphError && e.status === 404)) throw e;
        }
        delete state.ticket;
        return advance('disabled', `connection ${cid} deleted: the connector is turned off; crawls are skipped`);
      }

      case 'connection': {
        let current = await deps.graph.getConnection(cid, o);
        if (!current) {
          touch(`creating connection ${cid}`);
          log.info(`creating connection ${cid}`);
          try {
            current = await deps.graph.createConnection(
              connectionBody(deps.definition, state.connectorId),
              ticketHeaders(),
            );
          } catch (e) {
            if (e instanceof GraphError && e.retryable) state.createPending = true;
            if (e instanceof GraphError && e.status === 409) {
              if (state.createPending) {
                log.info(`connection ${cid}: 409 after an earlier failed create means it was created; continuing`);
              } else if (await deps.graph.getConnection(cid, o)) {
                log.info(
                  `connection ${cid}: create answered 409 but the connection is ours (an earlier attempt that failed with 503 created it); continuing`,
                );
              } else {
                // Taken but unreadable: a deletion of this id still running (minutes in Graph), or another app's.
                const until = state.deadline ? Date.parse(state.deadline) : now() + opts.deletionTimeoutMs;
                const deleting = namesDeletion(e);
                if (now() < until) {
                  state.deadline = new Date(until).toISOString();
                  state.attempts += 1;
                  const delay = Math.min(30_000, 1_000 * 2 ** Math.min(state.attempts - 1, 5), until - now());
                  touch(
                    deleting
                      ? `connection ${cid} is still being deleted (the id stays taken until the deletion finishes); creating it again in ${Math.ceil(delay / 1000)} s (waiting until ${state.deadline})`
                      : `connection id '${cid}' is taken (409) but this app cannot read it: most likely its deletion is still running; trying again in ${Math.ceil(delay / 1000)} s (until ${state.deadline})`,
                  );
                  log.info(state.progress, { requestId: e.requestId });
                  return { state, next: { delayMs: Math.max(0, delay) } };
                }
                throw new StepFailure(
                  `connection id '${cid}' is taken (409 Conflict) but this app cannot read it, and it did not free up within ` +
                    `${Math.round(opts.deletionTimeoutMs / 60_000)} min: another app owns it (or a deletion of it is stuck). ` +
                    'Choose another connection.id, or have the owner add this app to configuration.authorizedAppIds',
                  'ConnectionIdTaken',
                );
              }
              current = null;
            } else {
              throw e;
            }
          }
          delete state.createPending;
          delete state.deadline;
          delete state.ticket;
          return advance(
            'schema',
            `connection ${cid} created${state.connectorId ? ` for connector ${state.connectorId}` : ''}`,
          );
        }
        const patch = drift(current, deps.definition);
        if (Object.keys(patch).length) {
          await deps.graph.updateConnection(cid, patch, o);
          return advance('schema', `connection ${cid} updated (${Object.keys(patch).join(', ')})`);
        }
        return advance('schema', `connection ${cid} exists and matches`);
      }

      case 'schema': {
        const desired = toGraphSchema(deps.definition);
        const current = await deps.graph.getSchema(cid, o);
        if (current) {
          const d = diffSchema(current.properties ?? [], desired.properties);
          if (d.breaking.length) {
            const list = d.breaking.map((b) => `property '${b.property}' ${b.change}`).join('; ');
            throw new StepFailure(
              `the declared schema of connection '${cid}' cannot be applied to the registered one: ${list}. ` +
                'Graph only allows additive schema changes. To make this change, give the connection a new connection.id ' +
                '(a new connection), provision it, run a full crawl, then delete the old connection.',
              'NonAdditiveSchemaChange',
            );
          }
          if (d.same) return advance(deps.groups ? 'groups' : 'ready', `schema of ${cid} is up to date`);
          log.info(`schema of ${cid} changes: ${d.additive.join('; ')}`);
          if (d.reingest.length) {
            log.warn(`schema change needs a full crawl to re-ingest items: ${d.reingest.join('; ')}`);
          }
        }
        let operationUrl: string;
        try {
          operationUrl = await deps.graph.patchSchema(cid, desired, o);
        } catch (e) {
          if (!(e instanceof GraphError && e.status === 409)) throw e;
          // A schema operation is already running (its URL was not kept): wait for it, then compare again.
          state.deadline ??= new Date(now() + opts.operationTimeoutMs).toISOString();
          if (now() >= Date.parse(state.deadline)) {
            throw new StepFailure(
              `a schema operation of connection '${cid}' has been in progress since before ${state.deadline} and Graph refuses a new one (${e.message}). Wait for it to finish and run provision again`,
              'SchemaOperationInProgress',
            );
          }
          state.attempts += 1;
          touch(`another schema operation is in progress on ${cid}; checking again shortly`);
          log.info(state.progress);
          return {
            state,
            next: {
              delayMs: Math.min(opts.maxPollIntervalMs, opts.pollIntervalMs * 2 ** Math.min(state.attempts - 1, 10)),
            },
          };
        }
        state.operationUrl = operationUrl;
        state.deadline = new Date(now() + opts.operationTimeoutMs).toISOString();
        const r = advance(
          'polling',
          `${current ? 'schema update' : 'schema registration'} submitted; waiting for the operation`,
        );
        return { state: r.state, next: { delayMs: opts.pollIntervalMs } };
      }

      case 'polling': {
        const url = state.operationUrl!;
        const deadline = state.deadline ? Date.parse(state.deadline) : now() + opts.operationTimeoutMs;
        const op = await deps.graph.getOperation(url, o);
        if (op.status === 'failed') {
          const msg = op.error?.message ?? 'no error message';
          throw new StepFailure(
            `the schema operation of connection '${cid}' failed: ${msg}${op.error?.code ? ` (${op.error.code})` : ''}. ` +
              `Operation: ${url}. Fix the schema in the connector definition and run provision again`,
            op.error?.code ?? 'SchemaOperationFailed',
          );
        }
        let done = op.status === 'completed';
        if (done) {
          const conn = await deps.graph.getConnection(cid, o);
          done = conn?.state === 'ready';
          if (!done)
            log.info(`schema operation completed; connection state is ${conn?.state ?? 'missing'}, waiting for ready`);
        }
        if (done) {
          delete state.operationUrl;
          delete state.deadline;
          return advance(deps.groups ? 'groups' : 'ready', `schema of ${cid} is registered; connection is ready`);
        }
        if (now() >= deadline) {
          throw new StepFailure(
            `the schema operation of connection '${cid}' did not finish before the deadline (${state.deadline}); ` +
              `it is still ${op.status}. Operation: ${url}. Graph can take 5-15 minutes; run provision again to resume polling, ` +
              'or raise the timeout',
            'SchemaOperationTimeout',
          );
        }
        state.attempts += 1;
        const delay = Math.min(
          opts.maxPollIntervalMs,
          opts.pollIntervalMs * 2 ** Math.min(state.attempts - 1, 10),
          Math.max(0, deadline - now()),
        );
        touch(`schema operation ${op.status}; next check in ${Math.round(delay / 1000)} s`);
        return { state, next: { delayMs: Math.max(delay, 0) } };
      }

      case 'groups': {
        if (!deps.groups) return advance('ready', `connection ${cid} is ready`);
        const desired = deps.groups;
        const synced: Record<string, SyncedGroup> = { ...(state.groups ?? {}) };
        state.groups = synced;
        let created = 0;
        let updated = 0;
        let deleted = 0;
        let added = 0;
        let removed = 0;
        for (const g of desired) {
          const have = synced[g.id];
          const wantMembers = new Set(g.members.map(memberKey));
          if (!have) {
            try {
              await deps.graph.createGroup(
                cid,
                { id: gid(g.id), displayName: g.displayName, description: g.description },
                o,
              );
              created++;
            } catch (e) {
              if (!(e instanceof GraphError && e.status === 409)) throw e;
              await deps.graph.updateGroup(
                cid,
                gid(g.id),
                { displayName: g.displayName, description: g.description },
                o,
              );
              updated++;
            }
            synced[g.id] = { displayName: g.displayName, description: g.description, members: [] };
          } else if (
            (have.displayName ?? '') !== (g.displayName ?? '') ||
            (have.description ?? '') !== (g.description ?? '')
          ) {
            await deps.graph.updateGroup(cid, gid(g.id), { displayName: g.displayName, description: g.description }, o);
            synced[g.id] = { ...have, displayName: g.displayName, description: g.description };
            updated++;
          }
          const entry = synced[g.id]!;
          const members = new Set(entry.members);
          for (const m of g.members) {
            if (members.has(memberKey(m))) continue;
            try {
              await deps.graph.addMember(cid, gid(g.id), memberForGraph(m), o);
            } catch (e) {
              if (!(e instanceof GraphError && e.status === 409)) throw e;
            }
            members.add(memberKey(m));
            entry.members = [...members];
            added++;
          }
          for (const k of [...members]) {
            if (wantMembers.has(k)) continue;
            await deps.graph.removeMember(cid, gid(g.id), memberIdForGraph(k), o);
            members.delete(k);
            entry.members = [...members];
            removed++;
          }
        }
        const wanted = new Set(desired.map((g) => g.id));
        for (const id of Object.keys(synced)) {
          if (wanted.has(id)) continue;
          await deps.graph.deleteGroup(cid, gid(id), o);
          delete synced[id];
          deleted++;
        }
        return advance(
          'ready',
          `groups synced: ${created} created, ${updated} updated, ${deleted} deleted, ${added} members added, ${removed} removed; connection ${cid} is ready`,
        );
      }
    }
  } catch (e) {
    if (options.abortSignal?.aborted) throw e;
    if (e instanceof StepFailure) return fail(e.message, e.code);
    if (e instanceof GraphAuthError) return fail(e.message, e.code);
    if (e instanceof GraphError) {
      state.lastError = redact(e.message);
      state.lastErrorCode = e.code;
      if (e.status === 401 || e.status === 403) {
        const permission =
          permissionFor(e.url) ?? 'ExternalConnection.ReadWrite.OwnedBy and ExternalItem.ReadWrite.OwnedBy';
        const until = state.consentDeadline ? Date.parse(state.consentDeadline) : now() + opts.consentTimeoutMs;
        state.consentDeadline = new Date(until).toISOString();
        if (now() < until) {
          state.attempts += 1;
          // A token cached before consent keeps lacking the roles: ask for a new one next time.
          deps.graph.refreshToken?.();
          const msg =
            `Graph answered ${e.status} ${e.code} during ${state.phase}. Right after admin consent, permissions take a few ` +
            `minutes to apply; retrying every ${Math.round(opts.consentRetryMs / 1000)} s until ${state.consentDeadline}. ` +
            `If it persists, grant the application permission ${permission} and admin-consent it`;
          touch(msg);
          log.warn(msg, { status: e.status, code: e.code, requestId: e.requestId });
          return { state, next: { delayMs: Math.min(opts.consentRetryMs, Math.max(0, until - now())) } };
        }
        return fail(
          `Graph refused ${e.method ?? ''} ${e.url ?? ''} with ${e.status} ${e.code} during ${state.phase} ` +
            `(request-id ${e.requestId ?? 'n/a'}): ${e.message}. The app is missing the Graph application permission ` +
            `${permission} (or admin consent for it). Grant it in the app registration, admin-consent, and run provision again`,
          e.code,
        );
      }
      if (e.retryable) {
        state.attempts += 1;
        if (state.attempts > opts.maxTransientAttempts) {
          return fail(
            `giving up after ${state.attempts - 1} transient failures in ${state.phase}: ${e.message}`,
            e.code,
          );
        }
        const delay = e.retryAfterMs ?? opts.transientDelayMs * 2 ** Math.min(state.attempts - 1, 6);
        touch(`transient ${e.status} ${e.code} during ${state.phase}; retrying in ${Math.round(delay / 1000)} s`);
        log.warn(state.progress, { requestId: e.requestId });
        return { state, next: { delayMs: delay } };
      }
      return fail(`${e.message} (during ${state.phase}, request-id ${e.requestId ?? 'n/a'})`, e.code);
    }
    throw e;
  }
}

/**
 * One step for a queue-driven host (Azure Functions): load the state (or start), run one step, save it
 * with its ETag. `fresh` restarts a finished (ready/failed) provisioning. The caller re-enqueues with a
 * visibility delay of `next.delayMs`, or stops on 'done'. A ProvisionConflictError means another worker
 * advanced it concurrently: drop this message.
 */
export async function provisionTick(
  deps: ProvisionDeps & { store: ProvisionStore },
  options: { fresh?: boolean } & OperationOptions = {},
): Promise<ProvisionStepResult> {
  const cid = deps.definition.connection.id;
  const now = (deps.clock ?? Date).now();
  const stored = await deps.store.get(cid);
  const terminal =
    stored && (stored.state.phase === 'ready' || stored.state.phase === 'failed' || stored.state.phase === 'disabled');
  const state = !stored || (terminal && options.fresh) ? initialProvisionState(cid, now, stored?.state) : stored.state;
  const result = await runProvisionStep(state, deps, { abortSignal: options.abortSignal });
  await deps.store.save(result.state, stored?.etag);
  return result;
}

export interface RunProvisionDeps extends ProvisionDeps {
  store: ProvisionStore;
  sleep?: (ms: number, options?: OperationOptions) => Promise<void>;
}

/**
 * Drives the steps until ready or failed, persisting after each step (resumes a run that was interrupted).
 * Throws ProvisionError when provisioning fails.
 */
export async function runProvisionToCompletion(
  deps: RunProvisionDeps,
  options: { onProgress?: (state: ProvisionState) => void } & OperationOptions = {},
): Promise<ProvisionState> {
  const cid = deps.definition.connection.id;
  const now = () => (deps.clock ?? Date).now();
  const wait = deps.sleep ?? sleep;
  const { abortSignal } = options;
  const stored = await deps.store.get(cid);
  let etag = stored?.etag;
  let state =
    stored && stored.state.phase !== 'ready' && stored.state.phase !== 'failed' && stored.state.phase !== 'disabled'
      ? stored.state
      : initialProvisionState(cid, now(), stored?.state);
  if (stored && state === stored.state) deps.logger.info(`resuming provisioning of ${cid} at phase ${state.phase}`);
  for (;;) {
    const { state: next, next: after } = await runProvisionStep(state, deps, { abortSignal });
    state = next;
    etag = await deps.store.save(state, etag);
    options.onProgress?.(state);
    if (after === 'done') break;
    if (after.delayMs > 0) await wait(after.delayMs, { abortSignal });
  }
  if (state.phase === 'failed') {
    throw new ProvisionError(state.lastError ?? 'provisioning failed', {
      connectionId: cid,
      phase: state.failedPhase ?? 'failed',
      ...(state.lastErrorCode ? { code: state.lastErrorCode } : {}),
      details: state.operationUrl ? { operationUrl: state.operationUrl } : {},
    });
  }
  return state;
}

/**
 * External group ids travel to Graph in the form the ACL entries carry (letters and digits; anything else encoded,
 * see mapping/item-id.ts); the provisioning state keeps the source's ids.
 */
const gid = encodeExternalGroupId;

function memberForGraph(m: ExternalGroupMember): ExternalGroupMember {
  return m.type === 'externalGroup' ? { ...m, id: gid(m.id) } : m;
}

/** A member key (`type:id`) as Graph knows the member's id. */
function memberIdForGraph(key: string): string {
  const i = key.indexOf(':');
  const type = key.slice(0, i);
  const id = key.slice(i + 1);
  return type === 'externalGroup' ? gid(id) : id;
}
