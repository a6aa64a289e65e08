/**
 * Provisioning waits out a connection deletion in progress: Graph deletes connections over minutes, and until it
 * finishes the id is taken (POST → 409) while the connection cannot be read. Provisioning keeps trying to create
 * it, with progress saying why, and fails only when the id stays taken past the deletion timeout.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ConnectorDefinition } from '../../src/config/definition.js';
import type { EmulatorHandle } from '../../src/emulator/index.js';
import { createMemoryLogger } from '../../src/log.js';
import { ProvisionError, runProvisionToCompletion } from '../../src/provision/provision.js';
import { MemoryProvisionStore, type ProvisionState } from '../../src/state/provision-store.js';
import { admin, clientFor, connectionId, requests, startTestEmulator } from '../graph/helpers.js';

let emu: EmulatorHandle;
beforeAll(async () => {
  // The emulator's default: a deletion runs for a short while after the 202.
  emu = await startTestEmulator({ schemaDelayMs: 100 });
});
afterAll(async () => {
  await emu?.close();
});

const example = JSON.parse(
  readFileSync(new URL('../../connector.json', import.meta.url), 'utf8'),
) as ConnectorDefinition;

async function provision(id: string, deletionTimeoutMs?: number) {
  const def = structuredClone(example);
  def.connection.id = id;
  const progress: ProvisionState[] = [];
  const run = runProvisionToCompletion(
    {
      graph: clientFor(emu.info, { retry: { maxRetries: 2, baseDelayMs: 20 } }),
      definition: def,
      logger: createMemoryLogger('info'),
      store: new MemoryProvisionStore(),
      options: {
        pollIntervalMs: 50,
        maxPollIntervalMs: 200,
        transientDelayMs: 50,
        ...(deletionTimeoutMs !== undefined ? { deletionTimeoutMs } : {}),
      },
    },
    { onProgress: (s) => progress.push({ ...s }) },
  );
  return { run, progress };
}

describe('provisioning right after the connection was deleted', () => {
  it('waits until the deletion has finished, then creates the connection again and takes it to ready', async () => {
    const id = connectionId('redo');
    expect((await (await provision(id)).run).phase).toBe('ready');
    const graph = clientFor(emu.info);
    const t0 = Date.now();
    await graph.deleteConnection(id);
    await admin(emu.info, 'DELETE', 'requests');

    const { run, progress } = await provision(id);
    const state = await run;
    expect(state.phase).toBe('ready');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1900);
    expect(progress.some((p) => /still being deleted/.test(p.progress))).toBe(true);
    const log = (await requests(emu.info)).map((r) => `${r.method} ${r.route} ${r.status}`);
    expect(log.filter((c) => c.startsWith('POST connections 409')).length).toBeGreaterThanOrEqual(1);
    expect(log.filter((c) => c.startsWith('POST connections 201'))).toHaveLength(1);
    expect((await graph.getConnection(id))?.state).toBe('ready');
    // The schema phase did not inherit the connection phase's deadline.
    expect(state.deadline).toBeUndefined();
  });

  it('fails, naming both causes, when the id stays taken past the deletion timeout', async () => {
    const id = connectionId('gone');
    expect((await (await provision(id)).run).phase).toBe('ready');
    await admin(emu.info, 'PATCH', 'settings', { deleteDelayMs: 60_000 });
    try {
      await clientFor(emu.info).deleteConnection(id);
      const { run } = await provision(id, 1_500);
      const err = (await run.catch((e: unknown) => e)) as ProvisionError;
      expect(err).toBeInstanceOf(ProvisionError);
      expect(err.code).toBe('ConnectionIdTaken');
      expect(err.message).toMatch(/did not free up within/);
      expect(err.message).toMatch(/another app owns it/);
    } finally {
      await admin(emu.info, 'PATCH', 'settings', { deleteDelayMs: 2000 });
    }
  });
});
