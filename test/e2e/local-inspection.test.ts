/**
 * Inspecting a finished local run: after `graph-connector run` has stopped its Azurite, `status` and `deadletters`
 * start one on the persisted data in .local and read the ledger; `deadletters --replay` re-enqueues through the
 * HTTP replay's code and `--drain` sends the item. `run --keep` leaves Azurite and the emulator running, prints how
 * to reach them, and the inspection commands use them instead of starting their own; once stopped, the commands
 * start both from the persisted state. Real Azurite, the real emulator over HTTPS.
 * Bug class prevented: a local run whose results cannot be inspected once it has ended.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmulator, type EmulatorHandle } from '../../src/emulator/index.js';
import { emulatorAdmin, graphEnvForEmulator, type EmulatorAdmin } from '../../src/local/emulator-client.js';
import { keptFile } from '../../src/local/local-services.js';
import { runLocal } from '../../src/local/run.js';
import { runCli, textSink } from '../support/cli.js';

const ROOT = resolve(import.meta.dirname, '..', '..');
const SAMPLE = join(ROOT, 'samples', 'contoso-tasks');
const N = 12;
const REFUSED = 'TSP100013';

let emu: EmulatorHandle;
let admin: EmulatorAdmin;
let dir: string;

/** The first N sample tickets (no attachments) and a second record with the first one's id (a unique-id reject). */
async function definition(name: string): Promise<{ path: string; connectionId: string }> {
  const lines = (await readFile(join(SAMPLE, 'tasks.jsonl'), 'utf8')).split('\n').filter(Boolean).slice(0, N);
  const records = lines.map((l) => {
    const r = JSON.parse(l) as Record<string, unknown>;
    delete r.attachments;
    return r;
  });
  records.push({ ...records[0], title: 'the same ticket id again' });
  const file = join(dir, `${name}.jsonl`);
  await writeFile(file, records.map((r) => JSON.stringify(r)).join('\n') + '\n');
  const def = JSON.parse(await readFile(join(ROOT, 'connector.json'), 'utf8')) as Record<string, any>;
  delete def.$schema;
  delete def.mapping.attachments;
  const connectionId = `${name}${randomBytes(3).toString('hex')}`;
  def.connection.id = connectionId;
  def.source.path = file;
  def.source.groups.path = join(SAMPLE, 'teams.json');
  def.mapping.acl.directory = join(SAMPLE, 'directory.json');
  const path = join(dir, `${name}.json`);
  await writeFile(path, JSON.stringify(def, null, 2));
  return { path, connectionId };
}

async function run(options: { env: NodeJS.ProcessEnv; stateDir: string; configPath: string; keep?: boolean }) {
  const out = textSink();
  const err = textSink();
  const result = await runLocal({
    cwd: dir,
    env: options.env,
    stdout: out.stream,
    stderr: err.stream,
    signal: AbortSignal.timeout(180_000),
    mode: 'full',
    force: false,
    reset: false,
    concurrency: 8,
    stateDir: options.stateDir,
    configPath: options.configPath,
    users: ['adele@contoso.com'],
    ...(options.keep ? { keep: true } : {}),
  });
  return { ...result, stdout: out.text(), stderr: err.text() };
}

