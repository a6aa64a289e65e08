/**
 * `graph-connector doctor` end to end through main(): the real Graph connectors emulator (HTTPS, Entra-like
 * token endpoint, trusted through GRAPH_CA_CERT_PATH), the shared Azurite, real @azure/identity credentials.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { QueueServiceClient } from '@azure/storage-queue';
import { TableClient } from '@azure/data-tables';
import { BlobServiceClient } from '@azure/storage-blob';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadEnvironment } from '../../src/config/env.js';
import { GraphConnectorClient } from '../../src/graph/client.js';
import { createGraphCredential } from '../../src/graph/credentials.js';
import { createSecretProvider } from '../../src/secrets/index.js';
import { exampleDefinition } from '../support/definition.js';
import {
  admin as adminApi,
  doctorJson,
  envFor as envOf,
  names,
  run,
  startStack,
  type Names,
  type Stack,
} from './helpers.js';

let stack: Stack;
let conn: string;
let emu: Stack['emu'];
let dir: string;
const envFor = (nm: Names, extra: Record<string, string | undefined> = {}) => envOf(stack, nm, extra);
const admin = <T>(method: string, path: string, body?: unknown) => adminApi<T>(stack, method, path, body);

beforeAll(async () => {
  stack = await startStack();
  ({ emu, dir, conn } = stack);
});

afterAll(async () => {
  await stack?.close();
});

const ALL = [
  'environment',
  'definition',
  'secrets',
  'source-secrets',
  'graph-token',
  'graph-roles',
  'graph-reachable',
  'connection',
  'storage',
  'schedule',
];

describe('graph-connector doctor', () => {
  it('a good local stack: missing storage and connection are reported, --create and provision fix them, then all pass', async () => {
    const nm = names();
    const env = envFor(nm);

    const first = await doctorJson(env);
    expect(first.code).toBe(1);
    expect(first.report.checks.map((c) => c.id)).toEqual(ALL);
    for (const id of [
      'environment',
      'definition',
      'secrets',
      'source-secrets',
      'graph-token',
      'graph-roles',
      'graph-reachable',
      'schedule',
    ])
      expect(first.by(id).status, `${id}: ${first.by(id).message}`).toBe('pass');
    expect(first.by('connection')).toMatchObject({ status: 'warn' });
    expect(first.by('connection').fix).toMatch(/graph-connector provision/);
    expect(first.by('storage').status).toBe('fail');
    expect(first.by('storage').message).toMatch(/^missing 11 of 11: /);
    expect(first.by('storage').details).toContain(`queue ${nm.crawlQueue} (from CRAWL_QUEUE)`);
    expect(first.by('storage').details).toContain(`table ${nm.prefix}deadletters (from LEDGER_TABLE_PREFIX)`);
    expect(first.by('storage').fix).toMatch(/--create/);

    const created = await doctorJson(env, '--create');
    expect(created.by('storage').status, created.by('storage').message).toBe('pass');
    expect(created.by('storage').message).toMatch(/created 11/);
    // Independently: Azurite now holds them.
    const qs = QueueServiceClient.fromConnectionString(conn);
    for (const q of [nm.itemsQueue, `${nm.itemsQueue}-poison`, nm.crawlQueue, nm.provisionQueue])
      expect(await qs.getQueueClient(q).exists(), q).toBe(true);
    expect(await BlobServiceClient.fromConnectionString(conn).getContainerClient(nm.container).exists()).toBe(true);
    await TableClient.fromConnectionString(conn, `${nm.prefix}deadletters`, { allowInsecureConnection: true })
      .listEntities()
      .byPage({ maxPageSize: 1 })
      .next();

    const provision = await run(['provision'], env);
    expect(provision.code, provision.stderr).toBe(0);

    const good = await run(['doctor'], env);
    expect(good.code, good.stdout).toBe(0);
    const lines = good.stdout.trim().split('\n');
    expect(lines.filter((l) => /^(PASS|WARN|FAIL|SKIP) /.test(l)).map((l) => l.slice(0, 4))).toEqual(
      Array(10).fill('PASS'),
    );
    // The sample definition reads files: it names no secret, and says so.
    expect(good.stdout).toMatch(
      /PASS {2}definition secrets\s+the definition names no secret \(source type jsonLines\)/,
    );
    expect(good.stdout).toMatch(new RegExp(`PASS  connection\\s+connection '${nm.connectionId}' exists and is ready`));
    expect(good.stdout).toMatch(/PASS {2}crawl schedule\s+'0 0 \*\/6 \* \* \*' is valid; next full crawl at \d{4}-/);
    expect(good.stdout).toContain(
      "'graph-client-secret' (the Graph client secret): found in environment variable GRAPH_CLIENT_SECRET",
    );
    expect(lines.at(-1)).toBe('doctor: 10 passed, 0 warnings, 0 failed, 0 skipped');
    // The emulator agrees the connection is ready.
    const state = await admin<{ connections: { id: string; state: string }[] }>('GET', 'state');
    expect(state.connections.find((c) => c.id === nm.connectionId)?.state).toBe('ready');
    // Never a secret value.
    expect(good.stdout + good.stderr).not.toContain(emu.info.clientSecret);
  });

  it('a wrong client secret: the token line names the AADSTS error, the secret and where it came from; Graph checks are skipped', async () => {
    const nm = names();
    const wrong = 'wrong-secret-value-1234567890';
    const r = await run(['doctor'], envFor(nm, { GRAPH_CLIENT_SECRET: wrong }));
    expect(r.code).toBe(1);
    const token = r.stdout.split('\n').find((l) => l.startsWith('FAIL  Graph token'));
    expect(token, r.stdout).toBeDefined();
    expect(token).toMatch(/AADSTS\d+/);
    expect(token).toContain("secret 'graph-client-secret' from environment variable GRAPH_CLIENT_SECRET");
    expect(token).toContain(emu.info.clientId);
    expect(r.stdout).toMatch(/fix: .*'graph-client-secret' \(environment variable GRAPH_CLIENT_SECRET\)/);
    expect(r.stdout).toMatch(/SKIP {2}Graph permissions\s+skipped: Graph token failed/);
    expect(r.stdout).toMatch(/SKIP {2}Graph endpoint\s+skipped: Graph token failed/);
    expect(r.stdout).toMatch(/SKIP {2}connection\s+skipped: Graph endpoint was skipped/);
    // The failure does not stop the independent checks.
    expect(r.stdout).toMatch(/PASS {2}crawl schedule/);
    expect(r.stdout).toMatch(/(PASS|FAIL) {2}storage/);
    expect(r.stdout + r.stderr).not.toContain(wrong);
  });

  it('a secret that is not set: the secrets line says where it looked; the token is skipped', async () => {
    const nm = names();
    const { report, by } = await doctorJson(
      envFor(nm, { GRAPH_CLIENT_SECRET: undefined, GRAPH_CLIENT_SECRET_NAME: 'doctor-missing-secret' }),
    );
    expect(report.ok).toBe(false);
    expect(by('secrets').status).toBe('fail');
    expect(by('secrets').message).toContain("'doctor-missing-secret'");
    expect(by('secrets').message).toContain('DOCTOR_MISSING_SECRET');
    expect(by('secrets').fix).toMatch(/export DOCTOR_MISSING_SECRET=/);
    expect(by('graph-token')).toMatchObject({ status: 'skip', message: 'skipped: secrets failed' });
  });

  it('every secret the definition names is checked by name and where it was looked for; a missing one fails doctor', async () => {
    const nm = names();
    const def = exampleDefinition(nm.connectionId) as unknown as Record<string, any>;
    def.source = {
      type: 'rest',
      url: 'https://crm.example.test/api/tickets',
      recordsPath: 'value',
      keyField: 'ticketId',
      auth: {
        type: 'oauth2ClientCredentials',
        tokenUrl: 'https://login.example.test/token',
        clientId: 'crm-app',
        clientSecretSecret: 'crm-client-secret',
      },
    };
    delete def.mapping.attachments;
    def.mapping.acl.directory = new URL('../../samples/contoso-tasks/directory.json', import.meta.url).pathname;
    const config = join(stack.dir, `${nm.connectionId}-rest.json`);
    writeFileSync(config, JSON.stringify(def));
    const missing = await doctorJson(envFor(nm, { CONNECTOR_CONFIG: config }));
    expect(missing.by('definition').status, missing.by('definition').message).not.toBe('fail');
    expect(missing.code).toBe(1);
    const line = missing.by('source-secrets');
    expect(line.status).toBe('fail');
    expect(line.message).toContain("'crm-client-secret' (source.auth.clientSecretSecret)");
    expect(line.message).toContain('CRM_CLIENT_SECRET');
    expect(line.fix).toMatch(/export CRM_CLIENT_SECRET=/);
    // The Graph credential's secret is its own line, and the Graph checks still run.
    expect(missing.by('secrets').status).toBe('pass');
    expect(missing.by('secrets').details?.join('\n')).toMatch(
      /'graph-client-secret' \(the Graph client secret\): found in environment variable GRAPH_CLIENT_SECRET/,
    );
    expect(missing.by('graph-token').status).toBe('pass');

    const found = await doctorJson(envFor(nm, { CONNECTOR_CONFIG: config, CRM_CLIENT_SECRET: 'crm-secret-value-1' }));
    const ok = found.by('source-secrets');
    expect(ok.status).toBe('pass');
    expect(ok.details).toEqual([
      "'crm-client-secret' (source.auth.clientSecretSecret): found in environment variable CRM_CLIENT_SECRET",
    ]);
    expect(found.stdout + found.stderr).not.toContain('crm-secret-value-1');
  });

  it('an app without ExternalItem.ReadWrite.OwnedBy: the permissions line names that role and the admin-consent fix', async () => {
    const app = await admin<{ clientId: string; clientSecret: string }>('POST', 'apps', {
      displayName: 'doctor: connection role only',
      roles: ['ExternalConnection.ReadWrite.OwnedBy'],
    });
    const nm = names();
    const { by } = await doctorJson(
      envFor(nm, { GRAPH_CLIENT_ID: app.clientId, GRAPH_CLIENT_SECRET: app.clientSecret }),
    );
    expect(by('graph-token').status).toBe('pass');
    const roles = by('graph-roles');
    expect(roles.status).toBe('fail');
    expect(roles.message).toContain('lacks ExternalItem.ReadWrite.OwnedBy');
    expect(roles.message).not.toContain('lacks ExternalConnection');
    expect(roles.message).toContain(app.clientId);
    expect(roles.fix).toMatch(/admin consent/);
    expect(roles.fix).toContain('8116ae0f-55c2-452d-9944-d18420f5b2c8=Role');
    // The connection role it does have still reads the (absent) connection.
    expect(by('graph-reachable').status).toBe('pass');
    expect(by('connection').status).toBe('warn');
  });

  it('an app with no roles: both permissions named, and the endpoint line reports the 403 with the permission', async () => {
    const app = await admin<{ clientId: string; clientSecret: string }>('POST', 'apps', {
      displayName: 'doctor: no roles',
      roles: [],
    });
    const { by } = await doctorJson(
      envFor(names(), { GRAPH_CLIENT_ID: app.clientId, GRAPH_CLIENT_SECRET: app.clientSecret }),
    );
    expect(by('graph-roles').message).toContain(
      'lacks ExternalConnection.ReadWrite.OwnedBy and ExternalItem.ReadWrite.OwnedBy',
    );
    expect(by('graph-reachable').status).toBe('fail');
    expect(by('graph-reachable').message).toMatch(/answered 403/);
    expect(by('graph-reachable').message).toContain('ExternalConnection.ReadWrite.OwnedBy');
  });

  it('a missing queue: the storage line names exactly that queue; --create restores it', async () => {
    const nm = names();
    const env = envFor(nm);
    expect((await doctorJson(env, '--create')).by('storage').status).toBe('pass');
    await QueueServiceClient.fromConnectionString(conn).getQueueClient(nm.crawlQueue).delete();

    const { by, code } = await doctorJson(env);
    expect(code).toBe(1);
    const storage = by('storage');
    expect(storage.status).toBe('fail');
    expect(storage.message).toContain(`missing queue ${nm.crawlQueue} (`);
    expect(storage.details).toEqual([`queue ${nm.crawlQueue} (from CRAWL_QUEUE)`]);
    expect(storage.fix).toBe(
      'run graph-connector run once locally, or deploy infra (azd provision creates them), or use graph-connector doctor --create',
    );

    const again = await doctorJson(env, '--create');
    expect(again.by('storage').message).toContain(`created 1: queue ${nm.crawlQueue}`);
    expect(await QueueServiceClient.fromConnectionString(conn).getQueueClient(nm.crawlQueue).exists()).toBe(true);
  });

  it('a bad schedule fails its line and the environment line, without hiding the Graph and storage checks', async () => {
    const nm = names();
    const { by, code } = await doctorJson(envFor(nm, { CRAWL_SCHEDULE: '0 */5 * * *' }));
    expect(code).toBe(1);
    expect(by('schedule').status).toBe('fail');
    expect(by('schedule').message).toContain("CRAWL_SCHEDULE '0 */5 * * *' is not a valid NCRONTAB expression");
    expect(by('schedule').message).toContain('expected 6 fields');
    expect(by('environment').status).toBe('fail');
    expect(by('environment').details?.join('\n')).toContain('CRAWL_SCHEDULE');
    // Graph and storage do not depend on the schedule: they still ran.
    expect(by('graph-token').status).toBe('pass');
    expect(['pass', 'fail']).toContain(by('storage').status);
    expect(by('storage').message).not.toMatch(/^skipped/);
  });

  it('a schedule that never fires (February 30th) fails with that reason', async () => {
    const { by } = await doctorJson(envFor(names(), { CRAWL_SCHEDULE: '0 0 0 30 2 *' }));
    expect(by('schedule')).toMatchObject({ status: 'fail' });
    expect(by('schedule').message).toMatch(/never fires/);
  });

  it('environment problems are all listed; Graph checks that depend on a broken GRAPH_* variable are skipped', async () => {
    const { by } = await doctorJson(
      envFor(names(), { GRAPH_TENANT_ID: undefined, CRAWL_TIMER_MODE: 'sometimes', LOG_LEVEL: 'loud' }),
    );
    const envCheck = by('environment');
    expect(envCheck.status).toBe('fail');
    expect(envCheck.message).toContain('3 problems');
    const details = envCheck.details!.join('\n');
    for (const v of ['GRAPH_TENANT_ID', 'CRAWL_TIMER_MODE', 'LOG_LEVEL']) expect(details).toContain(v);
    expect(by('secrets').status).toBe('skip');
    expect(by('secrets').message).toContain('GRAPH_TENANT_ID');
    expect(by('graph-token').status).toBe('skip');
    expect(by('storage').message).not.toMatch(/^skipped/);
    expect(by('schedule').status).toBe('pass');
  });

  it('binding settings left to their defaults: the environment warns that the Functions host needs them set', async () => {
    const { by } = await doctorJson(envFor(names(), { CRAWL_QUEUE: undefined, CRAWL_SCHEDULE: undefined }));
    const e = by('environment');
    expect(e.status).toBe('warn');
    expect(e.message).toContain('CRAWL_QUEUE, CRAWL_SCHEDULE not set');
    expect(e.message).toContain('CRAWL_QUEUE=graph-crawl');
    expect(e.message).toContain('%CRAWL_QUEUE%');
    expect(e.fix).toContain('set CRAWL_QUEUE, CRAWL_SCHEDULE explicitly');
    // A warning is not a problem: nothing downstream is skipped because of it.
    expect(by('graph-token').status).toBe('pass');
    expect(by('schedule').message).toContain("'0 0 */6 * * *' is valid");
  });

  it('managedIdentity needs no secret: the token comes from the managed identity endpoint with its roles', async () => {
    // ManagedIdentityCredential reads the App Service MI contract from process.env (this file's own process).
    const saved = { IDENTITY_ENDPOINT: process.env.IDENTITY_ENDPOINT, IDENTITY_HEADER: process.env.IDENTITY_HEADER };
    process.env.IDENTITY_ENDPOINT = emu.info.managedIdentityEndpoint;
    process.env.IDENTITY_HEADER = emu.info.managedIdentityHeader;
    try {
      const { by } = await doctorJson(
        envFor(names(), {
          GRAPH_CREDENTIAL: 'managedIdentity',
          AZURE_CLIENT_ID: emu.info.managedIdentityClientId,
          GRAPH_CLIENT_SECRET: undefined,
        }),
      );
      expect(by('secrets').status).toBe('pass');
      expect(by('secrets').message).toContain('no secret needed: GRAPH_CREDENTIAL=managedIdentity');
      expect(by('secrets').message).toContain(emu.info.managedIdentityClientId);
      expect(by('graph-token').status, by('graph-token').message).toBe('pass');
      expect(by('graph-roles').status).toBe('pass');
      expect(by('graph-reachable').status).toBe('pass');
    } finally {
      for (const [k, v] of Object.entries(saved)) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    }
  });

  it('certificate from a file that does not exist: the environment names the file, the Graph chain is skipped', async () => {
    const missing = join(dir, 'no-such-cert.pem');
    const { by } = await doctorJson(
      envFor(names(), { GRAPH_CREDENTIAL: 'certificate', GRAPH_CERTIFICATE_PATH: missing }),
    );
    expect(by('environment').status).toBe('fail');
    expect(by('environment').details?.join('\n')).toContain('GRAPH_CERTIFICATE_PATH');
    expect(by('secrets')).toMatchObject({ status: 'skip' });
    expect(by('secrets').message).toContain('GRAPH_CERTIFICATE_PATH');
    expect(by('graph-token').status).toBe('skip');
    expect(by('schedule').status).toBe('pass');
  });

  it('a connection in draft is a warning pointing at provision', async () => {
    const nm = names();
    const env = envFor(nm);
    await run(['doctor', '--create'], env);
    // A connection created without a schema stays in draft (real Graph API of the emulator).
    const graph = new GraphConnectorClient({
      baseUrl: emu.info.baseUrl,
      caCertPath: emu.info.caCertPath!,
      credential: createGraphCredential(loadEnvironment(env), createSecretProvider(env)),
    });
    await graph.createConnection({ id: nm.connectionId, name: 'doctor draft', description: 'draft connection' });
    const { by, code } = await doctorJson(env);
    expect(by('connection')).toMatchObject({ status: 'warn' });
    expect(by('connection').message).toContain('draft');
    expect(by('connection').fix).toMatch(/graph-connector provision/);
    expect(code).toBe(0); // warnings do not fail
  });

  it('usage: --help, an unknown flag (exit 2), and a bad --timeout', async () => {
    const help = await run(['doctor', '--help'], {});
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('--create');
    const bad = await run(['doctor', '--frobnicate'], {});
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/frobnicate/);
    const badTimeout = await run(['doctor', '--timeout', 'soon'], {});
    expect(badTimeout.code).toBe(2);
    expect(badTimeout.stderr).toContain("--timeout 'soon' is not a duration");
  });
});
