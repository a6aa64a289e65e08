/**
 * Typed Graph errors, built from Graph's error envelope (`{"error":{"code","message","innerError":{...}}}`).
 * `transient` tells the caller whether the same request can succeed later (429, 5xx, network) or not (4xx).
 */

export interface GraphErrorInit {
  status: number;
  code: string;
  message: string;
  innerCode?: string;
  requestId?: string;
  clientRequestId?: string;
  retryAfterMs?: number;
  method?: string;
  url?: string;
  body?: unknown;
  cause?: unknown;
}

/** Which permission each kind of call needs (reference §2, §7.2). */
export const PERMISSIONS = {
  connection: 'ExternalConnection.ReadWrite.OwnedBy',
  item: 'ExternalItem.ReadWrite.OwnedBy',
} as const;

export function permissionFor(url: string | undefined): string | undefined {
  if (!url) return undefined;
  const path = (() => {
    try {
      return new URL(url).pathname;
    } catch {
      return url;
    }
  })();
  if (!/\/external\/connections/i.test(path)) return undefined;
  return /\/external\/connections\/[^/]+\/(items|groups)(\/|$)/i.test(path) ? PERMISSIONS.item : PERMISSIONS.connection;
}

export class GraphError extends Error {
  override name = 'GraphError';
  readonly status: number;
  readonly code: string;
  readonly innerCode: string | undefined;
  readonly requestId: string | undefined;
  readonly clientRequestId: string | undefined;
  readonly retryAfterMs: number | undefined;
  readonly transient: boolean;
  readonly method: string | undefined;
  readonly url: string | undefined;
  readonly body: unknown;

  constructor(init: GraphErrorInit) {
    super(init.message, init.cause !== undefined ? { cause: init.cause } : undefined);
    this.status = init.status;
    this.code = init.code;
    this.innerCode = init.innerCode;
    this.requestId = init.requestId;
    this.clientRequestId = init.clientRequestId;
    this.retryAfterMs = init.retryAfterMs;
    this.method = init.method;
    this.url = init.url;
    this.body = init.body;
    this.transient = isTransientStatus(init.status);
  }

  /** The permission a 403 on this request most likely lacks. */
  get missingPermission(): string | undefined {
    return this.status === 403 ? permissionFor(this.url) : undefined;
  }
}

/** 0 (network), 408, 429 and 5xx can succeed later; other 4xx cannot. */
export function isTransientStatus(status: number): boolean {
  return status === 0 || status === 408 || status === 429 || status >= 500;
}

/** Parses Retry-After (delta seconds or an HTTP-date) into milliseconds from `now`. */
export function parseRetryAfter(value: string | null | undefined, now: number = Date.now()): number | undefined {
  if (value === null || value === undefined || value.trim() === '') return undefined;
  const v = value.trim();
  if (/^\d+(\.\d+)?$/.test(v)) return Math.ceil(Number(v) * 1000);
  const at = Date.parse(v);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - now);
}

interface Envelope {
  error?: {
    code?: unknown;
    message?: unknown;
    innerError?: { code?: unknown; message?: unknown; 'request-id'?: unknown; 'client-request-id'?: unknown };
    innererror?: { code?: unknown; message?: unknown; 'request-id'?: unknown; 'client-request-id'?: unknown };
  };
}

const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);

/** Builds a GraphError from a non-2xx response (reads the body). */
export async function graphErrorFromResponse(
  response: Response,
  request: { method?: string; url?: string; clientRequestId?: string },
  now: number = Date.now(),
): Promise<GraphError> {
  let text = '';
  try {
    text = await response.text();
  } catch {
    /* body unreadable: keep the status */
  }
  let body: unknown = text;
  let envelope: Envelope = {};
  try {
    body = text ? JSON.parse(text) : undefined;
    if (body && typeof body === 'object') envelope = body;
  } catch {
    /* not JSON */
  }
  const inner = envelope.error?.innerError ?? envelope.error?.innererror;
  const innerCode = str(inner?.code);
  const code = str(envelope.error?.code) ?? (response.statusText || `Http${response.status}`);
  const baseMessage =
    str(envelope.error?.message) ?? (text.slice(0, 300) || response.statusText || `HTTP ${response.status}`);
  const innerMessage = str(inner?.message);
  const message = innerMessage && innerMessage !== baseMessage ? `${baseMessage} (${innerMessage})` : baseMessage;
  const retryAfterMs = parseRetryAfter(response.headers.get('retry-after'), now);
  return new GraphError({
    status: response.status,
    code,
    message: `${request.method ?? 'GET'} ${request.url ?? response.url} failed with ${response.status} ${code}: ${message}`,
    ...(innerCode ? { innerCode } : {}),
    requestId: response.headers.get('request-id') ?? str(inner?.['request-id']),
    clientRequestId:
      response.headers.get('client-request-id') ?? str(inner?.['client-request-id']) ?? request.clientRequestId,
    ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
    method: request.method,
    url: request.url ?? response.url,
    body,
  });
}

/** A failure before any response (DNS, TLS, reset, timeout). */
export function networkError(
  cause: unknown,
  request: { method?: string; url?: string; clientRequestId?: string },
): GraphError {
  const c = cause as { message?: string; cause?: { code?: string; message?: string } };
  const detail = [c?.message, c?.cause?.code ?? c?.cause?.message].filter(Boolean).join(': ');
  return new GraphError({
    status: 0,
    code: 'NetworkError',
    message: `${request.method ?? 'GET'} ${request.url ?? ''} failed before a response: ${detail || String(cause)}`,
    clientRequestId: request.clientRequestId,
    method: request.method,
    url: request.url,
    cause,
  });
}

/** Authentication (token acquisition) failed: the credential, tenant, client and the fix. */
export class GraphAuthError extends Error {
  override name = 'GraphAuthError';
  constructor(
    message: string,
    readonly credential: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
