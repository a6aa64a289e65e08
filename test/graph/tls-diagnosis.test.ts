/**
 * A certificate the process does not accept is diagnosed as that, with how to trust it — never blamed on the client
 * secret — by one function every command uses: real HTTPS servers (a self-signed leaf, a certificate from a CA the
 * process does not trust, one for another host, an expired one), the real @azure/identity token flow against the
 * emulator's authority without its CA, and the graph, provision and run commands end to end.
 * Bug class prevented: a misleading diagnosis (a TLS trust problem reported as a bad secret).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { generate } from 'selfsigned';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { loadEnvironment } from '../../src/config/env.js';
import { startEmulator, type EmulatorHandle } from '../../src/emulator/index.js';
import { createGraphCredential } from '../../src/graph/credentials.js';
import { GraphAuthError } from '../../src/graph/errors.js';
import { diagnoseTls, tlsCodeOf } from '../../src/graph/tls.js';
import { graphEnvForEmulator } from '../../src/local/emulator-client.js';
import { createSecretProvider } from '../../src/secrets/index.js';
import { createTestTls } from '../fakes/tls.js';
import { runCli } from '../support/cli.js';
import { exampleDefinition, writeExampleDefinition } from '../support/definition.js';

const servers: Server[] = [];
let emu: EmulatorHandle;
let dir: string;

async function serve(cert: string, key: string): Promise<string> {
  const server = createServer({ cert, key }, (_req, res) => res.end('{}'));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  servers.push(server);
  return `https://127.0.0.1:${(server.address() as { port: number }).port}`;
}

/** The error a plain fetch gets from `url` (trusting `ca` when given). */
async function fetchError(url: string, ca?: string): Promise<unknown> {
  const { Agent } = await import('undici');
  const dispatcher = new Agent({ connect: ca ? { ca } : {} });
  try {
    await fetch(url, { dispatcher });
  } catch (e) {
    return e;
  } finally {
    await dispatcher.close();
  }
  throw new Error(`${url} answered: expected a TLS failure`);
}

/** The emulator's GRAPH_* settings without its CA: what a shell that forgot GRAPH_CA_CERT_PATH has. */
function untrustingEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const { GRAPH_CA_CERT_PATH: _ca, ...env } = graphEnvForEmulator(emu.info);
  return { ...env, ...extra };
}

