/** Shared helpers for the Graph client, credential and provisioning tests (real emulator over HTTPS). */
import { startEmulator, type EmulatorHandle, type EmulatorInfo } from '../../src/emulator/index.js';
import { loadEnvironment, type ConnectorEnvironment } from '../../src/config/env.js';
import { SecretNotFoundError } from '../../src/secrets/errors.js';
import type { SecretProvider } from '../../src/secrets/types.js';
import { GraphConnectorClient, type GraphClientOptions } from '../../src/graph/client.js';
import { createGraphCredential } from '../../src/graph/credentials.js';
import type { GraphError } from '../../src/graph/errors.js';

/** A tiny in-memory SecretProvider (the real ones live in src/secrets). */
export class MemorySecrets implements SecretProvider {
  readonly reads: string[] = [];
  readonly invalidated: string[] = [];
  constructor(private readonly values: Record<string, string> = {}) {}
  set(name: string, value: string): void {
    this.values[name] = value;
  }
  async get(name: string): Promise<string> {
    this.reads.push(name);
    const v = this.values[name];
    if (v === undefined) {
      throw new SecretNotFoundError(`secret '${name}' not found in the test secret store`, {
        secretName: name,
        source: 'memory',
      });
    }
    return v;
  }
  invalidate(name: string): void {
    this.invalidated.push(name);
  }
  describe(name: string): string {
    return `memory:${name}`;
  }
}

export async function startTestEmulator(options: Parameters<typeof startEmulator>[0] = {}): Promise<EmulatorHandle> {
  return startEmulator({ schemaDelayMs: 150, log: () => {}, ...options });
}

export async function admin<T = any>(info: EmulatorInfo, method: string, path: string, body?: unknown): Promise<T> {
  const { Agent } = await import('undici');
  const { readFileSync } = await import('node:fs');
  const dispatcher = new Agent({ connect: { ca: readFileSync(info.caCertPath!) } });
  const res = await fetch(`${info.adminUrl}/${path}`, {
    method,
    ...(body !== undefined ? { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } } : {}),
    dispatcher,
  });
  const text = await res.text();
  await dispatcher.close();
  if (!res.ok) throw new Error(`admin ${method} ${path} → ${res.status}: ${text}`);
  return (text ? JSON.parse(text) : undefined) as T;
}

export interface LoggedRequest {
  time: string;
  method: string;
  path: string;
  route: string;
  status: number;
  appId?: string;
  connectionId?: string;
  clientRequestId: string;
  requestId: string;
  fault?: string;
}

export async function requests(info: EmulatorInfo, query = 'graphOnly=true'): Promise<LoggedRequest[]> {
  return (await admin<{ value: LoggedRequest[] }>(info, 'GET', `requests?${query}`)).value;
}

export function environmentFor(info: EmulatorInfo, extra: Record<string, string> = {}): ConnectorEnvironment {
  return loadEnvironment({
    GRAPH_BASE_URL: info.baseUrl,
    GRAPH_AUTHORITY_HOST: info.authorityHost,
    GRAPH_TENANT_ID: info.tenantId,
    GRAPH_CLIENT_ID: info.clientId,
    GRAPH_CA_CERT_PATH: info.caCertPath!,
    ...extra,
  });
}

/** A client authenticated with the emulator's default app (client secret). */
export function clientFor(
  info: EmulatorInfo,
  options: Partial<GraphClientOptions> = {},
  env: ConnectorEnvironment = environmentFor(info),
  secrets: SecretProvider = new MemorySecrets({ 'graph-client-secret': info.clientSecret }),
): GraphConnectorClient {
  return new GraphConnectorClient({
    baseUrl: info.baseUrl,
    caCertPath: info.caCertPath!,
    credential: createGraphCredential(env, secrets),
    ...options,
  });
}

let n = 0;
/** A unique, valid connection id per test. */
export function connectionId(prefix = 'conn'): string {
  return `${prefix}${process.pid}${Date.now().toString(36)}${n++}`.replace(/[^A-Za-z0-9]/g, '').slice(0, 32);
}

/** The error a promise rejects with; fails the test if it resolves. */
export async function failure<E = GraphError>(p: Promise<unknown>): Promise<E> {
  return p.then(
    (v) => {
      throw new Error(`expected a failure, got ${JSON.stringify(v)}`);
    },
    (e: unknown) => e as E,
  );
}
