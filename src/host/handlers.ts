/**
 * The handlers behind every Azure Function. Each function file in functions/ registers one trigger and points
 * at one of these; each handler makes one call into the pipeline. The runtime (clients built from the
 * environment) is passed in as a provider, so tests run the same handlers with their own runtime.
 *
 * Only `import type` from @azure/functions here: its other named exports do not load under plain Node ESM.
 */
import type { HttpRequest, HttpResponseInit, InvocationContext, Timer } from '@azure/functions';
import { runSlice } from '../crawl/enumerate.js';
import { finalizeCrawl } from '../crawl/finalize.js';
import { startCrawl } from '../crawl/start.js';
import { ingestItem, ingestPoison } from '../ingest/ingest.js';
import type { Logger } from '../log.js';
import { redact } from '../log.js';
import { provisionStep, startDisabling, startProvisioning } from '../provision/driver.js';
import { authenticateEnablementNotification, EnablementNotificationError } from '../provision/enablement.js';
import { NotificationTokenError, NotificationTokenVerifier } from '../graph/notification-token.js';
import { dispatcherFromCaPath } from '../graph/http.js';
import { ControlMessageError, parseControlMessage } from '../state/queues/control.js';
import { ProvisionMessageError, parseProvisionMessage } from '../state/queues/provision.js';
import { DASHBOARD_HEADERS, DASHBOARD_HTML } from './dashboard.js';
import { RequestError, parseReplayRequest, parseResyncRequest, readJsonBody } from './http.js';
import { runInInvocation } from './invocation.js';
import type { Runtime } from './runtime.js';
import { jobView, replayDeadLetters, statusReport } from './status.js';

/** The most jobs GET /api/jobs lists at once (each is read with its live counts). */
export const MAX_JOBS = 100;

export type RuntimeProvider = () => Promise<Runtime>;

/** host.json `functionTimeout` (a test keeps the two equal). */
export const HOST_FUNCTION_TIMEOUT_MS = 30 * 60_000;

/** A signal for one invocation that fires a minute before the host would cut it off. */
function invocationSignal(): AbortSignal {
  return AbortSignal.timeout(HOST_FUNCTION_TIMEOUT_MS - 60_000);
}

function dequeueCountOf(context: InvocationContext): number {
  const n = Number(context.triggerMetadata?.dequeueCount ?? 1);
  return Number.isFinite(n) && n > 0 ? n : 1;
}

/** The queue message id (the same on every delivery of one message). */
function messageIdOf(context: InvocationContext): string | undefined {
  const id = context.triggerMetadata?.id;
  return typeof id === 'string' && id ? id : undefined;
}

function contextLogger(base: Logger, context: InvocationContext): Logger {
  return base.child({ invocationId: context.invocationId, functionName: context.functionName });
}

function json(status: number, body: unknown, headers: Record<string, string> = {}): HttpResponseInit {
  return { status, jsonBody: body, headers: { 'content-type': 'application/json', ...headers } };
}

function problemResponse(err: unknown): HttpResponseInit {
  if (err instanceof RequestError) return json(err.status, { error: { code: 'BadRequest', problems: err.problems } });
  return json(500, { error: { code: 'InternalError', message: redact((err as Error)?.message ?? String(err)) } });
}

/** The body of a POST: JSON, at most 64 KiB, the cap held while it streams (readJsonBody in ./http.ts). */
const readBody = (request: HttpRequest): Promise<Record<string, unknown>> => readJsonBody(request);

function baseUrlOf(request: HttpRequest): string {
  const u = new URL(request.url);
  return `${u.protocol}//${u.host}`;
}

/** One verifier (with its cached keys) per runtime. */
const verifiers = new WeakMap<Runtime, NotificationTokenVerifier>();

function verifierFor(rt: Runtime, tenantId: string, clientId: string): NotificationTokenVerifier {
  let v = verifiers.get(rt);
  if (!v) {
    const dispatcher = dispatcherFromCaPath(rt.env.graph.caCertPath);
    v = new NotificationTokenVerifier({
      authorityHost: rt.env.graph.authorityHost,
      tenantId,
      audiences: [clientId],
      ...(dispatcher ? { dispatcher } : {}),
    });
    verifiers.set(rt, v);
  }
  return v;
}

