import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { createServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { generate } from 'selfsigned';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RestSourceDefinition } from '../../src/config/source-definition.js';
import { createMemoryLogger, silentLogger } from '../../src/log.js';
import type { SourceDeps } from '../../src/sources/index.js';
import { parseRetryAfter } from '../../src/core/async.js';
import { createSource, nextFromLinkHeader, SourceError } from '../../src/sources/index.js';
import { collect, memorySecrets } from './helpers.js';

const rows = (from: number, n: number) => Array.from({ length: n }, (_, i) => ({ id: `R${from + i}` }));
const TOTAL = 5;

interface Hit {
  path: string;
  query: URLSearchParams;
  headers: IncomingMessage['headers'];
  body: string;
  at: number;
}
const hits: Hit[] = [];
const state = {
  refreshToken: 'rt-1',
  rotations: 0,
  tokens: 0,
  accessTokens: new Set<string>(),
  throttled: false,
  tokenThrottled: false,
};

function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
}

async function handler(req: IncomingMessage, res: ServerResponse) {
  const url = new URL(req.url ?? '/', 'http://x');
  let body = '';
  for await (const c of req) body += String(c);
  hits.push({ path: url.pathname, query: url.searchParams, headers: req.headers, body, at: Date.now() });
  const q = url.searchParams;
  const auth = req.headers.authorization ?? '';
  switch (url.pathname) {
    case '/odata': {
      const skip = Number(q.get('skip') ?? 0);
      const next = skip + 2 < TOTAL ? `/odata?skip=${skip + 2}` : undefined;
      return json(res, 200, {
        value: rows(skip, Math.min(2, TOTAL - skip)),
        ...(next ? { '@odata.nextLink': skip === 0 ? next : `http://${req.headers.host}${next}` } : {}),
      });
    }
    case '/link': {
      const p = Number(q.get('p') ?? 0);
      const headers: Record<string, string> =
        p < 2 ? { link: `<http://${req.headers.host}/link?p=${p + 1}>; rel="next", </link?p=0>; rel="first"` } : {};
      return json(res, 200, { data: { items: rows(p * 2, p < 2 ? 2 : 1) } }, headers);
    }
    case '/page': {
      const page = Number(q.get('page'));
      const size = Number(q.get('size'));
      return json(res, 200, rows((page - 1) * size, Math.max(0, Math.min(size, TOTAL - (page - 1) * size))));
    }
    case '/offset': {
      const offset = Number(q.get('offset'));
      const limit = Number(q.get('limit'));
      return json(res, 200, { results: rows(offset, Math.max(0, Math.min(limit, TOTAL - offset))) });
    }
    case '/basic':
      return auth === `Basic ${Buffer.from('svc:pa55word!').toString('base64')}`
        ? json(res, 200, { value: rows(0, 1) })
        : json(res, 401, { error: 'bad basic' });
    case '/bearer':
      return auth === 'Bearer token-2' ? json(res, 200, { value: rows(0, 1) }) : json(res, 401, { error: 'expired' });
    case '/apikey':
      return req.headers['x-api-key'] === 'key 12345' ? json(res, 200, { value: rows(0, 1) }) : json(res, 403, {});
    case '/token': {
      const form = new URLSearchParams(body);
      if (form.get('scope') === 'throttle-once' && !state.tokenThrottled) {
        state.tokenThrottled = true;
        return json(res, 429, { error: 'temporarily_unavailable' }, { 'retry-after': '1' });
      }
      state.tokens++;
      if (form.get('grant_type') === 'client_credentials') {
        if (form.get('client_id') !== 'app' || form.get('client_secret') !== 'cc-secret-value') {
          return json(res, 401, { error: 'invalid_client', error_description: 'bad secret' });
        }
        const t = `cc-token-${state.tokens}`;
        state.accessTokens.add(t);
        return json(res, 200, { access_token: t, token_type: 'Bearer', expires_in: 3600 });
      }
      if (form.get('grant_type') === 'refresh_token') {
        if (form.get('refresh_token') !== state.refreshToken) return json(res, 400, { error: 'invalid_grant' });
        state.rotations++;
        state.refreshToken = `rt-${state.rotations + 1}`;
        const t = `rt-access-${state.tokens}`;
        state.accessTokens.add(t);
        return json(res, 200, { access_token: t, expires_in: 120, refresh_token: state.refreshToken });
      }
      return json(res, 400, { error: 'unsupported_grant_type' });
    }
    case '/protected':
      return state.accessTokens.has(auth.replace(/^Bearer /, ''))
        ? json(res, 200, { value: rows(0, 2) })
        : json(res, 401, { error: 'no token' });
    case '/throttle':
      if (!state.throttled) {
        state.throttled = true;
        return json(res, 429, { error: 'slow down' }, { 'retry-after': '1' });
      }
      return json(res, 200, { value: rows(0, 1) });
    case '/throttle-long':
      return json(res, 429, {}, { 'retry-after': '3600' });
    case '/broken':
      if (q.get('p') === '2') return json(res, 500, { error: 'db down' });
      return json(res, 200, { value: rows(0, 2), '@odata.nextLink': '/broken?p=2' });
    case '/loop':
      return json(res, 200, { value: rows(0, 1), '@odata.nextLink': '/loop' });
    case '/inc':
      return json(res, 200, { value: [{ id: 'I1', filter: q.get('$filter'), top: q.get('$top') }] });
    case '/groups':
      return json(res, 200, {
        value: [{ id: 'payments', displayName: 'Payments', members: [{ id: 'u1', type: 'user' }] }],
      });
    default:
      return json(res, 404, {});
  }
}

