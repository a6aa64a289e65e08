/**
 * Fetching attachment URLs without becoming a proxy into the network the connector runs in.
 *
 * - Redirects are followed by hand (at most 5), and every hop is held to the same rules as the first URL:
 *   http or https only (plain http only with mapping.attachments.allowHttp), the allow-list when there is one
 *   (allowHosts), and public addresses only unless the definition names the host (privateHosts).
 * - The address check happens where the connection is made: the undici Agent's `connect.lookup` resolves the name,
 *   refuses the connection if any address it got is not public, and connects to the addresses it checked — there is
 *   no second resolution between the check and the connect for a DNS answer to change (rebinding). IP literals,
 *   which never reach a lookup, are checked before the request.
 * - URLs on the source's own origin (a `rest` source's url, named by the definition) are fetched with the source's
 *   credentials and TLS settings; its credentials never go anywhere else, not even after a redirect.
 * - What is written about a URL (errors, reasons, logs) never includes its query string (SAS tokens).
 */
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import type { LookupFunction } from 'node:net';
import { Agent, type Dispatcher } from 'undici';
import { anySignal } from '../core/async.js';
import { isAbortError } from '../core/errors.js';
import { displayUrl } from '../core/url.js';
import { isIpLiteral, nonPublicReason } from './addresses.js';
import { AttachmentError, refused, transient } from './errors.js';
import type { NamedHost, UrlPolicy } from './settings.js';

export const MAX_REDIRECTS = 5;

/**
 * A `rest` source's credentials for URLs on its own origin (built by the composition root from the source
 * definition, so this module needs nothing of src/sources).
 */
export interface SourceCredentials {
  /** `scheme://host:port` of the source's url. */
  origin: string;
  /** Headers and TLS dispatcher (client certificate, extra CA) to send to that origin. */
  prepare(options: {
    abortSignal?: AbortSignal;
  }): Promise<{ headers: Record<string, string>; dispatcher?: Dispatcher }>;
  /** After a 401: refresh the credentials; true when trying again can help. */
  onUnauthorized(): Promise<boolean>;
}

/** A name → addresses resolver (tests inject one; default: the system resolver, as connections use). */
export type Resolver = (hostname: string) => Promise<LookupAddress[]>;

const systemResolver: Resolver = (hostname) =>
  new Promise((resolve, reject) =>
    dnsLookup(hostname, { all: true, verbatim: true }, (err, addresses) => (err ? reject(err) : resolve(addresses))),
  );

const effectivePort = (u: URL) => u.port || (u.protocol === 'https:' ? '443' : '80');

const named = (list: NamedHost[], u: URL) =>
  list.some((h) => h.hostname === u.hostname.toLowerCase() && (h.port === '' || h.port === effectivePort(u)));

function onAllowList(allow: string[], hostname: string): boolean {
  const h = hostname.toLowerCase();
  return allow.some((p) => (p.startsWith('*.') ? h.endsWith(p.slice(1)) && h.length > p.length - 1 : h === p));
}

/** Where a hop came from, for messages: `URL` or `URL (redirected from FIRST)`. */
const describeHop = (hop: URL, first: URL) =>
  hop.href === first.href ? displayUrl(hop) : `${displayUrl(hop)} (redirected from ${displayUrl(first)})`;

/** The marker a dead letter puts on a URL whose query string it did not keep (see stripAttachmentQueries). */
export const QUERY_REMOVED = '#query-removed';

/** A fetcher for attachment URLs under one policy. */
export class UrlFetcher {
  private readonly publicOnly: Agent;
  private readonly trusted: Agent;

