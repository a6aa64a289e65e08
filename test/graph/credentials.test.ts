import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EmulatorHandle } from '../../src/emulator/index.js';
import { GraphAuthError, GraphError } from '../../src/graph/errors.js';
import { certificateToPem, createGraphCredential, pfxToPem } from '../../src/graph/credentials.js';
import { GraphConnectorClient } from '../../src/graph/client.js';
import { admin, environmentFor, failure, MemorySecrets, requests, startTestEmulator } from './helpers.js';

let emu: EmulatorHandle;
let dir: string;
const savedEnv = { ...process.env };

beforeAll(async () => {
  emu = await startTestEmulator();
  dir = mkdtempSync(join(tmpdir(), 'gc-cred-'));
  // The App Service managed identity contract, read by @azure/identity's ManagedIdentityCredential.
  process.env.IDENTITY_ENDPOINT = emu.info.managedIdentityEndpoint;
  process.env.IDENTITY_HEADER = emu.info.managedIdentityHeader;
});
afterAll(async () => {
  process.env = savedEnv;
  await emu?.close();
  rmSync(dir, { recursive: true, force: true });
});

function clientWith(extraEnv: Record<string, string>, secrets: MemorySecrets) {
  const env = environmentFor(emu.info, extraEnv);
  const credential = createGraphCredential(env, secrets);
  return {
    credential,
    client: new GraphConnectorClient({ baseUrl: env.graph.baseUrl, caCertPath: env.graph.caCertPath!, credential }),
  };
}

/** The app id the emulator attributed the last Graph call to (from the token it validated). */
async function lastCaller(): Promise<string | undefined> {
  const log = await requests(emu.info);
  return log.at(-1)?.appId;
}

function openssl(...args: string[]): void {
  execFileSync('openssl', args, { stdio: 'pipe' });
}

function makeCertificate(name: string): { keyPath: string; certPath: string; cert: string } {
  const keyPath = join(dir, `${name}.key`);
  const certPath = join(dir, `${name}.crt`);
  openssl(
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    keyPath,
    '-out',
    certPath,
    '-days',
    '2',
    '-subj',
    `/CN=${name}`,
  );
  return { keyPath, certPath, cert: readFileSync(certPath, 'utf8') };
}

