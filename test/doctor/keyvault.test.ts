/**
 * doctor with secrets in Key Vault: the real SecretClient (through createSecretProvider) against the Key Vault
 * fake, read with a real ManagedIdentityCredential against the managed identity fake; Graph is the emulator.
 * runDoctor is called directly because the fake vault's CA is handed to the SecretClient as a client option.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startEmulator, type EmulatorHandle } from '../../src/emulator/index.js';
import { runDoctor, type DoctorReport } from '../../src/doctor/index.js';
import { createSecretProvider } from '../../src/secrets/index.js';
import {
  startFakeKeyVault,
  startFakeManagedIdentity,
  type FakeKeyVault,
  type FakeManagedIdentity,
} from '../fakes/keyvault.js';
import { writeExampleDefinition } from '../support/definition.js';
import { setProcessEnv } from '../support/process-env.js';

let emu: EmulatorHandle;
let vault: FakeKeyVault;
let mi: FakeManagedIdentity;
let dir: string;
let restoreEnv = () => {};

beforeAll(async () => {
  emu = await startEmulator({ log: () => {} });
  mi = await startFakeManagedIdentity({ tenantId: 'tenant-1' });
  // ManagedIdentityCredential reads the App Service MI variables from process.env (this file's own process).
  restoreEnv = setProcessEnv(mi.env());
  vault = await startFakeKeyVault({ verifyToken: (t) => mi.verify(t, 'https://vault.azure.net') });
  dir = mkdtempSync(join(tmpdir(), 'gc-doctor-kv-'));
});

afterAll(async () => {
  restoreEnv();
  await vault?.close();
  await mi?.close();
  await emu?.close();
  rmSync(dir, { recursive: true, force: true });
});

let n = 0;
function setup(secretName: string) {
  const id = `kv${process.pid.toString(36)}${Date.now().toString(36)}${n++}`;
  const config = writeExampleDefinition(dir, id);
  const env: NodeJS.ProcessEnv = {
    CONNECTOR_CONFIG: config,
    GRAPH_BASE_URL: emu.info.baseUrl,
    GRAPH_AUTHORITY_HOST: emu.info.authorityHost,
    GRAPH_TENANT_ID: emu.info.tenantId,
    GRAPH_CLIENT_ID: emu.info.clientId,
    GRAPH_CREDENTIAL: 'clientSecret',
    GRAPH_CLIENT_SECRET_NAME: secretName,
    GRAPH_CA_CERT_PATH: emu.info.caCertPath!,
    KEY_VAULT_URL: vault.url,
    AZURE_CLIENT_ID: mi.clientId,
    AzureWebJobsStorage: inject('storageConnectionString'),
    LEDGER_TABLE_PREFIX: id,
  };
  return {
    env,
    // A fresh provider per run (no cache carried over), trusting the fake vault's CA.
    doctor: () =>
      runDoctor({ env, secrets: createSecretProvider(env, { clientOptions: vault.clientOptions }), timeoutMs: 10_000 }),
  };
}

const by = (r: DoctorReport, id: string) => r.checks.find((c) => c.id === id)!;

describe('doctor with Key Vault secrets', () => {
  it('names the vault, the secret and the identity reading it; the token works with the vault value', async () => {
    const name = `graph-client-secret-${n}`;
    vault.setSecret(name, emu.info.clientSecret);
    const { doctor } = setup(name);
    const report = await doctor();
    const secrets = by(report, 'secrets');
    expect(secrets.status, secrets.message).toBe('pass');
    expect(secrets.details?.join('\n')).toContain(`found in Key Vault ${vault.url}`);
    expect(secrets.details?.join('\n')).toContain(`secret '${name}'`);
    expect(secrets.details?.join('\n')).toContain(mi.clientId);
    expect(by(report, 'graph-token').status).toBe('pass');
    expect(by(report, 'graph-token').message).toContain(`secret '${name}' from Key Vault ${vault.url}`);
    expect(vault.requestsFor(name, { authorizedOnly: true }).length).toBeGreaterThan(0);
    expect(JSON.stringify(report)).not.toContain(emu.info.clientSecret);
  });

  it('a secret missing from the vault: the secrets line names vault and secret with the fix; the token is skipped', async () => {
    const name = `absent-secret-${n}`;
    const { doctor } = setup(name);
    const report = await doctor();
    const secrets = by(report, 'secrets');
    expect(secrets.status).toBe('fail');
    expect(secrets.message).toContain(`'${name}'`);
    expect(secrets.message).toContain(vault.url);
    expect(secrets.fix).toMatch(/create it/i);
    expect(by(report, 'graph-token')).toMatchObject({ status: 'skip', message: 'skipped: secrets failed' });
  });

  it('an identity without access to the vault: the secrets line says access is denied and which role to assign', async () => {
    const name = `denied-secret-${n}`;
    vault.setSecret(name, 'irrelevant-value-123456');
    vault.denyAccess(true);
    try {
      const report = await setup(name).doctor();
      const secrets = by(report, 'secrets');
      expect(secrets.status).toBe('fail');
      expect(secrets.message).toContain(`'${name}'`);
      expect(secrets.fix).toContain('Key Vault Secrets User');
      expect(JSON.stringify(report)).not.toContain('irrelevant-value-123456');
    } finally {
      vault.denyAccess(false);
    }
  });
});