  constructor(
    private readonly policy: UrlPolicy,
    private readonly options: { source?: SourceCredentials; resolve?: Resolver } = {},
  ) {
    const resolveName = options.resolve ?? systemResolver;
    // Connections to hosts the definition does not name: resolve, refuse any non-public address, connect to
    // exactly the addresses checked.
    const guardedLookup: LookupFunction = (hostname, opts, callback) => {
      const cb = callback as (err: Error | null, address?: string | LookupAddress[], family?: number) => void;
      resolveName(hostname).then(
        (addresses) => {
          const family = typeof opts.family === 'number' ? opts.family : 0;
          const usable = addresses.filter((a) => family === 0 || a.family === family);
          if (!usable.length) return cb(refused('url-dns', `${hostname} has no address`));
          for (const a of usable) {
            const why = nonPublicReason(a.address);
            if (why)
              return cb(
                refused(
                  'url-refused',
                  `${hostname} resolves to ${a.address}, which is not a public address (${why}); name the host in mapping.attachments.privateHosts to allow it`,
                ),
              );
          }
          if (opts.all) cb(null, usable);
          else cb(null, usable[0]!.address, usable[0]!.family);
        },
        (err: unknown) => cb(err as Error),
      );
    };
    this.publicOnly = new Agent({ connect: { lookup: guardedLookup }, keepAliveTimeout: 4_000 });
    // Hosts the definition names (privateHosts, the source's origin): resolved as usual, any address.
    this.trusted = new Agent({
      ...(options.resolve ? { connect: { lookup: this.namedLookup(resolveName) } } : {}),
      keepAliveTimeout: 4_000,
    });
  }

  /** A lookup that resolves with `resolve` and checks nothing (for named hosts, when a resolver is injected). */
  private namedLookup(resolveName: Resolver): LookupFunction {
    return (hostname, opts, callback) => {
      const cb = callback as (err: Error | null, address?: string | LookupAddress[], family?: number) => void;
      resolveName(hostname).then(
        (addresses) => {
          if (!addresses.length) return cb(refused('url-dns', `${hostname} has no address`));
          if (opts.all) cb(null, addresses);
          else cb(null, addresses[0]!.address, addresses[0]!.family);
        },
        (err: unknown) => cb(err as Error),
      );
    };
  }

  async close(): Promise<void> {
    await Promise.all([this.publicOnly.close(), this.trusted.close()]);
  }

  /**
   * GET or HEAD `url`, following redirects by hand. Resolves with the final response (any status but a redirect);
   * throws an {@link AttachmentError}: refused (the URL or a hop breaks a rule), or retryable (network trouble).
   */
  async fetch(
    url: string,
    init: { method?: 'GET' | 'HEAD'; timeoutMs: number; abortSignal?: AbortSignal },
  ): Promise<Response> {
    const first = this.parse(url);
    if (first.hash === QUERY_REMOVED)
      throw refused(
        'query-removed',
        `${displayUrl(first)}: the URL's query string (a SAS token, perhaps) was not kept when the operation was dead-lettered; resync the item (POST /api/resync {"mode":"items","itemIds":[…]}) to read it from the source again`,
      );
    const signal = anySignal(AbortSignal.timeout(init.timeoutMs), init.abortSignal)!;
    let hop = first;
    for (let hops = 0; ; hops++) {
      const res = await this.fetchHop(hop, first, init.method ?? 'GET', signal, init.abortSignal);
      const location = [301, 302, 303, 307, 308].includes(res.status) ? res.headers.get('location') : null;
      if (location === null) return res;
      await res.body?.cancel().catch(() => undefined);
      if (hops >= MAX_REDIRECTS)
        throw refused('url-redirects', `${describeHop(hop, first)}: more than ${MAX_REDIRECTS} redirects`);
      let next: URL;
      try {
        next = new URL(location, hop);
      } catch {
        throw refused('url-refused', `${describeHop(hop, first)}: redirects to an invalid URL`);
      }
      hop = next;
    }
  }

  private parse(url: string): URL {
    try {
      return new URL(url);
    } catch {
      throw refused('url-refused', `"${displayUrl(url)}" is not a valid URL`);
    }
  }

