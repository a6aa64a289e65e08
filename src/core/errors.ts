/**
 * One error base for the connector (the emulator has its own). Every typed error extends {@link ConnectorError},
 * which carries a stable machine-readable `code` and whether trying again later can succeed (`retryable`), the
 * way core-rest-pipeline's `RestError` does for Azure SDK callers. Decide with {@link isRetryable}, never with an
 * `instanceof` chain.
 */

export interface ConnectorErrorOptions {
  /** A stable, machine-readable code (`SourceHttp`, `LeaseLost`, a Graph error code …). */
  code: string;
  /** True when the same operation may succeed if tried again later. Default false. */
  retryable?: boolean;
  /** When the failure said how long to wait (Retry-After), in milliseconds. */
  retryAfterMs?: number;
  cause?: unknown;
}

export class ConnectorError extends Error {
  override name = 'ConnectorError';
  readonly code: string;
  readonly retryable: boolean;
  readonly retryAfterMs: number | undefined;

  constructor(message: string, options: ConnectorErrorOptions) {
    super(message, options.cause !== undefined ? { cause: options.cause } : undefined);
    this.code = options.code;
    this.retryable = options.retryable ?? false;
    this.retryAfterMs = options.retryAfterMs;
  }
}

export function isConnectorError(err: unknown): err is ConnectorError {
  return err instanceof ConnectorError;
}

/** Storage/HTTP statuses that can succeed later: network (0), 408, 429 and 5xx. */
export function isTransientStatus(status: number): boolean {
  return status === 0 || status === 408 || status === 429 || status >= 500;
}

/** HTTP status of an Azure SDK RestError (or anything shaped like one). */
export function statusOf(err: unknown): number | undefined {
  if (err && typeof err === 'object' && 'statusCode' in err) {
    const s = (err as { statusCode?: unknown }).statusCode;
    return typeof s === 'number' ? s : undefined;
  }
  return undefined;
}

const NETWORK_CODES = new Set(['ECONNRESET', 'ECONNREFUSED', 'ETIMEDOUT', 'EPIPE', 'EAI_AGAIN', 'UND_ERR_SOCKET']);

/**
 * Can trying again later succeed? A {@link ConnectorError} says so itself; an Azure SDK `RestError` by its status
 * (a transient status, or a network failure without one); anything else (a bug, an abort) is not retryable.
 */
export function isRetryable(err: unknown): boolean {
  if (err instanceof ConnectorError) return err.retryable;
  if (isAbortError(err)) return false;
  const status = statusOf(err);
  if (status !== undefined) return isTransientStatus(status);
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && NETWORK_CODES.has(code);
}

/** An abort (AbortSignal fired) rather than a failure. */
export function isAbortError(err: unknown): boolean {
  const name = (err as { name?: unknown } | null)?.name;
  return name === 'AbortError' || name === 'TimeoutError';
}

/** The message of anything thrown, for logs and records (callers redact). */
export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
