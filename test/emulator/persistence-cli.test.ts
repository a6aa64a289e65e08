/** State-dir persistence across restarts, and the `graph-connector emulator` command (in process via main()). */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/index.js';
import { startEmulator } from '../../src/emulator/index.js';
import { bearer, call, item, readyConnection, tokenFor, trust, type Rec } from './helpers.js';

const dirs: string[] = [];
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'emu-test-'));
  dirs.push(d);
  return d;
}
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('emulator persistence', () => {
  it('keeps identity, connections, schema, items, groups, apps and directory across a restart', async () => {
    const stateDir = tempDir();
    const directory = {
      users: [{ id: '00000000-0000-4000-8000-000000000001', userPrincipalName: 'adele@contoso.com' }],
      groups: [],
    };
    const first = await startEmulator({ stateDir, schemaDelayMs: 10, log: () => {}, directory });
    const tls1 = trust(first);
    const token = await tokenFor(first, tls1);
    await readyConnection(first, tls1, token, 'persisted');
    expect(
      (await call(first, tls1, 'PUT', '/v1.0/external/connections/persisted/items/p1', item('p1'), bearer(token)))
        .status,
    ).toBe(200);
    await call(
      first,
      tls1,
      'POST',
      '/v1.0/external/connections/persisted/groups',
      { id: 'team1', displayName: 'Team' },
      bearer(token),
    );
    const app = await call(first, tls1, 'POST', '/_emulator/apps', { secret: 'kept-secret' });
    // Written shortly after the change, atomically, without waiting for close.
    await new Promise((r) => setTimeout(r, 400));
    const onDisk = JSON.parse(readFileSync(join(stateDir, 'emulator-state.json'), 'utf8'));
    expect(onDisk.connections[0].items.map((i: Rec) => i.id)).toEqual(['p1']);
    const cert1 = readFileSync(first.info.caCertPath!, 'utf8');
    const info1 = first.info;
    await first.close();
    await tls1.dispatcher.close();

    const second = await startEmulator({ stateDir, schemaDelayMs: 10, log: () => {} });
    const tls2 = trust(second);
    try {
      expect(second.info).toMatchObject({
        tenantId: info1.tenantId,
        clientId: info1.clientId,
        clientSecret: info1.clientSecret,
        managedIdentityClientId: info1.managedIdentityClientId,
        managedIdentityHeader: info1.managedIdentityHeader,
        caCertPath: info1.caCertPath,
      });
      expect(readFileSync(second.info.caCertPath!, 'utf8')).toBe(cert1);
      // A token issued before the restart is still valid.
      const conn = await call(second, tls2, 'GET', '/v1.0/external/connections/persisted', undefined, bearer(token));
      expect(conn.body.state).toBe('ready');
      expect(
        (await call(second, tls2, 'GET', '/v1.0/external/connections/persisted/items/p1', undefined, bearer(token)))
          .body.id,
      ).toBe('p1');
      expect(
        (await call(second, tls2, 'GET', '/v1.0/external/connections/persisted/schema', undefined, bearer(token)))
          .status,
      ).toBe(200);
      expect(
        (await call(second, tls2, 'GET', '/v1.0/external/connections/persisted/groups/team1', undefined, bearer(token)))
          .status,
      ).toBe(200);
      expect(await tokenFor(second, tls2, app.body.clientId, 'kept-secret')).toBeTruthy();
      expect((await call(second, tls2, 'GET', '/_emulator/directory')).body.users).toHaveLength(1);
    } finally {
      await second.close();
      await tls2.dispatcher.close();
    }
  });

  it('finishes a schema operation that was in progress when the emulator stopped', async () => {
    const stateDir = tempDir();
    const first = await startEmulator({ stateDir, schemaDelayMs: 600, log: () => {} });
    const tls1 = trust(first);
    const token = await tokenFor(first, tls1);
    await call(
      first,
      tls1,
      'POST',
      '/v1.0/external/connections',
      { id: 'midflight', name: 'M', description: 'd' },
      bearer(token),
    );
    const s = await call(
      first,
      tls1,
      'PATCH',
      '/v1.0/external/connections/midflight/schema',
      { baseType: 'microsoft.graph.externalItem', properties: [{ name: 'a', type: 'string' }] },
      bearer(token),
    );
    const opPath = new URL(s.headers.get('location')!).pathname;
    await first.close();
    await tls1.dispatcher.close();
    const second = await startEmulator({ stateDir, schemaDelayMs: 600, log: () => {} });
    const tls2 = trust(second);
    try {
      const early = await call(second, tls2, 'GET', opPath, undefined, bearer(token));
      expect(early.body.status).toBe('inprogress');
      await new Promise((r) => setTimeout(r, 700));
      expect((await call(second, tls2, 'GET', opPath, undefined, bearer(token))).body.status).toBe('completed');
      expect(
        (await call(second, tls2, 'GET', '/v1.0/external/connections/midflight', undefined, bearer(token))).body.state,
      ).toBe('ready');
    } finally {
      await second.close();
      await tls2.dispatcher.close();
    }
  });

  it('a closed emulator never writes its state again (no stale overwrite of a successor)', async () => {
    const stateDir = tempDir();
    const first = await startEmulator({ stateDir, schemaDelayMs: 200, log: () => {} });
    const tls1 = trust(first);
    const token = await tokenFor(first, tls1);
    await call(
      first,
      tls1,
      'POST',
      '/v1.0/external/connections',
      { id: 'closing', name: 'C', description: 'd' },
      bearer(token),
    );
    const s = await call(
      first,
      tls1,
      'PATCH',
      '/v1.0/external/connections/closing/schema',
      { baseType: 'microsoft.graph.externalItem', properties: [{ name: 'a', type: 'string' }] },
      bearer(token),
    );
    expect(s.status).toBe(202);
    await first.close();
    await tls1.dispatcher.close();
    const { unlinkSync } = await import('node:fs');
    unlinkSync(join(stateDir, 'emulator-state.json'));
    // The operation's completion timer fires after close; it must not write.
    await new Promise((r) => setTimeout(r, 600));
    expect(existsSync(join(stateDir, 'emulator-state.json'))).toBe(false);
  });

  it('refuses a corrupt state file with a message naming it', async () => {
    const stateDir = tempDir();
    const { writeFileSync } = await import('node:fs');
    writeFileSync(join(stateDir, 'emulator-state.json'), '{not json');
    await expect(startEmulator({ stateDir, log: () => {} })).rejects.toThrow(/emulator-state\.json.*delete it/);
  });
});

