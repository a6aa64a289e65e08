/**
 * Secrets from Azure Key Vault, read with the function's managed identity (or any TokenCredential).
 *
 * - Values are cached for `ttlMs` (default 5 minutes); `invalidate(name)` drops one so the next read goes to
 *   the vault (call it after a downstream 401 with that secret: the secret may have been rotated).
 * - Concurrent reads of one name share one request.
 * - Every value is registered with the log redactor the moment it is read, and never logged.
 */
import type { TokenCredential } from '@azure/identity';
import { raceAbort, type OperationOptions } from '../core/async.js';
import { isTransientStatus } from '../core/errors.js';
import { ConfigError, problem } from '../config/problems.js';
import { SecretClient, type SecretClientOptions } from '@azure/keyvault-secrets';
import { registerSecret, silentLogger, type Logger } from '../log.js';
import { SecretAccessDeniedError, SecretDisabledError, SecretNotFoundError, SecretProviderError } from './errors.js';
import type { SecretProvider } from './types.js';

export const DEFAULT_SECRET_TTL_MS = 5 * 60_000;

export interface KeyVaultSecretProviderOptions {
  /** e.g. `https://kv-abc123.vault.azure.net/` */
  vaultUrl: string;
  credential: TokenCredential;
  /** Who the credential is, for error messages (e.g. `user-assigned managed identity (client id …)`). */
  identity?: string;
  /** Cache lifetime of a value in milliseconds (default 5 minutes; 0 disables caching but keeps coalescing). */
  ttlMs?: number;
  logger?: Logger;
  /** Clock in ms (tests). */
  now?: () => number;
  /**
   * Extra SecretClient options. Tests pass `disableChallengeResourceVerification: true` and a policy trusting
   * the fake's CA; production passes nothing.
   */
  clientOptions?: SecretClientOptions;
}

interface CacheEntry {
  value: string;
  version: string | undefined;
  expiresAt: number;
}

interface InFlight {
  promise: Promise<string>;
  epoch: number;
}

export class KeyVaultSecretProvider implements SecretProvider {
  readonly vaultUrl: string;
  private readonly client: SecretClient;
  private readonly identity: string;
  private readonly ttlMs: number;
  private readonly logger: Logger;
  private readonly now: () => number;
  private readonly cache = new Map<string, CacheEntry>();
  private readonly inFlight = new Map<string, InFlight>();
  /** Bumped by invalidate(): a read that started before an invalidation must not fill the cache. */
  private readonly epochs = new Map<string, number>();

  constructor(options: KeyVaultSecretProviderOptions) {
    this.vaultUrl = normaliseVaultUrl(options.vaultUrl);
    this.identity = options.identity ?? 'the configured Azure credential';
    this.ttlMs = Math.max(0, options.ttlMs ?? DEFAULT_SECRET_TTL_MS);
    this.logger = (options.logger ?? silentLogger).child({ component: 'secrets' });
    this.now = options.now ?? Date.now;
    this.client = new SecretClient(this.vaultUrl, options.credential, options.clientOptions);
  }

  describe(name: string): string {
    return `Key Vault ${this.vaultUrl} secret '${name}' (read as ${this.identity})`;
  }

  async get(name: string, options: OperationOptions = {}): Promise<string> {
    options.abortSignal?.throwIfAborted();
    const cached = this.cache.get(name);
    if (cached && cached.expiresAt > this.now()) {
      this.logger.debug('secret served from cache', { name, source: 'keyvault' });
      return cached.value;
    }
    let flight = this.inFlight.get(name);
    if (!flight) {
      const epoch = this.epochs.get(name) ?? 0;
      const promise = this.fetch(name, epoch).finally(() => {
        if (this.inFlight.get(name)?.promise === promise) this.inFlight.delete(name);
      });
      flight = { promise, epoch };
      this.inFlight.set(name, flight);
    }
    // Other readers share the request: an abort ends this wait only, never the read.
    return raceAbort(flight.promise, options.abortSignal);
  }

  invalidate(name: string): void {
    this.cache.delete(name);
    this.inFlight.delete(name);
    this.epochs.set(name, (this.epochs.get(name) ?? 0) + 1);
    this.logger.info('secret invalidated; the next read goes to Key Vault', { name, vault: this.vaultUrl });
  }

