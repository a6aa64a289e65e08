/**
 * `graph-connector run --dashboard`: the status page and its API on 127.0.0.1 from before the crawl starts until
 * the run is stopped, at the routes the functions serve, with a replay from it ingested by the run's worker.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { get } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startEmulator, type EmulatorHandle } from '../../src/emulator/index.js';
import { emulatorAdmin, graphEnvForEmulator, type EmulatorAdmin } from '../../src/local/emulator-client.js';
import { runLocal, type RunResult } from '../../src/local/run.js';
import { encodeItemId } from '../../src/mapping/item-id.js';

const ROOT = resolve(import.meta.dirname, '..', '..');
const SAMPLE = join(ROOT, 'samples', 'contoso-tasks');

let emu: EmulatorHandle;
let admin: EmulatorAdmin;
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gc-run-dash-'));
  emu = await startEmulator({ schemaDelayMs: 100, log: () => {} });
  admin = await emulatorAdmin(emu.info);
});
afterAll(async () => {
  await emu?.close();
  await admin?.close();
  await rm(dir, { recursive: true, force: true });
});

describe('graph-connector run --dashboard', () => {
  it('serves the page and the API while the crawl runs and after it, until stopped; a replay is ingested', async () => {
    const lines = (await readFile(join(SAMPLE, 'tasks.jsonl'), 'utf8')).split('\n').filter(Boolean).slice(0, 20);
    const records = lines.map((l) => {
      const r = JSON.parse(l) as Record<string, unknown>;
      delete r.attachments;
      return r;
    });
    await writeFile(join(dir, 'tasks.jsonl'), records.map((r) => JSON.stringify(r)).join('\n') + '\n');
    const def = JSON.parse(await readFile(join(ROOT, 'connector.json'), 'utf8')) as Record<string, any>;
    delete def.$schema;
    delete def.mapping.attachments;
    def.connection.id = 'rundash';
    def.source.path = join(dir, 'tasks.jsonl');
    def.source.groups.path = join(SAMPLE, 'teams.json');
    def.mapping.acl.directory = join(SAMPLE, 'directory.json');
    await writeFile(join(dir, 'connector.json'), JSON.stringify(def));
    // Graph refuses one item during the crawl: a dead letter to replay from the page once the fault is gone.
    const refused = encodeItemId(String(records[3]!.ticketId));
    await admin('faults', {
      method: 'POST',
      body: { match: { method: 'PUT', route: 'item', itemId: refused }, action: 'status', status: 400, count: 0 },
    });

    let stdout = '';
    const stop = new AbortController();
    const uid = randomBytes(4).toString('hex');
    const result: Promise<RunResult> = runLocal({
      cwd: dir,
      env: {
        ...graphEnvForEmulator(emu.info),
        AzureWebJobsStorage: inject('storageConnectionString'),
        ITEMS_QUEUE: `items${uid}`,
        CRAWL_QUEUE: `crawl${uid}`,
        PROVISION_QUEUE: `prov${uid}`,
        LEDGER_TABLE_PREFIX: `t${uid}`,
        CLAIMS_CONTAINER: `claims${uid}`,
      },
      stdout: new Writable({
        write(chunk: Buffer, _enc, cb) {
          stdout += chunk.toString();
          cb();
        },
      }),
      stderr: new Writable({ write: (_c, _e, cb) => cb() }),
      signal: AbortSignal.any([stop.signal, AbortSignal.timeout(240_000)]),
      mode: 'full',
      force: false,
      reset: false,
      concurrency: 8,
      stateDir: join(dir, '.local'),
      configPath: join(dir, 'connector.json'),
      users: [],
      dashboard: { port: 0 },
    });
    const failed = result.then((r) => {
      throw new Error(`run ended before the dashboard was stopped (exit ${r.exitCode}):\n${stdout}`);
    });
    const waitFor = async (re: RegExp) => {
      for (;;) {
        const m = re.exec(stdout);
        if (m) return m;
        await Promise.race([new Promise((r) => setTimeout(r, 50)), failed]);
      }
    };

    const url = (await waitFor(/^dashboard (http:\/\/127\.0\.0\.1:\d+\/api\/dashboard) /m))[1]!;
    const origin = new URL(url).origin;
    expect((await fetch(`${origin}/api/status`)).status).toBe(200);
    // Served from before provisioning on, so through the whole crawl.
    await waitFor(/^crawl {5}completed/m);
    expect(stdout.indexOf('dashboard http')).toBeLessThan(stdout.indexOf('provision ['));

    await waitFor(/^dashboard still at /m);
    await admin('faults', { method: 'DELETE' });
    const page = await fetch(url);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    expect(page.headers.get('content-security-policy')).toMatch(/default-src 'none'/);
    expect(await page.text()).toContain('<title>graph-connector status</title>');
    const jobs = (await (await fetch(`${origin}/api/jobs`)).json()) as {
      value: { status: string; counts: { enumerated: number; ingested: number; deadLettered: number } }[];
    };
    expect(jobs.value[0]).toMatchObject({
      status: 'completed',
      counts: { enumerated: 20, ingested: 19, deadLettered: 1 },
    });
    expect((await fetch(`${origin}/api/deadletters/replay`)).status).toBe(405);
    expect((await fetch(`${origin}/api/nothing`)).status).toBe(404);
    const rebound = await new Promise<number>((done, fail) =>
      get(`${origin}/api/status`, { headers: { host: 'attacker.example' } }, (res) => {
        res.resume();
        done(res.statusCode ?? 0);
      }).on('error', fail),
    );
    expect(rebound).toBe(421);

    const replay = await fetch(`${origin}/api/deadletters/replay`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ itemIds: [refused] }),
    });
    expect(await replay.json()).toEqual({ replayed: 1, skipped: [] });
    // The run's worker keeps draining: the replayed item reaches Graph.
    await expect
      .poll(async () => (await admin<{ value: { id: string }[] }>('connections/rundash/items')).value.length, {
        timeout: 20_000,
      })
      .toBe(20);

    stop.abort();
    const r = await result;
    expect(r.exitCode, stdout).toBe(0);
    await expect(fetch(`${origin}/api/status`)).rejects.toThrow();
  }, 240_000);
});
