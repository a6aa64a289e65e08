/**
 * Secrets for a local run: the secret `graph-client-secret` comes from the environment variable
 * `GRAPH_CLIENT_SECRET` (name upper-cased, `-` → `_`), or from `Values` in `local.settings.json`
 * (under the same variable name, or the secret's own name). The log says which source served each
 * name, never the value.
 */
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { OperationOptions } from '../core/async.js';
import { registerSecret, silentLogger, type Logger } from '../log.js';
import { SecretNotFoundError, SecretProviderError } from './errors.js';
import type { SecretProvider } from './types.js';

export interface EnvSecretProviderOptions {
  env?: NodeJS.ProcessEnv;
  /** Directory holding local.settings.json (default: process.cwd()). */
  cwd?: string;
  /** Path of the settings file (default `<cwd>/local.settings.json`). */
  localSettingsPath?: string;
  logger?: Logger;
}

/** `graph-client-secret` → `GRAPH_CLIENT_SECRET`. */
export function secretEnvName(name: string): string {
  return name.toUpperCase().replace(/[^A-Z0-9_]/g, '_');
}

type Source = { kind: 'env'; variable: string } | { kind: 'localSettings'; key: string; file: string };

export class EnvSecretProvider implements SecretProvider {
  private readonly env: NodeJS.ProcessEnv;
  private readonly settingsPath: string;
  private readonly logger: Logger;
  private settings: Record<string, unknown> | undefined | null = null; // null = not read yet
  private readonly announced = new Set<string>();

  constructor(options: EnvSecretProviderOptions = {}) {
    this.env = options.env ?? process.env;
    this.settingsPath = resolve(options.localSettingsPath ?? join(options.cwd ?? process.cwd(), 'local.settings.json'));
    this.logger = (options.logger ?? silentLogger).child({ component: 'secrets' });
  }

  describe(name: string): string {
    const found = this.lookup(name);
    if (!found) {
      return `not set: environment variable ${secretEnvName(name)} or local.settings.json Values (${this.settingsPath})`;
    }
    return found.source.kind === 'env'
      ? `environment variable ${found.source.variable}`
      : `${found.source.file} Values.${found.source.key}`;
  }

  async get(name: string, options: OperationOptions = {}): Promise<string> {
    options.abortSignal?.throwIfAborted();
    const found = this.lookup(name);
    if (!found) {
      const variable = secretEnvName(name);
      throw new SecretNotFoundError(
        `Secret '${name}' is not set: looked for environment variable ${variable} and Values.${variable} in ` +
          `${this.settingsPath}. Fix: export ${variable}=<value>, or add "${variable}": "<value>" to Values in ` +
          `local.settings.json, or set KEY_VAULT_URL to read secrets from Key Vault.`,
        { secretName: name, source: 'environment/local.settings.json' },
      );
    }
    registerSecret(found.value);
    if (!this.announced.has(name)) {
      this.announced.add(name);
      this.logger.info('secret read', {
        name,
        source: found.source.kind === 'env' ? 'environment' : 'local.settings.json',
        from: found.source.kind === 'env' ? found.source.variable : `Values.${found.source.key}`,
      });
    }
    return found.value;
  }

  invalidate(name: string): void {
    // Environment variables cannot change under us, but the settings file can: read it again next time.
    this.settings = null;
    this.announced.delete(name);
  }

  private lookup(name: string): { value: string; source: Source } | undefined {
    const variable = secretEnvName(name);
    const fromEnv = this.env[variable];
    if (fromEnv) return { value: fromEnv, source: { kind: 'env', variable } };
    const values = this.readSettings();
    for (const key of [variable, name]) {
      const v = values?.[key];
      if (typeof v === 'string' && v !== '')
        return { value: v, source: { kind: 'localSettings', key, file: this.settingsPath } };
    }
    return undefined;
  }

  private readSettings(): Record<string, unknown> | undefined {
    if (this.settings !== null) return this.settings;
    let text: string;
    try {
      text = readFileSync(this.settingsPath, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return (this.settings = undefined);
      throw new SecretProviderError(
        `Cannot read ${this.settingsPath}: ${(e as Error).message}. Fix: check the file's permissions or remove it.`,
        { secretName: '*', source: this.settingsPath },
      );
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (e) {
      throw new SecretProviderError(
        `${this.settingsPath} is not valid JSON (${(e as Error).message}). Fix: correct the file ` +
          `(see local.settings.example.json).`,
        { secretName: '*', source: this.settingsPath },
      );
    }
    const values = (parsed as { Values?: unknown } | null)?.Values;
    if (values !== undefined && (values === null || typeof values !== 'object' || Array.isArray(values))) {
      throw new SecretProviderError(
        `${this.settingsPath}: "Values" must be an object of string settings. Fix: see local.settings.example.json.`,
        { secretName: '*', source: this.settingsPath },
      );
    }
    this.settings = (values as Record<string, unknown> | undefined) ?? {};
    return this.settings;
  }
}
