/**
 * A Key Vault-compatible HTTPS fake (secrets only) and a fake Azure managed identity endpoint, so tests can
 * drive the REAL `SecretClient` with a REAL `ManagedIdentityCredential` / `DefaultAzureCredential`.
 *
 * Key Vault behaviour reproduced (the parts `@azure/keyvault-secrets` relies on):
 * - a request without `Authorization` gets `401` + `WWW-Authenticate: Bearer authorization="<authority>/<tenant>",
 *   resource="https://vault.azure.net"` (the challenge the client answers by getting a token);
 * - bearer tokens are validated (default: a JWT whose `aud` is `https://vault.azure.net` and that has not
 *   expired; or your `verifyToken` callback, e.g. {@link FakeManagedIdentity.verify});
 * - `GET /secrets/{name}[/{version}]`, `PUT /secrets/{name}`, `PATCH /secrets/{name}/{version}` with the real
 *   bodies (`value`, `id`, `attributes {enabled, created, updated, recoveryLevel}`, `contentType`, `tags`);
 * - errors shaped like the service: 404 `SecretNotFound`, 403 `Forbidden`/`SecretDisabled` for a disabled
 *   secret, 403 `Forbidden`/`ForbiddenByRbac` when access is denied ({@link FakeKeyVault.denyAccess}),
 *   400 `BadParameter` for an invalid name, 401 `Unauthorized` for a bad token;
 * - every request is logged in {@link FakeKeyVault.requests} (never the value or the token).
 *
 * Client setup (`disableChallengeResourceVerification`: the fake is not on `*.vault.azure.net`):
 * ```ts
 * const vault = await startFakeKeyVault();
 * const client = new SecretClient(vault.url, credential, {
 *   disableChallengeResourceVerification: true, additionalPolicies: [vault.tls.policy] });
 * ```
 */
import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { createTestTls, type TestTls } from './tls.js';

export const VAULT_RESOURCE = 'https://vault.azure.net';

/* ------------------------------------------------------------------------------------------------ tokens */

/** Claims of the test tokens the fake managed identity issues. */
export interface TestTokenClaims {
  aud: string;
  iss?: string;
  tid?: string;
  oid?: string;
  appid?: string;
  sub?: string;
  iat?: number;
  nbf?: number;
  exp: number;
  [claim: string]: unknown;
}

const b64url = (data: string | Buffer) => Buffer.from(data).toString('base64url');

/** Make an HS256 JWT (good enough for fakes: the point is a real, checkable bearer token). */
export function signTestJwt(claims: TestTokenClaims, key: Buffer): string {
  const head = b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
  const body = b64url(JSON.stringify(claims));
  const sig = createHmac('sha256', key).update(`${head}.${body}`).digest('base64url');
  return `${head}.${body}.${sig}`;
}

/** Decode a JWT's payload without checking the signature; undefined when it is not a JWT. */
export function decodeJwt(token: string): TestTokenClaims | undefined {
  const parts = token.split('.');
  if (parts.length !== 3 || !parts[1]) return undefined;
  try {
    const claims = JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8')) as unknown;
    return claims && typeof claims === 'object' ? (claims as TestTokenClaims) : undefined;
  } catch {
    return undefined;
  }
}

/** Result of a token check: the claims, or the reason it was rejected. */
export type TokenCheck = { ok: true; claims: TestTokenClaims } | { ok: false; reason: string };

function checkAudienceAndExpiry(claims: TestTokenClaims | undefined, audience: string, now: number): TokenCheck {
  if (!claims) return { ok: false, reason: 'the bearer token is not a JWT' };
  const aud = String(claims.aud).replace(/\/$/, '');
  if (aud !== audience.replace(/\/$/, ''))
    return { ok: false, reason: `invalid audience '${aud}', expected '${audience}'` };
  if (typeof claims.exp !== 'number' || claims.exp * 1000 <= now) return { ok: false, reason: 'the token has expired' };
  return { ok: true, claims };
}

