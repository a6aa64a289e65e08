/**
 * The secret provider the connector uses: Key Vault when `KEY_VAULT_URL` is set (in Azure: always, read with
 * the function's user-assigned managed identity), else environment variables / local.settings.json.
 */
import { DefaultAzureCredential, type TokenCredential } from '@azure/identity';
import type { SecretClientOptions } from '@azure/keyvault-secrets';
import { silentLogger, type Logger } from '../log.js';
import { EnvSecretProvider } from './env.js';
import { KeyVaultSecretProvider } from './keyvault.js';
import type { SecretProvider } from './types.js';

export type { SecretProvider } from './types.js';
export { SecretProviderError, SecretNotFoundError, SecretDisabledError, SecretAccessDeniedError } from './errors.js';
export { KeyVaultSecretProvider, DEFAULT_SECRET_TTL_MS, normaliseVaultUrl } from './keyvault.js';
export type { KeyVaultSecretProviderOptions } from './keyvault.js';
export { EnvSecretProvider, secretEnvName } from './env.js';
export type { EnvSecretProviderOptions } from './env.js';

export interface CreateSecretProviderOptions {
  /** Credential for Key Vault; default DefaultAzureCredential (managed identity `AZURE_CLIENT_ID` in Azure). */
  credential?: TokenCredential;
  logger?: Logger;
  /** Where local.settings.json is looked for (env provider). Default process.cwd(). */
  cwd?: string;
  /** Key Vault cache lifetime in ms (default 5 minutes). */
  ttlMs?: number;
  /** Extra SecretClient options (tests: CA trust policy, disableChallengeResourceVerification). */
  clientOptions?: SecretClientOptions;
}

/** Pick the provider from the environment: Key Vault when KEY_VAULT_URL is set, otherwise env/local.settings.json. */
export function createSecretProvider(
  env: NodeJS.ProcessEnv,
  options: CreateSecretProviderOptions = {},
): SecretProvider & { readonly kind: 'keyvault' | 'env' } {
  const logger = options.logger ?? silentLogger;
  const vaultUrl = env.KEY_VAULT_URL?.trim();
  if (vaultUrl) {
    const clientId = env.AZURE_CLIENT_ID?.trim();
    const identity = clientId
      ? `the user-assigned managed identity with client id ${clientId} (AZURE_CLIENT_ID)`
      : 'DefaultAzureCredential (no AZURE_CLIENT_ID: your az/azd login locally, or a system-assigned identity)';
    const credential =
      options.credential ??
      (clientId ? new DefaultAzureCredential({ managedIdentityClientId: clientId }) : new DefaultAzureCredential());
    const provider = new KeyVaultSecretProvider({
      vaultUrl,
      credential,
      identity,
      logger,
      ...(options.ttlMs !== undefined ? { ttlMs: options.ttlMs } : {}),
      ...(options.clientOptions ? { clientOptions: options.clientOptions } : {}),
    });
    logger.info('secrets come from Key Vault', { vault: provider.vaultUrl, identity });
    return Object.assign(provider, { kind: 'keyvault' as const });
  }
  const provider = new EnvSecretProvider({ env, logger, ...(options.cwd ? { cwd: options.cwd } : {}) });
  logger.debug('secrets come from the environment / local.settings.json (KEY_VAULT_URL is not set)');
  return Object.assign(provider, { kind: 'env' as const });
}
