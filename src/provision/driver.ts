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

/** Start provisioning (or report the run already in progress). */
export async function startProvisioning(rt: Runtime, log: Logger): Promise<ProvisionState> {
  const cid = rt.definition.connection.id;
  const stored = await rt.provisionStore.get(cid);
  const inProgress = stored && stored.state.phase !== 'ready' && stored.state.phase !== 'failed';
  if (inProgress && Date.now() - Date.parse(stored.state.updatedAt) < STALE_MS) {
    log.info('provisioning already in progress', { connectionId: cid, phase: stored.state.phase });
    return stored.state;
  }
  const state = initialProvisionState(cid, Date.now(), stored?.state);
  await rt.provisionStore.save(state, stored?.etag);
  await send(rt, 0);
  log.info('provisioning started', { connectionId: cid });
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
  if (!stored || stored.state.phase === 'ready' || stored.state.phase === 'failed') return;
  const { state, next } = await runProvisionStep(stored.state, {
    graph: rt.graph,
    definition: rt.definition,
    logger: log,
  });
  await rt.provisionStore.save(state, stored.etag);
  log.info('provisioning step', { connectionId: cid, phase: state.phase, progress: state.progress });
  if (next !== 'done') await send(rt, next.delayMs);
}
