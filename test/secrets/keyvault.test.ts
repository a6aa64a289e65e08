/**
 * KeyVaultSecretProvider against the Key Vault-compatible HTTPS fake, with the REAL SecretClient and the REAL
 * ManagedIdentityCredential / DefaultAzureCredential talking to a fake App Service managed identity endpoint.
 */
import { DefaultAzureCredential, ManagedIdentityCredential, type TokenCredential } from '@azure/identity';
import { SecretClient } from '@azure/keyvault-secrets';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { clearRegisteredSecrets, createMemoryLogger, redact } from '../../src/log.js';
import {
  createSecretProvider,
  KeyVaultSecretProvider,
  SecretAccessDeniedError,
  SecretDisabledError,
  SecretNotFoundError,
} from '../../src/secrets/index.js';
import {
  startFakeKeyVault,
  startFakeManagedIdentity,
  type FakeKeyVault,
  type FakeManagedIdentity,
} from '../fakes/keyvault.js';
import { setProcessEnv } from '../support/process-env.js';

let vault: FakeKeyVault;
let mi: FakeManagedIdentity;
let credential: TokenCredential;
let restoreEnv = () => {};

/**
 * The App Service MI variables (IDENTITY_ENDPOINT / IDENTITY_HEADER) must be set when the credential is
 * constructed AND when it fetches a token (MSAL picks the managed identity source at acquisition time), so
 * this file sets them for its whole run (vitest's forks pool gives each file its own process) and restores
 * them in afterAll.
 */
function withMiEnv<T>(make: () => T): T {
  return make();
}

beforeAll(async () => {
  mi = await startFakeManagedIdentity({ tenantId: 'tenant-1' });
  restoreEnv = setProcessEnv(mi.env());
  vault = await startFakeKeyVault({ verifyToken: (t) => mi.verify(t, 'https://vault.azure.net') });
  credential = withMiEnv(() => new ManagedIdentityCredential({ clientId: mi.clientId }));
});

afterAll(async () => {
  restoreEnv();
  await vault?.close();
  await mi?.close();
});

afterEach(() => {
  vault.denyAccess(false);
});

let counter = 0;
const uniqueName = (base: string) => `${base}-${++counter}-${Date.now().toString(36)}`;
const secretValue = () => `S3cr3t-${Math.random().toString(36).slice(2)}-${Date.now()}`;

function provider(
  options: {
    ttlMs?: number;
    now?: () => number;
    logger?: ReturnType<typeof createMemoryLogger>;
    credential?: TokenCredential;
  } = {},
) {
  return new KeyVaultSecretProvider({
    vaultUrl: vault.url,
    credential: options.credential ?? credential,
    identity: `the user-assigned managed identity with client id ${mi.clientId}`,
    ...(options.ttlMs !== undefined ? { ttlMs: options.ttlMs } : {}),
    ...(options.now ? { now: options.now } : {}),
    ...(options.logger ? { logger: options.logger } : {}),
    clientOptions: vault.clientOptions,
  });
}

