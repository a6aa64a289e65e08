/**
 * `graph-connector search --as <user> "query"`: Graph's search API as the user, against an emulator named by
 * GRAPH_BASE_URL, against the state `graph-connector run` left in .local, and the usage errors otherwise.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/index.js';
import { startEmulator, type EmulatorHandle } from '../../src/emulator/index.js';
import { bearer, call, readyConnection, tokenFor, trust, type Tls } from '../emulator/helpers.js';

const id = (n: number) => `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`;
const directory = {
  users: [
    { id: id(1), userPrincipalName: 'adele@contoso.com' },
    { id: id(2), userPrincipalName: 'megan@contoso.com' },
  ],
  groups: [],
};

function capture() {
  let text = '';
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      text += chunk.toString();
      cb();
    },
  });
  return { stream, text: () => text };
}

async function cli(argv: string[], env: NodeJS.ProcessEnv) {
  const out = capture();
  const err = capture();
  const code = await main(['search', ...argv], {
    stdout: out.stream,
    stderr: err.stream,
    env,
    abortSignal: AbortSignal.timeout(30_000),
  });
  return { code, stdout: out.text(), stderr: err.text() };
}

/** Two tickets: one for everyone, one for Adele only. */
async function seed(emu: EmulatorHandle, tls: Tls): Promise<void> {
  const token = await tokenFor(emu, tls);
  await readyConnection(emu, tls, token, 'tickets', {
    baseType: 'microsoft.graph.externalItem',
    properties: [
      { name: 'title', type: 'string', isSearchable: true, isRetrievable: true, labels: ['title'] },
      { name: 'status', type: 'string', isQueryable: true, isRetrievable: true },
    ],
  });
  const put = (itemId: string, title: string, acl: object[]) =>
    call(
      emu,
      tls,
      'PUT',
      `/v1.0/external/connections/tickets/items/${itemId}`,
      {
        id: itemId,
        acl,
        properties: { title, status: 'open' },
        content: { type: 'text', value: `${title}: the payment gateway rejects cards.` },
      },
      bearer(token),
    );
  expect(
    (await put('T1', 'Payment gateway down', [{ type: 'everyone', value: emu.info.tenantId, accessType: 'grant' }]))
      .status,
  ).toBe(200);
  expect(
    (await put('T2', 'Payment refunds for Adele', [{ type: 'user', value: id(1), accessType: 'grant' }])).status,
  ).toBe(200);
}

describe('graph-connector search', () => {
  let emu: EmulatorHandle;
  let tls: Tls;
  let env: NodeJS.ProcessEnv;

  beforeAll(async () => {
    emu = await startEmulator({ schemaDelayMs: 10, directory, log: () => {} });
    tls = trust(emu);
    await seed(emu, tls);
    env = { GRAPH_BASE_URL: emu.info.baseUrl, GRAPH_CA_CERT_PATH: emu.info.caCertPath! };
  });
  afterAll(async () => {
    await emu?.close();
    await tls?.dispatcher.close();
  });

  it('searches as the user against the emulator GRAPH_BASE_URL names: each user finds what their ACL allows', async () => {
    const adele = await cli(['--as', 'adele@contoso.com', '--connection', 'tickets', 'payment'], env);
    expect(adele.code, adele.stderr).toBe(0);
    expect(adele.stdout).toMatch(
      /^adele@contoso\.com finds 2 items for "payment" in connection tickets \(the emulator at https:\/\/127\.0\.0\.1:\d+\); 1–2:/,
    );
    expect(adele.stdout).toMatch(/T1\s+Payment gateway down/);
    expect(adele.stdout).toMatch(/T2\s+Payment refunds for Adele/);
    expect(adele.stdout).toMatch(/\[Payment\]|\[payment\]/);
    const megan = await cli(['--as', 'megan@contoso.com', '--connection', 'tickets', 'payment'], env);
    expect(megan.code).toBe(0);
    expect(megan.stdout).toMatch(/megan@contoso\.com finds 1 item for "payment"/);
    expect(megan.stdout).not.toContain('T2');
    const json = await cli(
      ['--as', 'adele@contoso.com', '--connection', 'tickets', '--json', '--top', '1', 'status:open'],
      env,
    );
    const page = JSON.parse(json.stdout);
    expect(page).toMatchObject({ total: 2, moreResultsAvailable: true });
    expect(page.hits).toHaveLength(1);
    expect(page.hits[0].properties).toHaveProperty('title');
  });

  it('fails with the sign-in error for a user outside the directory (exit 1)', async () => {
    const r = await cli(['--as', 'nobody@contoso.com', '--connection', 'tickets', '*'], env);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/AADSTS50034/);
  });

  it('searches the state graph-connector run left in .local when GRAPH_BASE_URL is unset', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'gc-search-'));
    try {
      const local = await startEmulator({
        stateDir: join(dir, 'emulator'),
        schemaDelayMs: 10,
        directory,
        log: () => {},
      });
      const localTls = trust(local);
      await seed(local, localTls);
      await local.close();
      await localTls.dispatcher.close();
      const r = await cli(['--as', 'megan@contoso.com', '--connection', 'tickets', '--state-dir', dir, 'gateway'], {});
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toMatch(/the emulator on the state of graph-connector run .*started for this command/);
      expect(r.stdout).toMatch(/megan@contoso\.com finds 1 item for "gateway"/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('is a usage error (exit 2) without --as, without a query, or without a delegated sign-in for a tenant', async () => {
    expect((await cli(['payment'], env)).stderr).toMatch(/--as <user> is required/);
    expect((await cli(['--as', 'adele@contoso.com'], env)).code).toBe(2);
    const tenant = await cli(['--as', 'adele@contoso.com', '--connection', 'tickets', 'payment'], {
      GRAPH_BASE_URL: 'https://127.0.0.1:9',
    });
    expect(tenant.code).toBe(2);
    expect(tenant.stderr).toMatch(/is not the Graph emulator .*did not answer/);
    expect(tenant.stderr).toMatch(/set GRAPH_TENANT_ID and GRAPH_SEARCH_CLIENT_ID/);
  });
});
