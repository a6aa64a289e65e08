/**
 * The whole local world for end-to-end tests: the Graph emulator over HTTPS (real tokens through
 * @azure/identity), the shared Azurite, and a runtime built exactly as the Functions host builds it — from
 * environment variables and a connector definition — with unique storage names per stack.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { inject } from 'vitest';
import { startEmulator, type EmulatorHandle, type EmulatorOptions } from '../../src/emulator/index.js';
import { emulatorAdmin, graphEnvForEmulator, type EmulatorAdmin } from '../../src/local/emulator-client.js';
import { createMemoryLogger, type Logger } from '../../src/log.js';
import type { Telemetry } from '../../src/core/telemetry.js';
import type { StartCrawlRequest } from '../../src/crawl/index.js';
import type { PipelineSettings } from '../../src/crawl/deps.js';
import { crawlLocally, type LocalCrawlResult } from '../../src/local/crawl-locally.js';
import { runProvisionToCompletion } from '../../src/provision/provision.js';
import { createRuntime, type Runtime } from '../../src/host/runtime.js';
import { assertSchemaValid } from './schema.js';

export const ROOT = resolve(import.meta.dirname, '..', '..');
export const SAMPLE = join(ROOT, 'samples', 'contoso-tasks');

export interface StackOptions {
  emulator?: EmulatorOptions;
  /** JSON lines of the source (default: the sample's tasks.jsonl). */
  records?: string;
  /** Edit the connector definition before the runtime reads it. */
  editDefinition?: (def: Record<string, any>) => void;
  settings?: Partial<PipelineSettings>;
  env?: Record<string, string>;
  logger?: Logger;
  /** Spans and metrics of the runtime (test/support/telemetry.ts builds one over in-memory exporters). */
  telemetry?: Telemetry;
  /** Provision the connection before returning (default true). */
  provision?: boolean;
  /** Called for every storage request of the runtime (count them, or throw to crash a step mid-way). */
  onStorageRequest?: (service: 'queue' | 'table' | 'blob', method: string, url: string) => void;
}

export interface Stack {
  emu: EmulatorHandle;
  rt: Runtime;
  /** The environment the runtime was built from (a worker child process can get the same). */
  env: Record<string, string>;
  dir: string;
  recordsPath: string;
  logger: Logger & { lines?: string[] };
  /** Replace the source's records (JSON lines). */
  writeRecords(text: string): Promise<void>;
  crawl(request?: Partial<StartCrawlRequest>, concurrency?: number): Promise<LocalCrawlResult>;
  /** The emulator's admin API (request log, stored items, ACL search). */
  admin: EmulatorAdmin;
  /** Graph writes the emulator saw (PUT/DELETE on items) since the last call. */
  takeWrites(): Promise<{ puts: number; deletes: number; throttled: number }>;
  close(): Promise<void>;
}

/**
 * The definition a stack runs: the sample's connector.json with its files pointed at `dir` and the sample folder,
 * then `editDefinition`. Checked against connector.schema.json, so every fixture a test builds is a definition
 * the schema accepts.
 */
export function stackDefinition(options: {
  dir: string;
  editDefinition?: (def: Record<string, any>) => void;
}): Record<string, any> {
  const def = JSON.parse(readFileSync(join(ROOT, 'connector.json'), 'utf8')) as Record<string, any>;
  delete def.$schema;
  def.source.path = join(options.dir, 'tasks.jsonl');
  if (def.source.groups?.path) def.source.groups.path = join(SAMPLE, 'teams.json');
  if (def.mapping?.acl) def.mapping.acl.directory = join(SAMPLE, 'directory.json');
  if (def.mapping?.attachments?.folder) def.mapping.attachments.folder = join(SAMPLE, 'attachments');
  options.editDefinition?.(def);
  assertSchemaValid(def, 'the stack definition');
  return def;
}

export async function startStack(options: StackOptions = {}): Promise<Stack> {
  const emu = await startEmulator({
    directory: join(SAMPLE, 'directory.json'),
    schemaDelayMs: 150,
    log: () => {},
    ...options.emulator,
  });
  const dir = await mkdtemp(join(tmpdir(), 'gc-stack-'));
  const recordsPath = join(dir, 'tasks.jsonl');
  await writeFile(recordsPath, options.records ?? (await readFile(join(SAMPLE, 'tasks.jsonl'), 'utf8')));
  const def = stackDefinition({
    dir,
    ...(options.editDefinition ? { editDefinition: options.editDefinition } : {}),
  });
  const configPath = join(dir, 'connector.json');
  await writeFile(configPath, JSON.stringify(def, null, 2));

  const uid = randomBytes(4).toString('hex');
  const info = emu.info;
  const env: Record<string, string> = {
    CONNECTOR_CONFIG: configPath,
    ...graphEnvForEmulator(info),
    AzureWebJobsStorage: inject('storageConnectionString'),
    ITEMS_QUEUE: `items${uid}`,
    CRAWL_QUEUE: `crawl${uid}`,
    PROVISION_QUEUE: `prov${uid}`,
    LEDGER_TABLE_PREFIX: `t${uid}`,
    CLAIMS_CONTAINER: `claims${uid}`,
    STATE_CONTAINER: `state${uid}`,
    LOG_LEVEL: 'debug',
    ...options.env,
  };
  const logger = options.logger ?? createMemoryLogger('debug');
  const rt = await createRuntime({
    env,
    logger,
    ...(options.telemetry ? { telemetry: options.telemetry } : {}),
    settings: { finalizeDelayMs: 100, maxFinalizeDelayMs: 500, ...options.settings },
    ...(options.onStorageRequest ? { onStorageRequest: options.onStorageRequest } : {}),
  });
  await rt.ensureStorage();
  if (options.provision !== false) {
    await runProvisionToCompletion({ graph: rt.graph, definition: rt.definition, logger, store: rt.provisionStore });
  }

  const admin = await emulatorAdmin(info);
  return {
    emu,
    rt,
    env,
    dir,
    recordsPath,
    logger,
    writeRecords: (text) => writeFile(recordsPath, text),
    crawl: (request = {}, concurrency = 8) =>
      crawlLocally(
        rt.pipeline,
        { mode: 'full', trigger: 'cli', ...request },
        { concurrency, pollMs: 50, visibilityTimeoutMs: 5_000 },
      ),
    admin,
    async takeWrites() {
      const { value } = await admin<{ value: { method: string; route: string; status: number; time: string }[] }>(
        `requests?connectionId=${rt.definition.connection.id}`,
      );
      await admin('requests', { method: 'DELETE' });
      const items = value.filter((e) => e.route === 'item');
      return {
        puts: items.filter((e) => e.method === 'PUT' && e.status < 300).length,
        deletes: items.filter((e) => e.method === 'DELETE' && e.status < 300).length,
        throttled: items.filter((e) => e.status === 429).length,
      };
    },
    async close() {
      await emu.close();
      await admin.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