beforeAll(async () => {
  emu = await startEmulator({ schemaDelayMs: 100, log: () => {} });
  dir = mkdtempSync(join(tmpdir(), 'gc-tls-'));
});
afterAll(async () => {
  for (const s of servers) await new Promise((r) => s.close(r));
  await emu?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('diagnoseTls on real HTTPS servers', () => {
  it('a self-signed leaf: not trusted, and the fix names GRAPH_CA_CERT_PATH and NODE_EXTRA_CA_CERTS', async () => {
    const leaf = await generate([{ name: 'commonName', value: '127.0.0.1' }], {
      keyType: 'ec',
      extensions: [{ name: 'subjectAltName', altNames: [{ type: 7, ip: '127.0.0.1' }] }],
    });
    const url = await serve(leaf.cert, leaf.private);
    const d = await diagnoseTls(await fetchError(url), { urls: [url] });
    expect(d).toMatchObject({ kind: 'untrusted', tlsCode: 'DEPTH_ZERO_SELF_SIGNED_CERT', origin: url });
    expect(d!.message).toBe(
      `the TLS certificate of ${url} is not trusted (DEPTH_ZERO_SELF_SIGNED_CERT): its issuer is not among the CAs this process trusts`,
    );
    expect(d!.fix).toMatch(/GRAPH_CA_CERT_PATH=<ca\.pem>.*NODE_EXTRA_CA_CERTS=<ca\.pem>/);
  });

  it('a certificate from a CA the process does not trust; the same server with the CA trusted but another host name', async () => {
    const tls = await createTestTls();
    const url = await serve(tls.cert, tls.key);
    const untrusted = await diagnoseTls(await fetchError(url), { urls: [url] });
    expect(untrusted?.kind).toBe('untrusted');
    expect(untrusted?.tlsCode).toBe('UNABLE_TO_VERIFY_LEAF_SIGNATURE');

    const other = await createTestTls({ hosts: ['graph.example.test'] });
    const otherUrl = await serve(other.cert, other.key);
    const wrongHost = await diagnoseTls(await fetchError(otherUrl, other.caCert), { urls: [otherUrl] });
    expect(wrongHost).toMatchObject({ kind: 'wrong-host', tlsCode: 'ERR_TLS_CERT_ALTNAME_INVALID' });
    expect(wrongHost!.message).toMatch(/does not name that host/);
  });

  it('an expired certificate', async () => {
    const old = await generate([{ name: 'commonName', value: '127.0.0.1' }], {
      keyType: 'ec',
      notBeforeDate: new Date(Date.now() - 3 * 86_400_000),
      notAfterDate: new Date(Date.now() - 86_400_000),
      extensions: [{ name: 'subjectAltName', altNames: [{ type: 7, ip: '127.0.0.1' }] }],
    });
    const url = await serve(old.cert, old.private);
    const d = await diagnoseTls(await fetchError(url, old.cert), { urls: [url] });
    expect(d).toMatchObject({ kind: 'expired', tlsCode: 'CERT_HAS_EXPIRED' });
  });

  it('an opaque wrap (MSAL endpoints_resolution_error, no cause) is resolved by asking the URL; anything else is not TLS', async () => {
    const opaque = Object.assign(new Error('endpoints_resolution_error: Error: could not resolve endpoints.'), {
      errorCode: 'endpoints_resolution_error',
    });
    expect(tlsCodeOf(opaque)).toBeUndefined();
    const d = await diagnoseTls(opaque, {
      urls: [`${emu.info.authorityHost}/common/v2.0/.well-known/openid-configuration`],
    });
    expect(d?.kind).toBe('untrusted');
    expect(d?.origin).toBe(emu.info.authorityHost);
    // With the emulator's CA the same URL answers: not a certificate problem.
    const { readFileSync } = await import('node:fs');
    const trusted = await diagnoseTls(opaque, {
      urls: [`${emu.info.authorityHost}/common/v2.0/.well-known/openid-configuration`],
      ca: readFileSync(emu.info.caCertPath!),
    });
    expect(trusted).toBeUndefined();
    expect(
      await diagnoseTls(new Error('AADSTS7000215: Invalid client secret provided.'), { urls: [] }),
    ).toBeUndefined();
  });
});

describe('the Graph credential and the commands say the certificate is not trusted, not that the secret is wrong', () => {
  it('@azure/identity against the emulator without its CA: GraphAuthError naming the certificate and the fix', async () => {
    const env = loadEnvironment(untrustingEnv());
    const credential = createGraphCredential(env, createSecretProvider(untrustingEnv(), { cwd: dir }));
    const err = await credential.getToken('https://graph.microsoft.com/.default').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GraphAuthError);
    const message = (err as Error).message;
    expect(message).toContain(`the TLS certificate of ${emu.info.authorityHost} is not trusted`);
    expect(message).toMatch(/NODE_EXTRA_CA_CERTS/);
    expect(message).not.toMatch(/holds a current client secret/);
  });

  it.each([
    ['graph', ['graph', 'GET', 'external/connections']],
    ['provision', ['provision', '--timeout', '30s']],
  ])('%s', async (_name, argv) => {
    const env = untrustingEnv({ CONNECTOR_CONFIG: writeExampleDefinition(dir, `tls${argv[0]}`) });
    const r = await runCli(argv, env, { abortSignal: AbortSignal.timeout(60_000) });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`the TLS certificate of ${emu.info.authorityHost} is not trusted`);
    expect(r.stderr).toMatch(/NODE_EXTRA_CA_CERTS=<ca\.pem>/);
    expect(r.stderr).not.toMatch(/client secret of app/);
  });

  it('run (against GRAPH_BASE_URL without its CA)', async () => {
    const env = untrustingEnv({
      AzureWebJobsStorage: inject('storageConnectionString'),
      LEDGER_TABLE_PREFIX: 'tlsrun',
    });
    // The sample definition with its relative paths made absolute (it is written outside the project).
    const def = exampleDefinition('tlsrun') as unknown as Record<string, any>;
    const root = resolve(import.meta.dirname, '..', '..');
    def.source.path = join(root, def.source.path);
    def.source.groups.path = join(root, def.source.groups.path);
    def.mapping.acl.directory = join(root, def.mapping.acl.directory);
    delete def.mapping.attachments;
    const config = join(dir, 'tlsrun.json');
    writeFileSync(config, JSON.stringify(def));
    const r = await runCli(['run', '--config', config, '--state-dir', join(dir, 'run')], env, {
      abortSignal: AbortSignal.timeout(60_000),
    });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`the TLS certificate of ${emu.info.authorityHost} is not trusted`);
    expect(r.stderr).not.toMatch(/client secret of app/);
  });
});