describe('KeyVaultSecretProvider (real SecretClient + ManagedIdentityCredential against fakes)', () => {
  it('reads a secret through the 401 challenge with a managed identity token for https://vault.azure.net', async () => {
    const name = uniqueName('graph-client-secret');
    const value = secretValue();
    vault.setSecret(name, value);
    const p = provider();

    await expect(p.get(name)).resolves.toBe(value);

    const reqs = vault.requestsFor(name);
    expect(reqs.some((r) => r.status === 401 && !r.authorized)).toBe(true);
    expect(reqs.filter((r) => r.authorized && r.status === 200)).toHaveLength(1);
    const tokenReq = mi.requests.find((r) => r.status === 200);
    expect(tokenReq).toMatchObject({ resource: 'https://vault.azure.net', clientId: mi.clientId });
    expect(p.describe(name)).toContain(vault.url);
    expect(p.describe(name)).toContain(name);
  });

  it('serves a cached value without a request until the TTL passes', async () => {
    const name = uniqueName('cached');
    vault.setSecret(name, secretValue());
    let now = 1_000_000;
    const p = provider({ ttlMs: 60_000, now: () => now });

    const first = await p.get(name);
    const afterFirst = vault.requestsFor(name, { authorizedOnly: true }).length;
    expect(afterFirst).toBe(1);

    now += 59_000;
    await expect(p.get(name)).resolves.toBe(first);
    expect(vault.requestsFor(name, { authorizedOnly: true })).toHaveLength(afterFirst);

    now += 2_000; // past the TTL
    await expect(p.get(name)).resolves.toBe(first);
    expect(vault.requestsFor(name, { authorizedOnly: true })).toHaveLength(afterFirst + 1);
  });

  it('coalesces concurrent reads of one name into one request', async () => {
    const name = uniqueName('coalesced');
    const value = secretValue();
    vault.setSecret(name, value);
    const p = provider();

    const values = await Promise.all(Array.from({ length: 8 }, () => p.get(name)));

    expect(new Set(values)).toEqual(new Set([value]));
    expect(vault.requestsFor(name, { authorizedOnly: true })).toHaveLength(1);
  });

  it('missing secret: SecretNotFoundError names the secret, the vault and the az command to fix it', async () => {
    const name = uniqueName('does-not-exist');
    const err = await provider()
      .get(name)
      .catch((e: unknown) => e);

    expect(err).toBeInstanceOf(SecretNotFoundError);
    const msg = (err as Error).message;
    expect(msg).toContain(`'${name}'`);
    expect(msg).toContain(vault.url);
    expect(msg).toContain(`az keyvault secret set --vault-name`);
    expect(msg).toContain(`--name ${name}`);
    expect(vault.requestsFor(name, { authorizedOnly: true }).at(-1)).toMatchObject({
      status: 404,
      code: 'SecretNotFound',
    });
  });

  it('disabled secret: the error says it is disabled and how to enable it', async () => {
    const name = uniqueName('disabled');
    vault.setSecret(name, secretValue(), { enabled: false });
    const err = await provider()
      .get(name)
      .catch((e: unknown) => e);

    expect(err).toBeInstanceOf(SecretDisabledError);
    expect((err as Error).message).toMatch(/is disabled/);
    expect((err as Error).message).toContain('--enabled true');
    expect(vault.requestsFor(name, { authorizedOnly: true }).at(-1)).toMatchObject({
      status: 403,
      code: 'SecretDisabled',
    });
  });

  it('403 from RBAC: the error names the role needed and the identity', async () => {
    const name = uniqueName('denied');
    vault.setSecret(name, secretValue());
    vault.denyAccess(true);
    const err = await provider()
      .get(name)
      .catch((e: unknown) => e);

    expect(err).toBeInstanceOf(SecretAccessDeniedError);
    expect((err as Error).message).toContain('Key Vault Secrets User');
    expect((err as Error).message).toContain(mi.clientId);
  });

  it('a token for another audience is refused by the vault and reported as an authentication failure', async () => {
    const name = uniqueName('wrong-audience');
    vault.setSecret(name, secretValue());
    const graphToken: TokenCredential = {
      getToken: () => credential.getToken('https://graph.microsoft.com/.default'),
    };
    const err = await provider({ credential: graphToken })
      .get(name)
      .catch((e: unknown) => e);

    expect(err).toBeInstanceOf(SecretAccessDeniedError);
    expect((err as Error).message).toContain('Could not authenticate to Key Vault');
    expect(vault.requestsFor(name).every((r) => !r.authorized)).toBe(true);
  });

  it('rotation: after invalidate() the next read returns the new version', async () => {
    const name = uniqueName('rotated');
    const v1 = secretValue();
    vault.setSecret(name, v1);
    const p = provider({ ttlMs: 3_600_000 });
    await expect(p.get(name)).resolves.toBe(v1);

    const v2 = secretValue();
    vault.setSecret(name, v2);
    await expect(p.get(name)).resolves.toBe(v1); // still cached: no rotation seen without invalidate

    p.invalidate(name);
    await expect(p.get(name)).resolves.toBe(v2);
    expect(vault.versions(name)).toHaveLength(2);
  });

  it('rotation through the Key Vault API: SecretClient.setSecret (PUT) and updateSecretProperties (PATCH)', async () => {
    const name = uniqueName('rotated-api');
    const admin = new SecretClient(vault.url, credential, {
      disableChallengeResourceVerification: true,
      additionalPolicies: [vault.tls.policy],
    });
    const v1 = secretValue();
    const first = await admin.setSecret(name, v1);
    const p = provider({ ttlMs: 3_600_000 });
    await expect(p.get(name)).resolves.toBe(v1);

    const v2 = secretValue();
    const second = await admin.setSecret(name, v2);
    expect(second.properties.version).not.toBe(first.properties.version);
    p.invalidate(name);
    await expect(p.get(name)).resolves.toBe(v2);
    expect(vault.requestsFor(name, { authorizedOnly: true }).filter((r) => r.method === 'PUT')).toHaveLength(2);

    await admin.updateSecretProperties(name, second.properties.version!, { enabled: false });
    p.invalidate(name);
    await expect(p.get(name)).rejects.toBeInstanceOf(SecretDisabledError);
  });

  it('a failed read is not cached: the next get() tries the vault again', async () => {
    const name = uniqueName('retry-after-failure');
    const value = secretValue();
    vault.setSecret(name, value);
    const p = provider();
    vault.denyAccess(true);
    await expect(p.get(name)).rejects.toBeInstanceOf(SecretAccessDeniedError);
    vault.denyAccess(false);
    await expect(p.get(name)).resolves.toBe(value);
  });

  it('an aborted caller does not cancel the shared read of another caller', async () => {
    const name = uniqueName('abort');
    const value = secretValue();
    vault.setSecret(name, value);
    const p = provider();
    const controller = new AbortController();
    const aborted = p.get(name, { abortSignal: controller.signal });
    const other = p.get(name);
    controller.abort(new Error('caller gave up'));
    await expect(aborted).rejects.toThrow('caller gave up');
    await expect(other).resolves.toBe(value);
    expect(vault.requestsFor(name, { authorizedOnly: true })).toHaveLength(1);
  });

  it('invalidate() during a read: the stale read does not refill the cache', async () => {
    const name = uniqueName('race');
    const v1 = secretValue();
    vault.setSecret(name, v1);
    const p = provider({ ttlMs: 3_600_000 });
    const pending = p.get(name);
    p.invalidate(name);
    const v2 = secretValue();
    vault.setSecret(name, v2);
    await pending;
    await expect(p.get(name)).resolves.toBe(v2);
  });

  it('secret values never appear in logs or errors, and are registered for redaction on read', async () => {
    clearRegisteredSecrets();
    const logger = createMemoryLogger('debug');
    const name = uniqueName('logged');
    const value = secretValue();
    vault.setSecret(name, value);
    const p = provider({ logger });

    await p.get(name);
    await p.get(name);
    p.invalidate(name);
    await p.get(name);
    await p.get(uniqueName('missing')).catch((e: unknown) => logger.error('failed', { err: e }));
    logger.info(`a careless line containing ${value}`);

    expect(logger.lines.length).toBeGreaterThan(3);
    expect(logger.lines.join('\n')).not.toContain(value);
    expect(logger.lines.some((l) => l.includes('"secret read"') && l.includes(name) && l.includes('keyvault'))).toBe(
      true,
    );
    expect(redact(`x ${value} y`)).toBe('x [REDACTED] y');
  });
});

