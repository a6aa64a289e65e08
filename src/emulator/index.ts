/**
 * A local Microsoft Graph connectors API emulator, with Entra-like token endpoints and an App Service
 * managed identity endpoint. It imports nothing from the connector: its truth is
 * reference/graph-connectors-api.md. See docs/emulator.md.
 */
import { randomInt } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseDirectory, publicApp } from './admin.js';
import { advanceOperations } from './connections.js';
import type { Emu, EmulatorSettings } from './context.js';
import { Faults } from './faults.js';
import { GUID_RE } from './http.js';
import { Identity, OWNED_BY_ROLES } from './identity.js';
import { Limits } from './limits.js';
import { createRng, deriveSeed } from './random.js';
import { currentOrigins } from './origin.js';
import { createProxy, type ProxyServer } from './proxy.js';
import { createHandler } from './server.js';
import { Store, type EmulatorState } from './store.js';
import { Throttling } from './throttling.js';
import { loadOrCreateInterceptTls, loadOrCreateSigningKey, loadOrCreateTls } from './tls.js';

export interface EmulatorOptions {
  /** 0 = any free port (default 0). */
  port?: number;
  /** Plain HTTP instead of HTTPS (default false). @azure/identity and graph-client need HTTPS for auth. */
  http?: boolean;
  /** Persist the whole state and the TLS certificate here; reload on start. */
  stateDir?: string;
  /** Added to every Graph response. */
  latencyMs?: number;
  /** Items/s per connection for item PUT/DELETE (0/undefined = unlimited); token bucket. */
  rateLimit?: number;
  /** Group and member writes per second per connection (0/undefined = unlimited; Graph documents 1,000/s). */
  groupRateLimit?: number;
  /**
   * How long a connection's deletion runs after DELETE's 202 (default 2000): meanwhile it is gone for reads (404),
   * a second DELETE gets 409 and its id stays taken (POST → 409). 0 = gone at once.
   */
  deleteDelayMs?: number;
  /** Concurrent requests per app per connection (default 25) → 429 + Retry-After beyond it. */
  maxConcurrency?: number;
  /** 0..1 probability of a random fault per Graph call. */
  faultRate?: number;
  /** Seeds all randomness (faults, ids). */
  seed?: number;
  /** How long a schema operation stays `inprogress` (default 1000). */
  schemaDelayMs?: number;
  /** Path of a JSON file or the object: {users:[{id,userPrincipalName,displayName,guest}], groups:[{id,displayName,members:[ids]}]}. */
  directory?: string | object;
  /** Human log lines (default: stderr). */
  log?: (line: string) => void;
  /** Where the TLS certificate is kept without stateDir (default: a folder under the OS temp dir). */
  tlsDir?: string;
  /** Lifetime of issued tokens in seconds (default 3599). */
  tokenLifetimeSeconds?: number;
  /** Retry-After (seconds) of injected throttling (random 429/503 faults, throttling windows) drawn from [min, max]. */
  retryAfterRange?: [number, number];
  /** Throttling windows and 503 storms, timed from the start: see throttling.ts and docs/emulator.md. */
  throttleWindows?: {
    status?: 429 | 503;
    seconds: number;
    startInSeconds?: number;
    connectionId?: string;
    share?: number;
    retryAfter?: number;
  }[];
  /** Tenant id of a fresh state (default: a seeded GUID). A persisted state of another tenant is an error. */
  tenantId?: string;
  /** App registrations to have (added, or their secret added): roles default to the two OwnedBy permissions. */
  apps?: { clientId: string; secret: string; roles?: string[] }[];
  /** Also start proxy mode on this port of 127.0.0.1 (0 = any free port): see proxy.ts. */
  proxyPort?: number;
}

export interface EmulatorInfo {
  /** e.g. https://127.0.0.1:PORT (Graph at {baseUrl}/v1.0/... and {baseUrl}/beta/...). */
  baseUrl: string;
  /** Same origin; token endpoint at {authorityHost}/{tenantId}/oauth2/v2.0/token. */
  authorityHost: string;
  tenantId: string;
  clientId: string;
  clientSecret: string;
  /** PEM of the certificate to trust (absent with http). */
  caCertPath?: string;
  /** App Service MI endpoint (plain http) for IDENTITY_ENDPOINT. */
  managedIdentityEndpoint: string;
  /** Value for IDENTITY_HEADER. */
  managedIdentityHeader: string;
  /** A user-assigned managed identity registered in the emulator (roles: the two OwnedBy permissions). */
  managedIdentityClientId: string;
  /** {baseUrl}/_emulator */
  adminUrl: string;
  /** The password users of the directory sign in with (grant_type=password), unless the directory gives one. */
  userPassword: string;
  /** http://127.0.0.1:PORT — the proxy for https_proxy (proxy mode only). */
  proxyUrl?: string;
}

export interface EmulatorHandle {
  info: EmulatorInfo;
  close(): Promise<void>;
}

