/**
 * The Graph client: @microsoft/microsoft-graph-client with an explicit middleware chain
 * (retry → bearer auth for the configured host only → fetch with an optional extra CA),
 * and thin typed operations for connections, schema, operations, items, groups and members.
 */
import { Client, GraphClientError, ResponseType, type GraphRequest } from '@microsoft/microsoft-graph-client';
import type { TokenCredential } from '@azure/identity';
import type { Dispatcher } from 'undici';
import type { OperationOptions } from '../core/async.js';
import { METRICS, noTelemetry, type Telemetry } from '../core/telemetry.js';
import { displayUrl } from '../core/url.js';
import type { ExternalGroupMember, ExternalItem } from '../config/model.js';
import { GraphError, graphErrorFromResponse } from './errors.js';
import { BearerAuthMiddleware, HttpMiddleware, dispatcherFromCaPath } from './http.js';
import {
  GraphAttemptObserver,
  GraphRetryOptions,
  RetryMiddleware,
  type RetryClock,
  type RetryEvent,
  type RetryPolicy,
} from './retry.js';
import type {
  ExternalActivity,
  ExternalActivityResult,
  ConnectionOperation,
  ExternalConnection,
  ExternalConnectionCreate,
  ExternalConnectionPatch,
  ExternalGroupBody,
  SchemaResponse,
} from './types.js';
import type { Schema } from '../config/model.js';
import type { ConnectorEnvironment } from '../config/env.js';

export interface GraphClientOptions {
  /** e.g. `https://graph.microsoft.com` (no version). */
  baseUrl: string;
  apiVersion?: string;
  credential: TokenCredential;
  /** Token scope; default {@link graphTokenScope}(baseUrl). */
  scope?: string;
  /** PEM file of an extra CA to trust (GRAPH_CA_CERT_PATH). */
  caCertPath?: string;
  /** Or a ready dispatcher (takes precedence over caCertPath). */
  dispatcher?: Dispatcher;
  retry?: Partial<RetryPolicy>;
  clock?: Partial<RetryClock>;
  onRetry?: (e: RetryEvent) => void;
  /** Per-attempt timeout (default 100 s). */
  timeoutMs?: number;
  fetch?: typeof fetch;
  /** A dependency span per call, and the throttling metrics (default: none). */
  telemetry?: Telemetry;
}

/** National-cloud Graph hosts: the token audience is the host itself. */
const GRAPH_CLOUD_HOSTS = new Set([
  'graph.microsoft.com',
  'graph.microsoft.us',
  'dod-graph.microsoft.us',
  'microsoftgraph.chinacloudapi.cn',
]);

/**
 * The token scope for a Graph base URL: `${GRAPH_BASE_URL}/.default` for the Graph clouds. A local stand-in
 * (the emulator, a proxy) plays Microsoft Graph, and like the real service expects Graph's own audience,
 * so any other host gets `https://graph.microsoft.com/.default`.
 */
export function graphTokenScope(baseUrl: string): string {
  const url = new URL(baseUrl);
  return GRAPH_CLOUD_HOSTS.has(url.hostname.toLowerCase())
    ? `${url.origin}/.default`
    : 'https://graph.microsoft.com/.default';
}

/** The raw client with our middleware chain. Authorization goes only to the base URL's host. */
export function createGraphClient(options: GraphClientOptions): Client {
  const base = new URL(options.baseUrl);
  const baseUrl = options.baseUrl.replace(/\/+$/, '');
  const dispatcher = options.dispatcher ?? dispatcherFromCaPath(options.caCertPath);
  const retry = new RetryMiddleware(options.retry, options.clock, options.onRetry);
  const auth = new BearerAuthMiddleware({
    credential: options.credential,
    scope: options.scope ?? graphTokenScope(baseUrl),
    allowedHosts: new Set([base.host.toLowerCase()]),
  });
  const http = new HttpMiddleware({
    ...(dispatcher ? { dispatcher } : {}),
    timeoutMs: options.timeoutMs ?? 100_000,
    ...(options.fetch ? { fetch: options.fetch } : {}),
  });
  retry.setNext(auth);
  auth.setNext(http);
  return Client.initWithMiddleware({
    middleware: retry,
    baseUrl,
    defaultVersion: options.apiVersion ?? 'v1.0',
    customHosts: new Set([base.hostname]),
  });
}

/** Options of one Graph call: cancellation (`abortSignal`, the Azure SDK convention) and request details. */
export interface RequestOptions extends OperationOptions {
  headers?: Record<string, string>;
  body?: unknown;
  /** Per-call retry policy (e.g. `{ maxRetries: 0 }` on the ingest path). */
  retry?: Partial<RetryPolicy>;
  /** Statuses that are returned rather than thrown (e.g. 404 → null). */
  accept?: number[];
}

