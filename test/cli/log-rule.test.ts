/**
 * One rule for what a command writes to stderr: human lines on a terminal, one JSON object per line otherwise;
 * warnings and errors by default (so no `info secret read …` in a person's terminal, whatever LOG_LEVEL the
 * Functions settings carry), info with --verbose, everything with LOG_LEVEL=debug. Checked on the graph and status
 * commands against the emulator and Azurite, writing to a terminal-like stream and to a pipe.
 * Bug class prevented: noisy or machine-formatted output on a person's terminal (and the reverse in a pipe).
 */
import { writeFileSync } from 'node:fs';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { main } from '../../src/cli/index.js';
import { startEmulator, type EmulatorHandle } from '../../src/emulator/index.js';
import { graphEnvForEmulator } from '../../src/local/emulator-client.js';
import { createRuntime } from '../../src/host/runtime.js';
import { commandLogger, silentLogger } from '../../src/log.js';
import { exampleDefinition } from '../support/definition.js';

let emu: EmulatorHandle;
let dir: string;

/** A stream that records what is written and says whether it is a terminal. */
function sink(isTTY: boolean) {
  let text = '';
  const stream = Object.assign(
    new Writable({
      write(chunk: Buffer, _e, cb) {
        text += chunk.toString();
        cb();
      },
    }),
    { isTTY },
  );
  return { stream, lines: () => text.split('\n').filter(Boolean), text: () => text };
}

async function cli(argv: string[], env: NodeJS.ProcessEnv, tty: boolean) {
  const out = sink(tty);
  const err = sink(tty);
  const code = await main(argv, {
    env,
    stdout: out.stream,
    stderr: err.stream,
    abortSignal: AbortSignal.timeout(60_000),
  });
  return { code, stdout: out.text(), stderr: err.lines() };
}

const isJson = (l: string) => {
  try {
    return typeof JSON.parse(l) === 'object';
  } catch {
    return false;
  }
};

beforeAll(async () => {
  emu = await startEmulator({ schemaDelayMs: 100, log: () => {} });
  dir = mkdtempSync(join(tmpdir(), 'gc-logrule-'));
});
afterAll(async () => {
  await emu?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('commandLogger', () => {
  it('human lines on a terminal, JSON otherwise; warn by default, info with verbose, debug with LOG_LEVEL=debug', () => {
    const tty = sink(true);
    const pipe = sink(false);
    for (const [s, opts] of [
      [tty, {}],
      [pipe, {}],
    ] as const) {
      const log = commandLogger(s.stream, opts);
      log.info('hidden');
      log.warn('shown', { name: 'x', status: undefined });
    }
    expect(tty.lines()).toEqual(['warn  shown  name=x']);
    expect(pipe.lines()).toHaveLength(1);
    expect(JSON.parse(pipe.lines()[0]!)).toMatchObject({ level: 'warn', msg: 'shown', name: 'x' });
    const verbose = sink(true);
    commandLogger(verbose.stream, { verbose: true, env: { LOG_LEVEL: 'info' } }).info('seen');
    commandLogger(verbose.stream, { env: { LOG_LEVEL: 'info' } }).info('not seen: LOG_LEVEL=info is the host setting');
    commandLogger(verbose.stream, { env: { LOG_LEVEL: 'debug' } }).debug('debug on request');
    expect(verbose.lines()).toEqual(['info  seen', 'debug debug on request']);
  });
});

describe('graph and status follow it', () => {
  const env = () => ({ ...graphEnvForEmulator(emu.info), LOG_LEVEL: 'info' });

  it('graph: no "secret read" line by default, on a terminal or not; --verbose shows it in the stream\'s format', async () => {
    for (const tty of [true, false]) {
      const r = await cli(['graph', 'GET', 'external/connections'], env(), tty);
      expect(r.code).toBe(0);
      expect(r.stderr.join('\n')).not.toMatch(/secret read/);
      expect(JSON.parse(r.stdout)).toHaveProperty('value');
    }
    const human = await cli(['graph', 'GET', 'external/connections', '--verbose'], env(), true);
    expect(human.stderr).toContainEqual(
      expect.stringMatching(/^info {2}secret read {2}component=secrets name=graph-client-secret/),
    );
    expect(human.stderr.some(isJson)).toBe(false);
    const piped = await cli(['graph', 'GET', 'external/connections', '--verbose'], env(), false);
    expect(piped.stderr.length).toBeGreaterThan(0);
    expect(piped.stderr.every(isJson)).toBe(true);
    expect(piped.stderr.map((l) => (JSON.parse(l) as { msg: string }).msg)).toContain('secret read');
  });

  it('status: a definition warning is a human line on a terminal and a JSON line in a pipe', async () => {
    const def = exampleDefinition('logrule') as unknown as Record<string, any>;
    const root = new URL('../../', import.meta.url).pathname;
    def.source.path = join(root, def.source.path);
    def.source.groups.path = join(root, def.source.groups.path);
    def.mapping.acl.directory = join(root, def.mapping.acl.directory);
    delete def.mapping.attachments;
    delete def.mapping.iconUrl;
    // No iconUrl label: a warning, not an error.
    for (const p of def.schema.properties) p.labels = (p.labels ?? []).filter((l: string) => l !== 'iconUrl');
    const config = join(dir, 'logrule.json');
    writeFileSync(config, JSON.stringify(def));
    const storage = { AzureWebJobsStorage: inject('storageConnectionString'), LEDGER_TABLE_PREFIX: 'logrule' };
    // The storage a run would have made (status reads it; it creates nothing).
    await (
      await createRuntime({ env: { ...env(), ...storage }, configPath: config, logger: silentLogger })
    ).ensureStorage();
    const human = await cli(['status', '--config', config], { ...env(), ...storage }, true);
    expect(human.code, human.stderr.join('\n')).toBe(0);
    expect(human.stderr).toContainEqual(expect.stringMatching(/^warn {2}connector definition: .*iconUrl/));
    expect(human.stderr.some(isJson)).toBe(false);
    const piped = await cli(['status', '--config', config], { ...env(), ...storage }, false);
    expect(piped.stderr.length).toBeGreaterThan(0);
    expect(piped.stderr.every(isJson)).toBe(true);
    expect(piped.stderr.join('\n')).not.toMatch(/secret read/);
  });
});

describe('graph --help', () => {
  it("illustrates itself with the connector's own calls first", async () => {
    const r = await cli(['graph', '--help'], {}, false);
    const examples = r.stdout.slice(r.stdout.indexOf('Examples'));
    const calls = [...examples.matchAll(/graph-connector graph (GET|POST|PATCH|PUT|DELETE) (\S+)/g)].map((m) => m[2]!);
    expect(calls[0]).toBe('external/connections');
    expect(calls.slice(0, -1).every((p) => p.startsWith('external/connections'))).toBe(true);
    expect(calls.findIndex((p) => p.startsWith('identity/'))).toBe(calls.length - 1);
  });
});