function initialState(seed: number, signingKeyPem: string): EmulatorState {
  const ids = createRng(deriveSeed(seed, 1));
  const defaultAppId = ids.guid();
  const miClientId = ids.guid();
  const sysClientId = ids.guid();
  return {
    tenantId: ids.guid(),
    signingKeyPem,
    kid: ids.hex(20),
    identityHeader: ids.hex(16),
    defaultAppId,
    defaultManagedIdentityId: miClientId,
    apps: new Map([
      [
        defaultAppId,
        {
          clientId: defaultAppId,
          objectId: ids.guid(),
          displayName: 'graph-connector dev app',
          secrets: [`emu~${ids.hex(18)}`],
          roles: [...OWNED_BY_ROLES],
          certificates: [],
          federatedCredentials: [],
        },
      ],
    ]),
    managedIdentities: new Map([
      [
        miClientId,
        {
          clientId: miClientId,
          objectId: ids.guid(),
          displayName: 'id-graph-connector',
          roles: [...OWNED_BY_ROLES],
          systemAssigned: false,
        },
      ],
      [
        sysClientId,
        {
          clientId: sysClientId,
          objectId: ids.guid(),
          displayName: 'system-assigned',
          roles: [...OWNED_BY_ROLES],
          systemAssigned: true,
        },
      ],
    ]),
    directory: { users: [], groups: [] },
    connections: new Map(),
    userPassword: `emu~user~${ids.hex(9)}`,
  };
}

function loadDirectory(dir: string | object): ReturnType<typeof parseDirectory> {
  if (typeof dir === 'string') {
    let raw: unknown;
    try {
      raw = JSON.parse(readFileSync(dir, 'utf8'));
    } catch (err) {
      throw new Error(`The directory file ${dir} cannot be read as JSON: ${(err as Error).message}`, { cause: err });
    }
    return parseDirectory(raw, dir);
  }
  return parseDirectory(dir, 'the directory option');
}

function listen(server: Server, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

function checkNumber(name: string, v: number | undefined, min: number, max = Infinity): void {
  if (v === undefined) return;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max)
    throw new Error(`Emulator option ${name} must be a number between ${min} and ${max}; got ${String(v)}.`);
}

