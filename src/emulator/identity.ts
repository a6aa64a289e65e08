/**
 * Entra-like identity: openid configuration, jwks, the v2.0 token endpoint (client secret, certificate
 * assertion, federated assertion), the App Service managed identity endpoint, and validation of the
 * bearer tokens Graph calls carry. Tokens are RS256 JWTs signed with the emulator's key.
 */
import { createHash, createPrivateKey, createPublicKey, X509Certificate, type KeyObject } from 'node:crypto';
import type { Ctx, Reply } from './http.js';
import { GraphError } from './http.js';
import { b64url, decodeJwt, signJwt, thumbprints, verifyJwtSignature, publicJwk, type JsonObject } from './jwt.js';
import { currentOrigins } from './origin.js';
import type { Rng } from './random.js';
import type { AppRegistration, DirectoryUser, EmulatorState, ManagedIdentity } from './store.js';

export const GRAPH_RESOURCE = 'https://graph.microsoft.com';
export const GRAPH_APP_ID = '00000003-0000-0000-c000-000000000000';
export const TOKEN_EXCHANGE_AUDIENCE = 'api://AzureADTokenExchange';
/** The app id real Entra puts in `aud` for api://AzureADTokenExchange tokens. */
export const TOKEN_EXCHANGE_APP_ID = 'fb60f99c-7a34-4190-8149-302f77469936';
export const OWNED_BY_ROLES = ['ExternalConnection.ReadWrite.OwnedBy', 'ExternalItem.ReadWrite.OwnedBy'];
export const KNOWN_ROLES = [
  'ExternalConnection.ReadWrite.OwnedBy',
  'ExternalConnection.ReadWrite.All',
  'ExternalConnection.Read.All',
  'ExternalItem.ReadWrite.OwnedBy',
  'ExternalItem.ReadWrite.All',
  'ExternalItem.Read.All',
];

/** Delegated permissions an app holds (consented) unless it was registered with others. */
export const DEFAULT_DELEGATED_SCOPES = ['ExternalItem.Read.All'];
/** OpenID Connect scopes a delegated token request may add; they grant nothing on Graph. */
const OIDC_SCOPES = ['openid', 'profile', 'email', 'offline_access'];

export interface Principal {
  appId: string;
  objectId: string;
  /** Application permissions (app-only tokens). */
  roles: string[];
  /** Delegated permissions (`scp`) of a user token; empty for app-only tokens. */
  scopes: string[];
  /** 'user' for a delegated token (signed-in user = objectId), 'app' for app-only. */
  kind: 'app' | 'user';
  /** The signed-in user's UPN (user tokens). */
  upn?: string;
}

/** An identity-protocol error (OAuth JSON shape, not Graph's). */
export class OAuthError extends Error {
  constructor(
    public readonly status: number,
    public readonly error: string,
    public readonly aadsts: number,
    message: string,
  ) {
    super(message);
  }
}

/** `sub` of user tokens: stable per user and app, as Entra's pairwise identifier is. */
function pairwiseSubject(userId: string, clientId: string): string {
  return createHash('sha256')
    .update(`${userId.toLowerCase()}|${clientId.toLowerCase()}`)
    .digest('base64url')
    .slice(0, 43);
}

export class Identity {
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
  /** The authority's origin for direct calls; proxy mode answers with the origin the request came to. */
  defaultAuthorityHost = '';
  tokenLifetimeSeconds = 3599;

  get authorityHost(): string {
    return currentOrigins()?.authority ?? this.defaultAuthorityHost;
  }

  constructor(
    private readonly state: EmulatorState,
    private readonly rng: Rng,
  ) {
    this.privateKey = createPrivateKey(state.signingKeyPem);
    this.publicKey = createPublicKey(this.privateKey);
  }

  get tenantId(): string {
    return this.state.tenantId;
  }

  /** Issuer of access tokens: the v1 form real Graph and storage tokens carry. */
  get issuer(): string {
    return `https://sts.windows.net/${this.state.tenantId}/`;
  }

  /** Issuer named in openid-configuration (v2.0 endpoint form). */
  get v2Issuer(): string {
    return `${this.authorityHost}/${this.state.tenantId}/v2.0`;
  }

  tokenEndpoint(tenant = this.state.tenantId): string {
    return `${this.authorityHost}/${tenant}/oauth2/v2.0/token`;
  }

