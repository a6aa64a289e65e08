/**
 * Verification of the validation tokens Microsoft Graph puts in a change notification (`validationTokens`), here
 * the notification the Microsoft 365 admin center sends when an admin turns the connector on or off. The checks
 * are the documented ones (https://learn.microsoft.com/graph/change-notifications-with-resource-data#how-to-validate
 * and https://learn.microsoft.com/graph/connecting-external-content-deploy-teams), with node:crypto only:
 *
 * - RS256, signed by a key the tenant's authority publishes: the OpenID configuration
 *   (`{authority}/{tenant}/.well-known/openid-configuration` and its `v2.0` twin) names the `jwks_uri`; the keys are
 *   cached and fetched again when a token names a `kid` not seen yet (keys rotate), at most once a minute;
 * - `iss` is one of the issuers those documents name (`https://sts.windows.net/{tenant}/` for v1 tokens,
 *   `https://login.microsoftonline.com/{tenant}/v2.0` for v2), so a token of another tenant is refused;
 * - `aud` is one of ours (the app the notification is for);
 * - `exp` (and `nbf`) hold, with five minutes of clock skew;
 * - the token was requested by Microsoft's notification publisher: `appid` (v1) or `azp` (v2).
 *
 * docs/deploy.md lists the facts and their sources.
 */
import { createPublicKey, verify, type JsonWebKey, type KeyObject } from 'node:crypto';
import type { Dispatcher } from 'undici';
import type { OperationOptions } from '../core/async.js';
import { ConnectorError } from '../core/errors.js';

/**
 * App ids a validation token's `appid`/`azp` may carry: Microsoft Graph's change notification publisher (documented
 * above) and the Graph connector service that Microsoft's connector samples also accept
 * (pnp/graph-connectors-samples, validateToken in the nodejs samples; not in the Graph docs).
 */
export const NOTIFICATION_PUBLISHER_APP_IDS = [
  '0bf30f3b-4a52-48df-9a82-234910c4a086',
  '56c1da01-2129-48f7-9355-af6d59d42766',
] as const;

/** Why a token was refused (stable codes for logs and tests). */
export type NotificationTokenProblem =
  | 'Malformed'
  | 'UnsupportedAlgorithm'
  | 'UnknownSigningKey'
  | 'BadSignature'
  | 'WrongIssuer'
  | 'WrongAudience'
  | 'Expired'
  | 'NotYetValid'
  | 'WrongPublisher'
  | 'WrongTenant'
  | 'KeysUnavailable';

/** A validation token was refused. `reason` says which check failed; the message says why (no token content). */
export class NotificationTokenError extends ConnectorError {
  override name = 'NotificationTokenError';
  readonly reason: NotificationTokenProblem;
  constructor(
    reason: NotificationTokenProblem,
    message: string,
    options: { retryable?: boolean; cause?: unknown } = {},
  ) {
    super(message, { code: `NotificationToken${reason}`, ...options });
    this.reason = reason;
  }
}

export interface VerifiedNotificationToken {
  issuer: string;
  audience: string;
  tenantId: string;
  publisherAppId: string;
  expiresAt: number;
}

export interface NotificationTokenVerifierOptions {
  /** e.g. `https://login.microsoftonline.com` (GRAPH_AUTHORITY_HOST). */
  authorityHost: string;
  /** The tenant whose keys and issuers are trusted (GRAPH_TENANT_ID). */
  tenantId: string;
  /** Accepted `aud` values: the app the notification is for. */
  audiences: readonly string[];
  publisherAppIds?: readonly string[];
  /** Trust for a private authority (the emulator's CA). */
  dispatcher?: Dispatcher;
  clockSkewMs?: number;
  /** How long the configuration and keys are kept (default 1 h; keys are fetched again on an unknown kid anyway). */
  cacheMs?: number;
  now?: () => number;
}

interface Metadata {
  issuers: Set<string>;
  keys: Map<string, KeyObject>;
  fetchedAt: number;
}

const MIN_REFRESH_MS = 60_000;

