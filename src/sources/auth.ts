/**
 * REST source authentication. Every secret is read by NAME through deps.secrets and registered with the
 * log redactor the moment it is read; tokens are cached until shortly before they expire.
 */
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { Agent } from 'undici';
import type { Dispatcher } from 'undici';
import type { OperationOptions } from '../core/async.js';
import { parseRetryAfter, sleep } from '../core/async.js';
import { registerSecret } from '../log.js';
import type { AuthProvider } from './http.js';
import type { AuthDefinition } from './rest/definition.js';
import type { SourceDeps } from './types.js';
import { displayUrl, SourceError } from './types.js';

async function secret(deps: SourceDeps, name: string, signal?: AbortSignal): Promise<string> {
  let value: string;
  try {
    value = await deps.secrets.get(name, { abortSignal: signal });
  } catch (e) {
    throw new SourceError(
      'SourceAuth',
      `cannot read secret "${name}" (${deps.secrets.describe(name)}): ${(e as Error).message}`,
      {
        cause: e,
      },
    );
  }
  registerSecret(value);
  return value;
}

interface TokenResponse {
  access_token?: unknown;
  expires_in?: unknown;
  refresh_token?: unknown;
  error?: unknown;
  error_description?: unknown;
}

async function tokenRequest(
  deps: SourceDeps,
  tokenUrl: string,
  form: Record<string, string>,
  headers: Record<string, string>,
  dispatcher: Dispatcher | undefined,
  signal?: AbortSignal,
): Promise<{ accessToken: string; expiresAt: number; refreshToken?: string }> {
  const doFetch = deps.fetch ?? fetch;
  const shown = displayUrl(tokenUrl);
  let res: Response | undefined;
  // Token endpoints throttle too: up to 3 attempts on 429/5xx and network errors, honouring Retry-After (≤ 60 s).
  for (let attempt = 1; ; attempt++) {
    let failure: unknown;
    try {
      res = await doFetch(tokenUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json', ...headers },
        body: new URLSearchParams(form).toString(),
        signal: signal ? AbortSignal.any([signal, AbortSignal.timeout(30_000)]) : AbortSignal.timeout(30_000),
        ...(dispatcher ? { dispatcher } : {}),
      });
    } catch (e) {
      if (signal?.aborted)
        throw new SourceError('SourceAborted', `token request to ${shown} aborted`, { url: shown, cause: e });
      failure = e;
    }
    const transient = failure !== undefined || (res !== undefined && (res.status === 429 || res.status >= 500));
    if (!transient || attempt >= 3) {
      if (failure !== undefined) {
        throw new SourceError('SourceAuth', `token request to ${shown} failed: ${(failure as Error).message}`, {
          url: shown,
          retryable: true,
          cause: failure,
        });
      }
      break;
    }
    const retryAfter = res ? parseRetryAfter(res.headers.get('retry-after')) : undefined;
    const wait = retryAfter ?? 500 * 2 ** (attempt - 1);
    if (wait > 60_000) break;
    await res?.body?.cancel();
    deps.logger.warn('token request will be retried', { url: shown, status: res?.status, attempt, waitMs: wait });
    try {
      await sleep(wait, { abortSignal: signal });
    } catch (e) {
      throw new SourceError('SourceAborted', `token request to ${shown} aborted`, { url: shown, cause: e });
    }
  }
  if (!res) throw new SourceError('SourceAuth', `token request to ${shown} failed`, { url: shown });
  let body: TokenResponse;
  try {
    body = (await res.json()) as TokenResponse;
  } catch {
    body = {};
  }
  if (!res.ok || typeof body.access_token !== 'string') {
    const why =
      typeof body.error === 'string'
        ? `${body.error}${typeof body.error_description === 'string' ? ` (${body.error_description})` : ''}`
        : 'no access_token in the response';
    throw new SourceError(
      'SourceAuth',
      `token endpoint ${shown} returned ${res.status}: ${why}; check source.auth and its secrets`,
      {
        status: res.status,
        url: shown,
      },
    );
  }
  registerSecret(body.access_token);
  const now = (deps.now ?? (() => new Date()))().getTime();
  const expiresIn = typeof body.expires_in === 'number' ? body.expires_in : Number(body.expires_in ?? 3600);
  // Refresh a minute early (or at half-life for very short tokens).
  const margin = Math.min(60, (Number.isFinite(expiresIn) ? expiresIn : 3600) / 2);
  const refreshToken = typeof body.refresh_token === 'string' && body.refresh_token ? body.refresh_token : undefined;
  if (refreshToken) registerSecret(refreshToken);
  return {
    accessToken: body.access_token,
    expiresAt: now + ((Number.isFinite(expiresIn) ? expiresIn : 3600) - margin) * 1000,
    refreshToken,
  };
}