describe('Graph credentials against the emulator', () => {
  it('clientSecret: the secret comes from the SecretProvider and the token is accepted', async () => {
    const secrets = new MemorySecrets({ 'graph-client-secret': emu.info.clientSecret });
    const { client, credential } = clientWith({}, secrets);
    await client.listConnections();
    expect(await lastCaller()).toBe(emu.info.clientId);
    expect(secrets.reads).toEqual(['graph-client-secret']);
    expect(credential.description).toContain(emu.info.clientId);
    expect(credential.description).not.toContain(emu.info.clientSecret);
  });

  it('a wrong client secret fails with the credential, tenant, client and which secret to check', async () => {
    const secrets = new MemorySecrets({ 'my-secret': 'definitely-not-the-secret' });
    const { client } = clientWith({ GRAPH_CLIENT_SECRET_NAME: 'my-secret' }, secrets);
    const err = await failure<GraphAuthError>(client.listConnections());
    expect(err).toBeInstanceOf(GraphAuthError);
    expect(err.message).toContain('clientSecret');
    expect(err.message).toContain(emu.info.tenantId);
    expect(err.message).toContain(emu.info.clientId);
    expect(err.message).toMatch(/check that the secret named 'my-secret'/);
    expect(err.message).not.toContain('definitely-not-the-secret');
    // re-read on the next attempt (rotation): after fixing the secret the same credential works
    expect(secrets.invalidated).toContain('my-secret');
    secrets.set('my-secret', emu.info.clientSecret);
    await client.listConnections();
    expect(await lastCaller()).toBe(emu.info.clientId);
  });

  it('an app without the Graph roles gets a 403 that names the permission it lacks', async () => {
    const app = await admin(emu.info, 'POST', 'apps', { displayName: 'no roles', roles: [] });
    const secrets = new MemorySecrets({ 'graph-client-secret': app.clientSecret });
    const { client } = clientWith({ GRAPH_CLIENT_ID: app.clientId }, secrets);
    const err = await failure(client.listConnections());
    expect(err).toBeInstanceOf(GraphError);
    expect(err.status).toBe(403);
    expect(err.retryable).toBe(false);
    expect(err.missingPermission).toBe('ExternalConnection.ReadWrite.OwnedBy');
    const itemErr = await failure(client.getGroup('someconnection', 'g1'));
    expect(itemErr.missingPermission).toBe('ExternalItem.ReadWrite.OwnedBy');
  });

  it('certificate from a PEM file (key + certificate)', async () => {
    const { keyPath, cert } = makeCertificate('pemapp');
    const pemPath = join(dir, 'pemapp.pem');
    writeFileSync(pemPath, readFileSync(keyPath, 'utf8') + cert);
    const app = await admin(emu.info, 'POST', 'apps', { displayName: 'pem', certificatePem: cert });
    const { client } = clientWith(
      { GRAPH_CREDENTIAL: 'certificate', GRAPH_CLIENT_ID: app.clientId, GRAPH_CERTIFICATE_PATH: pemPath },
      new MemorySecrets(),
    );
    await client.listConnections();
    expect(await lastCaller()).toBe(app.clientId);
  });

  it('certificate from a password-protected PKCS#12 (OpenSSL 3 defaults: AES-256, PBKDF2) stored base64 as a secret', async () => {
    const { keyPath, certPath, cert } = makeCertificate('pfxapp');
    const pfxPath = join(dir, 'pfxapp.pfx');
    openssl('pkcs12', '-export', '-inkey', keyPath, '-in', certPath, '-out', pfxPath, '-passout', 'pass:pfx-pass-123');
    const app = await admin(emu.info, 'POST', 'apps', { displayName: 'pfx', certificatePem: cert });
    const secrets = new MemorySecrets({
      'graph-certificate': readFileSync(pfxPath).toString('base64'),
      'graph-certificate-password': 'pfx-pass-123',
    });
    const { client } = clientWith(
      {
        GRAPH_CREDENTIAL: 'certificate',
        GRAPH_CLIENT_ID: app.clientId,
        GRAPH_CERTIFICATE_PASSWORD_SECRET_NAME: 'graph-certificate-password',
      },
      secrets,
    );
    await client.listConnections();
    expect(await lastCaller()).toBe(app.clientId);
    expect(secrets.reads.sort()).toEqual(['graph-certificate', 'graph-certificate-password']);
    // the same PFX read from a file, and a wrong password explains itself
    expect(pfxToPem(readFileSync(pfxPath), 'pfx-pass-123')).toMatch(/BEGIN (RSA )?PRIVATE KEY[\s\S]*BEGIN CERTIFICATE/);
    expect(() => certificateToPem(readFileSync(pfxPath), 'wrong')).toThrow(/GRAPH_CERTIFICATE_PASSWORD_SECRET_NAME/);
  });

  it('managedIdentity: the user-assigned identity (AZURE_CLIENT_ID) calls Graph with its own roles', async () => {
    const { client } = clientWith(
      { GRAPH_CREDENTIAL: 'managedIdentity', AZURE_CLIENT_ID: emu.info.managedIdentityClientId },
      new MemorySecrets(),
    );
    await client.listConnections();
    expect(await lastCaller()).toBe(emu.info.managedIdentityClientId);
  });

  it('workloadIdentity: the managed identity token is the federated assertion of the Graph app (no secret)', async () => {
    const mis = await admin<{ value: { clientId: string; objectId: string }[] }>(emu.info, 'GET', 'managed-identities');
    const mi = mis.value.find((m) => m.clientId === emu.info.managedIdentityClientId)!;
    const app = await admin(emu.info, 'POST', 'apps', {
      displayName: 'federated',
      federatedCredentials: [{ subject: mi.objectId }],
    });
    const secrets = new MemorySecrets();
    const { client } = clientWith(
      { GRAPH_CREDENTIAL: 'workloadIdentity', GRAPH_CLIENT_ID: app.clientId, AZURE_CLIENT_ID: mi.clientId },
      secrets,
    );
    await client.listConnections();
    expect(await lastCaller()).toBe(app.clientId);
    expect(secrets.reads).toEqual([]);
    const tokenCalls = (await requests(emu.info, 'route=token')).length;
    expect(tokenCalls).toBeGreaterThan(0);
  });

  it('workloadIdentity without a federated credential says what to configure', async () => {
    const app = await admin(emu.info, 'POST', 'apps', {
      displayName: 'unfederated',
      federatedCredentials: [{ subject: 'someone-else' }],
    });
    const { client } = clientWith(
      {
        GRAPH_CREDENTIAL: 'workloadIdentity',
        GRAPH_CLIENT_ID: app.clientId,
        AZURE_CLIENT_ID: emu.info.managedIdentityClientId,
      },
      new MemorySecrets(),
    );
    const err = await failure<GraphAuthError>(client.listConnections());
    expect(err).toBeInstanceOf(GraphAuthError);
    expect(err.message).toMatch(/federated identity credential/);
    expect(err.message).toContain(app.clientId);
  });
});
