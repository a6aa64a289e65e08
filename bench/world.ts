/**
 * The benchmark's world: one Azurite (child process), one Graph emulator over HTTPS (in this process), and
 * runtimes built exactly as the Functions host builds them — from environment variables and a connector
 * definition — each with its own queues and tables so scenarios never see each other's state.
 */
import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { once } from 'node:events';
import { startEmulator, type EmulatorHandle } from '../src/emulator/index.js';
import { startAzurite, type AzuriteHandle } from '../src/local/azurite.js';
import { emulatorAdmin, graphEnvForEmulator, type EmulatorAdmin } from '../src/local/emulator-client.js';
import { silentLogger } from '../src/log.js';
import { runProvisionToCompletion } from '../src/provision/provision.js';
import { createRuntime, type Runtime, type RuntimeOptions } from '../src/host/runtime.js';

/** The project root (works from bench/ under ts and from dist/bench/ once built). */
export function projectRoot(): string {
  const here = import.meta.dirname;
  return basename(dirname(here)) === 'dist' ? resolve(here, '..', '..') : resolve(here, '..');
}

export const ROOT = projectRoot();
export const SAMPLE = join(ROOT, 'samples', 'contoso-tasks');

const TEAMS = ['payments', 'logistics', 'finance', 'support', 'hr'];
const STATUSES = ['open', 'inProgress', 'blocked', 'done'];
const TEXT =
  'The carrier confirmed the parcel is in their depot but it has no onward booking. Temperature logs stop at ' +
  '03:30; the load may need to be inspected before delivery. Drivers report the new route adds about 26 minutes.';

/** One synthetic ticket in the sample's shape (public or team-visible, so every ACL resolves). */
export function ticket(prefix: string, i: number, revision = 0): Record<string, unknown> {
  return {
    ticketId: `${prefix}${String(i).padStart(7, '0')}`,
    title: `Ticket ${i} of ${prefix}${revision ? ` rev ${revision}` : ''}`,
    description: `${TEXT} (#${i})`,
    status: STATUSES[i % STATUSES.length],
    priority: (i % 4) + 1,
    createdBy: 'adele@contoso.com',
    assignedTo: 'megan@contoso.com',
    team: TEAMS[i % TEAMS.length],
    tags: ['bench', `t${i % 7}`],
    createdDate: '2026-01-02T03:04:05Z',
    lastEditedDate: '2026-01-03T03:04:05Z',
    visibility: i % 3 === 0 ? 'team' : 'public',
  };
}

/** Write `count` tickets as JSON lines, streaming (100,000 records never sit in memory as one string). */
export async function writeTickets(path: string, prefix: string, count: number): Promise<void> {
  const out = createWriteStream(path);
  for (let i = 0; i < count; i++) {
    if (!out.write(JSON.stringify(ticket(prefix, i)) + '\n')) await once(out, 'drain');
  }
  out.end();
  await once(out, 'finish');
}

export interface World {
  azurite: AzuriteHandle;
  emu: EmulatorHandle;
  dir: string;
  connectionId: string;
  /** Environment of a runtime with its own storage names, reading `recordsPath`. */
  envFor(recordsPath: string): Promise<Record<string, string>>;
  runtime(
    env: Record<string, string>,
    options?: Pick<RuntimeOptions, 'onStorageRequest' | 'settings'>,
  ): Promise<Runtime>;
  admin: EmulatorAdmin;
  /** Item requests the emulator logged for the connection since the last call (and clears the log). */
  takeItemRequests(): Promise<LoggedRequest[]>;
  close(): Promise<void>;
}

export interface LoggedRequest {
  time: string;
  method: string;
  route: string;
  status: number;
  durationMs: number;
}

export async function startWorld(): Promise<World> {
  const azurite = await startAzurite();
  const emu = await startEmulator({ directory: join(SAMPLE, 'directory.json'), schemaDelayMs: 100, log: () => {} });
  const dir = await mkdtemp(join(tmpdir(), 'gc-bench-'));
  const info = emu.info;
  const def = JSON.parse(await readFile(join(ROOT, 'connector.json'), 'utf8')) as Record<string, any>;
  delete def.$schema;
  // No external-group sync in the measured crawls: items only (team ACLs name the groups regardless).
  delete def.source.groups;
  def.mapping.acl.directory = join(SAMPLE, 'directory.json');
  const connectionId = String(def.connection.id);

  const admin = await emulatorAdmin(info);

  const envFor = async (recordsPath: string) => {
    const uid = randomBytes(4).toString('hex');
    const d = structuredClone(def);
    d.source.path = recordsPath;
    const configPath = join(dir, `connector-${uid}.json`);
    await writeFile(configPath, JSON.stringify(d, null, 2));
    return {
      CONNECTOR_CONFIG: configPath,
      ...graphEnvForEmulator(info),
      AzureWebJobsStorage: azurite.connectionString,
      ITEMS_QUEUE: `items${uid}`,
      CRAWL_QUEUE: `crawl${uid}`,
      PROVISION_QUEUE: `prov${uid}`,
      LEDGER_TABLE_PREFIX: `b${uid}`,
      CLAIMS_CONTAINER: `claims${uid}`,
      STATE_CONTAINER: `state${uid}`,
      LOG_LEVEL: 'warn',
    };
  };

  let provisioned = false;
  const runtime = async (
    env: Record<string, string>,
    options: Pick<RuntimeOptions, 'onStorageRequest' | 'settings'> = {},
  ) => {
    const rt = await createRuntime({
      env,
      logger: silentLogger,
      ...options,
      settings: { finalizeDelayMs: 100, maxFinalizeDelayMs: 250, ...options.settings },
    });
    await rt.ensureStorage();
    if (!provisioned) {
      await runProvisionToCompletion({
        graph: rt.graph,
        definition: rt.definition,
        logger: silentLogger,
        store: rt.provisionStore,
      });
      provisioned = true;
    }
    return rt;
  };

  return {
    azurite,
    emu,
    dir,
    connectionId,
    envFor,
    runtime,
    admin,
    async takeItemRequests() {
      const { value } = await admin<{ value: (LoggedRequest & { route: string })[] }>(
        `requests?connectionId=${connectionId}&route=item`,
      );
      await admin('requests', { method: 'DELETE' });
      return value;
    },
    async close() {
      await emu.close().catch(() => undefined);
      await admin.close().catch(() => undefined);
      await azurite.stop().catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    },
  };
}