/** Builds the TLS dispatcher for an extra CA and/or a client certificate. */
async function makeDispatcher(
  deps: SourceDeps,
  caPath: string | undefined,
  auth: AuthDefinition | undefined,
  signal?: AbortSignal,
): Promise<Dispatcher | undefined> {
  const connect: { ca?: string; pfx?: Buffer; passphrase?: string } = {};
  if (caPath) {
    const file = resolve(deps.baseDir, caPath);
    try {
      connect.ca = await readFile(file, 'utf8');
    } catch (e) {
      throw new SourceError('SourceConfig', `cannot read source.caPath ${file}: ${(e as Error).message}`, { cause: e });
    }
  }
  if (auth?.type === 'clientCertificate') {
    if (auth.pfxSecret) {
      const b64 = await secret(deps, auth.pfxSecret, signal);
      connect.pfx = Buffer.from(b64.replace(/\s+/g, ''), 'base64');
    } else if (auth.pfxPath) {
      const file = resolve(deps.baseDir, auth.pfxPath);
      try {
        connect.pfx = await readFile(file);
      } catch (e) {
        throw new SourceError('SourceConfig', `cannot read source.auth.pfxPath ${file}: ${(e as Error).message}`, {
          cause: e,
        });
      }
    }
    if (auth.passphraseSecret) connect.passphrase = await secret(deps, auth.passphraseSecret, signal);
  }
  if (connect.ca === undefined && connect.pfx === undefined) return undefined;
  try {
    return new Agent({ connect });
  } catch (e) {
    throw new SourceError(
      'SourceAuth',
      `cannot load the client certificate: ${(e as Error).message}; check the PKCS#12 and its passphrase`,
      {
        cause: e,
      },
    );
  }
}