  /**
   * The tenant's OpenID configuration. The v2.0 document names the v2.0 issuer; the v1 one (no `v2.0` in the path)
   * names `https://sts.windows.net/{tenant}/`, the issuer of v1 tokens such as Graph's notification validation
   * tokens, with the v1 keys path, as Entra's v1 document does.
   */
  openidConfiguration(tenant: string, version: 'v1' | 'v2' = 'v2'): Reply {
    this.checkTenant(tenant);
    const base = `${this.authorityHost}/${this.state.tenantId}`;
    const v1 = version === 'v1';
    return {
      status: 200,
      body: {
        token_endpoint: `${base}/oauth2/v2.0/token`,
        token_endpoint_auth_methods_supported: ['client_secret_post', 'private_key_jwt', 'client_secret_basic'],
        jwks_uri: v1 ? `${base}/discovery/keys` : `${base}/discovery/v2.0/keys`,
        response_modes_supported: ['query', 'fragment', 'form_post'],
        subject_types_supported: ['pairwise'],
        id_token_signing_alg_values_supported: ['RS256'],
        response_types_supported: ['code', 'id_token', 'code id_token', 'id_token token'],
        scopes_supported: ['openid', 'profile', 'email', 'offline_access'],
        issuer: v1 ? this.issuer : this.v2Issuer,
        request_uri_parameter_supported: false,
        userinfo_endpoint: `${this.authorityHost}/oidc/userinfo`,
        authorization_endpoint: `${base}/oauth2/v2.0/authorize`,
        device_authorization_endpoint: `${base}/oauth2/v2.0/devicecode`,
        http_logout_supported: true,
        frontchannel_logout_supported: true,
        end_session_endpoint: `${base}/oauth2/v2.0/logout`,
        claims_supported: ['sub', 'iss', 'aud', 'exp', 'iat', 'nbf', 'tid', 'oid', 'roles', 'appid', 'azp'],
        kerberos_endpoint: `${base}/kerberos`,
        tenant_region_scope: 'EU',
        cloud_instance_name: 'emulator.local',
        cloud_graph_host_name: 'graph.windows.net',
        msgraph_host: 'graph.microsoft.com',
        rbac_url: 'https://pas.windows.net',
      },
    };
  }

  /** GET /common/discovery/instance (what MSAL asks before it trusts an authority), answered for this host. */
  instanceDiscovery(url: URL): Reply {
    const host = new URL(this.authorityHost).host;
    let tenant = this.state.tenantId;
    try {
      const endpoint = new URL(url.searchParams.get('authorization_endpoint') ?? '', this.authorityHost);
      tenant = /^\/([^/]+)\/oauth2\//.exec(endpoint.pathname)?.[1] ?? tenant;
    } catch {
      // keep the emulator's tenant
    }
    return {
      status: 200,
      body: {
        tenant_discovery_endpoint: `${this.authorityHost}/${tenant}/v2.0/.well-known/openid-configuration`,
        'api-version': '1.1',
        metadata: [{ preferred_network: host, preferred_cache: host, aliases: [host] }],
      },
    };
  }

  jwks(): Reply {
    return { status: 200, body: { keys: [publicJwk(this.publicKey, this.state.kid)] } };
  }

  private checkTenant(tenant: string): void {
    if (tenant.toLowerCase() !== this.state.tenantId.toLowerCase())
      throw new OAuthError(
        400,
        'invalid_request',
        90002,
        `Tenant '${tenant}' not found. Check that the tenant id is the emulator's (${this.state.tenantId}); it is printed in the emulator's JSON line as tenantId.`,
      );
  }

  /** Mint an access token. */
  issue(p: {
    appId: string;
    objectId: string;
    roles: string[];
    audience: string;
    appidacr: string;
    lifetime?: number;
  }): {
    token: string;
    expiresOn: number;
    expiresIn: number;
  } {
    const now = Math.floor(Date.now() / 1000);
    const lifetime = p.lifetime ?? this.tokenLifetimeSeconds;
    const payload: JsonObject = {
      aud: p.audience,
      iss: this.issuer,
      iat: now,
      nbf: now - 5,
      exp: now + lifetime,
      aio: this.rng.hex(12),
      appid: p.appId,
      appidacr: p.appidacr,
      azp: p.appId,
      idp: this.issuer,
      idtyp: 'app',
      oid: p.objectId,
      sub: p.objectId,
      tid: this.state.tenantId,
      uti: this.rng.hex(16),
      ver: '1.0',
      roles: p.roles,
    };
    const token = signJwt(
      { typ: 'JWT', alg: 'RS256', kid: this.state.kid, x5t: this.state.kid },
      payload,
      this.privateKey,
    );
    return { token, expiresOn: now + lifetime, expiresIn: lifetime };
  }