/* ------------------------------------------------------------------------------------ managed identity */

export interface FakeManagedIdentityOptions {
  /** Client id of the user-assigned identity; requests naming another client_id get 400. */
  clientId?: string;
  /** Object (principal) id put in the token's `oid`. */
  principalId?: string;
  tenantId?: string;
  /** Token lifetime in seconds (default 3600). */
  lifetimeSeconds?: number;
  /** Value the endpoint expects in `X-IDENTITY-HEADER` (default: random). */
  identityHeader?: string;
}

export interface FakeManagedIdentityRequest {
  resource: string | null;
  clientId: string | null;
  status: number;
}

export interface FakeManagedIdentity {
  /** `IDENTITY_ENDPOINT` value (plain http, like App Service / Functions). */
  endpoint: string;
  /** `IDENTITY_HEADER` value. */
  identityHeader: string;
  clientId: string;
  principalId: string;
  tenantId: string;
  requests: FakeManagedIdentityRequest[];
  /** Environment variables to set BEFORE constructing the credential (they are read at construction). */
  env(): Record<string, string>;
  /** Check a token this endpoint issued: signature, audience, expiry. */
  verify(token: string, audience?: string): TokenCheck;
  /** Make the endpoint fail every request with this status (e.g. 500) until reset with `undefined`. */
  failWith(status: number | undefined): void;
  close(): Promise<void>;
}

/**
 * The App Service / Azure Functions managed identity endpoint (`IDENTITY_ENDPOINT` + `IDENTITY_HEADER`,
 * api-version 2019-08-01): `GET /msi/token?resource=…&client_id=…` → `{access_token, expires_on, resource, token_type}`.
 */
export async function startFakeManagedIdentity(options: FakeManagedIdentityOptions = {}): Promise<FakeManagedIdentity> {
  const key = randomBytes(32);
  const clientId = options.clientId ?? randomUUID();
  const principalId = options.principalId ?? randomUUID();
  const tenantId = options.tenantId ?? randomUUID();
  const identityHeader = options.identityHeader ?? randomBytes(12).toString('hex');
  const lifetime = options.lifetimeSeconds ?? 3600;
  const requests: FakeManagedIdentityRequest[] = [];
  let failure: number | undefined;

  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const resource = url.searchParams.get('resource');
    const requestedClient = url.searchParams.get('client_id');
    const send = (status: number, body: unknown) => {
      requests.push({ resource, clientId: requestedClient, status });
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    };
    if (failure) return send(failure, { error: 'unavailable', error_description: 'fake failure' });
    if (req.method !== 'GET' || url.pathname !== '/msi/token') return send(404, { error: 'not_found' });
    if (req.headers['x-identity-header'] !== identityHeader) {
      return send(401, { error: 'unauthorized', error_description: 'X-IDENTITY-HEADER missing or wrong' });
    }
    if (!resource) return send(400, { error: 'invalid_request', error_description: 'resource is required' });
    if (requestedClient && requestedClient !== clientId) {
      return send(400, {
        error: 'invalid_request',
        error_description: `Identity not found: no user-assigned identity with client id ${requestedClient}`,
      });
    }
    const now = Math.floor(Date.now() / 1000);
    const token = signTestJwt(
      {
        aud: resource,
        iss: `https://sts.windows.net/${tenantId}/`,
        tid: tenantId,
        oid: principalId,
        sub: principalId,
        appid: clientId,
        iat: now,
        nbf: now,
        exp: now + lifetime,
      },
      key,
    );
    send(200, { access_token: token, expires_on: String(now + lifetime), resource, token_type: 'Bearer' });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const endpoint = `http://127.0.0.1:${port}/msi/token`;

  return {
    endpoint,
    identityHeader,
    clientId,
    principalId,
    tenantId,
    requests,
    env: () => ({ IDENTITY_ENDPOINT: endpoint, IDENTITY_HEADER: identityHeader, AZURE_CLIENT_ID: clientId }),
    verify(token, audience = VAULT_RESOURCE) {
      const parts = token.split('.');
      if (parts.length !== 3) return { ok: false, reason: 'the bearer token is not a JWT' };
      const expected = createHmac('sha256', key).update(`${parts[0]}.${parts[1]}`).digest('base64url');
      if (expected !== parts[2]) return { ok: false, reason: 'the token signature is not valid' };
      return checkAudienceAndExpiry(decodeJwt(token), audience, Date.now());
    },
    failWith(status) {
      failure = status;
    },
    close: () => closeServer(server),
  };
}