  /** The rules for one hop; returns whether the source's credentials apply and which dispatcher connects. */
  private check(hop: URL, first: URL): { source: boolean; dispatcher: Dispatcher } {
    const where = describeHop(hop, first);
    const source = this.options.source !== undefined && hop.origin === this.options.source.origin;
    if (hop.protocol !== 'https:' && hop.protocol !== 'http:')
      throw refused('url-refused', `${where}: only http or https URLs may be fetched (got ${hop.protocol})`);
    if (source) return { source, dispatcher: this.trusted };
    if (hop.protocol === 'http:' && !this.policy.allowHttp)
      throw refused(
        'url-refused',
        `${where}: plain http is not allowed; use https, or set mapping.attachments.allowHttp: true`,
      );
    const isNamed = named(this.policy.privateHosts, hop);
    if (this.policy.allowHosts && !isNamed && !onAllowList(this.policy.allowHosts, hop.hostname))
      throw refused(
        'url-refused',
        `${where}: ${hop.hostname} is not in mapping.attachments.allowHosts (${this.policy.allowHosts.join(', ')})`,
      );
    if (isNamed) return { source, dispatcher: this.trusted };
    if (isIpLiteral(hop.hostname)) {
      const why = nonPublicReason(hop.hostname);
      if (why)
        throw refused(
          'url-refused',
          `${where}: ${hop.hostname} is not a public address (${why}); name the host in mapping.attachments.privateHosts to allow it`,
        );
    }
    return { source, dispatcher: this.publicOnly };
  }

  private async fetchHop(
    hop: URL,
    first: URL,
    method: 'GET' | 'HEAD',
    signal: AbortSignal,
    callerSignal: AbortSignal | undefined,
  ): Promise<Response> {
    const { source, dispatcher } = this.check(hop, first);
    for (let attempt = 0; ; attempt++) {
      let headers: Record<string, string> = {};
      let via = dispatcher;
      if (source) {
        const prepared = await this.options.source!.prepare({ abortSignal: signal });
        headers = prepared.headers;
        if (prepared.dispatcher) via = prepared.dispatcher;
      }
      let res: Response;
      try {
        res = await fetch(hop.href, {
          method,
          headers,
          redirect: 'manual',
          signal,
          dispatcher: via,
        });
      } catch (err) {
        throw this.networkError(err, hop, first, callerSignal);
      }
      if (source && res.status === 401 && attempt === 0 && (await this.options.source!.onUnauthorized())) {
        await res.body?.cancel().catch(() => undefined);
        continue;
      }
      return res;
    }
  }

  /** A failed fetch: our own refusal (from the lookup), the caller's abort, a time-out, or network trouble. */
  private networkError(err: unknown, hop: URL, first: URL, callerSignal: AbortSignal | undefined): unknown {
    if (callerSignal?.aborted) return err;
    for (let e: unknown = err, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
      if (e instanceof AttachmentError) {
        return new AttachmentError(e.code, `${describeHop(hop, first)}: ${e.message}`, {
          retryable: e.retryable,
        });
      }
      const code = (e as { code?: unknown }).code;
      if (code === 'ENOTFOUND')
        return refused('url-dns', `${describeHop(hop, first)}: the host ${hop.hostname} does not resolve (ENOTFOUND)`);
    }
    if (isAbortError(err)) return transient('timeout', `${describeHop(hop, first)}: no answer in time`, err);
    const cause = (err as { cause?: { code?: unknown; message?: unknown } }).cause;
    const detail = typeof cause?.code === 'string' ? cause.code : ((err as Error)?.message ?? String(err));
    return transient('url-network', `${describeHop(hop, first)}: ${detail}`, err);
  }
}

/**
 * A copy of `attachments` fit to be stored where people read (a dead letter): each URL without its query string,
 * marked so that a replay refuses it with a way out instead of fetching a URL that lost its token.
 */
export function stripAttachmentQueries<T extends { url?: string }>(attachments: T[]): T[] {
  return attachments.map((a) => {
    if (a.url === undefined) return a;
    let u: URL;
    try {
      u = new URL(a.url);
    } catch {
      return { ...a, url: displayUrl(a.url) };
    }
    if (u.search === '') return a;
    return { ...a, url: `${displayUrl(u)}${QUERY_REMOVED}` };
  });
}
