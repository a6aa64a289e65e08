/** Shared set-up of the doctor tests: the emulator, unique names, the environment, running main(). */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inject } from 'vitest';
import { startEmulator, type EmulatorHandle } from '../../src/emulator/index.js';
import { graphEnvForEmulator } from '../../src/local/emulator-client.js';
import type { CheckResult, DoctorReport } from '../../src/doctor/index.js';
import { runCli } from '../support/cli.js';
import { writeExampleDefinition } from '../support/definition.js';

export interface Stack {
  emu: EmulatorHandle;
  dir: string;
  conn: string;
  close(): Promise<void>;
}

export async function startStack(): Promise<Stack> {
  const emu = await startEmulator({ schemaDelayMs: 100, log: () => {} });
  const dir = mkdtempSync(join(tmpdir(), 'gc-doctor-'));
  return {
    emu,
    dir,
    conn: inject('storageConnectionString'),
    async close() {
      await emu.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

let n = 0;
/** Unique storage names and connection id per test (the Azurite and the emulator are shared). */
export function names() {
  const id = `${process.pid.toString(36)}${Date.now().toString(36)}${n++}`.replace(/[^a-z0-9]/g, '');
  return {
    connectionId: `doc${id}`.slice(0, 32),
    itemsQueue: `dq${id}-items`,
    crawlQueue: `dq${id}-crawl`,
    provisionQueue: `dq${id}-prov`,
    prefix: `dr${id}`,
    container: `dc${id}`,
  };
}
export type Names = ReturnType<typeof names>;

/** A complete, good local environment (emulator + Azurite); `extra` overrides (undefined removes). */
export function envFor(stack: Stack, nm: Names, extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const { emu } = stack;
  const env: NodeJS.ProcessEnv = {
    CONNECTOR_CONFIG: writeExampleDefinition(stack.dir, nm.connectionId),
    ...graphEnvForEmulator(emu.info),
    AzureWebJobsStorage: stack.conn,
    ITEMS_QUEUE: nm.itemsQueue,
    CRAWL_QUEUE: nm.crawlQueue,
    PROVISION_QUEUE: nm.provisionQueue,
    LEDGER_TABLE_PREFIX: nm.prefix,
    CLAIMS_CONTAINER: nm.container,
    CRAWL_SCHEDULE: '0 0 */6 * * *',
    LOG_LEVEL: 'error',
  };
  for (const [k, v] of Object.entries(extra)) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  return env;
}

/** `graph-connector <argv>` through main(), stdout/stderr captured. */
export const run = (argv: string[], env: NodeJS.ProcessEnv) =>
  runCli(argv, env, { abortSignal: new AbortController().signal });

/** `graph-connector doctor --json`, parsed, with a lookup by check id. */
export async function doctorJson(env: NodeJS.ProcessEnv, ...args: string[]) {
  const r = await run(['doctor', '--json', ...args], env);
  const report = JSON.parse(r.stdout) as DoctorReport;
  const by = (id: string): CheckResult => {
    const c = report.checks.find((x) => x.id === id);
    if (!c) throw new Error(`no check ${id} in ${r.stdout}`);
    return c;
  };
  return { ...r, report, by };
}

/** The emulator's admin API (docs: src/emulator/admin.ts). */
export async function admin<T>(stack: Stack, method: string, path: string, body?: unknown): Promise<T> {
  const { Agent } = await import('undici');
  const dispatcher = new Agent({ connect: { ca: readFileSync(stack.emu.info.caCertPath!) } });
  try {
    const res = await fetch(`${stack.emu.info.adminUrl}/${path}`, {
      method,
      ...(body !== undefined ? { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } } : {}),
      dispatcher,
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`admin ${method} ${path} → ${res.status}: ${text}`);
    return (text ? JSON.parse(text) : undefined) as T;
  } finally {
    await dispatcher.close();
  }
}