function capture() {
  const stream = new PassThrough();
  let text = '';
  stream.on('data', (d: Buffer) => (text += d.toString()));
  return { stream, text: () => text };
}

async function firstLine(out: ReturnType<typeof capture>, timeoutMs = 5000): Promise<string> {
  const t0 = Date.now();
  while (!out.text().includes('\n')) {
    if (Date.now() - t0 > timeoutMs) throw new Error('no JSON line on stdout');
    await new Promise((r) => setTimeout(r, 10));
  }
  return out.text().split('\n')[0]!;
}

describe('graph-connector emulator (CLI)', () => {
  it('prints one JSON line of EmulatorInfo, serves, and exits 0 when the signal aborts', async () => {
    const stateDir = tempDir();
    const out = capture();
    const err = capture();
    const ac = new AbortController();
    const t0 = Date.now();
    const done = main(
      ['emulator', '--state-dir', stateDir, '--seed', '3', '--schema-delay-ms', '0', '--max-concurrency', '5'],
      {
        stdout: out.stream,
        stderr: err.stream,
        abortSignal: ac.signal,
      },
    );
    const info = JSON.parse(await firstLine(out));
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(Object.keys(info).sort()).toEqual(
      [
        'adminUrl',
        'authorityHost',
        'baseUrl',
        'caCertPath',
        'clientId',
        'clientSecret',
        'managedIdentityClientId',
        'managedIdentityEndpoint',
        'managedIdentityHeader',
        'tenantId',
        'userPassword',
      ].sort(),
    );
    expect(info.caCertPath.startsWith(stateDir)).toBe(true);
    const handle = { info, close: async () => {} };
    const tls = trust(handle);
    const state = await call(handle, tls, 'GET', '/_emulator/state');
    expect(state.body.settings).toMatchObject({ maxConcurrency: 5, schemaDelayMs: 0 });
    await tls.dispatcher.close();
    ac.abort();
    expect(await done).toBe(0);
    expect(out.text().trim().split('\n')).toHaveLength(1);
    expect(err.text()).toMatch(/emulator: Graph at/);
    // The port is closed after exit.
    await expect(fetch(info.managedIdentityEndpoint)).rejects.toThrow();
  });

  it('keeps the certificate under .local/emulator in the working folder without --state-dir', async () => {
    const cwd = tempDir();
    const before = process.cwd();
    process.chdir(cwd);
    try {
      const out = capture();
      const ac = new AbortController();
      const done = main(['emulator'], { stdout: out.stream, stderr: capture().stream, abortSignal: ac.signal });
      const info = JSON.parse(await firstLine(out));
      expect(info.caCertPath).toBe(join(cwd, '.local', 'emulator', 'emulator-ca.pem'));
      ac.abort();
      expect(await done).toBe(0);
      expect(existsSync(info.caCertPath)).toBe(true);
      expect(existsSync(join(cwd, '.local', 'emulator', 'emulator-state.json'))).toBe(false);
      const out2 = capture();
      const ac2 = new AbortController();
      ac2.abort();
      expect(await main(['emulator'], { stdout: out2.stream, stderr: capture().stream, abortSignal: ac2.signal })).toBe(
        0,
      );
      expect(JSON.parse(out2.text().split('\n')[0]!).caCertPath).toBe(info.caCertPath);
    } finally {
      process.chdir(before);
    }
  });

  it('exits 2 with a usage message for bad flags', async () => {
    const err = capture();
    const ac = new AbortController();
    expect(
      await main(['emulator', '--fault-rate', '2'], {
        stdout: capture().stream,
        stderr: err.stream,
        abortSignal: ac.signal,
      }),
    ).toBe(2);
    expect(err.text()).toMatch(/--fault-rate/);
    expect(
      await main(['emulator', '--bogus'], {
        stdout: capture().stream,
        stderr: capture().stream,
        abortSignal: ac.signal,
      }),
    ).toBe(2);
    const help = capture();
    expect(
      await main(['emulator', '--help'], { stdout: help.stream, stderr: capture().stream, abortSignal: ac.signal }),
    ).toBe(0);
    expect(help.text()).toMatch(/--rate-limit/);
  });
});