  private async fetch(name: string, epoch: number): Promise<string> {
    const started = this.now();
    let value: string | undefined;
    let version: string | undefined;
    try {
      const secret = await this.client.getSecret(name);
      value = secret.value;
      version = secret.properties.version;
    } catch (e) {
      throw this.translate(name, e);
    }
    if (value === undefined) {
      throw new SecretNotFoundError(
        `Key Vault ${this.vaultUrl} returned secret '${name}' without a value. Fix: set it with ` +
          `az keyvault secret set --vault-name ${vaultName(this.vaultUrl)} --name ${name} --value <value>`,
        { secretName: name, source: this.vaultUrl },
      );
    }
    registerSecret(value);
    if ((this.epochs.get(name) ?? 0) === epoch && this.ttlMs > 0) {
      this.cache.set(name, { value, version, expiresAt: this.now() + this.ttlMs });
    }
    this.logger.info('secret read', {
      name,
      source: 'keyvault',
      vault: this.vaultUrl,
      version,
      ms: this.now() - started,
    });
    return value;
  }

  private translate(name: string, e: unknown): SecretProviderError {
    const err = e as { statusCode?: unknown; code?: unknown; message?: unknown; name?: unknown };
    const status = typeof err.statusCode === 'number' ? err.statusCode : undefined;
    const code = typeof err.code === 'string' ? err.code : undefined;
    const detail = typeof err.message === 'string' ? (err.message.split(/\r?\n/)[0] ?? '') : String(e);
    const vault = vaultName(this.vaultUrl);
    if (status === 404 || code === 'SecretNotFound') {
      return new SecretNotFoundError(
        `Secret '${name}' was not found in Key Vault ${this.vaultUrl}. Fix: create it with ` +
          `az keyvault secret set --vault-name ${vault} --name ${name} --value <value> ` +
          `(or --file <path> for a certificate), or point the *_SECRET_NAME setting at the right name.`,
        { secretName: name, source: this.vaultUrl, cause: e },
      );
    }
    if (status === 403 && /disabled/i.test(detail)) {
      return new SecretDisabledError(
        `Secret '${name}' in Key Vault ${this.vaultUrl} is disabled (Key Vault: ${detail}). Fix: enable it with ` +
          `az keyvault secret set-attributes --vault-name ${vault} --name ${name} --enabled true, ` +
          `or set a new enabled version with az keyvault secret set.`,
        { secretName: name, source: this.vaultUrl, cause: e },
      );
    }
    if (status === 403) {
      return new SecretAccessDeniedError(
        `Access to secret '${name}' in Key Vault ${this.vaultUrl} was denied for ${this.identity} ` +
          `(Key Vault: ${detail}). Fix: assign the role 'Key Vault Secrets User' ` +
          `(4633458b-17de-408a-b874-0445c86b69e6) on the vault to that identity, e.g. az role assignment create ` +
          `--role "Key Vault Secrets User" --assignee <principal id> --scope <vault resource id>; role ` +
          `assignments can take a few minutes to apply. The vault must use Azure RBAC (enableRbacAuthorization).`,
        { secretName: name, source: this.vaultUrl, cause: e },
      );
    }
    if (status === 401 || /credential|token|ManagedIdentity|authenticat/i.test(String(err.name) + detail)) {
      return new SecretAccessDeniedError(
        `Could not authenticate to Key Vault ${this.vaultUrl} as ${this.identity} to read secret '${name}': ${detail}. ` +
          `Fix: in Azure, check AZURE_CLIENT_ID is the client id of the function's user-assigned identity; ` +
          `locally, run az login (DefaultAzureCredential) or unset KEY_VAULT_URL to read secrets from the environment.`,
        { secretName: name, source: this.vaultUrl, cause: e },
      );
    }
    return new SecretProviderError(
      `Reading secret '${name}' from Key Vault ${this.vaultUrl} failed${status ? ` with HTTP ${status}` : ''}: ${detail}. ` +
        `Fix: check KEY_VAULT_URL and network access to the vault; the read is retried on the next call.`,
      {
        secretName: name,
        source: this.vaultUrl,
        retryable: status === undefined || isTransientStatus(status),
        cause: e,
      },
    );
  }
}

/** `https://kv-x.vault.azure.net/` → `https://kv-x.vault.azure.net`; rejects anything but an https URL. */
export function normaliseVaultUrl(raw: string): string {
  const invalid = (why: string) =>
    new ConfigError(
      [problem('KEY_VAULT_URL', `'${raw}' ${why}`, 'set it to the vault URI, e.g. https://kv-name.vault.azure.net/')],
      'the environment',
    );
  let u: URL;
  try {
    u = new URL(raw.trim());
  } catch {
    throw invalid('is not a URL');
  }
  if (u.protocol !== 'https:') throw invalid('must use https');
  return `${u.protocol}//${u.host}`;
}

/** The vault name for az CLI hints: the first DNS label of the host (`kv-x` of `kv-x.vault.azure.net`). */
function vaultName(vaultUrl: string): string {
  const host = new URL(vaultUrl).hostname;
  return /^[\d.]+$/.test(host) ? '<vault-name>' : (host.split('.')[0] ?? host);
}
