/**
 * The reliability suite's world: the Graph emulator over HTTPS, the suite's Azurite, and a runtime built from
 * environment variables exactly as the Functions host builds it. Unlike test/support/stack.ts it keeps the
 * environment (a worker child process gets the same one) and collects every log line for the secret scan.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Agent } from 'undici';
import { expect, inject } from 'vitest';
import { startEmulator, type EmulatorHandle, type EmulatorOptions } from '../../src/emulator/index.js';
import { createMemoryLogger, type Logger } from '../../src/log.js';
import type { PipelineSettings } from '../../src/pipeline/deps.js';
import { runProvisionToCompletion } from '../../src/pipeline/provision/provision.js';
import { createRuntime, type Runtime } from '../../src/pipeline/runtime.js';
import { AZURITE_KEY } from '../../src/local/azurite.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Folder where each reliability file drops its figures for the summary table (test/reliability/global.ts). */
    reliabilityFiguresDir: string;
  }
}

export const ROOT = resolve(import.meta.dirname, '..', '..');
export const SAMPLE = join(ROOT, 'samples', 'contoso-tasks');

/** RELIABILITY_SIZE=small: the CI size (the whole suite in about two minutes). */
export const SMALL = process.env.RELIABILITY_SIZE === 'small';
export const sized = (full: number, small: number): number => (SMALL ? small : full);

const TEAMS = ['payments', 'logistics', 'finance', 'support'];

/** A good ticket: every field valid, every ACL resolvable (public, team, or restricted to directory users). */
export function ticket(i: number, rev = 0, prefix = 'REL'): Record<string, unknown> {
  const visibility = i % 5 === 0 ? 'restricted' : i % 3 === 0 ? 'team' : 'public';
  return {
    ticketId: `${prefix}${String(i).padStart(6, '0')}`,
    title: `Reliability ticket ${i}${rev ? ` revision ${rev}` : ''}`,
    description: `Ticket ${i}, revision ${rev}: the carrier confirmed the parcel is in their depot.`,
    status: ['open', 'inProgress', 'blocked', 'done'][(i + rev) % 4],
    priority: (i % 4) + 1,
    createdBy: 'adele@contoso.com',
    assignedTo: 'megan@contoso.com',
    team: TEAMS[i % TEAMS.length],
    tags: ['reliability', `r${rev}`],
    createdDate: '2026-01-02T03:04:05Z',
    lastEditedDate: `2026-01-${String(3 + (rev % 20)).padStart(2, '0')}T03:04:05Z`,
    visibility,
    ...(visibility === 'restricted' ? { allowedUsers: ['adele@contoso.com'] } : {}),
  };
}

export const jsonl = (records: unknown[]): string => records.map((r) => JSON.stringify(r)).join('\n') + '\n';

export interface RStack {
  emu: EmulatorHandle;
  rt: Runtime;
  env: Record<string, string>;
  dir: string;
  recordsPath: string;
  logger: Logger & { lines: string[] };
  connectionId: string;
  writeRecords(text: string): Promise<void>;
  admin<T = any>(path: string, init?: { method?: string; body?: unknown }): Promise<T>;
  /** The emulator's items of the connection, by id. */
  emulatorItems(): Promise<
    Map<string, { id: string; acl: unknown; properties: Record<string, unknown>; content?: unknown }>
  >;
  /** Item requests the emulator logged since the last call (then clears the log). */
  takeItemRequests(): Promise<{ method: string; status: number; itemId?: string; fault?: string; time: string }[]>;
  /** Every secret value this stack uses (for the log scan). */
  secrets(): string[];
  close(): Promise<void>;
}

export interface RStackOptions {
  emulator?: EmulatorOptions;
  records?: string;
  /** Path of the source file instead of a regular file in the stack's folder (e.g. a FIFO). */
  editDefinition?: (def: Record<string, any>) => void;
  settings?: Partial<PipelineSettings>;
}

