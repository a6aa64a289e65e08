/**
 * Proxy mode: an unmodified client written the way Microsoft's connector samples are (the official Graph client
 * with its default middleware, ClientSecretCredential without authorityHost, undici's ProxyAgent from https_proxy)
 * runs from connection to items against the emulator, trusting its CA through NODE_EXTRA_CA_CERTS. Other hosts are
 * refused, never forwarded.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { PassThrough } from 'node:stream';
import { ProxyAgent } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/index.js';
import { startEmulator, type EmulatorHandle } from '../../src/emulator/index.js';
import { call, trust, type Rec, type Tls } from './helpers.js';

const TENANT = '72f988bf-86f1-41af-91ab-2d7cd011db47';
const APP = 'a1b2c3d4-0000-4000-8000-00000000beef';
const SECRET = 'sample~secret~value';
const CLIENT = resolve(import.meta.dirname, 'fixtures', 'pnp-style-client.js');

function runClient(env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((done) => {
    execFile(
      process.execPath,
      [CLIENT],
      // Only what the sample needs: no inherited proxy or CA settings of this machine.
      { env: { PATH: process.env.PATH ?? '', ...env }, timeout: 60_000 },
      (err, stdout, stderr) =>
        done({ code: err ? Number((err as NodeJS.ErrnoException).code ?? 1) || 1 : 0, stdout, stderr }),
    );
  });
}

describe('emulator proxy mode', () => {
  let emu: EmulatorHandle;
  let tls: Tls;
  const lines: string[] = [];

  beforeAll(async () => {
    emu = await startEmulator({
      proxyPort: 0,
      tenantId: TENANT,
      apps: [{ clientId: APP, secret: SECRET }],
      schemaDelayMs: 300,
      log: (l) => lines.push(l),
    });
    tls = trust(emu);
  });
  afterAll(async () => {
    await emu?.close();
    await tls?.dispatcher.close();
  });

  it('runs a pnp-style client unchanged, from connection to items (MSAL gets its token from the v2.0 endpoint)', async () => {
    expect(emu.info.proxyUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(emu.info.tenantId).toBe(TENANT);
    const r = await runClient({
      https_proxy: emu.info.proxyUrl!,
      NODE_EXTRA_CA_CERTS: emu.info.caCertPath!,
      TENANT_ID: TENANT,
      APP_ID: APP,
      APP_SECRET: SECRET,
    });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout.trim());
    expect(out.steps).toEqual(['connection created', 'schema completed', '3 items put', 'item deleted']);
    // Every URL the emulator wrote back names Graph itself, so the client stayed behind the proxy.
    expect(out.location).toMatch(
      /^https:\/\/graph\.microsoft\.com\/v1\.0\/external\/connections\/pnpstyle\/operations\//,
    );
    expect(out).toMatchObject({ got: 'Post 2-rules-play-spfx', state: 'ready' });

    const items = (await call(emu, tls, 'GET', '/_emulator/connections/pnpstyle/items')).body.value as Rec[];
    expect(items.map((i) => i.id).sort()).toEqual(['2-rules-play-spfx', 'easily-manage-microsoft-365-apps']);
    const log = (await call(emu, tls, 'GET', '/_emulator/requests')).body.value as Rec[];
    const routes = log.map((e) => [e.method, e.route, e.status].join(' '));
    // MSAL knows login.microsoftonline.com's metadata already (msal-common ships it), so its first call is the
    // v2.0 token endpoint; discovery, metadata and keys are served too (next test).
    expect(routes[0]).toBe('POST token 200');
    expect(log[0]!.path).toBe(`/${TENANT}/oauth2/v2.0/token`);
    expect(routes).toEqual(
      expect.arrayContaining([
        'POST connections 201',
        'PATCH schema 202',
        'GET operation 200',
        'PUT item 200',
        'GET item 200',
        'DELETE item 204',
        'GET connection 200',
      ]),
    );
    expect(log.filter((e) => e.route !== 'token').every((e) => e.appId === APP)).toBe(true);
    // The sample sends the ACL value "everyone" (the docs say the tenant id): accepted, with a warning.
    expect(log.find((e) => e.route === 'item' && e.method === 'PUT')!.warnings).toEqual([
      expect.stringMatching(/everyone value 'everyone' is not the tenant id/),
    ]);
  });

  it('serves discovery, metadata and keys per host, and refuses every other host without forwarding', async () => {
    const agent = new ProxyAgent(emu.info.proxyUrl!);
    try {
      const err = await fetch('https://example.com/', { dispatcher: agent }).catch((e: unknown) => e as Error);
      expect(err).toBeInstanceOf(Error);
      const port = await fetch('https://graph.microsoft.com:8443/v1.0/', { dispatcher: agent }).catch(
        (e: unknown) => e as Error,
      );
      expect(port).toBeInstanceOf(Error);
    } finally {
      await agent.close();
    }
    const plain = await new Promise<{ status: number; body: string }>((done, fail) => {
      const proxy = new URL(emu.info.proxyUrl!);
      const req = httpRequest(
        { host: proxy.hostname, port: proxy.port, method: 'GET', path: 'http://example.com/' },
        (res) => {
          let body = '';
          res.on('data', (d: Buffer) => (body += d.toString()));
          res.on('end', () => done({ status: res.statusCode ?? 0, body }));
        },
      );
      req.on('error', fail);
      req.end();
    });
    expect(plain.status).toBe(403);
    expect(plain.body).toMatch(/never forwards/);
    expect(lines.filter((l) => /refused/.test(l))).toEqual([
      'emulator proxy: refused CONNECT example.com:443',
      'emulator proxy: refused CONNECT graph.microsoft.com:8443',
      'emulator proxy: refused GET http://example.com/ (only CONNECT to graph.microsoft.com, login.microsoftonline.com)',
    ]);
    // Graph's host serves Graph only; the login host serves identity only.
    const graphAgent = new ProxyAgent({ uri: emu.info.proxyUrl!, requestTls: { ca: tls.ca } });
    try {
      const wrong = await fetch(`https://graph.microsoft.com/${TENANT}/oauth2/v2.0/token`, {
        method: 'POST',
        dispatcher: graphAgent,
      });
      expect(wrong.status).toBe(404);
      const login = `https://login.microsoftonline.com`;
      const discovery = await fetch(
        `${login}/common/discovery/instance?api-version=1.1&authorization_endpoint=${encodeURIComponent(`${login}/${TENANT}/oauth2/v2.0/authorize`)}`,
        { dispatcher: graphAgent },
      );
      expect(await discovery.json()).toMatchObject({
        tenant_discovery_endpoint: `${login}/${TENANT}/v2.0/.well-known/openid-configuration`,
        metadata: [{ preferred_network: 'login.microsoftonline.com' }],
      });
      const meta = await fetch(`${login}/${TENANT}/v2.0/.well-known/openid-configuration`, { dispatcher: graphAgent });
      const config = (await meta.json()) as Rec;
      expect(config).toMatchObject({
        token_endpoint: `${login}/${TENANT}/oauth2/v2.0/token`,
        jwks_uri: `${login}/${TENANT}/discovery/v2.0/keys`,
        issuer: `${login}/${TENANT}/v2.0`,
      });
      const keys = (await (await fetch(String(config.jwks_uri), { dispatcher: graphAgent })).json()) as Rec;
      expect((keys.keys as Rec[])[0]).toMatchObject({ kty: 'RSA', use: 'sig' });
    } finally {
      await graphAgent.close();
    }
  });
});

describe('graph-connector emulator --proxy-port --app (CLI)', () => {
  it('registers the app, takes its tenant, prints proxyUrl; refuses a malformed --app', async () => {
    const stateDir = mkdtempSync(join(tmpdir(), 'emu-proxy-'));
    try {
      let text = '';
      const out = new PassThrough();
      out.on('data', (d: Buffer) => (text += d.toString()));
      const ac = new AbortController();
      const done = main(
        ['emulator', '--state-dir', stateDir, '--proxy-port', '0', '--app', `${APP}:${SECRET}@${TENANT}`],
        {
          stdout: out,
          stderr: new PassThrough(),
          abortSignal: ac.signal,
        },
      );
      const t0 = Date.now();
      while (!text.includes('\n') && Date.now() - t0 < 15_000) await new Promise((r) => setTimeout(r, 20));
      const info = JSON.parse(text.split('\n')[0]!);
      expect(info).toMatchObject({ tenantId: TENANT, proxyUrl: expect.stringMatching(/^http:\/\/127\.0\.0\.1:/) });
      const handle = { info, close: async () => {} };
      const t = trust(handle);
      const apps = (await call(handle, t, 'GET', '/_emulator/apps')).body.value as Rec[];
      expect(apps.map((a) => a.clientId)).toContain(APP);
      await t.dispatcher.close();
      ac.abort();
      expect(await done).toBe(0);

      const err = new PassThrough();
      let errText = '';
      err.on('data', (d: Buffer) => (errText += d.toString()));
      const code = await main(['emulator', '--app', `${APP}:${SECRET}`], {
        stdout: new PassThrough(),
        stderr: err,
        abortSignal: new AbortController().signal,
      });
      expect(code).toBe(2);
      expect(errText).toMatch(/--app must be APPID:SECRET@TENANTID/);
      expect(errText).not.toContain(SECRET);
    } finally {
      rmSync(stateDir, { recursive: true, force: true });
    }
  });
});
