/**
 * `graph-connector run`'s ACL check: Graph's search API as each user of the definition's directory (or --users),
 * signed in through the emulator's token endpoint — also against an emulator started by hand (GRAPH_BASE_URL) —
 * and a line saying when and why it is skipped. And `--reset` against such a Graph: the connection is deleted
 * and provisioning waits the deletion out before creating it again.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startEmulator, type EmulatorHandle } from '../../src/emulator/index.js';
import { emulatorAdmin, graphEnvForEmulator, type EmulatorAdmin } from '../../src/local/emulator-client.js';
import { aclCheck, runLocal } from '../../src/local/run.js';

const ROOT = resolve(import.meta.dirname, '..', '..');
const SAMPLE = join(ROOT, 'samples', 'contoso-tasks');
const N = 40;

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

let emu: EmulatorHandle;
let admin: EmulatorAdmin;
let dir: string;

/** A definition over the first N sample tickets (no attachments), with `edit` applied. */
async function definition(name: string, edit?: (d: Record<string, any>) => void): Promise<string> {
  const lines = (await readFile(join(SAMPLE, 'tasks.jsonl'), 'utf8')).split('\n').filter(Boolean).slice(0, N);
  const records = join(dir, `${name}.jsonl`);
  await writeFile(
    records,
    lines
      .map((l) => {
        const r = JSON.parse(l) as Record<string, unknown>;
        delete r.attachments;
        return JSON.stringify(r);
      })
      .join('\n') + '\n',
  );
  const def = JSON.parse(await readFile(join(ROOT, 'connector.json'), 'utf8')) as Record<string, any>;
  delete def.$schema;
  delete def.mapping.attachments;
  def.connection.id = `run${name}`;
  def.source.path = records;
  def.source.groups.path = join(SAMPLE, 'teams.json');
  def.mapping.acl.directory = join(SAMPLE, 'directory.json');
  edit?.(def);
  const path = join(dir, `${name}.json`);
  await writeFile(path, JSON.stringify(def, null, 2));
  return path;
}

async function run(configPath: string, extra: { users?: string[]; reset?: boolean; storage?: boolean } = {}) {
  const out = capture();
  const err = capture();
  const uid = randomBytes(4).toString('hex');
  const result = await runLocal({
    cwd: dir,
    env: {
      ...graphEnvForEmulator(emu.info),
      ...(extra.storage === false
        ? {}
        : {
            AzureWebJobsStorage: inject('storageConnectionString'),
            ITEMS_QUEUE: `items${uid}`,
            CRAWL_QUEUE: `crawl${uid}`,
            PROVISION_QUEUE: `prov${uid}`,
            LEDGER_TABLE_PREFIX: `t${uid}`,
            CLAIMS_CONTAINER: `claims${uid}`,
          }),
    },
    stdout: out.stream,
    stderr: err.stream,
    signal: AbortSignal.timeout(240_000),
    mode: 'full',
    force: false,
    reset: extra.reset ?? false,
    concurrency: 8,
    stateDir: join(dir, '.local'),
    configPath,
    ...(extra.users ? { users: extra.users } : {}),
  });
  return { ...result, stdout: out.text(), stderr: err.text() };
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gc-run-'));
  // Started by hand, with an empty directory: what a developer gets from `graph-connector emulator`.
  emu = await startEmulator({ schemaDelayMs: 100, log: () => {} });
  admin = await emulatorAdmin(emu.info);
});
afterAll(async () => {
  await emu?.close();
  await admin?.close();
  await rm(dir, { recursive: true, force: true });
});