let server: Server;
let base = '';
beforeAll(async () => {
  server = createServer((req, res) => void handler(req, res));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

function deps(over: Partial<SourceDeps> = {}, secrets: Record<string, string> = {}): SourceDeps {
  return { secrets: memorySecrets(secrets), logger: silentLogger, baseDir: process.cwd(), ...over };
}
const rest = (over: Partial<RestSourceDefinition>): RestSourceDefinition => ({
  type: 'rest',
  url: `${base}/odata`,
  keyField: 'id',
  retry: { maxAttempts: 3, baseDelayMs: 10 },
  ...over,
});
const keys = async (def: RestSourceDefinition, d = deps()) => (await collect(createSource(def, d))).map((r) => r.key);

describe('paging styles', () => {
  it('follows @odata.nextLink (relative and absolute)', async () => {
    expect(await keys(rest({ url: `${base}/odata` }))).toEqual(['R0', 'R1', 'R2', 'R3', 'R4']);
  });
  it('follows Link: rel="next" with a nested records path', async () => {
    expect(await keys(rest({ url: `${base}/link`, paging: { type: 'link' }, recordsPath: 'data.items' }))).toEqual([
      'R0',
      'R1',
      'R2',
      'R3',
      'R4',
    ]);
  });
  it('walks page numbers until a short page', async () => {
    const def = rest({
      url: `${base}/page`,
      recordsPath: '',
      paging: { type: 'page', sizeParam: 'size', pageSize: 2 },
    });
    expect(await keys(def)).toEqual(['R0', 'R1', 'R2', 'R3', 'R4']);
  });
  it('walks offsets until a short page', async () => {
    const def = rest({ url: `${base}/offset`, recordsPath: 'results', paging: { type: 'offset', pageSize: 2 } });
    expect(await keys(def)).toEqual(['R0', 'R1', 'R2', 'R3', 'R4']);
  });
  it('stops a paging loop with an error instead of spinning', async () => {
    await expect(keys(rest({ url: `${base}/loop` }))).rejects.toThrow(/same next page twice/);
  });
  it('parses Link headers and Retry-After values', () => {
    expect(nextFromLinkHeader('<https://a/x?p=2>; rel="next"', 'https://a/x')).toBe('https://a/x?p=2');
    expect(nextFromLinkHeader('</y>; rel="prev", </z>; rel="next last"', 'https://a/x')).toBe('https://a/z');
    expect(nextFromLinkHeader('</y>; rel="prev"', 'https://a/x')).toBeUndefined();
    expect(parseRetryAfter('2')).toBe(2000);
    expect(parseRetryAfter(new Date(Date.now() + 5000).toUTCString())).toBeGreaterThan(3000);
  });
});

describe('auth modes', () => {
  it('basic: reads username and password secret by name', async () => {
    const d = deps({}, { 'crm-password': 'pa55word!' });
    expect(
      await keys(
        rest({ url: `${base}/basic`, auth: { type: 'basic', username: 'svc', passwordSecret: 'crm-password' } }),
        d,
      ),
    ).toEqual(['R0']);
  });

  it('bearer: on 401 the secret is invalidated and re-read once (rotation)', async () => {
    const secrets = memorySecrets({ 'crm-token': 'token-1' });
    secrets.invalidate = (name) => {
      secrets.invalidated.push(name);
      secrets.values['crm-token'] = 'token-2'; // the rotated value is what the next read sees
    };
    const d = deps({ secrets });
    expect(await keys(rest({ url: `${base}/bearer`, auth: { type: 'bearer', tokenSecret: 'crm-token' } }), d)).toEqual([
      'R0',
    ]);
    expect(secrets.invalidated).toEqual(['crm-token']);
  });

  it('bearer: a still-bad token fails with an auth SourceError that names what to check, without the secret', async () => {
    const d = deps({}, { 'crm-token': 'token-bad-value' });
    const err = await keys(
      rest({ url: `${base}/bearer`, auth: { type: 'bearer', tokenSecret: 'crm-token' } }),
      d,
    ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SourceError);
    expect((err as SourceError).code).toBe('SourceAuth');
    expect((err as SourceError).message).toMatch(/401.*source\.auth/);
    expect((err as SourceError).message).not.toContain('token-bad-value');
  });

  it('apiKey header with a prefix', async () => {
    const d = deps({}, { 'crm-key': '12345' });
    const def = rest({
      url: `${base}/apikey`,
      auth: { type: 'apiKey', header: 'X-Api-Key', prefix: 'key ', keySecret: 'crm-key' },
    });
    expect(await keys(def, d)).toEqual(['R0']);
  });

  it('OAuth2 client credentials: one token, cached across pages and reads', async () => {
    const before = state.tokens;
    const d = deps({}, { 'cc-secret': 'cc-secret-value' });
    const source = createSource(
      rest({
        url: `${base}/protected`,
        auth: {
          type: 'oauth2ClientCredentials',
          tokenUrl: `${base}/token`,
          clientId: 'app',
          clientSecretSecret: 'cc-secret',
          scope: 'api',
        },
      }),
      d,
    );
    expect((await collect(source)).length).toBe(2);
    expect((await collect(source)).length).toBe(2);
    expect(state.tokens - before).toBe(1);
    const tokenHit = hits.filter((h) => h.path === '/token').at(-1)!;
    expect(new URLSearchParams(tokenHit.body).get('scope')).toBe('api');
  });

  it('OAuth2 client credentials: a throttled token endpoint is retried after Retry-After', async () => {
    const start = hits.length;
    const d = deps({}, { 'cc-secret': 'cc-secret-value' });
    const def = rest({
      url: `${base}/protected`,
      auth: {
        type: 'oauth2ClientCredentials',
        tokenUrl: `${base}/token`,
        clientId: 'app',
        clientSecretSecret: 'cc-secret',
        scope: 'throttle-once',
      },
    });
    expect((await collect(createSource(def, d))).length).toBe(2);
    const tokenHits = hits.slice(start).filter((h) => h.path === '/token');
    expect(tokenHits.length).toBe(2);
    expect(tokenHits[1]!.at - tokenHits[0]!.at).toBeGreaterThanOrEqual(990);
  });

  it('OAuth2 client credentials: a rejected client fails with the OAuth error, not the secret', async () => {
    const d = deps({}, { 'cc-secret': 'wrong-secret-value' });
    const def = rest({
      url: `${base}/protected`,
      auth: {
        type: 'oauth2ClientCredentials',
        tokenUrl: `${base}/token`,
        clientId: 'app',
        clientSecretSecret: 'cc-secret',
      },
    });
    const err = (await keys(def, d).catch((e: unknown) => e)) as SourceError;
    expect(err.code).toBe('SourceAuth');
    expect(err.message).toContain('invalid_client');
    expect(err.message).not.toContain('wrong-secret-value');
  });

  it('OAuth2 refresh token: a rotated refresh token is written back through the secret writer', async () => {
    state.refreshToken = 'rt-1';
    state.rotations = 0;
    const written: [string, string][] = [];
    const secrets = memorySecrets({ 'crm-refresh': 'rt-1' });
    const d = deps({
      secrets,
      secretWriter: async (name, value) => {
        written.push([name, value]);
        secrets.values[name] = value;
      },
    });
    const def = rest({
      url: `${base}/protected`,
      auth: {
        type: 'oauth2RefreshToken',
        tokenUrl: `${base}/token`,
        clientId: 'app',
        refreshTokenSecret: 'crm-refresh',
      },
    });
    expect((await collect(createSource(def, d))).length).toBe(2);
    expect(written).toEqual([['crm-refresh', 'rt-2']]);
    // A new process (a fresh source) reads the stored token; the old one would be refused.
    expect((await collect(createSource(def, d))).length).toBe(2);
    expect(written.at(-1)).toEqual(['crm-refresh', 'rt-3']);
  });

  it('OAuth2 refresh token without a writer: keeps the rotated token in memory and warns', async () => {
    state.refreshToken = 'rt-1';
    state.rotations = 0;
    const logger = createMemoryLogger('debug');
    let now = Date.parse('2025-01-01T00:00:00Z');
    const d = deps({ logger, now: () => new Date(now) }, { 'crm-refresh': 'rt-1' });
    const def = rest({
      url: `${base}/protected`,
      auth: {
        type: 'oauth2RefreshToken',
        tokenUrl: `${base}/token`,
        clientId: 'app',
        refreshTokenSecret: 'crm-refresh',
      },
    });
    const source = createSource(def, d);
    expect((await collect(source)).length).toBe(2);
    now += 10 * 60_000; // access token expired → refresh again with the rotated token from memory
    expect((await collect(source)).length).toBe(2);
    expect(state.rotations).toBe(2);
    const warns = logger.lines.filter((l) => l.includes('"warn"') && l.includes('kept in memory only'));
    expect(warns.length).toBe(2);
    expect(logger.lines.join('\n')).not.toMatch(/rt-[123]/);
  });
});

describe('retries and failures', () => {
  it('honours Retry-After on 429 (never sooner) and then succeeds', async () => {
    state.throttled = false;
    const start = hits.length;
    expect(await keys(rest({ url: `${base}/throttle` }))).toEqual(['R0']);
    const mine = hits.slice(start).filter((h) => h.path === '/throttle');
    expect(mine.length).toBe(2);
    expect(mine[1]!.at - mine[0]!.at).toBeGreaterThanOrEqual(990);
  });

  it('fails at once when Retry-After exceeds the retry budget', async () => {
    const err = (await keys(rest({ url: `${base}/throttle-long`, retry: { budgetSeconds: 5 } })).catch(
      (e: unknown) => e,
    )) as SourceError;
    expect(err).toBeInstanceOf(SourceError);
    expect(err.code).toBe('SourceThrottled');
    expect(err.message).toMatch(/budget/);
  });

  it('a 500 mid-way raises SourceError after the records already read (no silent truncation)', async () => {
    const seen: string[] = [];
    const err = await (async () => {
      try {
        for await (const r of createSource(
          rest({ url: `${base}/broken`, retry: { maxAttempts: 2, baseDelayMs: 10 } }),
          deps(),
        ).read()) {
          seen.push(r.key);
        }
      } catch (e) {
        return e as SourceError;
      }
    })();
    expect(seen).toEqual(['R0', 'R1']);
    expect(err).toBeInstanceOf(SourceError);
    expect(err?.status).toBe(500);
    expect(err?.message).toMatch(/after 2 attempts/);
    expect(hits.filter((h) => h.path === '/broken' && h.query.get('p') === '2').length).toBeGreaterThanOrEqual(2);
  });

  it('a refused connection is a network SourceError', async () => {
    const err = (await keys(rest({ url: 'http://127.0.0.1:9/x', retry: { maxAttempts: 1 } })).catch(
      (e: unknown) => e,
    )) as SourceError;
    expect(err.code).toBe('SourceNetwork');
  });
});

describe('incremental and groups', () => {
  it('takes the cursor before reading (now minus overlap) and applies the query template', async () => {
    const now = new Date('2025-06-01T12:00:00Z');
    const source = createSource(
      rest({
        url: `${base}/inc`,
        query: { $top: '50' },
        incremental: { query: { $filter: 'lastModified ge {cursor}' }, overlapSeconds: 600 },
      }),
      deps({ now: () => now }),
    );
    expect(source.capabilities.incremental).toBe(true);
    const cursor = await source.readCursor!();
    expect(cursor).toBe('2025-06-01T11:50:00.000Z');
    const [full] = await collect(source);
    expect(full!.data).toMatchObject({ filter: null, top: '50' });
    const [inc] = await collect(source, { cursor });
    expect(inc!.data).toMatchObject({ filter: 'lastModified ge 2025-06-01T11:50:00.000Z', top: '50' });
  });

  it('reads groups from a REST endpoint with the source auth', async () => {
    const d = deps({}, { 'crm-key': '12345' });
    const source = createSource(
      rest({
        url: `${base}/apikey`,
        auth: { type: 'apiKey', header: 'X-Api-Key', keySecret: 'crm-key' },
        groups: { url: `${base}/groups`, format: 'rest' },
      }),
      d,
    );
    const groups = [];
    for await (const g of source.groups!()) groups.push(g);
    expect(groups).toEqual([{ id: 'payments', displayName: 'Payments', members: [{ id: 'u1', type: 'user' }] }]);
  });
});

describe('client certificate (mutual TLS)', () => {
  let https: ReturnType<typeof createHttpsServer>;
  let httpsBase = '';
  const dir = mkdtempSync(join(tmpdir(), 'gc-mtls-'));
  let pfxBase64 = '';
  const seenSubjects: string[] = [];

  beforeAll(async () => {
    const ca = await generate([{ name: 'commonName', value: 'Test Root CA' }], {
      algorithm: 'sha256',
      keySize: 2048,
      extensions: [
        { name: 'basicConstraints', cA: true, critical: true },
        { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
      ],
    });
    const signed = (cn: string, usage: 'serverAuth' | 'clientAuth') =>
      generate([{ name: 'commonName', value: cn }], {
        algorithm: 'sha256',
        keySize: 2048,
        ca: { key: ca.private, cert: ca.cert },
        extensions: [
          { name: 'basicConstraints', cA: false },
          { name: 'keyUsage', digitalSignature: true, keyEncipherment: true },
          { name: 'extKeyUsage', [usage]: true },
          ...(usage === 'serverAuth'
            ? [{ name: 'subjectAltName' as const, altNames: [{ type: 7 as const, ip: '127.0.0.1' }] }]
            : []),
        ],
      });
    const serverCert = await signed('127.0.0.1', 'serverAuth');
    const clientCert = await signed('crawler.contoso.com', 'clientAuth');
    writeFileSync(join(dir, 'ca.pem'), ca.cert);
    writeFileSync(join(dir, 'client.key'), clientCert.private);
    writeFileSync(join(dir, 'client.crt'), clientCert.cert);
    execFileSync('openssl', [
      'pkcs12',
      '-export',
      '-inkey',
      join(dir, 'client.key'),
      '-in',
      join(dir, 'client.crt'),
      '-passout',
      'pass:pfx-pass-123',
      '-out',
      join(dir, 'client.p12'),
    ]);
    pfxBase64 = readFileSync(join(dir, 'client.p12')).toString('base64');
    https = createHttpsServer(
      { key: serverCert.private, cert: serverCert.cert, ca: ca.cert, requestCert: true, rejectUnauthorized: true },
      (req, res) => {
        const peer = (req.socket as TLSSocket).getPeerCertificate();
        seenSubjects.push(String(peer.subject?.CN));
        json(res, 200, { value: [{ id: 'M1' }] });
      },
    );
    await new Promise<void>((r) => https.listen(0, '127.0.0.1', r));
    httpsBase = `https://127.0.0.1:${(https.address() as AddressInfo).port}`;
  }, 30_000);
  afterAll(async () => {
    https.closeAllConnections();
    await new Promise((r) => https.close(r));
  });

  it('presents a PKCS#12 client certificate read from a secret, trusting the private CA', async () => {
    const d = deps({ baseDir: dir }, { 'crm-pfx': pfxBase64, 'crm-pfx-pass': 'pfx-pass-123' });
    const def = rest({
      url: `${httpsBase}/items`,
      caPath: 'ca.pem',
      auth: { type: 'clientCertificate', pfxSecret: 'crm-pfx', passphraseSecret: 'crm-pfx-pass' },
    });
    expect(await keys(def, d)).toEqual(['M1']);
    expect(seenSubjects).toContain('crawler.contoso.com');
  });

  it('without the certificate the server refuses the handshake: a network SourceError', async () => {
    const d = deps({ baseDir: dir });
    const err = (await keys(rest({ url: `${httpsBase}/items`, caPath: 'ca.pem', retry: { maxAttempts: 1 } }), d).catch(
      (e: unknown) => e,
    )) as SourceError;
    expect(err).toBeInstanceOf(SourceError);
    expect(err.code).toBe('SourceNetwork');
  });

  it('a wrong passphrase is an auth error that does not echo the passphrase', async () => {
    const d = deps({ baseDir: dir }, { 'crm-pfx': pfxBase64, 'crm-pfx-pass': 'wrong-pass-999' });
    const def = rest({
      url: `${httpsBase}/items`,
      caPath: 'ca.pem',
      retry: { maxAttempts: 1 },
      auth: { type: 'clientCertificate', pfxSecret: 'crm-pfx', passphraseSecret: 'crm-pfx-pass' },
    });
    const err = (await keys(def, d).catch((e: unknown) => e)) as SourceError;
    expect(err).toBeInstanceOf(SourceError);
    expect(err.message).not.toContain('wrong-pass-999');
  });
});