const cli = (argv: string[], env: NodeJS.ProcessEnv) =>
  runCli(argv, env, { abortSignal: AbortSignal.timeout(120_000) });

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gc-inspect-'));
  emu = await startEmulator({ schemaDelayMs: 100, log: () => {} });
  admin = await emulatorAdmin(emu.info);
});
afterAll(async () => {
  await admin?.close();
  await emu?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('after graph-connector run has ended', () => {
  it('status and deadletters read .local through an Azurite started on its data; --replay --drain sends the item', async () => {
    const { path, connectionId } = await definition('inspect');
    const stateDir = join(dir, 'state-a');
    const graphEnv = graphEnvForEmulator(emu.info);
    await admin('faults', {
      method: 'POST',
      body: {
        match: { route: 'item', method: 'PUT', itemId: REFUSED },
        action: 'status',
        status: 400,
        code: 'InvalidRequest',
        message: 'refused by the test',
        count: 0,
      },
    });
    const r = await run({ env: graphEnv, stateDir, configPath: path });
    expect(r.exitCode, r.stdout + r.stderr).toBe(0);
    // The groups are synced before any record is read: the real count, never "read 0".
    expect(r.stdout).toMatch(/crawl {5}\[groups\] \d+ external groups synced/);
    expect(r.stdout).not.toMatch(/\[groups\] read/);
    expect(existsSync(join(stateDir, 'azurite'))).toBe(true);

    // Nothing runs on the state any more: status starts Azurite on it, for itself.
    const status = await cli(['status', '--config', path, '--state-dir', stateDir], graphEnv);
    expect(status.code, status.stderr).toBe(0);
    expect(status.stderr).toMatch(/Azurite on the data of graph-connector run .*started for this command/);
    expect(status.stdout).toContain(`connection    ${connectionId}`);
    expect(status.stdout).toMatch(/dead letters {2}2\b/);
    expect(status.stdout).toMatch(new RegExp(`read ${N + 1} · ingested ${N - 1} · unchanged 0 · rejected 1 · dead 1`));

    const all = await cli(['deadletters', '--config', path, '--state-dir', stateDir], graphEnv);
    expect(all.code, all.stderr).toBe(0);
    expect(all.stdout).toMatch(new RegExp(`^2 dead letters of connection ${connectionId}:`));
    expect(all.stdout).toMatch(new RegExp(`upsert  ${REFUSED}  400 InvalidRequest`));
    expect(all.stdout).toMatch(/reject {2}TSP100000 \(line 13\)/);

    const byCode = await cli(
      ['deadletters', '--config', path, '--state-dir', stateDir, '--code', 'invalidrequest', '--json'],
      graphEnv,
    );
    const listed = JSON.parse(byCode.stdout) as { value: { itemId: string; op: string; status: number }[] };
    expect(listed.value).toEqual([expect.objectContaining({ itemId: REFUSED, op: 'upsert', status: 400 })]);
    const byRule = await cli(
      ['deadletters', '--config', path, '--state-dir', stateDir, '--code', 'unique-id', '--json'],
      graphEnv,
    );
    expect((JSON.parse(byRule.stdout) as { value: { op: string }[] }).value.map((d) => d.op)).toEqual(['reject']);

    const unsaid = await cli(['deadletters', '--config', path, '--state-dir', stateDir, '--replay'], graphEnv);
    expect(unsaid.code).toBe(2);
    expect(unsaid.stderr).toMatch(/say what to replay: --all, or filters/);

    await admin('faults', { method: 'DELETE' });
    expect(await admin<{ value: { id: string }[] }>(`connections/${connectionId}/items`)).toMatchObject({
      value: expect.not.arrayContaining([expect.objectContaining({ id: REFUSED })]),
    });
    const replay = await cli(
      ['deadletters', '--config', path, '--state-dir', stateDir, '--replay', '--item', REFUSED, '--drain'],
      graphEnv,
    );
    expect(replay.code, replay.stderr).toBe(0);
    expect(replay.stdout).toMatch(/replayed 1 dead letter of connection/);
    expect(replay.stdout).toMatch(/drained: 1 ingested/);
    const items = await admin<{ value: { id: string }[] }>(`connections/${connectionId}/items`);
    expect(items.value.map((i) => i.id)).toContain(REFUSED);
    const left = await cli(['deadletters', '--config', path, '--state-dir', stateDir, '--json'], graphEnv);
    expect((JSON.parse(left.stdout) as { value: { op: string }[] }).value.map((d) => d.op)).toEqual(['reject']);
  });

  it('with no local state and no AzureWebJobsStorage, says to run first (exit 2)', async () => {
    const { path } = await definition('nostate');
    const r = await cli(['status', '--config', path, '--state-dir', join(dir, 'empty')], {});
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(
      /AzureWebJobsStorage is not set and there is no local state in .*run `graph-connector run` first/,
    );
  });
});

describe('graph-connector run --keep', () => {
  it('leaves Azurite and the emulator running, says how to reach them; the commands use them, then the state', async () => {
    const { path, connectionId } = await definition('kept');
    const stateDir = join(dir, 'state-k');
    const r = await run({ env: {}, stateDir, configPath: path, keep: true });
    try {
      expect(r.exitCode, r.stdout + r.stderr).toBe(0);
      expect(r.kept).toBeDefined();
      expect(r.stdout).toMatch(/kept {6}Azurite and the emulator keep running in this process \(pid \d+\)/);
      expect(r.stdout).toMatch(/export AzureWebJobsStorage='DefaultEndpointsProtocol=http;/);
      expect(r.stdout).toMatch(/export GRAPH_BASE_URL='https:\/\/127\.0\.0\.1:\d+'/);
      expect(r.stdout).toMatch(/export NODE_EXTRA_CA_CERTS='.+'/);
      expect(r.stdout).toMatch(/Stop them with Ctrl-C here/);
      expect(existsSync(keptFile(stateDir))).toBe(true);

      // Reachable meanwhile: the commands use the kept services (no second Azurite on the same data).
      const status = await cli(['status', '--config', path, '--state-dir', stateDir], {});
      expect(status.code, status.stderr).toBe(0);
      expect(status.stderr).toMatch(/the Azurite kept by graph-connector run --keep/);
      expect(status.stdout).toMatch(new RegExp(`read ${N + 1} · ingested ${N}`));
      const search = await cli(
        ['search', '--as', 'adele@contoso.com', '--config', path, '--state-dir', stateDir, '*'],
        {},
      );
      expect(search.code, search.stderr).toBe(0);
      expect(search.stderr).toMatch(/the emulator kept by graph-connector run --keep/);
      expect(search.stdout).toMatch(
        new RegExp(`adele@contoso.com finds \\d+ items? for "\\*" in connection ${connectionId}`),
      );
      // A second run --keep on the same state is refused, naming the process that keeps it.
      await expect(run({ env: {}, stateDir, configPath: path, keep: true })).rejects.toThrow(
        /run --keep \(pid \d+\) keeps Azurite and the emulator running/,
      );
    } finally {
      await r.kept?.close();
    }
    expect(existsSync(keptFile(stateDir))).toBe(false);

    // Stopped: the same command now starts Azurite and the emulator on the persisted state, for itself.
    const after = await cli(['deadletters', '--config', path, '--state-dir', stateDir], {});
    expect(after.code, after.stderr).toBe(0);
    expect(after.stderr).toMatch(/Azurite on the data of graph-connector run/);
    expect(after.stderr).toMatch(/the emulator on the state of graph-connector run/);
    expect(after.stdout).toMatch(/^1 dead letter of connection/);
  });
});