describe("run's ACL check against an emulator started by hand (GRAPH_BASE_URL)", () => {
  it("searches as every user of the definition's directory, and sees what the admin search sees", async () => {
    const r = await run(await definition('dir'));
    expect(r.exitCode, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain('directory');
    expect(r.stdout).toMatch(/directory\.json loaded into the emulator \(its directory was empty\)/);
    expect(r.stdout).toMatch(/ACL check \(Graph's search API as each user of .*directory\.json/);
    const users = (
      JSON.parse(await readFile(join(SAMPLE, 'directory.json'), 'utf8')) as {
        users: { userPrincipalName: string }[];
      }
    ).users.map((u) => u.userPrincipalName);
    for (const upn of users) {
      const line = r.stdout.split('\n').find((l) => l.trim().startsWith(upn + ' '));
      expect(line, upn).toBeDefined();
      const found = Number(/finds\s+(\d+) of (\d+) items/.exec(line!)![1]);
      const total = Number(/of (\d+) items/.exec(line!)![1]);
      expect(total).toBe(N);
      const expected = await admin<{ count: number }>(`search?connectionId=rundir&user=${encodeURIComponent(upn)}`);
      expect(found, upn).toBe(expected.count);
    }
    expect(r.stdout).toMatch(/only adele@contoso\.com: \d+/);
  });

  it('checks only the users --users names', async () => {
    const r = await run(await definition('some'), {
      users: ['megan@contoso.com', 'lee@contoso.com', 'nobody@contoso.com'],
    });
    expect(r.exitCode).toBe(0);
    const check = r.stdout.slice(r.stdout.indexOf('ACL check'));
    expect(check).toMatch(/of --users/);
    expect(check).toMatch(/megan@contoso\.com\s+finds\s+\d+ of 40 items/);
    expect(check).toMatch(/lee@contoso\.com\s+finds\s+\d+ of 40 items/);
    expect(check).toMatch(/nobody@contoso\.com\s+not checked: not in the emulator's directory/);
    expect(check).not.toMatch(/adele@contoso\.com\s+finds/);
  });

  it('says why it is skipped: no directory and no --users', async () => {
    const r = await run(
      await definition('nodir', (d) => {
        // Everyone-visible tickets only: without a directory the mapping cannot resolve users.
        delete d.mapping.acl.directory;
        d.mapping.acl.rules = [{ access: 'grant', type: 'everyone' }];
      }),
    );
    expect(r.exitCode, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(
      /ACL check skipped: no users to check: the definition names no mapping\.acl\.directory; give --users/,
    );
  });

  it('says why it is skipped when GRAPH_BASE_URL is not the emulator', async () => {
    const text = await aclCheck({
      rt: { definition: { connection: { id: 'x' } } } as never,
      admin: undefined,
      env: { GRAPH_BASE_URL: 'https://graph.microsoft.com' },
      probe: { ok: false, reason: 'its admin API https://graph.microsoft.com/_emulator/ answered 404' },
      users: ['adele@contoso.com'],
      usersFrom: 'directory.json',
    });
    expect(text).toBe(
      'ACL check skipped: GRAPH_BASE_URL (https://graph.microsoft.com) is not the Graph emulator — its admin API https://graph.microsoft.com/_emulator/ answered 404. To see what a user finds in a tenant, run graph-connector search --as <user> "*" with a delegated sign-in (GRAPH_SEARCH_CLIENT_ID)',
    );
  });
});

describe('run --reset against an emulator started by hand', () => {
  it('deletes the connection (its ledger is gone) and provisioning waits the deletion out before creating it again', async () => {
    const config = await definition('reset');
    const first = await run(config, { storage: false });
    expect(first.exitCode, first.stdout + first.stderr).toBe(0);
    await admin('requests', { method: 'DELETE' });
    const second = await run(config, { storage: false, reset: true });
    expect(second.exitCode, second.stdout + second.stderr).toBe(0);
    expect(second.stdout).toMatch(/reset: deleted connection runreset/);
    expect(second.stdout).toMatch(/still being deleted/);
    expect(second.stdout).toMatch(/ingested\s+40/);
    const entries = async (query: string) =>
      (await admin<{ value: { method: string; route: string; status: number }[] }>(`requests?${query}`)).value.map(
        (e) => [e.method, e.route, e.status].join(' '),
      );
    expect(await entries('connectionId=runreset')).toContain('DELETE connection 202');
    // Create attempts name the connection in their body only: the log files them under route "connections".
    const creates = await entries('route=connections&method=POST');
    expect(creates.filter((c) => c === 'POST connections 409').length).toBeGreaterThanOrEqual(1);
    expect(creates.at(-1)).toBe('POST connections 201');
    expect((await admin<{ value: unknown[] }>('connections/runreset/items')).value).toHaveLength(N);
  });
});
