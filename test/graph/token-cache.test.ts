/**
 * How the connector's Graph token is cached, as docs/security.md states it: one credential per process keeps its
 * token in MSAL's in-memory cache and reuses it until 5 minutes (300 s, MSAL's token renewal offset) before it
 * expires; closer to expiry every request gets a new one. Pinned with the emulator's token lifetime and its log of
 * token requests (the real @azure/identity client-credentials flow).
 * Bug class prevented: documentation that promises a token cache the code does not have.
 */
import { afterAll, describe, expect, it } from 'vitest';
import type { EmulatorHandle } from '../../src/emulator/index.js';
import { GraphConnectorClient } from '../../src/graph/client.js';
import { createGraphCredential } from '../../src/graph/credentials.js';
import { environmentFor, MemorySecrets, requests, startTestEmulator } from './helpers.js';

const started: EmulatorHandle[] = [];
afterAll(async () => {
  for (const e of started) await e.close();
});

/** Token requests the emulator answered while a client made three Graph calls, for tokens of `lifetime` seconds. */
async function tokenRequestsFor(lifetime: number): Promise<number> {
  const emu = await startTestEmulator({ tokenLifetimeSeconds: lifetime });
  started.push(emu);
  const env = environmentFor(emu.info);
  const credential = createGraphCredential(env, new MemorySecrets({ 'graph-client-secret': emu.info.clientSecret }));
  const client = new GraphConnectorClient({
    baseUrl: env.graph.baseUrl,
    caCertPath: env.graph.caCertPath!,
    credential,
  });
  for (let i = 0; i < 3; i++) await client.listConnections();
  const log = await requests(emu.info, 'graphOnly=false');
  return log.filter((e) => e.route === 'token').length;
}

describe('Graph token caching', () => {
  it('a token with more than 5 minutes left is reused: one token request for three calls', async () => {
    expect(await tokenRequestsFor(3599)).toBe(1);
    expect(await tokenRequestsFor(301 + 10)).toBe(1);
  });

  it('a token within 5 minutes of expiry is not reused: a token request per call', async () => {
    expect(await tokenRequestsFor(290)).toBe(3);
  });
});