type Method = 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE';

/**
 * Labels after `unknownFutureValue` (iconUrl, containerName, containerUrl, ...) come back as
 * `unknownFutureValue` unless the request asks for them
 * (https://learn.microsoft.com/graph/best-practices-concept#handling-future-members-in-evolvable-enumerations).
 */
const EVOLVABLE_ENUMS = { Prefer: 'include-unknown-enum-members' };

/** Graph's limit of activities per addActivities call (https://learn.microsoft.com/graph/connecting-external-content-api-limits). */
export const MAX_ACTIVITIES_PER_CALL = 20;

/** Percent-encodes one path segment (a connection, item, group or member id). Local to this file. */
const enc = (segment: string): string => encodeURIComponent(segment);

/** Collections whose next path segment is an id: replaced by `{id}` in span names, so they stay few. */
const ID_COLLECTIONS = new Set(['connections', 'items', 'groups', 'members', 'operations']);

/** `METHOD /external/connections/{id}/items/{id}`: the span name of a Graph call. */
export function graphSpanName(method: string, url: string): string {
  let path: string;
  try {
    path = new URL(url).pathname;
  } catch {
    path = url.split(/[?#]/, 1)[0]!;
  }
  const segments = path.split('/');
  // Drop the version segment (v1.0, beta), keep the rest.
  const start = segments.findIndex((s) => /^(v\d+(\.\d+)?|beta)$/.test(s));
  const rest = start >= 0 ? segments.slice(start + 1) : segments.filter(Boolean);
  const named = rest.map((s, i) => (i > 0 && ID_COLLECTIONS.has(rest[i - 1]!) ? '{id}' : s));
  return `${method} /${named.join('/')}`;
}

export class GraphConnectorClient {
  readonly client: Client;
  readonly baseUrl: string;
  readonly apiVersion: string;
  private readonly credential: TokenCredential;
  private readonly telemetry: Telemetry;
  constructor(options: GraphClientOptions) {
    this.client = createGraphClient(options);
    this.credential = options.credential;
    this.telemetry = options.telemetry ?? noTelemetry;
    this.baseUrl = options.baseUrl.replace(/\/+$/, '');
    this.apiVersion = options.apiVersion ?? 'v1.0';
  }

  /**
   * Drop cached tokens so the next request gets a fresh one (after admin consent, a cached token still
   * lacks the new roles). Works with credentials that have a `reset()` (see createGraphCredential).
   */
  refreshToken(): void {
    const c = this.credential as TokenCredential & { reset?: () => void };
    c.reset?.();
  }

  /** The versioned base, e.g. `https://graph.microsoft.com/v1.0`. */
  get versionedBaseUrl(): string {
    return `${this.baseUrl}/${this.apiVersion}`;
  }

  /**
   * The URL handed to the Graph client. It only recognises `https://` as absolute, so an absolute URL under
   * our own (loopback http) base is made relative, and any other plain-http URL is refused.
   */
  private target(path: string): string {
    if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(path)) return `${this.versionedBaseUrl}/${path.replace(/^\/+/, '')}`;
    if (path.startsWith(`${this.versionedBaseUrl}/`) || /^https:\/\//i.test(path)) return path;
    throw new GraphError({
      status: 0,
      code: 'InvalidUrl',
      retryable: false,
      message: `refusing to send a Graph request to '${path}': absolute URLs must use https (or be under ${this.versionedBaseUrl})`,
    });
  }

  /**
   * Sends a request and returns the raw Response for 2xx (and `accept`ed statuses);
   * throws GraphError otherwise (network failures: status 0, code NetworkError).
   */
  async request(method: Method, path: string, options: RequestOptions = {}): Promise<Response> {
    const url = this.target(path);
    const apiPath =
      url.startsWith(`${this.versionedBaseUrl}/`) && !url.startsWith('https://')
        ? url.slice(this.versionedBaseUrl.length)
        : url;
    const telemetry = this.telemetry;
    const call = telemetry.dependency('graph', { method, url: displayUrl(url), name: graphSpanName(method, url) });
    const observer = new GraphAttemptObserver({
      response(status, retryAfterMs) {
        call.response(status);
        if (status !== 429) return;
        telemetry.count(METRICS.graphThrottled, 1);
        if (retryAfterMs !== undefined) telemetry.record(METRICS.graphRetryAfter, retryAfterMs / 1000);
      },
      retry: (delayMs, reason) => call.retry(delayMs, reason === 'retry-after'),
    });
    let req: GraphRequest = this.client.api(apiPath).responseType(ResponseType.RAW);
    if (options.headers) req = req.headers(options.headers);
    if (options.abortSignal) req = req.option('signal', options.abortSignal);
    req = req.middlewareOptions(options.retry ? [new GraphRetryOptions(options.retry), observer] : [observer]);
    let response: Response;
    try {
      switch (method) {
        case 'GET':
          response = (await req.get()) as Response;
          break;
        case 'POST':
          response = (await req.post(options.body)) as Response;
          break;
        case 'PATCH':
          response = (await req.patch(options.body)) as Response;
          break;
        case 'PUT':
          response = (await req.put(options.body)) as Response;
          break;
        case 'DELETE':
          response = (await req.delete()) as Response;
          break;
      }
    } catch (e) {
      const error = e instanceof GraphClientError && e.customError instanceof Error ? e.customError : e;
      call.end({ error, ...(error instanceof GraphError && error.status > 0 ? { status: error.status } : {}) });
      throw error;
    }
    if (response.ok || options.accept?.includes(response.status)) {
      call.end({ status: response.status });
      return response;
    }
    const error = await graphErrorFromResponse(response, { method, url });
    call.end({ status: response.status, error });
    throw error;
  }

  private async json<T>(method: Method, path: string, options: RequestOptions = {}): Promise<T | null> {
    const res = await this.request(method, path, options);
    if (options.accept?.includes(res.status) && !res.ok) {
      await res.arrayBuffer().catch(() => undefined);
      return null;
    }
    const text = await res.text();
    return text ? (JSON.parse(text) as T) : (undefined as T);
  }

  private async empty(method: Method, path: string, options: RequestOptions = {}): Promise<Response> {
    const res = await this.request(method, path, options);
    await res.arrayBuffer().catch(() => undefined);
    return res;
  }

  // Connections
  getConnection(id: string, o: RequestOptions = {}): Promise<ExternalConnection | null> {
    return this.json<ExternalConnection>('GET', `external/connections/${enc(id)}`, { ...o, accept: [404] });
  }
  async listConnections(o: RequestOptions = {}): Promise<ExternalConnection[]> {
    const body = await this.json<{ value: ExternalConnection[] }>('GET', 'external/connections', o);
    return body?.value ?? [];
  }
  async createConnection(connection: ExternalConnectionCreate, o: RequestOptions = {}): Promise<ExternalConnection> {
    return (await this.json<ExternalConnection>('POST', 'external/connections', { ...o, body: connection }))!;
  }
  async updateConnection(id: string, patch: ExternalConnectionPatch, o: RequestOptions = {}): Promise<void> {
    await this.empty('PATCH', `external/connections/${enc(id)}`, { ...o, body: patch });
  }
  async deleteConnection(id: string, o: RequestOptions = {}): Promise<void> {
    await this.empty('DELETE', `external/connections/${enc(id)}`, o);
  }

  // Schema
  getSchema(connectionId: string, o: RequestOptions = {}): Promise<SchemaResponse | null> {
    return this.json<SchemaResponse>('GET', `external/connections/${enc(connectionId)}/schema`, {
      ...o,
      headers: { ...EVOLVABLE_ENUMS, ...o.headers },
      accept: [404],
    });
  }
  /** PATCHes the schema; returns the operation URL from Location. */
  async patchSchema(connectionId: string, schema: Schema, o: RequestOptions = {}): Promise<string> {
    const res = await this.empty('PATCH', `external/connections/${enc(connectionId)}/schema`, {
      ...o,
      headers: { ...EVOLVABLE_ENUMS, ...o.headers },
      body: schema,
    });
    const location = res.headers.get('location');
    if (!location) {
      throw new GraphError({
        status: res.status,
        code: 'MissingLocation',
        message: `PATCH schema of ${connectionId} returned ${res.status} without a Location header; cannot follow the schema operation`,
        requestId: res.headers.get('request-id') ?? undefined,
      });
    }
    return new URL(location, this.versionedBaseUrl + '/').toString();
  }
  async getOperation(operationUrl: string, o: RequestOptions = {}): Promise<ConnectionOperation> {
    return (await this.json<ConnectionOperation>('GET', operationUrl, o))!;
  }

  // Items
  async putItem(connectionId: string, item: ExternalItem, o: RequestOptions = {}): Promise<void> {
    await this.empty('PUT', `external/connections/${enc(connectionId)}/items/${enc(item.id)}`, { ...o, body: item });
  }
  getItem(connectionId: string, itemId: string, o: RequestOptions = {}): Promise<ExternalItem | null> {
    return this.json<ExternalItem>('GET', `external/connections/${enc(connectionId)}/items/${enc(itemId)}`, {
      ...o,
      accept: [404],
    });
  }
  /** Deletes an item; returns false if Graph says it did not exist (404). */
  async deleteItem(connectionId: string, itemId: string, o: RequestOptions = {}): Promise<boolean> {
    const res = await this.empty('DELETE', `external/connections/${enc(connectionId)}/items/${enc(itemId)}`, {
      ...o,
      accept: [404],
    });
    return res.status !== 404;
  }

  /**
   * Appends activities to an item: at most 20 per call, Graph's limit per activities call
   * (https://learn.microsoft.com/graph/connecting-external-content-api-limits). Returns one result per activity;
   * a 207 Multi-Status sets `error` on the ones Graph did not take
   * (https://learn.microsoft.com/graph/api/externalconnectors-externalitem-addactivities).
   */
  async addActivities(
    connectionId: string,
    itemId: string,
    activities: ExternalActivity[],
    o: RequestOptions = {},
  ): Promise<ExternalActivityResult[]> {
    if (activities.length === 0 || activities.length > MAX_ACTIVITIES_PER_CALL)
      throw new RangeError(`addActivities takes 1–${MAX_ACTIVITIES_PER_CALL} activities, got ${activities.length}`);
    const body = await this.json<{ value?: ExternalActivityResult[] }>(
      'POST',
      `external/connections/${enc(connectionId)}/items/${enc(itemId)}/addActivities`,
      { ...o, body: { activities } },
    );
    const value = Array.isArray(body?.value) ? body.value : [];
    // No per-entry answer (an empty 200): every activity was taken.
    return activities.map((_, i) => value[i] ?? { error: null });
  }

  // Groups and members
  async createGroup(
    connectionId: string,
    group: ExternalGroupBody,
    o: RequestOptions = {},
  ): Promise<ExternalGroupBody> {
    return (await this.json<ExternalGroupBody>('POST', `external/connections/${enc(connectionId)}/groups`, {
      ...o,
      body: group,
    }))!;
  }
  getGroup(connectionId: string, groupId: string, o: RequestOptions = {}): Promise<ExternalGroupBody | null> {
    return this.json<ExternalGroupBody>('GET', `external/connections/${enc(connectionId)}/groups/${enc(groupId)}`, {
      ...o,
      accept: [404],
    });
  }
  async updateGroup(
    connectionId: string,
    groupId: string,
    patch: Omit<ExternalGroupBody, 'id'>,
    o: RequestOptions = {},
  ): Promise<void> {
    await this.empty('PATCH', `external/connections/${enc(connectionId)}/groups/${enc(groupId)}`, {
      ...o,
      body: patch,
    });
  }
  /** Returns false when the group did not exist. */
  async deleteGroup(connectionId: string, groupId: string, o: RequestOptions = {}): Promise<boolean> {
    const res = await this.empty('DELETE', `external/connections/${enc(connectionId)}/groups/${enc(groupId)}`, {
      ...o,
      accept: [404],
    });
    return res.status !== 404;
  }
  async addMember(
    connectionId: string,
    groupId: string,
    member: ExternalGroupMember,
    o: RequestOptions = {},
  ): Promise<void> {
    await this.empty('POST', `external/connections/${enc(connectionId)}/groups/${enc(groupId)}/members`, {
      ...o,
      body: member,
    });
  }
  /** Returns false when the member was not in the group. */
  async removeMember(
    connectionId: string,
    groupId: string,
    memberId: string,
    o: RequestOptions = {},
  ): Promise<boolean> {
    const res = await this.empty(
      'DELETE',
      `external/connections/${enc(connectionId)}/groups/${enc(groupId)}/members/${enc(memberId)}`,
      { ...o, accept: [404] },
    );
    return res.status !== 404;
  }
}

/** The client for a validated environment: credential from GRAPH_CREDENTIAL, base URL, version and extra CA. */
export function graphClientFromEnvironment(
  env: ConnectorEnvironment,
  credential: TokenCredential,
  options: Partial<Omit<GraphClientOptions, 'credential' | 'baseUrl'>> = {},
): GraphConnectorClient {
  return new GraphConnectorClient({
    baseUrl: env.graph.baseUrl,
    apiVersion: env.graph.apiVersion,
    ...(env.graph.caCertPath ? { caCertPath: env.graph.caCertPath } : {}),
    ...options,
    credential,
  });
}