describe('createSecretProvider', () => {
  it('uses Key Vault with DefaultAzureCredential for the AZURE_CLIENT_ID managed identity when KEY_VAULT_URL is set', async () => {
    const name = uniqueName('factory');
    const value = secretValue();
    vault.setSecret(name, value);
    const logger = createMemoryLogger('debug');
    const p = withMiEnv(() =>
      createSecretProvider(
        { KEY_VAULT_URL: vault.url + '/', AZURE_CLIENT_ID: mi.clientId },
        {
          logger,
          clientOptions: vault.clientOptions,
        },
      ),
    );
    expect(p.kind).toBe('keyvault');
    expect(p.describe(name)).toContain(mi.clientId);
    await expect(p.get(name)).resolves.toBe(value);
    expect(logger.lines.join('\n')).not.toContain(value);
  });

  it('DefaultAzureCredential constructed with the MI env reaches the fake MI endpoint', async () => {
    const before = mi.requests.length;
    const cred = withMiEnv(() => new DefaultAzureCredential({ managedIdentityClientId: mi.clientId }));
    // A scope no other test asked for: MSAL's managed identity token cache is shared by the process.
    const token = await cred.getToken('https://example-resource.test/.default');
    expect(mi.verify(token.token, 'https://example-resource.test').ok).toBe(true);
    expect(mi.requests.length).toBeGreaterThan(before);
  });

  it('rejects a KEY_VAULT_URL that is not https, naming the variable', () => {
    expect(() => createSecretProvider({ KEY_VAULT_URL: 'http://kv.example' }, { credential })).toThrow(
      /KEY_VAULT_URL.*https/,
    );
    expect(() => createSecretProvider({ KEY_VAULT_URL: 'not a url' }, { credential })).toThrow(
      /KEY_VAULT_URL.*not a URL/,
    );
  });
});
