/**
 * Typed Graph errors, built from Graph's error envelope (`{"error":{"code","message","innerError":{...}}}`,
 * https://learn.microsoft.com/graph/errors). `retryable` (from {@link ConnectorError}) tells the caller whether
 * the same request can succeed later (408, 429, 5xx, network) or not (other 4xx).
 */
import { tlsCodeOf, tlsDiagnosis } from './tls.js';
import { parseRetryAfter } from '../core/async.js';
import { ConnectorError, isTransientStatus } from '../core/errors.js';

export interface GraphErrorInit {
  status: number;
  code: string;
  message: string;
  innerCode?: string;
  requestId?: string;
  clientRequestId?: string;
  retryAfterMs?: number;
  /** Default: the status can succeed later (0, 408, 429, 5xx). */
  retryable?: boolean;
  method?: string;
  url?: string;
  body?: unknown;
  cause?: unknown;
}

/**
 * Which application permission each kind of call needs: connections and schema
 * (https://learn.microsoft.com/graph/api/externalconnectors-externalconnection-post), items and external groups
 * (https://learn.microsoft.com/graph/api/externalconnectors-externalconnection-put-items).
 */
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

/**
 * Graph's answer to a request that failed (or status 0 when none came). `code` is Graph's error code;
 * `retryable` is true for network failures (0), 408, 429 and 5xx.
 */
export class GraphError extends ConnectorError {
  override name = 'GraphError';
  readonly status: number;
  readonly innerCode: string | undefined;
  readonly requestId: string | undefined;
  readonly clientRequestId: string | undefined;
  readonly method: string | undefined;
  readonly url: string | undefined;
  readonly body: unknown;

  constructor(init: GraphErrorInit) {
    super(init.message, {
      code: init.code,
      retryable: init.retryable ?? isTransientStatus(init.status),
      ...(init.retryAfterMs !== undefined ? { retryAfterMs: init.retryAfterMs } : {}),
      ...(init.cause !== undefined ? { cause: init.cause } : {}),
    });
    this.status = init.status;
    this.innerCode = init.innerCode;
    this.requestId = init.requestId;
    this.clientRequestId = init.clientRequestId;
    this.method = init.method;
    this.url = init.url;
    this.body = init.body;
  }

  /** The permission a 403 on this request most likely lacks. */
  get missingPermission(): string | undefined {
    return this.status === 403 ? permissionFor(this.url) : undefined;
  }
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
  // A certificate that is not accepted does not fix itself: say so (not retryable), with what to set.
  const tlsCode = tlsCodeOf(cause);
  const tls = tlsCode ? tlsDiagnosis(tlsCode, { ...(request.url ? { url: request.url } : {}) }) : undefined;
  return new GraphError({
    status: 0,
    code: tls ? 'TlsCertificateNotAccepted' : 'NetworkError',
    ...(tls ? { retryable: false } : {}),
    message: tls
      ? `${request.method ?? 'GET'} ${request.url ?? ''} failed: ${tls.message}. Fix: ${tls.fix}`
      : `${request.method ?? 'GET'} ${request.url ?? ''} failed before a response: ${detail || String(cause)}`,
    clientRequestId: request.clientRequestId,
    method: request.method,
    url: request.url,
    cause,
  });
}

/**
 * Authentication (token acquisition) failed: the message names the credential, tenant, client and the fix.
 * Code `AuthenticationFailed`; not retryable (a secret, certificate or consent has to change first).
 */
export class GraphAuthError extends ConnectorError {
  override name = 'GraphAuthError';
  /** The GRAPH_CREDENTIAL kind that failed (`clientSecret`, `certificate`, …), when known. */
  readonly credential: string | undefined;
  constructor(message: string, options: { credential?: string; cause?: unknown } = {}) {
    super(message, { code: 'AuthenticationFailed', ...(options.cause !== undefined ? { cause: options.cause } : {}) });
    this.credential = options.credential;
  }
}

/** A certificate (PEM or PKCS#12) cannot be used: no private key, no certificate, or a wrong password. */
export class CertificateError extends ConnectorError {
  override name = 'CertificateError';
  constructor(message: string, options: { cause?: unknown } = {}) {
    super(message, { code: 'InvalidCertificate', ...(options.cause !== undefined ? { cause: options.cause } : {}) });
  }
}