export async function startEmulator(options: EmulatorOptions = {}): Promise<EmulatorHandle> {
  checkNumber('port', options.port, 0, 65535);
  checkNumber('latencyMs', options.latencyMs, 0);
  checkNumber('rateLimit', options.rateLimit, 0);
  checkNumber('groupRateLimit', options.groupRateLimit, 0);
  checkNumber('deleteDelayMs', options.deleteDelayMs, 0);
  checkNumber('maxConcurrency', options.maxConcurrency, 0);
  checkNumber('faultRate', options.faultRate, 0, 1);
  checkNumber('schemaDelayMs', options.schemaDelayMs, 0);
  checkNumber('proxyPort', options.proxyPort, 0, 65535);
  const range = options.retryAfterRange;
  if (range && (range.length !== 2 || !(range[0] >= 0) || !(range[1] >= range[0]) || !Number.isFinite(range[1])))
    throw new Error(
      `Emulator option retryAfterRange must be [min, max] seconds with 0 ≤ min ≤ max; got ${JSON.stringify(range)}.`,
    );
  if (options.tenantId !== undefined && !GUID_RE.test(options.tenantId))
    throw new Error(`Emulator option tenantId must be a GUID; got '${options.tenantId}'.`);
  for (const a of options.apps ?? [])
    if (!GUID_RE.test(a.clientId) || !a.secret)
      throw new Error(`Emulator option apps: each app needs a GUID clientId and a secret; got '${a.clientId}'.`);
  const log = options.log ?? ((line: string) => process.stderr.write(line + '\n'));
  const seed = options.seed ?? randomInt(0, 2 ** 31);
  const persisted = options.stateDir ? Store.load(options.stateDir) : undefined;
  const keyDir =
    options.stateDir ?? options.tlsDir ?? join(tmpdir(), `graph-connector-emulator-tls-${process.getuid?.() ?? 'u'}`);
  const state = persisted ?? initialState(seed, await loadOrCreateSigningKey(keyDir));
  if (options.tenantId) {
    if (!persisted) state.tenantId = options.tenantId;
    else if (state.tenantId.toLowerCase() !== options.tenantId.toLowerCase())
      throw new Error(
        `The emulator state in ${options.stateDir} belongs to tenant ${state.tenantId}, not ${options.tenantId}. Use another --state-dir (or delete it) to start a state for that tenant.`,
      );
  }
  const appIds = createRng(deriveSeed(seed, 4));
  for (const a of options.apps ?? []) {
    const existing = state.apps.get(a.clientId.toLowerCase());
    if (existing) {
      if (!existing.secrets.includes(a.secret)) existing.secrets.push(a.secret);
      if (a.roles) existing.roles = [...a.roles];
    } else
      state.apps.set(a.clientId.toLowerCase(), {
        clientId: a.clientId,
        objectId: appIds.guid(),
        displayName: `app ${a.clientId.slice(0, 8)}`,
        secrets: [a.secret],
        roles: [...(a.roles ?? OWNED_BY_ROLES)],
        certificates: [],
        federatedCredentials: [],
      });
  }
  if (options.directory !== undefined) state.directory = loadDirectory(options.directory);
  const store = new Store(state, options.stateDir, log);
  const settings: EmulatorSettings = {
    latencyMs: options.latencyMs ?? 0,
    schemaDelayMs: options.schemaDelayMs ?? 1000,
    faultRate: options.faultRate ?? 0,
    rateLimit: options.rateLimit ?? 0,
    groupRateLimit: options.groupRateLimit ?? 0,
    deleteDelayMs: options.deleteDelayMs ?? 2000,
    maxConcurrency: options.maxConcurrency ?? 25,
    retryAfterMin: range?.[0] ?? 0,
    retryAfterMax: range?.[1] ?? 0,
  };
  const ids = createRng(deriveSeed(seed, 2));
  const identity = new Identity(state, ids);
  if (options.tokenLifetimeSeconds) identity.tokenLifetimeSeconds = options.tokenLifetimeSeconds;
  const throttling = new Throttling(createRng(deriveSeed(seed, 5)), settings);
  let defaultBaseUrl = '';
  const emu: Emu = {
    store,
    identity,
    ids,
    limits: new Limits(settings.maxConcurrency, settings.rateLimit, settings.groupRateLimit),
    faults: new Faults(createRng(deriveSeed(seed, 3)), settings.faultRate, (fallback) =>
      throttling.retryAfter(fallback),
    ),
    throttling,
    settings,
    get baseUrl() {
      return currentOrigins()?.graph ?? defaultBaseUrl;
    },
    log,
    requests: [],
    changed: () => store.changed(),
  };
  const hooks = {
    reset(all: boolean) {
      state.connections.clear();
      emu.faults.remove();
      emu.throttling.remove();
      emu.requests.length = 0;
      emu.limits.reset();
      if (all) {
        state.directory = { users: [], groups: [] };
        for (const id of [...state.apps.keys()]) if (id !== state.defaultAppId) state.apps.delete(id);
      }
      store.changed();
    },
  };
  const handler = createHandler(emu, hooks);
  let caCertPath: string | undefined;
  let main: Server;
  let proxy: ProxyServer | undefined;
  if (options.http) {
    if (options.proxyPort !== undefined) throw new Error('Emulator option proxyPort needs HTTPS (leave out http).');
    main = createHttpServer(handler);
  } else {
    const tls = await loadOrCreateTls(keyDir);
    caCertPath = tls.caCertPath;
    main = createHttpsServer({ key: tls.key, cert: tls.cert }, handler);
    if (options.proxyPort !== undefined) proxy = createProxy(await loadOrCreateInterceptTls(keyDir, tls), handler, log);
  }
  const mi = createHttpServer(handler);
  const port = await listen(main, options.port ?? 0);
  const miPort = await listen(mi, 0);
  const proxyPort = proxy ? await listen(proxy.server, options.proxyPort ?? 0) : undefined;
  const baseUrl = `${options.http ? 'http' : 'https'}://127.0.0.1:${port}`;
  defaultBaseUrl = baseUrl;
  identity.defaultAuthorityHost = baseUrl;
  for (const w of options.throttleWindows ?? []) throttling.add(w);
  advanceOperations(emu);
  // Operations persisted in progress finish on schedule after a restart.
  const tick = setInterval(() => advanceOperations(emu), 250);
  tick.unref();
  store.changed();
  const app = state.apps.get(state.defaultAppId)!;
  const info: EmulatorInfo = {
    baseUrl,
    authorityHost: baseUrl,
    tenantId: state.tenantId,
    clientId: app.clientId,
    clientSecret: app.secrets[0] ?? '',
    ...(caCertPath ? { caCertPath } : {}),
    managedIdentityEndpoint: `http://127.0.0.1:${miPort}/msi/token`,
    managedIdentityHeader: state.identityHeader,
    managedIdentityClientId: state.defaultManagedIdentityId,
    adminUrl: `${baseUrl}/_emulator`,
    userPassword: state.userPassword,
    ...(proxyPort !== undefined ? { proxyUrl: `http://127.0.0.1:${proxyPort}` } : {}),
  };
  log(
    `emulator: Graph at ${baseUrl}/v1.0 (tenant ${state.tenantId}, ${state.connections.size} connection(s)${persisted ? `, state from ${options.stateDir}` : ''})`,
  );
  if (info.proxyUrl)
    log(
      `emulator: proxy at ${info.proxyUrl} answers for https://graph.microsoft.com and https://login.microsoftonline.com (trust ${caCertPath}); apps: ${[
        ...state.apps.values(),
      ]
        .map((a) => String(publicApp(a).clientId))
        .join(', ')}`,
    );
  let closed = false;
  return {
    info,
    async close() {
      if (closed) return;
      closed = true;
      clearInterval(tick);
      store.close();
      await proxy?.close();
      await Promise.all(
        [main, mi].map(
          (s) =>
            new Promise<void>((resolve) => {
              s.close(() => resolve());
              s.closeAllConnections();
            }),
        ),
      );
    },
  };
}