export function createAuthProvider(
  auth: AuthDefinition | undefined,
  deps: SourceDeps,
  options: { caPath?: string } = {},
): AuthProvider {
  let dispatcherPromise: Promise<Dispatcher | undefined> | undefined;
  const dispatcher = (signal?: AbortSignal) => {
    dispatcherPromise ??= makeDispatcher(deps, options.caPath, auth, signal).catch((e: unknown) => {
      dispatcherPromise = undefined;
      throw e;
    });
    return dispatcherPromise;
  };
  const now = () => (deps.now ?? (() => new Date()))().getTime();
  const staticNames: string[] = [];

  const a = auth ?? { type: 'none' as const };
  let headers: (signal?: AbortSignal) => Promise<Record<string, string>>;
  let onUnauthorized: () => Promise<boolean>;

  switch (a.type) {
    case 'none':
    case 'clientCertificate':
      headers = async () => ({});
      onUnauthorized = async () => false;
      break;
    case 'basic':
      staticNames.push(a.passwordSecret, ...(a.usernameSecret ? [a.usernameSecret] : []));
      headers = async (signal) => {
        const user = a.usernameSecret ? await secret(deps, a.usernameSecret, signal) : (a.username ?? '');
        const pass = await secret(deps, a.passwordSecret, signal);
        const token = Buffer.from(`${user}:${pass}`).toString('base64');
        registerSecret(token);
        return { authorization: `Basic ${token}` };
      };
      onUnauthorized = async () => {
        staticNames.forEach((n) => deps.secrets.invalidate(n));
        return true;
      };
      break;
    case 'bearer':
      staticNames.push(a.tokenSecret);
      headers = async (signal) => ({ authorization: `Bearer ${await secret(deps, a.tokenSecret, signal)}` });
      onUnauthorized = async () => {
        deps.secrets.invalidate(a.tokenSecret);
        return true;
      };
      break;
    case 'apiKey':
      headers = async (signal) => ({
        [a.header.toLowerCase()]: `${a.prefix ?? ''}${await secret(deps, a.keySecret, signal)}`,
      });
      onUnauthorized = async () => {
        deps.secrets.invalidate(a.keySecret);
        return true;
      };
      break;
    case 'oauth2ClientCredentials': {
      let cached: { accessToken: string; expiresAt: number } | undefined;
      let pending: Promise<{ accessToken: string; expiresAt: number }> | undefined;
      const fetchToken = async (signal?: AbortSignal) => {
        const clientSecret = await secret(deps, a.clientSecretSecret, signal);
        const form: Record<string, string> = { grant_type: 'client_credentials' };
        const h: Record<string, string> = {};
        if (a.clientAuth === 'basic') {
          h.authorization = `Basic ${Buffer.from(`${encodeURIComponent(a.clientId)}:${encodeURIComponent(clientSecret)}`).toString('base64')}`;
          registerSecret(h.authorization.slice(6));
        } else {
          form.client_id = a.clientId;
          form.client_secret = clientSecret;
        }
        if (a.scope) form.scope = a.scope;
        if (a.audience) form.audience = a.audience;
        return tokenRequest(deps, a.tokenUrl, form, h, await dispatcher(signal), signal);
      };
      headers = async (signal) => {
        if (!cached || cached.expiresAt <= now()) {
          pending ??= fetchToken(signal).finally(() => (pending = undefined));
          cached = await pending;
        }
        return { authorization: `Bearer ${cached.accessToken}` };
      };
      onUnauthorized = async () => {
        cached = undefined;
        deps.secrets.invalidate(a.clientSecretSecret);
        return true;
      };
      break;
    }
    case 'oauth2RefreshToken': {
      let cached: { accessToken: string; expiresAt: number } | undefined;
      let pending: Promise<{ accessToken: string; expiresAt: number }> | undefined;
      let currentRefresh: string | undefined; // the latest rotated value (authoritative once set)
      const fetchToken = async (signal?: AbortSignal) => {
        const refresh = currentRefresh ?? (await secret(deps, a.refreshTokenSecret, signal));
        const form: Record<string, string> = {
          grant_type: 'refresh_token',
          refresh_token: refresh,
          client_id: a.clientId,
        };
        if (a.clientSecretSecret) form.client_secret = await secret(deps, a.clientSecretSecret, signal);
        if (a.scope) form.scope = a.scope;
        const t = await tokenRequest(deps, a.tokenUrl, form, {}, await dispatcher(signal), signal);
        if (t.refreshToken && t.refreshToken !== refresh) {
          currentRefresh = t.refreshToken;
          if (deps.secretWriter) {
            try {
              await deps.secretWriter(a.refreshTokenSecret, t.refreshToken, { abortSignal: signal });
              deps.secrets.invalidate(a.refreshTokenSecret);
              deps.logger.info('stored the rotated refresh token', { secret: a.refreshTokenSecret });
            } catch (e) {
              deps.logger.error('could not store the rotated refresh token; it is kept in memory only', {
                secret: a.refreshTokenSecret,
                error: (e as Error).message,
              });
            }
          } else {
            deps.logger.warn(
              'the refresh token was rotated but no secret writer is configured: the new token is kept in memory only and is lost on restart',
              { secret: a.refreshTokenSecret },
            );
          }
        }
        return t;
      };
      headers = async (signal) => {
        if (!cached || cached.expiresAt <= now()) {
          pending ??= fetchToken(signal).finally(() => (pending = undefined));
          cached = await pending;
        }
        return { authorization: `Bearer ${cached.accessToken}` };
      };
      onUnauthorized = async () => {
        cached = undefined;
        return true;
      };
      break;
    }
  }

  return {
    async prepare(options?: OperationOptions | AbortSignal) {
      const signal = options instanceof AbortSignal ? options : options?.abortSignal;
      const [h, d] = await Promise.all([headers(signal), dispatcher(signal)]);
      return { headers: h, dispatcher: d };
    },
    onUnauthorized,
  };
}
