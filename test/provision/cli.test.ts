import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EmulatorHandle } from '../../src/emulator/index.js';
import { graphEnvForEmulator } from '../../src/local/emulator-client.js';
import { connectionId, startTestEmulator } from '../graph/helpers.js';
import { runCli } from '../support/cli.js';
import { writeExampleDefinition } from '../support/definition.js';

let emu: EmulatorHandle;
let dir: string;
beforeAll(async () => {
  emu = await startTestEmulator({ schemaDelayMs: 100 });
  dir = mkdtempSync(join(tmpdir(), 'gc-cli-'));
});
afterAll(async () => {
  await emu?.close();
  rmSync(dir, { recursive: true, force: true });
});

async function run(argv: string[], env: NodeJS.ProcessEnv = { ...graphEnvForEmulator(emu.info), LOG_LEVEL: 'info' }) {
  const { code, stdout: out, stderr: err } = await runCli(argv, env);
  return { code, out, err };
}

describe('graph-connector provision / graph', () => {
  it('provision --config creates the connection, schema and groups, printing progress; the secret never shows', async () => {
    const id = connectionId('cli');
    const config = writeExampleDefinition(dir, id);
    const groups = join(dir, 'groups.json');
    writeFileSync(
      groups,
      JSON.stringify([
        {
          id: 'support',
          displayName: 'Support',
          members: [{ id: '44444444-4444-4444-4444-444444444444', type: 'user' }],
        },
      ]),
    );
    const r = await run([
      'provision',
      '--config',
      config,
      '--groups',
      groups,
      '--timeout',
      '30s',
      '--poll-interval',
      '100ms',
    ]);
    expect(r.err + r.out).not.toContain(emu.info.clientSecret);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/connection: |schema: /);
    expect(r.out).toMatch(/polling: schema registration submitted/);
    expect(r.out).toMatch(/groups synced: 1 created/);
    expect(r.out).toMatch(new RegExp(`connection ${id} is ready`));
  });

  it('provision with an invalid environment lists every bad variable and fails before any Graph call', async () => {
    const r = await run(['provision'], { GRAPH_CREDENTIAL: 'magic', CRAWL_SCHEDULE: 'daily' });
    expect(r.code).not.toBe(0);
    expect(r.err).toMatch(/GRAPH_CREDENTIAL/);
    expect(r.err).toMatch(/CRAWL_SCHEDULE/);
  });

  it('graph GET with --query and --debug prints JSON, and the token is redacted in the debug output', async () => {
    const r = await run(['graph', 'GET', 'external/connections', '--query', '$select=id,name', '--debug']);
    expect(r.code, r.err).toBe(0);
    expect(JSON.parse(r.out).value).toBeInstanceOf(Array);
    expect(r.err).toMatch(/> GET https:\/\/127\.0\.0\.1:\d+\/v1\.0\/external\/connections\?\$select=id,name/);
    expect(r.err).toMatch(/Authorization: Bearer \[REDACTED\]/);
    expect(r.err).not.toMatch(/eyJ[A-Za-z0-9_-]{10,}/);
  });

  it('graph POST --data @file sends the body; a Graph error exits 1 with its request-id', async () => {
    const body = join(dir, 'conn.json');
    writeFileSync(body, JSON.stringify({ id: connectionId('raw'), name: 'Raw', description: 'made by graph command' }));
    const ok = await run(['graph', 'POST', 'external/connections', '--data', `@${body}`]);
    expect(ok.code, ok.err).toBe(0);
    expect(JSON.parse(ok.out).name).toBe('Raw');
    const bad = await run([
      'graph',
      'POST',
      'external/connections',
      '--data',
      '{"id":"x-y","name":"n","description":"d"}',
      '--max-retries',
      '0',
    ]);
    expect(bad.code).toBe(1);
    expect(bad.err).toMatch(/400 InvalidRequest/);
    expect(bad.err).toMatch(/request-id: \S+/);
  });

  it('graph rejects bad flags with a usage error (exit 2)', async () => {
    expect((await run(['graph', 'FETCH', 'x'])).code).toBe(2);
    expect((await run(['graph', 'GET', 'x', '--response-type', 'xml'])).code).toBe(2);
    expect((await run(['graph', 'GET', 'x', '--header', 'novalue'])).code).toBe(2);
  });
});