/* ------------------------------------------------------------------------------------------- key vault */

export interface FakeSecretVersion {
  version: string;
  value: string;
  enabled: boolean;
  contentType?: string;
  tags?: Record<string, string>;
  created: number;
  updated: number;
}

export interface FakeKeyVaultRequest {
  method: string;
  /** Path without the query, e.g. `/secrets/graph-client-secret/`. */
  path: string;
  /** Secret name the request addressed, if any. */
  name?: string;
  /** True when the request carried a bearer token the fake accepted. */
  authorized: boolean;
  status: number;
  /** Error code returned, if any (`SecretNotFound`, `SecretDisabled`, `ForbiddenByRbac`, `Unauthorized`, …). */
  code?: string;
}

export interface FakeKeyVaultOptions {
  /** TLS material; a fresh CA is made when omitted. */
  tls?: TestTls;
  /** Tenant named in the 401 challenge (default `tenant-1`). */
  tenantId?: string;
  /** Authority host named in the 401 challenge (default `https://login.microsoftonline.com`). */
  authorityHost?: string;
  /** Token check; default: a JWT with `aud` = https://vault.azure.net that has not expired. */
  verifyToken?: (token: string) => TokenCheck | Promise<TokenCheck>;
  /** Secrets present at start (name → value). */
  secrets?: Record<string, string>;
}

export interface FakeKeyVault {
  /** Vault URL, e.g. `https://127.0.0.1:12345` (give it to SecretClient / KEY_VAULT_URL). */
  url: string;
  tls: TestTls;
  /** SecretClient options that make the real client accept this fake (challenge check off, CA trusted). */
  clientOptions: { disableChallengeResourceVerification: true; additionalPolicies: [TestTls['policy']] };
  requests: FakeKeyVaultRequest[];
  /** Requests that read or wrote one secret (excluding the unauthenticated challenge round-trips if `authorizedOnly`). */
  requestsFor(name: string, options?: { authorizedOnly?: boolean }): FakeKeyVaultRequest[];
  /** Add a new version of a secret (as `az keyvault secret set` would); returns the version id. */
  setSecret(name: string, value: string, options?: { enabled?: boolean; contentType?: string }): string;
  /** Enable or disable the latest version (as `az keyvault secret set-attributes --enabled`). */
  setEnabled(name: string, enabled: boolean): void;
  /** Remove a secret entirely (as delete + purge). */
  deleteSecret(name: string): void;
  /** All versions of a secret, oldest first. */
  versions(name: string): FakeSecretVersion[];
  /** Deny every authorized request with 403 ForbiddenByRbac (a missing role assignment) while true. */
  denyAccess(deny: boolean): void;
  close(): Promise<void>;
}

const NAME = /^[0-9a-zA-Z-]{1,127}$/;