/** Turned off in the Microsoft 365 admin center: crawls are skipped until it is turned on or provisioned again. */
async function turnedOff(rt: Runtime): Promise<boolean> {
  const stored = await rt.provisionStore.get(rt.definition.connection.id);
  return stored?.state.phase === 'disabled' || stored?.state.phase === 'deleting';
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- each handler has its own trigger type
type Handler = (trigger: any, context: InvocationContext) => Promise<unknown>;

/** Each handler runs as its invocation: the runtime's logger writes to that invocation's context (./invocation.ts). */
function inInvocations<H extends Record<string, Handler>>(handlers: H): H {
  return Object.fromEntries(
    Object.entries(handlers).map(([name, fn]) => [
      name,
      (trigger: unknown, context: InvocationContext) => runInInvocation(context, () => fn(trigger, context)),
    ]),
  ) as H;
}

export function createHandlers(runtime: RuntimeProvider) {
  return inInvocations({
    /** Timer: start a crawl on the schedule (CRAWL_SCHEDULE). A crawl still running is left alone. */
    crawlTimer: async (timer: Timer, context: InvocationContext): Promise<void> => {
      const rt = await runtime();
      const log = contextLogger(rt.logger, context);
      if (timer.isPastDue) log.warn('crawl timer is past due (the previous schedule was missed)');
      if (await turnedOff(rt)) {
        log.info('scheduled crawl skipped: the connector is turned off in the Microsoft 365 admin center');
        return;
      }
      const result = await startCrawl(rt.pipeline, { mode: rt.timerMode, trigger: 'timer' });
      if (result.status === 'busy')
        log.info('scheduled crawl skipped: a crawl of this connection is running', {
          runningCrawlId: result.crawlId,
          holder: result.holder,
        });
      else log.info('scheduled crawl started', { crawlId: result.crawlId, mode: rt.timerMode });
    },

    /** Control queue: enumerate a started crawl, or check whether it settled and finish it. */
    crawlControl: async (message: unknown, context: InvocationContext): Promise<void> => {
      const rt = await runtime();
      const log = contextLogger(rt.logger, context);
      let msg;
      try {
        msg = parseControlMessage(typeof message === 'string' ? message : JSON.stringify(message));
      } catch (err) {
        if (err instanceof ControlMessageError) {
          log.error('control message dropped', { error: err.message });
          return;
        }
        throw err;
      }
      if (msg.kind === 'crawl') {
        const r = await runSlice(rt.pipeline, msg.crawlId, {
          slice: msg.slice,
          dequeueCount: dequeueCountOf(context),
          abortSignal: invocationSignal(),
        });
        log.info('crawl slice finished', {
          crawlId: msg.crawlId,
          slice: msg.slice,
          status: r.status,
          pages: r.pages,
          reason: r.reason,
        });
        // Interrupted: fail the invocation, so the message comes back and the slice resumes from its checkpoint.
        if (r.status === 'interrupted') throw new Error(`crawl ${msg.crawlId}: ${r.reason ?? 'slice interrupted'}`);
      } else {
        await finalizeCrawl(rt.pipeline, msg.crawlId, msg.checks, { abortSignal: invocationSignal() });
      }
    },

    /** Item queue: PUT or DELETE one item, then settle it. */
    ingest: async (message: unknown, context: InvocationContext): Promise<void> => {
      const rt = await runtime();
      const messageId = messageIdOf(context);
      await ingestItem(rt.pipeline, {
        payload: message,
        dequeueCount: dequeueCountOf(context),
        abortSignal: invocationSignal(),
        ...(messageId ? { messageId } : {}),
      });
    },

    /** Poison queue: an operation that failed on every delivery becomes a dead letter (and settles). */
    ingestPoison: async (message: unknown, context: InvocationContext): Promise<void> => {
      const rt = await runtime();
      const messageId = messageIdOf(context);
      const r = await ingestPoison(rt.pipeline, message, {
        dequeueCount: dequeueCountOf(context),
        ...(messageId ? { messageId } : {}),
      });
      contextLogger(rt.logger, context).warn('poison message dead-lettered', { itemId: r.itemId });
    },

    /** Provision queue: one step of the provisioning state machine; re-enqueues itself with a delay. */
    provision: async (message: unknown, context: InvocationContext): Promise<void> => {
      const rt = await runtime();
      const log = contextLogger(rt.logger, context);
      let msg;
      try {
        msg = parseProvisionMessage(message);
      } catch (err) {
        if (err instanceof ProvisionMessageError) {
          log.error('provision message dropped', { error: err.message });
          return;
        }
        throw err;
      }
      await provisionStep(rt, msg, log);
    },

    /** POST /api/provision — start (or resume) provisioning; 202 with where to watch it. */
    provisionHttp: async (request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> => {
      try {
        const body = await readBody(request);
        const unknown = Object.keys(body);
        if (unknown.length)
          throw new RequestError(
            400,
            unknown.map((k) => `unknown field "${k}"; this endpoint takes no body`),
          );
        const rt = await runtime();
        const state = await startProvisioning(rt, contextLogger(rt.logger, context));
        return json(202, {
          connectionId: state.connectionId,
          phase: state.phase,
          statusUrl: `${baseUrlOf(request)}/api/status`,
        });
      } catch (err) {
        return problemResponse(err);
      }
    },

    /**
     * POST /api/notification — the Microsoft 365 admin center's notification that an admin turned the connector on
     * or off (the app package's graphConnector.notificationUrl). Registered anonymous because Microsoft Graph cannot
     * send a function key; every validation token is verified instead (signature against the tenant's published
     * keys, issuer, audience, expiry, publisher) before anything is enqueued. 202 with no body when accepted; 401
     * (no reason given: the log has it) when not authentic. See docs/deploy.md.
     */
    connectorNotification: async (request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> => {
      let log: Logger | undefined;
      try {
        const body = await readBody(request);
        const rt = await runtime();
        log = contextLogger(rt.logger, context);
        const { tenantId, clientId } = rt.env.graph;
        if (!tenantId || !clientId) {
          log.error(
            'admin center notification refused: GRAPH_TENANT_ID and GRAPH_CLIENT_ID must be set to authenticate it (the token audience is the app id)',
          );
          return json(503, { error: { code: 'NotConfigured', message: 'notifications cannot be authenticated yet' } });
        }
        const changes = await authenticateEnablementNotification(
          body,
          { verifier: verifierFor(rt, tenantId, clientId), tenantId },
          { abortSignal: AbortSignal.timeout(20_000) },
        );
        for (const c of changes) {
          const enablement = { connectorId: c.connectorId, ...(c.ticket ? { ticket: c.ticket } : {}) };
          if (c.state === 'enabled') await startProvisioning(rt, log, { enablement });
          else await startDisabling(rt, log, enablement);
        }
        log.info('admin center notification accepted', {
          changes: changes.map((c) => `${c.state} ${c.connectorId}`),
        });
        return { status: 202 };
      } catch (err) {
        if (err instanceof NotificationTokenError && err.retryable) {
          log?.warn('admin center notification not checked: the signing keys cannot be read now', {
            error: err.message,
          });
          return json(503, { error: { code: 'KeysUnavailable', message: 'try again later' } });
        }
        if (
          err instanceof NotificationTokenError ||
          (err instanceof EnablementNotificationError && err.status === 401)
        ) {
          log?.warn('admin center notification refused: not authentic', {
            reason: err instanceof NotificationTokenError ? err.reason : err.code,
            error: err.message,
          });
          return json(401, { error: { code: 'Unauthorized', message: 'the notification could not be authenticated' } });
        }
        if (err instanceof EnablementNotificationError)
          return json(400, { error: { code: err.code, message: err.message } });
        return problemResponse(err);
      }
    },

    /** POST /api/resync {mode, itemIds?, force?} — 202 + crawl id + status URL; 409 when a crawl runs. */
    resync: async (request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> => {
      try {
        const body = parseResyncRequest(await readBody(request));
        const rt = await runtime();
        if (await turnedOff(rt))
          return json(409, {
            error: {
              code: 'ConnectorTurnedOff',
              message:
                'the connector is turned off in the Microsoft 365 admin center (its connection was deleted): turn it on there, or POST /api/provision, then resync',
            },
          });
        const result = await startCrawl(rt.pipeline, {
          mode: body.mode,
          trigger: 'http',
          force: body.force,
          ...(body.itemIds ? { itemIds: body.itemIds } : {}),
        });
        const base = baseUrlOf(request);
        if (result.status === 'busy') {
          return json(409, {
            error: { code: 'CrawlRunning', message: 'a crawl of this connection is running; wait for it or watch it' },
            runningCrawlId: result.crawlId,
            since: result.since,
            ...(result.crawlId ? { statusUrl: `${base}/api/jobs/${result.crawlId}` } : {}),
          });
        }
        contextLogger(rt.logger, context).info('resync accepted', { crawlId: result.crawlId, mode: body.mode });
        return json(
          202,
          { crawlId: result.crawlId, mode: body.mode, statusUrl: `${base}/api/jobs/${result.crawlId}` },
          { location: `${base}/api/jobs/${result.crawlId}` },
        );
      } catch (err) {
        return problemResponse(err);
      }
    },

    /** GET /api/status — the connection, provisioning, the crawl in progress, recent jobs, dead letters. */
    status: async (_request: HttpRequest, _context: InvocationContext): Promise<HttpResponseInit> => {
      try {
        const rt = await runtime();
        return json(200, await statusReport(rt));
      } catch (err) {
        return problemResponse(err);
      }
    },

    /** GET /api/jobs/{id} — one crawl job with live counts. */
    job: async (request: HttpRequest, _context: InvocationContext): Promise<HttpResponseInit> => {
      try {
        const id = request.params.id ?? '';
        if (!/^[0-9a-f]{13,40}$/i.test(id))
          throw new RequestError(400, [
            `"${id.slice(0, 60)}" is not a crawl id (13+ hex digits, as returned by POST /api/resync)`,
          ]);
        const rt = await runtime();
        const job = await rt.pipeline.state.jobs.get(rt.pipeline.connectionId, id);
        if (!job)
          return json(404, {
            error: { code: 'NotFound', message: `no crawl ${id} for connection ${rt.pipeline.connectionId}` },
          });
        return json(200, await jobView(rt.pipeline.state, job));
      } catch (err) {
        return problemResponse(err);
      }
    },

    /** GET /api/jobs?top= — the newest crawl jobs (default 20, at most 100), with live counts and progress. */
    jobs: async (request: HttpRequest, _context: InvocationContext): Promise<HttpResponseInit> => {
      try {
        const raw = request.query.get('top') ?? '20';
        const top = Number(raw);
        if (!/^\d+$/.test(raw) || top < 1 || top > MAX_JOBS)
          throw new RequestError(400, [`"top" must be an integer from 1 to ${MAX_JOBS} (got "${raw.slice(0, 20)}")`]);
        const rt = await runtime();
        const jobs = await rt.pipeline.state.jobs.list(rt.pipeline.connectionId, top);
        const value = await Promise.all(jobs.map((j) => jobView(rt.pipeline.state, j)));
        return json(200, { value, count: value.length });
      } catch (err) {
        return problemResponse(err);
      }
    },

    /** GET /api/dashboard — the status page (one HTML document that reads the endpoints above). */
    dashboard: async (_request: HttpRequest, _context: InvocationContext): Promise<HttpResponseInit> => ({
      status: 200,
      body: DASHBOARD_HTML,
      headers: DASHBOARD_HEADERS,
    }),

    /** GET /api/deadletters?crawlId=&op=&top= — dead letters and rejections, newest crawl first. */
    deadLetters: async (request: HttpRequest, _context: InvocationContext): Promise<HttpResponseInit> => {
      try {
        const op = request.query.get('op') ?? undefined;
        const problems: string[] = [];
        if (op && !['upsert', 'delete', 'reject', 'unknown'].includes(op))
          problems.push(`"op" must be upsert, delete, reject or unknown (got "${op}")`);
        const top = Number(request.query.get('top') ?? '100');
        if (!Number.isInteger(top) || top < 1 || top > 1000) problems.push('"top" must be an integer from 1 to 1000');
        if (problems.length) throw new RequestError(400, problems);
        const rt = await runtime();
        const crawlId = request.query.get('crawlId') ?? undefined;
        const out = [];
        for await (const dl of rt.pipeline.state.deadLetters.list(rt.pipeline.connectionId, {
          ...(crawlId ? { crawlId } : {}),
          ...(op ? { op: op as 'upsert' } : {}),
        })) {
          out.push(dl);
          if (out.length >= top) break;
        }
        return json(200, { value: out, count: out.length });
      } catch (err) {
        return problemResponse(err);
      }
    },

    /** POST /api/deadletters/replay {all | crawlId | itemIds} — re-enqueue dead-lettered operations. */
    replay: async (request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> => {
      try {
        const body = parseReplayRequest(await readBody(request));
        const rt = await runtime();
        const result = await replayDeadLetters(rt, body);
        contextLogger(rt.logger, context).info('dead letters replayed', { ...result });
        return json(202, result);
      } catch (err) {
        return problemResponse(err);
      }
    },
  });
}

export type Handlers = ReturnType<typeof createHandlers>;