export async function startReliabilityStack(options: RStackOptions = {}): Promise<RStack> {
  const emu = await startEmulator({
    directory: join(SAMPLE, 'directory.json'),
    schemaDelayMs: 100,
    log: () => {},
    ...options.emulator,
  });
  const dir = await mkdtemp(join(tmpdir(), 'gc-rel-'));
  const recordsPath = join(dir, 'tasks.jsonl');
  await writeFile(recordsPath, options.records ?? '');
  const def = JSON.parse(await readFile(join(ROOT, 'connector.json'), 'utf8')) as Record<string, any>;
  delete def.$schema;
  def.source.path = recordsPath;
  def.source.groups.path = join(SAMPLE, 'teams.json');
  def.mapping.acl.directory = join(SAMPLE, 'directory.json');
  options.editDefinition?.(def);
  const configPath = join(dir, 'connector.json');
  await writeFile(configPath, JSON.stringify(def, null, 2));
  const uid = randomBytes(4).toString('hex');
  const info = emu.info;
  const env: Record<string, string> = {
    CONNECTOR_CONFIG: configPath,
    GRAPH_BASE_URL: info.baseUrl,
    GRAPH_AUTHORITY_HOST: info.authorityHost,
    GRAPH_TENANT_ID: info.tenantId,
    GRAPH_CLIENT_ID: info.clientId,
    GRAPH_CREDENTIAL: 'clientSecret',
    GRAPH_CLIENT_SECRET: info.clientSecret,
    ...(info.caCertPath ? { GRAPH_CA_CERT_PATH: info.caCertPath } : {}),
    AzureWebJobsStorage: inject('storageConnectionString'),
    ITEMS_QUEUE: `items${uid}`,
    CRAWL_QUEUE: `crawl${uid}`,
    PROVISION_QUEUE: `prov${uid}`,
    LEDGER_TABLE_PREFIX: `r${uid}`,
    CLAIMS_CONTAINER: `claims${uid}`,
    LOG_LEVEL: 'debug',
  };
  const logger = createMemoryLogger('debug');
  const rt = await createRuntime({
    env,
    logger,
    settings: { finalizeDelayMs: 100, maxFinalizeDelayMs: 400, ...options.settings },
  });
  await rt.ensureStorage();
  await runProvisionToCompletion({ graph: rt.graph, definition: rt.definition, logger, store: rt.provisionStore });
  const ca = info.caCertPath ? await readFile(info.caCertPath) : undefined;
  const dispatcher = ca ? new Agent({ connect: { ca } }) : undefined;
  const connectionId = rt.definition.connection.id;
  const admin = async <T>(path: string, init: { method?: string; body?: unknown } = {}): Promise<T> => {
    const res = await fetch(`${info.adminUrl}/${path.replace(/^\//, '')}`, {
      method: init.method ?? 'GET',
      ...(init.body !== undefined
        ? { body: JSON.stringify(init.body), headers: { 'content-type': 'application/json' } }
        : {}),
      ...(dispatcher ? { dispatcher } : {}),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`emulator admin ${path}: ${res.status} ${text}`);
    return (text ? JSON.parse(text) : undefined) as T;
  };
  return {
    emu,
    rt,
    env,
    dir,
    recordsPath,
    logger,
    connectionId,
    writeRecords: (text) => writeFile(recordsPath, text),
    admin,
    async emulatorItems() {
      const { value } = await admin<{ value: { id: string; acl: unknown; properties: Record<string, unknown> }[] }>(
        `connections/${connectionId}/items`,
      );
      return new Map(value.map((i) => [i.id, i]));
    },
    async takeItemRequests() {
      const { value } = await admin<{
        value: { method: string; route: string; status: number; itemId?: string; fault?: string; time: string }[];
      }>(`requests?connectionId=${connectionId}&route=item`);
      await admin('requests', { method: 'DELETE' });
      return value;
    },
    secrets: () => [
      info.clientSecret,
      AZURITE_KEY,
      ...(info.managedIdentityHeader ? [info.managedIdentityHeader] : []),
    ],
    async close() {
      await emu.close();
      await dispatcher?.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Every value in `secrets` is absent from every line (and from its JSON-escaped form). */
export function expectNoSecrets(lines: readonly string[], secrets: readonly string[]): void {
  const leaks: string[] = [];
  for (const s of secrets.filter((x) => x && x.length >= 8)) {
    const escaped = JSON.stringify(s).slice(1, -1);
    for (const [i, line] of lines.entries()) {
      if (line.includes(s) || line.includes(escaped)) leaks.push(`line ${i + 1} contains a secret (${s.slice(0, 3)}…)`);
    }
  }
  expect(leaks, `secret values in log lines:\n${leaks.slice(0, 10).join('\n')}`).toEqual([]);
}

/** Record this file's figures for the summary table the suite prints at the end. */
export async function reportFigures(
  name: string,
  figures: {
    items: number;
    faultsInjected: number;
    retries: number;
    deadLetters: number;
    lost: number;
    note?: string;
  },
): Promise<void> {
  const dir = inject('reliabilityFiguresDir');
  await writeFile(join(dir, `${name.replace(/[^a-z0-9]+/gi, '-')}.json`), JSON.stringify({ name, ...figures }));
}
