/**
 * The connector's side of the local Graph emulator: the environment that points the connector at it, and a
 * client for its admin API (request log, stored items, ACL search) that trusts its certificate.
 * Shared by `graph-connector run`, the tests and the benchmarks.
 */
import { readFile } from 'node:fs/promises';
import { Agent } from 'undici';
import type { EmulatorInfo } from '../emulator/index.js';

/** The GRAPH_* variables that make the connector use the emulator with its default dev app. */
export function graphEnvForEmulator(info: EmulatorInfo): Record<string, string> {
  return {
    GRAPH_BASE_URL: info.baseUrl,
    GRAPH_AUTHORITY_HOST: info.authorityHost,
    GRAPH_TENANT_ID: info.tenantId,
    GRAPH_CLIENT_ID: info.clientId,
    GRAPH_CREDENTIAL: 'clientSecret',
    GRAPH_CLIENT_SECRET: info.clientSecret,
    ...(info.caCertPath ? { GRAPH_CA_CERT_PATH: info.caCertPath } : {}),
  };
}

export type EmulatorAdmin = (<T = unknown>(path: string, init?: { method?: string; body?: unknown }) => Promise<T>) & {
  /** Close the connections of the admin client. */
  close(): Promise<void>;
};

/** A client for `{adminUrl}/…`: JSON in and out; a non-2xx answer throws with the status and body. */
export async function emulatorAdmin(info: EmulatorInfo): Promise<EmulatorAdmin> {
  const ca = info.caCertPath ? await readFile(info.caCertPath) : undefined;
  const dispatcher = ca ? new Agent({ connect: { ca } }) : undefined;
  const call = async <T = unknown>(path: string, init: { method?: string; body?: unknown } = {}): Promise<T> => {
    const res = await fetch(`${info.adminUrl}/${path.replace(/^\//, '')}`, {
      method: init.method ?? 'GET',
      ...(init.body !== undefined
        ? { body: JSON.stringify(init.body), headers: { 'content-type': 'application/json' } }
        : {}),
      ...(dispatcher ? { dispatcher } : {}),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`emulator admin ${path}: ${res.status} ${text.slice(0, 500)}`);
    return (text ? JSON.parse(text) : undefined) as T;
  };
  return Object.assign(call, { close: async () => dispatcher?.close() });
}
