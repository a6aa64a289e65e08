/**
 * The last links of the middleware chain: bearer authentication restricted to the configured Graph host,
 * and the HTTP sender (global fetch, optionally through an undici Agent that trusts an extra CA).
 */
import { readFileSync } from 'node:fs';
import { GraphClientError, type Context, type Middleware } from '@microsoft/microsoft-graph-client';
import type { TokenCredential } from '@azure/identity';
import { Agent, type Dispatcher } from 'undici';
import { abortReason, anySignal } from '../core/async.js';
import { ConfigError, problem } from '../config/problems.js';
import { GraphAuthError, networkError } from './errors.js';

/** An undici Agent that trusts `ca` (PEM) in addition to nothing else: pass as fetch `dispatcher`. */
export function createCaDispatcher(caPem: string | Buffer): Dispatcher {
  return new Agent({ connect: { ca: caPem }, keepAliveTimeout: 10_000 });
}

/** The PEM of GRAPH_CA_CERT_PATH; a ConfigError naming the setting when the file cannot be read. */
export function readCaCertificate(caCertPath: string): Buffer {
  try {
    return readFileSync(caCertPath);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? String(e);
    throw new ConfigError(
      [
        problem(
          'GRAPH_CA_CERT_PATH',
          `cannot read '${caCertPath}' (${code})`,
          'point it at a PEM file with the CA that signed the Graph/authority endpoint, or unset it',
        ),
      ],
      'the environment',
    );
  }
}

export function dispatcherFromCaPath(caCertPath: string | undefined): Dispatcher | undefined {
  return caCertPath ? createCaDispatcher(readCaCertificate(caCertPath)) : undefined;
}

/** The URL of a middleware context's request (a string, or a Request). */
export function requestUrl(context: Context): string {
  const r = context.request as unknown as string | { url: string };
  return typeof r === 'string' ? r : r.url;
}

/** Wraps a GraphError so the Graph client's send() rethrows it untouched (it rethrows GraphClientError). */
export function wrapForClient(error: Error): GraphClientError {
  const wrapper = new GraphClientError(error.message);
  wrapper.customError = error;
  return wrapper;
}

export interface AuthMiddlewareOptions {
  credential: TokenCredential;
  /** e.g. `https://graph.microsoft.com/.default` */
  scope: string;
  /** Host names (host:port) that receive the token; every other host gets no Authorization header. */
  allowedHosts: Set<string>;
  /** Turns a token failure into an actionable error. */
  describeAuthFailure?: (error: unknown) => Error;
}

export class BearerAuthMiddleware implements Middleware {
  private next?: Middleware;
  constructor(private readonly opts: AuthMiddlewareOptions) {}
  setNext(next: Middleware): void {
    this.next = next;
  }
  async execute(context: Context): Promise<void> {
    const url = new URL(requestUrl(context));
    const options = (context.options ??= {});
    const headers = (options.headers ??= {}) as Record<string, string>;
    for (const k of Object.keys(headers)) if (k.toLowerCase() === 'authorization') delete headers[k];
    const loopback = url.hostname === '127.0.0.1' || url.hostname === 'localhost';
    if (this.opts.allowedHosts.has(url.host.toLowerCase()) && (url.protocol === 'https:' || loopback)) {
      let token;
      try {
        token = await this.opts.credential.getToken(this.opts.scope, {
          abortSignal: options.signal ?? undefined,
        });
      } catch (e) {
        throw wrapForClient(this.opts.describeAuthFailure ? this.opts.describeAuthFailure(e) : (e as Error));
      }
      if (!token) {
        throw wrapForClient(new GraphAuthError(`the credential returned no token for ${this.opts.scope}`));
      }
      headers['Authorization'] = `Bearer ${token.token}`;
    }
    await this.next!.execute(context);
  }
}

export interface HttpMiddlewareOptions {
  dispatcher?: Dispatcher;
  /** Per-attempt timeout. */
  timeoutMs?: number;
  fetch?: typeof fetch;
}

export class HttpMiddleware implements Middleware {
  constructor(private readonly opts: HttpMiddlewareOptions = {}) {}
  async execute(context: Context): Promise<void> {
    const url = requestUrl(context);
    const options = context.options ?? {};
    const headers = (options.headers ?? {}) as Record<string, string>;
    const clientRequestId = Object.entries(headers).find(([k]) => k.toLowerCase() === 'client-request-id')?.[1];
    const signal = anySignal(
      options.signal ?? undefined,
      this.opts.timeoutMs ? AbortSignal.timeout(this.opts.timeoutMs) : undefined,
    );
    const init: RequestInit & { dispatcher?: Dispatcher } = {
      ...options,
      ...(signal ? { signal } : {}),
      ...(this.opts.dispatcher ? { dispatcher: this.opts.dispatcher } : {}),
    };
    try {
      context.response = await (this.opts.fetch ?? fetch)(url, init);
    } catch (e) {
      // A caller's abort is not a network failure: let it through as-is.
      if (options.signal?.aborted) throw wrapForClient(abortReason(options.signal));
      throw wrapForClient(networkError(e, { method: (options.method ?? 'GET').toUpperCase(), url, clientRequestId }));
    }
  }
}