  private findApp(clientId: string): AppRegistration {
    const app = this.state.apps.get(clientId.toLowerCase()) ?? this.state.apps.get(clientId);
    if (!app)
      throw new OAuthError(
        400,
        'unauthorized_client',
        700016,
        `Application with identifier '${clientId}' was not found in the directory '${this.state.tenantId}'. This can happen if the application has not been installed by the administrator of the tenant. Register it with POST /_emulator/apps (or --app) or use the emulator's clientId.`,
      );
    return app;
  }

  /** POST /{tenant}/oauth2/v2.0/token: client credentials (app-only) or password (delegated, for a directory user). */
  token(tenant: string, form: URLSearchParams): Reply {
    this.checkTenant(tenant);
    const grant = form.get('grant_type');
    if (grant === 'password') return this.passwordToken(form);
    if (grant !== 'client_credentials')
      throw new OAuthError(
        400,
        'unsupported_grant_type',
        70003,
        `The app requested an unsupported grant type '${grant ?? ''}'. The emulator supports grant_type=client_credentials (app-only tokens) and grant_type=password (delegated tokens for users of its directory).`,
      );
    const clientId = form.get('client_id') ?? '';
    const app = this.findApp(clientId);
    const resource = this.resourceFromScope(form.get('scope'));
    const secret = form.get('client_secret');
    const assertion = form.get('client_assertion');
    let appidacr = '1';
    if (secret !== null) {
      if (!app.secrets.includes(secret))
        throw new OAuthError(
          401,
          'invalid_client',
          7000215,
          `Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '${app.clientId}'.`,
        );
    } else if (assertion !== null) {
      if (form.get('client_assertion_type') !== 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer')
        throw new OAuthError(
          400,
          'invalid_request',
          700025,
          `client_assertion_type must be urn:ietf:params:oauth:client-assertion-type:jwt-bearer.`,
        );
      this.checkAssertion(app, assertion, tenant);
      appidacr = '2';
    } else {
      throw new OAuthError(
        401,
        'invalid_client',
        7000218,
        `The request body must contain the following parameter: 'client_assertion' or 'client_secret'.`,
      );
    }
    const roles = resource === GRAPH_RESOURCE ? [...app.roles] : [];
    const t = this.issue({ appId: app.clientId, objectId: app.objectId, roles, audience: resource, appidacr });
    return {
      status: 200,
      body: { token_type: 'Bearer', expires_in: t.expiresIn, ext_expires_in: t.expiresIn, access_token: t.token },
    };
  }

  /**
   * Resource owner password credentials (`grant_type=password`), the delegated grant the emulator serves: a user of
   * its directory signs in with their UPN and password (the emulator's userPassword, unless the directory gives the
   * user one) through any registered app (public client: no secret needed; a secret that is sent must be right).
   * The token carries `scp` with the app's consented delegated permissions that the request asked for.
   */
  private passwordToken(form: URLSearchParams): Reply {
    const app = this.findApp(form.get('client_id') ?? '');
    const secret = form.get('client_secret');
    if (secret !== null && !app.secrets.includes(secret))
      throw new OAuthError(
        401,
        'invalid_client',
        7000215,
        `Invalid client secret provided for app '${app.clientId}'. A public client sends no secret at all.`,
      );
    const username = form.get('username') ?? '';
    if (!username)
      throw new OAuthError(400, 'invalid_request', 900144, "The request body must contain the parameter 'username'.");
    const user = this.state.directory.users.find((u) => u.userPrincipalName.toLowerCase() === username.toLowerCase());
    if (!user)
      throw new OAuthError(
        400,
        'invalid_grant',
        50034,
        `The user account ${username} does not exist in the '${this.state.tenantId}' directory. Add it to the emulator's directory (--directory FILE or POST /_emulator/directory).`,
      );
    if ((form.get('password') ?? '') !== (user.password ?? this.state.userPassword))
      throw new OAuthError(
        400,
        'invalid_grant',
        50126,
        `Error validating credentials due to invalid username or password for ${user.userPrincipalName}. The emulator's users sign in with its userPassword (printed in its JSON line) unless the directory gives them their own.`,
      );
    const requested = (form.get('scope') ?? '').split(' ').filter((x) => x.length > 0);
    const consented = app.delegatedScopes ?? DEFAULT_DELEGATED_SCOPES;
    const wanted: string[] = [];
    let resourceSeen = false;
    for (const raw of requested) {
      if (OIDC_SCOPES.includes(raw)) continue;
      const m = /^(https:\/\/graph\.microsoft\.com\/?|00000003-0000-0000-c000-000000000000\/)?(.+)$/i.exec(raw)!;
      if (!m[1] && raw.includes('/'))
        throw new OAuthError(
          400,
          'invalid_scope',
          70011,
          `The provided value for the input parameter 'scope' is not valid: '${raw}'. The emulator issues delegated tokens for Microsoft Graph only (https://graph.microsoft.com/<permission> or /.default).`,
        );
      resourceSeen = true;
      if (m[2] === '.default') wanted.push(...consented);
      else wanted.push(m[2]!);
    }
    if (!resourceSeen)
      throw new OAuthError(
        400,
        'invalid_scope',
        70011,
        "The request needs a Microsoft Graph scope, e.g. 'https://graph.microsoft.com/ExternalItem.Read.All' or 'https://graph.microsoft.com/.default'.",
      );
    const missing = wanted.filter((w) => !consented.some((c) => c.toLowerCase() === w.toLowerCase()));
    if (missing.length)
      throw new OAuthError(
        400,
        'invalid_grant',
        65001,
        `The user or administrator has not consented to use the application '${app.clientId}' for ${missing.join(', ')}. Consented delegated permissions: ${consented.join(', ') || 'none'} (set them with POST/PATCH /_emulator/apps delegatedScopes).`,
      );
    const scopes = [...new Set(wanted.map((w) => consented.find((c) => c.toLowerCase() === w.toLowerCase())!))];
    const t = this.issueUser({ app, user, scopes });
    const body: JsonObject = {
      token_type: 'Bearer',
      scope: scopes.map((s) => `${GRAPH_RESOURCE}/${s}`).join(' '),
      expires_in: t.expiresIn,
      ext_expires_in: t.expiresIn,
      access_token: t.token,
      client_info: b64url(JSON.stringify({ uid: user.id, utid: this.state.tenantId })),
    };
    if (requested.includes('openid')) body.id_token = this.idToken(app, user);
    return { status: 200, body };
  }

  /** A delegated access token for `user` through `app`, with `scp`. */
  issueUser(p: { app: { clientId: string }; user: DirectoryUser; scopes: string[]; lifetime?: number }): {
    token: string;
    expiresOn: number;
    expiresIn: number;
  } {
    const now = Math.floor(Date.now() / 1000);
    const lifetime = p.lifetime ?? this.tokenLifetimeSeconds;
    const payload: JsonObject = {
      aud: GRAPH_RESOURCE,
      iss: this.issuer,
      iat: now,
      nbf: now - 5,
      exp: now + lifetime,
      acr: '1',
      aio: this.rng.hex(12),
      amr: ['pwd'],
      app_displayname: 'emulator app',
      appid: p.app.clientId,
      appidacr: '0',
      idtyp: 'user',
      name: p.user.displayName ?? p.user.userPrincipalName,
      oid: p.user.id,
      scp: p.scopes.join(' '),
      sub: pairwiseSubject(p.user.id, p.app.clientId),
      tid: this.state.tenantId,
      unique_name: p.user.userPrincipalName,
      upn: p.user.userPrincipalName,
      uti: this.rng.hex(16),
      ver: '1.0',
    };
    const token = signJwt(
      { typ: 'JWT', alg: 'RS256', kid: this.state.kid, x5t: this.state.kid },
      payload,
      this.privateKey,
    );
    return { token, expiresOn: now + lifetime, expiresIn: lifetime };
  }

  private idToken(app: AppRegistration, user: DirectoryUser): string {
    const now = Math.floor(Date.now() / 1000);
    return signJwt(
      { typ: 'JWT', alg: 'RS256', kid: this.state.kid },
      {
        aud: app.clientId,
        iss: this.v2Issuer,
        iat: now,
        nbf: now - 5,
        exp: now + this.tokenLifetimeSeconds,
        name: user.displayName ?? user.userPrincipalName,
        oid: user.id,
        preferred_username: user.userPrincipalName,
        sub: pairwiseSubject(user.id, app.clientId),
        tid: this.state.tenantId,
        ver: '2.0',
      },
      this.privateKey,
    );
  }

  private resourceFromScope(scope: string | null): string {
    const first = (scope ?? '').split(' ').find((s) => s.length > 0);
    if (!first || !first.endsWith('/.default'))
      throw new OAuthError(
        400,
        'invalid_scope',
        1002012,
        `The provided value for scope ${scope ?? ''} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).`,
      );
    const resource = first.slice(0, -'/.default'.length);
    return resource === 'https://graph.microsoft.com/' ? GRAPH_RESOURCE : resource;
  }

  private checkAssertion(app: AppRegistration, assertion: string, tenant: string): void {
    const jwt = decodeJwt(assertion);
    if (!jwt) throw new OAuthError(400, 'invalid_request', 50027, 'The client assertion is not a valid JWT token.');
    const now = Math.floor(Date.now() / 1000);
    const exp = Number(jwt.payload.exp);
    const nbf = jwt.payload.nbf === undefined ? 0 : Number(jwt.payload.nbf);
    if (!(exp > now - 300) || nbf > now + 300)
      throw new OAuthError(401, 'invalid_client', 700024, 'Client assertion is not within its valid time range.');
    // Federated: a token this emulator issued (e.g. by the managed identity endpoint).
    if (jwt.header.kid === this.state.kid && verifyJwtSignature(jwt, this.publicKey)) {
      const auds = ([] as unknown[]).concat(jwt.payload.aud);
      if (!auds.some((a) => a === TOKEN_EXCHANGE_AUDIENCE || a === TOKEN_EXCHANGE_APP_ID))
        throw new OAuthError(
          400,
          'invalid_request',
          700212,
          `No matching federated identity record found for presented assertion audience '${String(jwt.payload.aud)}'. Request the managed identity token for ${TOKEN_EXCHANGE_AUDIENCE}.`,
        );
      const sub = String(jwt.payload.sub);
      const iss = String(jwt.payload.iss);
      const fic = app.federatedCredentials.find(
        (f) =>
          f.subject.toLowerCase() === sub.toLowerCase() &&
          (!f.issuer || f.issuer === iss || f.issuer === this.v2Issuer || f.issuer === this.issuer),
      );
      if (!fic)
        throw new OAuthError(
          400,
          'invalid_request',
          70021,
          `No matching federated identity record found for presented assertion. Assertion Issuer: '${iss}'. Assertion Subject: '${sub}'. Register a federated credential with this subject on app '${app.clientId}' (POST /_emulator/apps).`,
        );
      return;
    }
    // Certificate: signed by the key of a certificate registered on the app.
    const aud = String(jwt.payload.aud);
    const okAud = [this.tokenEndpoint(tenant), this.tokenEndpoint(this.state.tenantId), this.v2Issuer];
    if (!okAud.includes(aud))
      throw new OAuthError(
        401,
        'invalid_client',
        700021,
        `Client assertion audience claim does not match Realm issuer. Expected ${this.tokenEndpoint(tenant)}, got '${aud}'.`,
      );
    if (String(jwt.payload.iss) !== app.clientId || String(jwt.payload.sub) !== app.clientId)
      throw new OAuthError(
        401,
        'invalid_client',
        700023,
        `Client assertion 'iss' and 'sub' must both be the client id '${app.clientId}'.`,
      );
    const x5t = jwt.header.x5t as string | undefined;
    const x5tS256 = jwt.header['x5t#S256'] as string | undefined;
    const candidates = app.certificates.filter((pem) => {
      const tp = thumbprints(new X509Certificate(pem).raw);
      return (x5t === undefined && x5tS256 === undefined) || tp.x5t === x5t || tp.x5tS256 === x5tS256;
    });
    if (candidates.length === 0)
      throw new OAuthError(
        401,
        'invalid_client',
        700027,
        `The certificate with identifier used to sign the client assertion is not registered on application '${app.clientId}'. Register its PEM with POST /_emulator/apps (certificatePem).`,
      );
    if (!candidates.some((pem) => verifyJwtSignature(jwt, new X509Certificate(pem).publicKey)))
      throw new OAuthError(401, 'invalid_client', 700027, 'Client assertion failed signature validation.');
  }

  /** GET /msi/token (App Service, api-version 2019-08-01). */
  managedIdentityToken(url: URL, header: string | undefined): Reply {
    if (header !== this.state.identityHeader)
      return {
        status: 401,
        body: {
          statusCode: 401,
          message:
            "The X-IDENTITY-HEADER header is missing or wrong. Set IDENTITY_HEADER to the emulator's managedIdentityHeader.",
        },
      };
    const apiVersion = url.searchParams.get('api-version');
    if (apiVersion !== '2019-08-01')
      return {
        status: 400,
        body: { statusCode: 400, message: `Unsupported api-version '${apiVersion ?? ''}'; use 2019-08-01.` },
      };
    let resource = url.searchParams.get('resource') ?? '';
    if (!resource)
      return { status: 400, body: { statusCode: 400, message: 'The resource query parameter is required.' } };
    if (resource.endsWith('/.default')) resource = resource.slice(0, -'/.default'.length);
    if (resource === 'https://graph.microsoft.com/') resource = GRAPH_RESOURCE;
    const clientId = url.searchParams.get('client_id');
    const objectId = url.searchParams.get('object_id') ?? url.searchParams.get('principal_id');
    const resId = url.searchParams.get('mi_res_id');
    let mi: ManagedIdentity | undefined;
    const all = [...this.state.managedIdentities.values()];
    if (clientId) mi = all.find((m) => m.clientId.toLowerCase() === clientId.toLowerCase() && !m.systemAssigned);
    else if (objectId) mi = all.find((m) => m.objectId.toLowerCase() === objectId.toLowerCase());
    else if (resId) mi = all.find((m) => resId.toLowerCase().endsWith('/' + m.displayName.toLowerCase()));
    else mi = all.find((m) => m.systemAssigned);
    if (!mi)
      return {
        status: 400,
        body: {
          statusCode: 400,
          message: `Unable to load the proper Managed Identity. No managed identity '${clientId ?? objectId ?? resId ?? '(system-assigned)'}' is registered in the emulator (POST /_emulator/managed-identities).`,
        },
      };
    const audience = resource === TOKEN_EXCHANGE_AUDIENCE ? TOKEN_EXCHANGE_AUDIENCE : resource;
    const roles = resource === GRAPH_RESOURCE ? [...mi.roles] : [];
    const t = this.issue({ appId: mi.clientId, objectId: mi.objectId, roles, audience, appidacr: '2' });
    return {
      status: 200,
      body: {
        access_token: t.token,
        expires_on: String(t.expiresOn),
        resource,
        token_type: 'Bearer',
        client_id: mi.clientId,
      },
    };
  }

  /** Validate a Graph call's bearer token. Throws 401 in Graph's envelope. */
  authenticate(ctx: Ctx): Principal {
    const auth = ctx.req.headers.authorization;
    const fail = (message: string): never => {
      throw new GraphError(401, 'InvalidAuthenticationToken', message, undefined, {
        'WWW-Authenticate': `Bearer realm="", authorization_uri="${this.authorityHost}/${this.state.tenantId}/oauth2/authorize", client_id="${GRAPH_APP_ID}"`,
      });
    };
    if (!auth) return fail('Access token is empty.');
    const m = /^Bearer\s+(\S+)$/i.exec(auth);
    if (!m) return fail('Access token validation failure: the Authorization header must be "Bearer <token>".');
    const jwt = decodeJwt(m[1]!);
    if (!jwt) return fail('IDX14100: JWT is not well formed, there are no dots (.).');
    if (jwt.header.kid !== this.state.kid || !verifyJwtSignature(jwt, this.publicKey))
      return fail('Access token validation failure. Invalid signature (the token was not issued by this emulator).');
    const now = Math.floor(Date.now() / 1000);
    if (Number(jwt.payload.exp) <= now) return fail('Lifetime validation failed, the token is expired.');
    if (Number(jwt.payload.nbf) > now + 300) return fail('Lifetime validation failed, the token is not yet valid.');
    const aud = String(jwt.payload.aud);
    if (![GRAPH_RESOURCE, GRAPH_RESOURCE + '/', GRAPH_APP_ID].includes(aud))
      return fail(`Invalid audience '${aud}'. Request the token for scope https://graph.microsoft.com/.default.`);
    if (String(jwt.payload.tid) !== this.state.tenantId) return fail('Access token validation failure: wrong tenant.');
    const roles = Array.isArray(jwt.payload.roles) ? (jwt.payload.roles as unknown[]).map(String) : [];
    const scopes = typeof jwt.payload.scp === 'string' ? jwt.payload.scp.split(' ').filter((x) => x.length > 0) : [];
    const user = jwt.payload.idtyp === 'user' || scopes.length > 0;
    return {
      appId: String(jwt.payload.appid),
      objectId: String(jwt.payload.oid),
      roles,
      scopes,
      kind: user ? 'user' : 'app',
      ...(user && typeof jwt.payload.upn === 'string' ? { upn: jwt.payload.upn } : {}),
    };
  }
}
