/** Shared helpers for the emulator tests: real credentials, the real Graph client, raw HTTPS calls. */
import { readFileSync } from 'node:fs';
import https from 'node:https';
import type { TokenCredential } from '@azure/identity';
import type { PipelineRequest, PipelineResponse, SendRequest } from '@azure/core-rest-pipeline';
import { ClientSecretCredential, UsernamePasswordCredential } from '@azure/identity';
import {
  Client,
  HTTPMessageHandler,
  RetryHandler,
  RetryHandlerOptions,
  AuthenticationHandler,
} from '@microsoft/microsoft-graph-client';
import { TokenCredentialAuthenticationProvider } from '@microsoft/microsoft-graph-client/authProviders/azureTokenCredentials/index.js';
import { Agent } from 'undici';
import type { EmulatorHandle } from '../../src/emulator/index.js';

export interface Tls {
  /** The emulator's CA certificate (PEM). */
  ca: Buffer;
  agent: https.Agent;
  dispatcher: Agent;
  /** @azure/identity pipeline policy that trusts the emulator's certificate. */
  policy: {
    position: 'perCall';
    policy: { name: string; sendRequest: (req: PipelineRequest, next: SendRequest) => Promise<PipelineResponse> };
  };
}

export function trust(emu: EmulatorHandle): Tls {
  const ca = readFileSync(emu.info.caCertPath!);
  const agent = new https.Agent({ ca, keepAlive: true });
  const dispatcher = new Agent({ connect: { ca } });
  return {
    ca,
    agent,
    dispatcher,
    policy: {
      position: 'perCall',
      policy: {
        name: 'emulatorCa',
        sendRequest: (req, next) => {
          req.agent = agent;
          return next(req);
        },
      },
    },
  };
}

export function secretCredential(
  emu: EmulatorHandle,
  tls: Tls,
  clientId = emu.info.clientId,
  secret = emu.info.clientSecret,
) {
  return new ClientSecretCredential(emu.info.tenantId, clientId, secret, {
    authorityHost: emu.info.authorityHost,
    disableInstanceDiscovery: true,
    additionalPolicies: [tls.policy],
  });
}

/** A delegated credential for a user of the emulator's directory (the password grant, through MSAL). */
export function userCredential(
  emu: EmulatorHandle,
  tls: Tls,
  upn: string,
  password = emu.info.userPassword,
  clientId = emu.info.clientId,
) {
  return new UsernamePasswordCredential(emu.info.tenantId, clientId, upn, password, {
    authorityHost: emu.info.authorityHost,
    disableInstanceDiscovery: true,
    additionalPolicies: [tls.policy],
  });
}

/** The official Graph client against the emulator, with a retry handler that honours Retry-After. */
export function graphClient(
  emu: EmulatorHandle,
  tls: Tls,
  credential: TokenCredential,
  opts: { maxRetries?: number; version?: string } = {},
) {
  const auth = new TokenCredentialAuthenticationProvider(credential, {
    scopes: ['https://graph.microsoft.com/.default'],
  });
  return Client.initWithMiddleware({
    middleware: [
      new AuthenticationHandler(auth),
      new RetryHandler(new RetryHandlerOptions(1, opts.maxRetries ?? 0)),
      new HTTPMessageHandler(),
    ],
    baseUrl: emu.info.baseUrl,
    defaultVersion: opts.version ?? 'v1.0',
    customHosts: new Set(['127.0.0.1']),
    fetchOptions: { dispatcher: tls.dispatcher },
  });
}

/** A loosely typed JSON record, for reading response bodies in tests. */
export type Rec = Record<string, unknown>;

export interface RawResponse {
  status: number;
  headers: Headers;
  body: any;
  text: string;
}

/** A raw HTTPS call (admin API, or Graph with an explicit token). */
export async function call(
  emu: EmulatorHandle,
  tls: Tls,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<RawResponse> {
  const res = await fetch(emu.info.baseUrl + path, {
    method,
    headers: { ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    dispatcher: tls.dispatcher,
  });
  const text = await res.text();
  let parsed: unknown;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    parsed = undefined;
  }
  return { status: res.status, headers: res.headers, body: parsed, text };
}

/** Get a Graph token for the default app through the real credential. */
export async function tokenFor(emu: EmulatorHandle, tls: Tls, clientId?: string, secret?: string): Promise<string> {
  const t = await secretCredential(emu, tls, clientId, secret).getToken('https://graph.microsoft.com/.default');
  return t.token;
}

export function bearer(token: string): Record<string, string> {
  return { authorization: `Bearer ${token}` };
}

export const CONTOSO_SCHEMA = {
  baseType: 'microsoft.graph.externalItem',
  properties: [
    { name: 'title', type: 'string', isSearchable: true, isQueryable: true, isRetrievable: true, labels: ['title'] },
    { name: 'ticketId', type: 'string', isQueryable: true, isRetrievable: true },
    { name: 'priority', type: 'int64', isQueryable: true, isRetrievable: true, isRefinable: true },
    { name: 'createdBy', type: 'string', isQueryable: true, isRetrievable: true, labels: ['createdBy'] },
    { name: 'tags', type: 'stringCollection', isSearchable: true, isQueryable: true, isRetrievable: true },
    { name: 'scores', type: 'doubleCollection', isRetrievable: true },
    { name: 'counts', type: 'int64Collection', isRetrievable: true },
    { name: 'dates', type: 'dateTimeCollection', isRetrievable: true },
    { name: 'done', type: 'boolean', isRetrievable: true },
    { name: 'ratio', type: 'double', isRetrievable: true },
    {
      name: 'lastEditedDate',
      type: 'dateTime',
      isQueryable: true,
      isRetrievable: true,
      isRefinable: true,
      labels: ['lastModifiedDateTime'],
    },
  ],
};

/** Create a connection and register a schema through the raw API, waiting until it is ready. */
export async function readyConnection(
  emu: EmulatorHandle,
  tls: Tls,
  token: string,
  id: string,
  schema: unknown = CONTOSO_SCHEMA,
) {
  const c = await call(
    emu,
    tls,
    'POST',
    '/v1.0/external/connections',
    { id, name: `Conn ${id}`, description: 'test' },
    bearer(token),
  );
  if (c.status !== 201) throw new Error(`create ${id}: ${c.status} ${c.text}`);
  const s = await call(emu, tls, 'PATCH', `/v1.0/external/connections/${id}/schema`, schema, bearer(token));
  if (s.status !== 202) throw new Error(`schema ${id}: ${s.status} ${s.text}`);
  const location = s.headers.get('location')!;
  for (let i = 0; i < 200; i++) {
    const op = await call(emu, tls, 'GET', new URL(location).pathname, undefined, bearer(token));
    if (op.body?.status === 'completed') return;
    if (op.body?.status === 'failed') throw new Error(`schema op failed: ${op.text}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error('schema operation did not complete');
}

export function item(id: string, extra: Record<string, unknown> = {}) {
  return {
    id,
    acl: [{ type: 'everyone', value: 'everyone', accessType: 'grant' }],
    properties: { title: `Item ${id}`, priority: 1 },
    content: { type: 'text', value: `content of ${id}` },
    ...extra,
  };
}
