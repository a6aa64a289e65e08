import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createMemoryLogger, redact } from '../../src/log.js';
import {
  createSecretProvider,
  EnvSecretProvider,
  SecretNotFoundError,
  SecretProviderError,
  secretEnvName,
} from '../../src/secrets/index.js';

const dir = (settings?: unknown) => {
  const d = mkdtempSync(join(tmpdir(), 'gc-secrets-'));
  if (settings !== undefined) {
    writeFileSync(join(d, 'local.settings.json'), typeof settings === 'string' ? settings : JSON.stringify(settings));
  }
  return d;
};
const value = () => `local-${Math.random().toString(36).slice(2)}-${Date.now()}`;

describe('EnvSecretProvider', () => {
  it('maps secret names to environment variable names', () => {
    expect(secretEnvName('graph-client-secret')).toBe('GRAPH_CLIENT_SECRET');
    expect(secretEnvName('source-api-key')).toBe('SOURCE_API_KEY');
  });

  it('reads graph-client-secret from GRAPH_CLIENT_SECRET and logs the source, not the value', async () => {
    const v = value();
    const logger = createMemoryLogger('debug');
    const p = new EnvSecretProvider({ env: { GRAPH_CLIENT_SECRET: v }, cwd: dir(), logger });

    await expect(p.get('graph-client-secret')).resolves.toBe(v);

    const log = logger.lines.join('\n');
    expect(log).toContain('GRAPH_CLIENT_SECRET');
    expect(log).toContain('graph-client-secret');
    expect(log).not.toContain(v);
    expect(p.describe('graph-client-secret')).toBe('environment variable GRAPH_CLIENT_SECRET');
    expect(redact(`value=${v}`)).toBe('value=[REDACTED]'); // registered on read
  });

  it('falls back to local.settings.json Values (variable name or secret name); the environment wins', async () => {
    const fromFile = value();
    const byName = value();
    const cwd = dir({ IsEncrypted: false, Values: { GRAPH_CLIENT_SECRET: fromFile, 'source-token': byName } });
    const logger = createMemoryLogger('debug');

    const p = new EnvSecretProvider({ env: {}, cwd, logger });
    await expect(p.get('graph-client-secret')).resolves.toBe(fromFile);
    await expect(p.get('source-token')).resolves.toBe(byName);
    expect(p.describe('graph-client-secret')).toContain('local.settings.json Values.GRAPH_CLIENT_SECRET');
    expect(logger.lines.join('\n')).toContain('local.settings.json');
    expect(logger.lines.join('\n')).not.toContain(fromFile);

    const fromEnv = value();
    const q = new EnvSecretProvider({ env: { GRAPH_CLIENT_SECRET: fromEnv }, cwd });
    await expect(q.get('graph-client-secret')).resolves.toBe(fromEnv);
  });

  it('missing: SecretNotFoundError names the variable, the file and the fixes', async () => {
    const cwd = dir();
    const err = await new EnvSecretProvider({ env: {}, cwd }).get('graph-client-secret').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SecretNotFoundError);
    const msg = (err as Error).message;
    expect(msg).toContain("'graph-client-secret'");
    expect(msg).toContain('GRAPH_CLIENT_SECRET');
    expect(msg).toContain(join(cwd, 'local.settings.json'));
    expect(msg).toContain('KEY_VAULT_URL');
  });

  it('invalid local.settings.json is reported with the file name', async () => {
    const cwd = dir('{ "Values": { oops ');
    const err = await new EnvSecretProvider({ env: {}, cwd }).get('graph-client-secret').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SecretProviderError);
    expect((err as Error).message).toContain('local.settings.json is not valid JSON');
  });

  it('invalidate() re-reads local.settings.json (a rotated local secret is picked up)', async () => {
    const cwd = dir({ Values: { GRAPH_CLIENT_SECRET: 'first-value-1' } });
    const p = new EnvSecretProvider({ env: {}, cwd });
    await expect(p.get('graph-client-secret')).resolves.toBe('first-value-1');
    writeFileSync(
      join(cwd, 'local.settings.json'),
      JSON.stringify({ Values: { GRAPH_CLIENT_SECRET: 'second-value-2' } }),
    );
    await expect(p.get('graph-client-secret')).resolves.toBe('first-value-1');
    p.invalidate('graph-client-secret');
    await expect(p.get('graph-client-secret')).resolves.toBe('second-value-2');
  });

  it('createSecretProvider picks the environment when KEY_VAULT_URL is not set', async () => {
    const v = value();
    const p = createSecretProvider({ GRAPH_CLIENT_SECRET: v }, { cwd: dir() });
    expect(p.kind).toBe('env');
    await expect(p.get('graph-client-secret')).resolves.toBe(v);
    expect(createSecretProvider({ KEY_VAULT_URL: '  ' }, { cwd: dir() }).kind).toBe('env');
  });
});