function decodePart(part: string | undefined): Record<string, unknown> | undefined {
  if (!part) return undefined;
  try {
    const v = JSON.parse(Buffer.from(part, 'base64url').toString('utf8')) as unknown;
    return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

export class NotificationTokenVerifier {
  private metadata: Metadata | undefined;
  private loading: Promise<Metadata> | undefined;
  private readonly skew: number;
  private readonly cacheMs: number;
  private readonly now: () => number;
  private readonly publishers: Set<string>;
  private readonly audiences: Set<string>;

  constructor(private readonly options: NotificationTokenVerifierOptions) {
    this.skew = options.clockSkewMs ?? 5 * 60_000;
    this.cacheMs = options.cacheMs ?? 3600_000;
    this.now = options.now ?? Date.now;
    this.publishers = new Set((options.publisherAppIds ?? NOTIFICATION_PUBLISHER_APP_IDS).map((a) => a.toLowerCase()));
    this.audiences = new Set(options.audiences.filter(Boolean).map((a) => a.toLowerCase()));
  }

  /** Check one validation token; throws {@link NotificationTokenError}. */
  async verify(token: string, options: OperationOptions = {}): Promise<VerifiedNotificationToken> {
    const parts = typeof token === 'string' ? token.split('.') : [];
    const header = decodePart(parts[0]);
    const payload = decodePart(parts[1]);
    if (parts.length !== 3 || !header || !payload || !parts[2])
      throw new NotificationTokenError(
        'Malformed',
        'the validation token is not a compact JWT (three base64url parts)',
      );
    if (header.alg !== 'RS256')
      throw new NotificationTokenError(
        'UnsupportedAlgorithm',
        `the validation token is signed with ${JSON.stringify(header.alg)}; only RS256 is accepted`,
      );
    const kid = typeof header.kid === 'string' ? header.kid : undefined;
    if (!kid) throw new NotificationTokenError('Malformed', 'the validation token names no signing key (kid)');

    let meta = await this.load(false, options);
    let key = meta.keys.get(kid);
    if (!key && this.now() - meta.fetchedAt >= MIN_REFRESH_MS) {
      meta = await this.load(true, options);
      key = meta.keys.get(kid);
    }
    if (!key)
      throw new NotificationTokenError(
        'UnknownSigningKey',
        `the validation token's signing key '${kid.slice(0, 64)}' is not one tenant ${this.options.tenantId} publishes`,
      );
    const signature = Buffer.from(parts[2], 'base64url');
    let valid: boolean;
    try {
      valid = verify('sha256', Buffer.from(`${parts[0]}.${parts[1]}`), key, signature);
    } catch {
      valid = false;
    }
    if (!valid) throw new NotificationTokenError('BadSignature', 'the validation token signature does not verify');

    const iss = typeof payload.iss === 'string' ? payload.iss : '';
    if (!meta.issuers.has(iss))
      throw new NotificationTokenError(
        'WrongIssuer',
        `the validation token was issued by '${iss.slice(0, 200)}', not by tenant ${this.options.tenantId} (${[...meta.issuers].join(' or ')})`,
      );
    const auds = (Array.isArray(payload.aud) ? payload.aud : [payload.aud]).filter(
      (a): a is string => typeof a === 'string',
    );
    const audience = auds.find((a) => this.audiences.has(a.toLowerCase()));
    if (!audience)
      throw new NotificationTokenError(
        'WrongAudience',
        `the validation token is for '${auds.join(', ').slice(0, 200)}', not for this app (${[...this.audiences].join(' or ')}). ` +
          'Check that GRAPH_CLIENT_ID is the app id in the app package (webApplicationInfo.id)',
      );
    const now = this.now();
    const exp = typeof payload.exp === 'number' ? payload.exp * 1000 : NaN;
    if (!Number.isFinite(exp) || now - this.skew >= exp)
      throw new NotificationTokenError('Expired', 'the validation token has expired (or has no exp)');
    if (typeof payload.nbf === 'number' && payload.nbf * 1000 > now + this.skew)
      throw new NotificationTokenError('NotYetValid', 'the validation token is not valid yet (nbf is in the future)');
    const claimed = payload.ver === '2.0' ? payload.azp : payload.appid;
    const publisher = typeof claimed === 'string' ? claimed : '';
    if (!this.publishers.has(publisher.toLowerCase()))
      throw new NotificationTokenError(
        'WrongPublisher',
        `the validation token was requested by app '${publisher.slice(0, 64)}', not by Microsoft Graph's notification publisher`,
      );
    return {
      issuer: iss,
      audience,
      tenantId: typeof payload.tid === 'string' ? payload.tid : '',
      publisherAppId: publisher,
      expiresAt: exp,
    };
  }

  private load(force: boolean, options: OperationOptions): Promise<Metadata> {
    const m = this.metadata;
    if (m && !force && this.now() - m.fetchedAt < this.cacheMs) return Promise.resolve(m);
    this.loading ??= this.fetchMetadata(options)
      .then((fresh) => {
        this.metadata = fresh;
        return fresh;
      })
      .finally(() => {
        this.loading = undefined;
      });
    return this.loading;
  }

  private async getJson(url: string, options: OperationOptions): Promise<Record<string, unknown>> {
    let res: Response;
    try {
      res = await fetch(url, {
        signal: options.abortSignal ?? AbortSignal.timeout(10_000),
        ...(this.options.dispatcher ? { dispatcher: this.options.dispatcher } : {}),
      });
    } catch (err) {
      throw new NotificationTokenError('KeysUnavailable', `cannot read ${url}: ${(err as Error)?.message}`, {
        retryable: true,
        cause: err,
      });
    }
    if (!res.ok) {
      await res.arrayBuffer().catch(() => undefined);
      throw new NotificationTokenError('KeysUnavailable', `HTTP ${res.status} from ${url}`, {
        retryable: res.status >= 500 || res.status === 429,
      });
    }
    const body: unknown = await res.json().catch(() => undefined);
    if (!body || typeof body !== 'object')
      throw new NotificationTokenError('KeysUnavailable', `${url} did not answer a JSON object`, { retryable: true });
    return body as Record<string, unknown>;
  }

  /** The v1 and v2.0 OpenID configurations of the tenant: their issuers, and the keys of their jwks_uri. */
  private async fetchMetadata(options: OperationOptions): Promise<Metadata> {
    const base = `${this.options.authorityHost.replace(/\/+$/, '')}/${encodeURIComponent(this.options.tenantId)}`;
    const docs = await Promise.all(
      [`${base}/.well-known/openid-configuration`, `${base}/v2.0/.well-known/openid-configuration`].map((u) =>
        this.getJson(u, options),
      ),
    );
    const issuers = new Set<string>();
    const jwksUris = new Set<string>();
    for (const d of docs) {
      if (typeof d.issuer === 'string') issuers.add(d.issuer);
      if (typeof d.jwks_uri === 'string') jwksUris.add(d.jwks_uri);
    }
    if (!jwksUris.size)
      throw new NotificationTokenError('KeysUnavailable', `the OpenID configuration under ${base} names no jwks_uri`, {
        retryable: true,
      });
    const keys = new Map<string, KeyObject>();
    for (const uri of jwksUris) {
      const set = await this.getJson(uri, options);
      for (const jwk of Array.isArray(set.keys) ? (set.keys as Record<string, unknown>[]) : []) {
        if (jwk?.kty !== 'RSA' || typeof jwk.kid !== 'string' || (jwk.use !== undefined && jwk.use !== 'sig')) continue;
        try {
          keys.set(jwk.kid, createPublicKey({ key: { kty: 'RSA', n: jwk.n, e: jwk.e } as JsonWebKey, format: 'jwk' }));
        } catch {
          // a key this runtime cannot read is skipped; a token signed with it is refused as UnknownSigningKey
        }
      }
    }
    return { issuers, keys, fetchedAt: this.now() };
  }
}
