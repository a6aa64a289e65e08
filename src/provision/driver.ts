/**
 * Provisioning under Azure Functions: the state machine in ./provision advances one step per queue message;
 * a step that must wait (the schema operation is still `inprogress`, Retry-After, admin consent settling)
 * re-enqueues the message with a visibility delay instead of blocking the invocation. State lives in the
 * provision table, so `GET /api/status` shows where it is.
 */
import type { Logger } from '../log.js';
import type { ProvisionState } from '../state/provision-store.js';
import { provisionMessage, type ProvisionMessage } from '../state/queues/provision.js';
import { initialProvisionState, runProvisionStep } from './provision.js';
import type { Runtime } from '../host/runtime.js';

/** A provisioning that has not moved for this long is stale: a new start takes it over. */
const STALE_MS = 10 * 60_000;

async function send(rt: Runtime, visibilityDelayMs: number): Promise<void> {
  await rt.provisionQueue.send(provisionMessage(rt.definition.connection.id), {
    visibilityDelayMs,
  });
}

const RUNNING = new Set(['connection', 'schema', 'polling', 'groups']);

/** What the admin center's notification brought: the connector id and the ticket for the connection create. */
export interface Enablement {
  connectorId: string;
  ticket?: string;
}

/**
 * Start provisioning (or report the run already in progress). With `enablement` (the connector was turned on in the
 * admin center) the connection is created with its `connectorId` and `GraphConnectors-Ticket`; a run in progress
 * that has not created the connection yet takes them over.
 */
export async function startProvisioning(
  rt: Runtime,
  log: Logger,
  options: { enablement?: Enablement } = {},
): Promise<ProvisionState> {
  const cid = rt.definition.connection.id;
  const { enablement } = options;
  const stored = await rt.provisionStore.get(cid);
  const inProgress = stored && RUNNING.has(stored.state.phase);
  const enabled = (s: ProvisionState): ProvisionState =>
    enablement
      ? {
          ...s,
          connectorId: enablement.connectorId,
          ...(enablement.ticket ? { ticket: enablement.ticket } : {}),
          enablement: 'enabled',
          enablementAt: new Date().toISOString(),
        }
      : s;
  if (inProgress && Date.now() - Date.parse(stored.state.updatedAt) < STALE_MS) {
    log.info('provisioning already in progress', { connectionId: cid, phase: stored.state.phase });
    if (!enablement) return stored.state;
    const merged = enabled(stored.state);
    await rt.provisionStore.save(merged, stored.etag);
    return merged;
  }
  const state = enabled(initialProvisionState(cid, Date.now(), stored?.state));
  await rt.provisionStore.save(state, stored?.etag);
  await send(rt, 0);
  log.info('provisioning started', { connectionId: cid });
  return state;
}

/**
 * The connector was turned off in the admin center: delete the connection (with the ticket, when the notification
 * had one) and skip crawls until it is turned on or provisioned again (docs/deploy.md).
 */
export async function startDisabling(rt: Runtime, log: Logger, enablement: Enablement): Promise<ProvisionState> {
  const cid = rt.definition.connection.id;
  const stored = await rt.provisionStore.get(cid);
  const at = new Date().toISOString();
  const state: ProvisionState = {
    ...initialProvisionState(cid, Date.now(), stored?.state),
    phase: 'deleting',
    progress: 'the connector was turned off in the Microsoft 365 admin center; deleting the connection',
    connectorId: enablement.connectorId,
    ...(enablement.ticket ? { ticket: enablement.ticket } : {}),
    enablement: 'disabled',
    enablementAt: at,
  };
  await rt.provisionStore.save(state, stored?.etag);
  await send(rt, 0);
  log.info('connector turned off: deleting the connection', { connectionId: cid });
  return state;
}

/** One step, from a (parsed) provision queue message. */
export async function provisionStep(rt: Runtime, message: ProvisionMessage, log: Logger): Promise<void> {
  const cid = rt.definition.connection.id;
  if (message.connectionId !== cid) {
    log.error('provision message ignored: it is not for this connection', {
      expected: cid,
      connectionId: message.connectionId,
    });
    return;
  }
  const stored = await rt.provisionStore.get(cid);
  if (!stored || stored.state.phase === 'ready' || stored.state.phase === 'failed' || stored.state.phase === 'disabled')
    return;
  const { state, next } = await runProvisionStep(stored.state, {
    graph: rt.graph,
    definition: rt.definition,
    logger: log,
  });
  await rt.provisionStore.save(state, stored.etag);
  log.info('provisioning step', { connectionId: cid, phase: state.phase, progress: state.progress });
  if (next !== 'done') await send(rt, next.delayMs);
}