/** Start a Key Vault-compatible HTTPS server on 127.0.0.1 (random port). */
export async function startFakeKeyVault(options: FakeKeyVaultOptions = {}): Promise<FakeKeyVault> {
  const tls = options.tls ?? (await createTestTls({ caName: 'fake key vault CA' }));
  const tenantId = options.tenantId ?? 'tenant-1';
  const authorityHost = (options.authorityHost ?? 'https://login.microsoftonline.com').replace(/\/$/, '');
  const verifyToken =
    options.verifyToken ?? ((token: string) => checkAudienceAndExpiry(decodeJwt(token), VAULT_RESOURCE, Date.now()));
  const store = new Map<string, FakeSecretVersion[]>();
  const requests: FakeKeyVaultRequest[] = [];
  let denied = false;
  let url = '';

  const put = (
    name: string,
    value: string,
    opts: { enabled?: boolean; contentType?: string; tags?: Record<string, string> } = {},
  ) => {
    const now = Math.floor(Date.now() / 1000);
    const v: FakeSecretVersion = {
      version: randomUUID().replace(/-/g, ''),
      value,
      enabled: opts.enabled ?? true,
      created: now,
      updated: now,
      ...(opts.contentType ? { contentType: opts.contentType } : {}),
      ...(opts.tags ? { tags: opts.tags } : {}),
    };
    const list = store.get(name) ?? [];
    list.push(v);
    store.set(name, list);
    return v;
  };
  for (const [n, v] of Object.entries(options.secrets ?? {})) put(n, v);

  const bundle = (name: string, v: FakeSecretVersion, withValue: boolean) => ({
    ...(withValue ? { value: v.value } : {}),
    id: `${url}/secrets/${name}/${v.version}`,
    ...(v.contentType ? { contentType: v.contentType } : {}),
    ...(v.tags ? { tags: v.tags } : {}),
    attributes: {
      enabled: v.enabled,
      created: v.created,
      updated: v.updated,
      recoveryLevel: 'Recoverable+Purgeable',
      recoverableDays: 7,
    },
  });

  const handle = async (req: http.IncomingMessage, res: http.ServerResponse) => {
    const u = new URL(req.url ?? '/', 'https://127.0.0.1');
    const method = req.method ?? 'GET';
    const segments = u.pathname.split('/').filter(Boolean);
    const name = segments[0] === 'secrets' ? segments[1] : undefined;
    const version = segments[0] === 'secrets' ? segments[2] : undefined;
    let authorized = false;
    const send = (status: number, body: unknown, headers: Record<string, string> = {}, code?: string) => {
      requests.push({
        method,
        path: u.pathname,
        ...(name ? { name } : {}),
        authorized,
        status,
        ...(code ? { code } : {}),
      });
      res.writeHead(status, {
        'content-type': 'application/json; charset=utf-8',
        'x-ms-request-id': randomUUID(),
        ...headers,
      });
      res.end(body === undefined ? undefined : JSON.stringify(body));
    };
    const error = (status: number, code: string, message: string, inner?: string) =>
      send(status, { error: { code, message, ...(inner ? { innererror: { code: inner } } : {}) } }, {}, inner ?? code);
    const challenge = {
      'www-authenticate': `Bearer authorization="${authorityHost}/${tenantId}", resource="${VAULT_RESOURCE}"`,
    };

    const body = await readBody(req);
    const auth = req.headers.authorization;
    if (!auth || !/^Bearer\s+\S+/i.test(auth)) {
      return send(
        401,
        { error: { code: 'Unauthorized', message: 'AKV10000: Request is missing a Bearer or PoP token.' } },
        challenge,
        'Unauthorized',
      );
    }
    const check = await verifyToken(auth.replace(/^Bearer\s+/i, ''));
    if (!check.ok) {
      return send(
        401,
        { error: { code: 'Unauthorized', message: `AKV10022: ${check.reason}.` } },
        challenge,
        'Unauthorized',
      );
    }
    authorized = true;
    const claims = check.claims;
    if (!u.searchParams.get('api-version')) {
      return error(400, 'BadParameter', 'The api-version query parameter is missing (MissingApiVersionParameter).');
    }
    if (segments[0] !== 'secrets' || !name || segments.length > 3) {
      return error(404, 'NotFound', `No route for ${method} ${u.pathname} in the fake Key Vault.`);
    }
    if (!NAME.test(name)) {
      return error(400, 'BadParameter', `The secret name '${name}' is invalid: use 1-127 letters, digits and dashes.`);
    }
    if (denied) {
      const action = method === 'GET' ? 'getSecret/action' : 'setSecret/action';
      return error(
        403,
        'Forbidden',
        `Caller is not authorized to perform action on resource.\r\nIf role assignments, deny assignments or role definitions were changed recently, please observe propagation time.\r\nCaller: appid=${String(claims.appid ?? '')};oid=${String(claims.oid ?? '')}\r\nAction: 'Microsoft.KeyVault/vaults/secrets/${action}'\r\nResource: 'fake vault'\r\nAssignment: (not found)\r\nVault: fake;location=local\r\n`,
        'ForbiddenByRbac',
      );
    }

    const list = store.get(name);
    const notFound = () =>
      error(
        404,
        'SecretNotFound',
        version
          ? `A secret with (name/id) ${name}/${version} was not found in this key vault. If you recently deleted this secret you may be able to recover it using the correct recovery command. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182`
          : `A secret with (name/id) ${name} was not found in this key vault. If you recently deleted this secret you may be able to recover it using the correct recovery command. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182`,
      );

    if (method === 'GET') {
      if (!list || list.length === 0) return notFound();
      const v = version ? list.find((x) => x.version === version) : list[list.length - 1];
      if (!v) return notFound();
      if (!v.enabled)
        return error(403, 'Forbidden', 'Operation get is not allowed on a disabled secret.', 'SecretDisabled');
      return send(200, bundle(name, v, true));
    }
    if (method === 'PUT' && !version) {
      const parsed = parseJson(body) as
        | { value?: unknown; contentType?: unknown; attributes?: { enabled?: unknown }; tags?: unknown }
        | undefined;
      if (!parsed || typeof parsed.value !== 'string') return error(400, 'BadParameter', 'Property value is required.');
      const v = put(name, parsed.value, {
        enabled: parsed.attributes?.enabled === false ? false : true,
        ...(typeof parsed.contentType === 'string' ? { contentType: parsed.contentType } : {}),
        ...(parsed.tags && typeof parsed.tags === 'object' ? { tags: parsed.tags as Record<string, string> } : {}),
      });
      return send(200, bundle(name, v, true));
    }
    if (method === 'PATCH') {
      if (!list || list.length === 0) return notFound();
      const v = version ? list.find((x) => x.version === version) : list[list.length - 1];
      if (!v) return notFound();
      const parsed = parseJson(body) as { attributes?: { enabled?: unknown }; contentType?: unknown } | undefined;
      if (typeof parsed?.attributes?.enabled === 'boolean') v.enabled = parsed.attributes.enabled;
      if (typeof parsed?.contentType === 'string') v.contentType = parsed.contentType;
      v.updated = Math.floor(Date.now() / 1000);
      return send(200, bundle(name, v, false));
    }
    return error(405, 'MethodNotAllowed', `${method} is not supported on ${u.pathname} by the fake Key Vault.`);
  };

  const server = https.createServer({ key: tls.key, cert: tls.cert }, (req, res) => {
    handle(req, res).catch((e: unknown) => {
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { code: 'InternalError', message: String(e) } }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    url,
    tls,
    clientOptions: { disableChallengeResourceVerification: true, additionalPolicies: [tls.policy] },
    requests,
    requestsFor: (name, opts = {}) => requests.filter((r) => r.name === name && (!opts.authorizedOnly || r.authorized)),
    setSecret: (name, value, opts = {}) => put(name, value, opts).version,
    setEnabled(name, enabled) {
      const list = store.get(name);
      const last = list?.[list.length - 1];
      if (!last) throw new Error(`fake Key Vault: no secret named ${name}`);
      last.enabled = enabled;
    },
    deleteSecret: (name) => void store.delete(name),
    versions: (name) => [...(store.get(name) ?? [])],
    denyAccess(deny) {
      denied = deny;
    },
    close: () => closeServer(server),
  };
}

/* ------------------------------------------------------------------------------------------- helpers */

function readBody(req: http.IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function parseJson(text: string): unknown {
  try {
    return text ? (JSON.parse(text) as unknown) : undefined;
  } catch {
    return undefined;
  }
}

function closeServer(server: http.Server | https.Server): Promise<void> {
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}
