/**
 * The reliability suite's world: the shared end-to-end stack (the Graph emulator over HTTPS, the suite's
 * Azurite, a runtime built from environment variables as the Functions host builds it), its environment for
 * worker child processes, and every log line for the secret scan.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { writeFile } from 'node:fs/promises';
import { expect, inject } from 'vitest';
import type { EmulatorOptions } from '../../src/emulator/index.js';
import { AZURITE_KEY } from '../../src/local/azurite.js';
import { createMemoryLogger, type Logger } from '../../src/log.js';
import type { PipelineSettings } from '../../src/crawl/deps.js';
import { ROOT, startStack, type Stack } from '../support/stack.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Folder where each reliability file drops its figures for the summary table (test/reliability/global.ts). */
    reliabilityFiguresDir: string;
  }
}

export { ROOT, SAMPLE } from '../support/stack.js';

/** RELIABILITY_SIZE=small: the CI size (the whole suite in about two minutes). */
export const SMALL = process.env.RELIABILITY_SIZE === 'small';
export const sized = (full: number, small: number): number => (SMALL ? small : full);

// Teams the sample syncs (samples/contoso-tasks/teams.json): an ACL naming another group is unresolved.
const TEAMS = ['payments', 'logistics', 'finance', 'itsupport'];

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

export interface RStack extends Stack {
  logger: Logger & { lines: string[] };
  connectionId: string;
  /** The emulator's items of the connection, by id. */
  emulatorItems(): Promise<
    Map<string, { id: string; acl: unknown; properties: Record<string, unknown>; content?: unknown }>
  >;
  /** Item requests the emulator logged since the last call (then clears the log). */
  takeItemRequests(): Promise<{ method: string; status: number; itemId?: string; fault?: string; time: string }[]>;
  /** Every secret value this stack uses (for the log scan). */
  secrets(): string[];
}

export interface RStackOptions {
  emulator?: EmulatorOptions;
  records?: string;
  editDefinition?: (def: Record<string, any>) => void;
  settings?: Partial<PipelineSettings>;
}

/** The shared end-to-end stack (test/support/stack.ts), with an empty source, a log kept for the secret scan, and the suite's helpers. */
export async function startReliabilityStack(options: RStackOptions = {}): Promise<RStack> {
  const logger = createMemoryLogger('debug');
  const stack = await startStack({
    emulator: { schemaDelayMs: 100, ...options.emulator },
    records: options.records ?? '',
    logger,
    settings: { maxFinalizeDelayMs: 400, ...options.settings },
    ...(options.editDefinition ? { editDefinition: options.editDefinition } : {}),
  });
  const { admin, emu } = stack;
  const connectionId = stack.rt.definition.connection.id;
  return {
    ...stack,
    logger,
    connectionId,
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
      emu.info.clientSecret,
      AZURITE_KEY,
      ...(emu.info.managedIdentityHeader ? [emu.info.managedIdentityHeader] : []),
    ],
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
    /** Bytes of what an attack aimed at found in any published item (or requests that reached it): must be 0. */
    leaked?: number;
    note?: string;
  },
): Promise<void> {
  const dir = inject('reliabilityFiguresDir');
  await writeFile(join(dir, `${name.replace(/[^a-z0-9]+/gi, '-')}.json`), JSON.stringify({ name, ...figures }));
}

/**
 * The external group ids the source's group sync names, as the crawl passes them to the mapper
 * (`MapContext.externalGroups`): a test mapping records for its expected state maps them the way the crawl does.
 */
export async function sourceGroupIds(stack: Stack): Promise<Set<string>> {
  const source = stack.rt.pipeline.source();
  const ids = new Set<string>();
  if (source.groups) for await (const g of source.groups()) ids.add(g.id);
  return ids;
}

/** A `graph-connector worker` child process (from the build) on the stack's storage; its output goes to `lines`. */
export function startWorkerProcess(
  stack: Stack,
  args: string[],
  options: { env?: Record<string, string>; lines: string[]; children: Set<ChildProcess> },
): ChildProcess {
  const child = spawn(process.execPath, [join(ROOT, 'bin', 'graph-connector.js'), 'worker', ...args], {
    env: { ...stack.env, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let buf = '';
  const take = (d: Buffer) => {
    buf += d.toString();
    const parts = buf.split('\n');
    buf = parts.pop() ?? '';
    options.lines.push(...parts);
  };
  child.stdout.on('data', take);
  child.stderr.on('data', take);
  options.children.add(child);
  child.on('exit', () => options.children.delete(child));
  return child;
}

/** Send `signal` to `child` and wait for it to exit (its exit code; null when a signal ended it). */
export async function killChild(child: ChildProcess, signal: NodeJS.Signals): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  child.kill(signal);
  return exited;
}

/** Poll `fn` until it returns a value (or throws), at most `timeoutMs`. */
export async function waitFor<T>(
  what: string,
  fn: () => Promise<T | undefined>,
  options: { timeoutMs?: number; everyMs?: number } = {},
): Promise<T> {
  const until = Date.now() + (options.timeoutMs ?? 300_000);
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, options.everyMs ?? 100));
  }
}
