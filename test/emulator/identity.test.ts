/** Identity: real @azure/identity credentials against the emulator, token claims, 401/403 and OwnedBy visibility. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ClientAssertionCredential,
  ClientCertificateCredential,
  ClientSecretCredential,
  ManagedIdentityCredential,
} from '@azure/identity';
import { generate } from 'selfsigned';
import { startEmulator, type EmulatorHandle } from '../../src/emulator/index.js';
import { bearer, call, graphClient, secretCredential, tokenFor, trust, type Tls, type Rec } from './helpers.js';

function claims(token: string): any {
  return JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString('utf8'));
}

describe('emulator identity', () => {
  let emu: EmulatorHandle;
  let tls: Tls;

  beforeAll(async () => {
    emu = await startEmulator({ schemaDelayMs: 50, log: () => {}, seed: 7 });
    tls = trust(emu);
    process.env.IDENTITY_ENDPOINT = emu.info.managedIdentityEndpoint;
    process.env.IDENTITY_HEADER = emu.info.managedIdentityHeader;
  });
  afterAll(async () => {
    delete process.env.IDENTITY_ENDPOINT;
    delete process.env.IDENTITY_HEADER;
    await emu?.close();
    await tls?.dispatcher.close();
  });

  it('publishes openid configuration and jwks for the tenant', async () => {
    const oc = await call(emu, tls, 'GET', `/${emu.info.tenantId}/v2.0/.well-known/openid-configuration`);
    expect(oc.status).toBe(200);
    expect(oc.body.token_endpoint).toBe(`${emu.info.authorityHost}/${emu.info.tenantId}/oauth2/v2.0/token`);
    const keys = await call(emu, tls, 'GET', new URL(oc.body.jwks_uri).pathname);
    expect(keys.body.keys[0]).toMatchObject({ kty: 'RSA', alg: 'RS256' });
    const wrongTenant = await call(
      emu,
      tls,
      'GET',
      `/00000000-0000-0000-0000-000000000000/v2.0/.well-known/openid-configuration`,
    );
    expect(wrongTenant.status).toBe(400);
    expect(wrongTenant.body.error_description).toMatch(/AADSTS90002/);
  });

  it('issues RS256 tokens with the documented claims to ClientSecretCredential', async () => {
    const token = await tokenFor(emu, tls);
    const [h] = token.split('.');
    expect(JSON.parse(Buffer.from(h!, 'base64url').toString()).alg).toBe('RS256');
    const c = claims(token);
    expect(c).toMatchObject({
      aud: 'https://graph.microsoft.com',
      tid: emu.info.tenantId,
      appid: emu.info.clientId,
      azp: emu.info.clientId,
      roles: ['ExternalConnection.ReadWrite.OwnedBy', 'ExternalItem.ReadWrite.OwnedBy'],
    });
    for (const k of ['iss', 'oid', 'sub', 'iat', 'nbf', 'exp']) expect(c[k]).toBeDefined();
    expect(c.exp - c.iat).toBeGreaterThan(3000);
  });

  it('rejects a wrong secret with AADSTS7000215 and an unknown app with AADSTS700016', async () => {
    await expect(
      secretCredential(emu, tls, emu.info.clientId, 'wrong').getToken('https://graph.microsoft.com/.default'),
    ).rejects.toThrow(/AADSTS7000215/);
    await expect(
      secretCredential(emu, tls, '11111111-2222-3333-4444-555555555555', 'x').getToken(
        'https://graph.microsoft.com/.default',
      ),
    ).rejects.toThrow(/AADSTS700016/);
    const raw = await call(emu, tls, 'POST', `/${emu.info.tenantId}/oauth2/v2.0/token`, undefined, {});
    expect(raw.status).toBe(400);
  });

  it('accepts ClientCertificateCredential for an app registered with that certificate, and rejects another key', async () => {
    const pems = await generate([{ name: 'commonName', value: 'connector-cert' }], {
      keySize: 2048,
      algorithm: 'sha256',
    });
    const other = await generate([{ name: 'commonName', value: 'intruder' }], { keySize: 2048, algorithm: 'sha256' });
    const reg = await call(emu, tls, 'POST', '/_emulator/apps', { displayName: 'cert app', certificatePem: pems.cert });
    expect(reg.status).toBe(201);
    expect(reg.body.clientSecret).toBeNull();
    const opts = {
      authorityHost: emu.info.authorityHost,
      disableInstanceDiscovery: true,
      additionalPolicies: [tls.policy],
    };
    const good = new ClientCertificateCredential(
      emu.info.tenantId,
      reg.body.clientId,
      { certificate: pems.private + pems.cert },
      opts,
    );
    const t = await good.getToken('https://graph.microsoft.com/.default');
    expect(claims(t.token)).toMatchObject({ appid: reg.body.clientId, appidacr: '2' });
    const bad = new ClientCertificateCredential(
      emu.info.tenantId,
      reg.body.clientId,
      { certificate: other.private + other.cert },
      opts,
    );
    await expect(bad.getToken('https://graph.microsoft.com/.default')).rejects.toThrow(/AADSTS700027/);
    // Signed by the wrong key but claiming the registered certificate's thumbprint.
    const forged = new ClientCertificateCredential(
      emu.info.tenantId,
      reg.body.clientId,
      { certificate: other.private + pems.cert },
      opts,
    );
    await expect(forged.getToken('https://graph.microsoft.com/.default')).rejects.toThrow(/AADSTS700027/);
  });

  it('serves the App Service managed identity endpoint to ManagedIdentityCredential', async () => {
    const mi = new ManagedIdentityCredential({ clientId: emu.info.managedIdentityClientId });
    const t = await mi.getToken('https://graph.microsoft.com/.default');
    expect(claims(t.token)).toMatchObject({
      aud: 'https://graph.microsoft.com',
      appid: emu.info.managedIdentityClientId,
      roles: ['ExternalConnection.ReadWrite.OwnedBy', 'ExternalItem.ReadWrite.OwnedBy'],
    });
    // The managed identity's token works on Graph directly (GRAPH_CREDENTIAL=managedIdentity).
    const viaMi = graphClient(emu, tls, mi);
    expect(
      await viaMi.api('/external/connections').post({ id: 'bymi', name: 'By MI', description: 'd' }),
    ).toMatchObject({
      state: 'draft',
    });
    const state = await call(emu, tls, 'GET', '/_emulator/state');
    expect(state.body.connections.find((c: Rec) => c.id === 'bymi').createdBy).toBe(emu.info.managedIdentityClientId);
    const res = await fetch(
      `${emu.info.managedIdentityEndpoint}?api-version=2019-08-01&resource=https://graph.microsoft.com`,
      {
        headers: { 'X-IDENTITY-HEADER': 'wrong' },
      },
    );
    expect(res.status).toBe(401);
    const unknown = new ManagedIdentityCredential({ clientId: '99999999-9999-9999-9999-999999999999' });
    await expect(unknown.getToken('https://graph.microsoft.com/.default')).rejects.toThrow();
  });

  it('exchanges a managed identity token for an app token through a federated credential (workload identity)', async () => {
    const mis = await call(emu, tls, 'GET', '/_emulator/managed-identities');
    const miObjectId = mis.body.value.find((m: Rec) => m.clientId === emu.info.managedIdentityClientId).objectId;
    const reg = await call(emu, tls, 'POST', '/_emulator/apps', {
      displayName: 'federated app',
      roles: ['ExternalConnection.ReadWrite.OwnedBy', 'ExternalItem.ReadWrite.OwnedBy'],
      federatedCredentials: [{ subject: miObjectId }],
    });
    const mi = new ManagedIdentityCredential({ clientId: emu.info.managedIdentityClientId });
    const getAssertion = async () => (await mi.getToken('api://AzureADTokenExchange/.default')).token;
    const opts = {
      authorityHost: emu.info.authorityHost,
      disableInstanceDiscovery: true,
      additionalPolicies: [tls.policy],
    };
    const fed = new ClientAssertionCredential(emu.info.tenantId, reg.body.clientId, getAssertion, opts);
    const t = await fed.getToken('https://graph.microsoft.com/.default');
    expect(claims(t.token)).toMatchObject({ appid: reg.body.clientId, aud: 'https://graph.microsoft.com' });

    // An app without a matching federated credential refuses the same assertion.
    const other = await call(emu, tls, 'POST', '/_emulator/apps', {
      federatedCredentials: [{ subject: 'someone-else' }],
    });
    const refused = new ClientAssertionCredential(emu.info.tenantId, other.body.clientId, getAssertion, opts);
    await expect(refused.getToken('https://graph.microsoft.com/.default')).rejects.toThrow(/AADSTS70021/);
    // A Graph-audience token is not an exchange assertion.
    const wrongAud = new ClientAssertionCredential(
      emu.info.tenantId,
      reg.body.clientId,
      async () => (await mi.getToken('https://graph.microsoft.com/.default')).token,
      opts,
    );
    await expect(wrongAud.getToken('https://graph.microsoft.com/.default')).rejects.toThrow(/AADSTS700212/);
  });

  it('answers Graph 401 InvalidAuthenticationToken without a token, for another audience, or when expired', async () => {
    const none = await call(emu, tls, 'GET', '/v1.0/external/connections');
    expect(none.status).toBe(401);
    expect(none.body.error.code).toBe('InvalidAuthenticationToken');
    expect(none.headers.get('request-id')).toBeTruthy();
    const storage = await secretCredential(emu, tls).getToken('https://storage.azure.com/.default');
    const aud = await call(emu, tls, 'GET', '/v1.0/external/connections', undefined, bearer(storage.token));
    expect(aud.status).toBe(401);
    expect(aud.body.error.message).toMatch(/audience/);
    const expired = await call(emu, tls, 'POST', '/_emulator/tokens', { lifetimeSeconds: -10 });
    const exp = await call(emu, tls, 'GET', '/v1.0/external/connections', undefined, bearer(expired.body.access_token));
    expect(exp.status).toBe(401);
    expect(exp.body.error.message).toMatch(/expired/);
    const tampered = (await tokenFor(emu, tls)).slice(0, -4) + 'AAAA';
    expect((await call(emu, tls, 'GET', '/v1.0/external/connections', undefined, bearer(tampered))).status).toBe(401);
  });

  it('answers 403 Authorization_RequestDenied naming the missing permission', async () => {
    const reg = await call(emu, tls, 'POST', '/_emulator/apps', { roles: ['ExternalConnection.Read.All'] });
    const token = await tokenFor(emu, tls, reg.body.clientId, reg.body.clientSecret);
    const res = await call(
      emu,
      tls,
      'POST',
      '/v1.0/external/connections',
      { id: 'forbidden1', name: 'x', description: 'd' },
      bearer(token),
    );
    expect(res.status).toBe(403);
    expect(res.body.error.code).toBe('Authorization_RequestDenied');
    expect(res.body.error.message).toMatch(/ExternalConnection\.ReadWrite\.OwnedBy/);
    const list = await call(emu, tls, 'GET', '/v1.0/external/connections', undefined, bearer(token));
    expect(list.status).toBe(200);
    const items = await call(emu, tls, 'GET', '/v1.0/external/connections/abc/items/x', undefined, bearer(token));
    expect(items.status).toBe(403);
    expect(items.body.error.message).toMatch(/ExternalItem\./);
  });

  it('shows OwnedBy apps only their own or authorized connections; .All apps see all', async () => {
    const owner = graphClient(emu, tls, secretCredential(emu, tls));
    await owner.api('/external/connections').post({ id: 'ownedone', name: 'Owned one', description: 'd' });
    const b = await call(emu, tls, 'POST', '/_emulator/apps', {});
    const bCred = new ClientSecretCredential(emu.info.tenantId, b.body.clientId, b.body.clientSecret, {
      authorityHost: emu.info.authorityHost,
      disableInstanceDiscovery: true,
      additionalPolicies: [tls.policy],
    });
    const other = graphClient(emu, tls, bCred);
    const listB = await other.api('/external/connections').get();
    expect(listB.value.map((c: Rec) => c.id)).not.toContain('ownedone');
    await expect(other.api('/external/connections/ownedone').get()).rejects.toMatchObject({ statusCode: 403 });
    await owner.api('/external/connections/ownedone').patch({ configuration: { authorizedAppIds: [b.body.clientId] } });
    expect((await other.api('/external/connections').get()).value.map((c: Rec) => c.id)).toContain('ownedone');
    expect((await other.api('/external/connections/ownedone').get()).id).toBe('ownedone');
    // Duplicate ids are tenant-wide: another app cannot reuse it either.
    await expect(
      other.api('/external/connections').post({ id: 'ownedone', name: 'x', description: 'd' }),
    ).rejects.toMatchObject({
      statusCode: 409,
    });
    const all = await call(emu, tls, 'POST', '/_emulator/apps', {
      roles: ['ExternalConnection.ReadWrite.All', 'ExternalItem.ReadWrite.All'],
    });
    const allToken = await tokenFor(emu, tls, all.body.clientId, all.body.clientSecret);
    await owner.api('/external/connections').post({ id: 'ownedtwo', name: 'Owned two', description: 'd' });
    const seen = await call(emu, tls, 'GET', '/v1.0/external/connections', undefined, bearer(allToken));
    expect(seen.body.value.map((c: Rec) => c.id)).toEqual(expect.arrayContaining(['ownedone', 'ownedtwo']));
  });
});
