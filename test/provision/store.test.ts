import { inject } from 'vitest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TableClient } from '@azure/data-tables';
import { ProvisionConflictError, TableProvisionStore, type ProvisionState } from '../../src/state/provision-store.js';
import {
  initialProvisionState,
  provisionTick,
  runProvisionStep,
  runProvisionToCompletion,
} from '../../src/provision/provision.js';
import type { EmulatorHandle } from '../../src/emulator/index.js';
import { createMemoryLogger } from '../../src/log.js';
import { admin, clientFor, connectionId, requests, startTestEmulator } from '../graph/helpers.js';
import { exampleDefinition } from '../support/definition.js';

const prefix = `t${process.pid}${Date.now().toString(36)}`.replace(/[^A-Za-z0-9]/g, '');
let store: TableProvisionStore;
let emu: EmulatorHandle;

beforeAll(async () => {
  store = TableProvisionStore.fromConnectionString(inject('storageConnectionString'), prefix);
  emu = await startTestEmulator({ schemaDelayMs: 400 });
});
afterAll(async () => {
  await store.table.deleteTable().catch(() => undefined);
  await emu?.close();
});

function state(id: string, extra: Partial<ProvisionState> = {}): ProvisionState {
  return { ...initialProvisionState(id, Date.parse('2026-01-01T00:00:00Z')), ...extra };
}

describe('provision store (Azure Table via Azurite)', () => {
  it('stores one row per connection in ${prefix}provision and reads it back', async () => {
    const s = state('connA', {
      phase: 'polling',
      operationUrl: 'https://graph.microsoft.com/v1.0/external/connections/connA/operations/1.neu.X',
      deadline: '2026-01-01T00:20:00.000Z',
      attempts: 3,
      progress: 'schema operation inprogress',
      lastError: 'transient 503',
    });
    const etag = await store.save(s, undefined);
    const got = await store.get('connA');
    expect(got?.etag).toBe(etag);
    expect(got?.state).toEqual(s);
    const raw = await TableClient.fromConnectionString(inject('storageConnectionString'), `${prefix}provision`, {
      allowInsecureConnection: true,
    }).getEntity('provision', 'connA');
    expect(raw.phase).toBe('polling');
    expect(await store.get('nothere')).toBeNull();
  });

  it('uses ETags: a stale writer gets ProvisionConflictError, a second create too', async () => {
    const first = await store.save(state('connB'), undefined);
    const second = await store.save(state('connB', { phase: 'schema' }), first);
    await expect(store.save(state('connB', { phase: 'failed' }), first)).rejects.toBeInstanceOf(ProvisionConflictError);
    await expect(store.save(state('connB'), undefined)).rejects.toThrow(/changed by another worker/);
    expect((await store.get('connB'))?.etag).toBe(second);
    expect((await store.get('connB'))?.state.phase).toBe('schema');
  });

  it('keeps a large synced-group map (split across columns beyond the 32K string limit)', async () => {
    const groups: ProvisionState['groups'] = {};
    for (let i = 0; i < 800; i++) {
      groups[`group${i}`] = {
        displayName: `Group number ${i}`,
        members: Array.from(
          { length: 3 },
          (_, j) => `user:${i.toString(16).padStart(8, '0')}-0000-0000-0000-00000000000${j}`,
        ),
      };
    }
    const s = state('connC', { phase: 'ready', groups });
    expect(JSON.stringify(groups).length).toBeGreaterThan(64_000);
    await store.save(s, undefined);
    expect((await store.get('connC'))?.state.groups).toEqual(groups);
  });
});

describe('resumable provisioning (steps persisted in the table)', () => {
  it('an interrupted run resumes polling the stored operation without a second schema PATCH', async () => {
    const id = connectionId('resume');
    const definition = exampleDefinition(id);
    const graph = clientFor(emu.info);
    const logger = createMemoryLogger('info');
    const deps = { graph, definition, logger, options: { pollIntervalMs: 50 } };
    // Worker 1: two steps (connection, schema PATCH), each persisted, then it "dies".
    let s = initialProvisionState(id, Date.now());
    let etag = await store.save(s, undefined);
    for (let i = 0; i < 2; i++) {
      const r = await runProvisionStep(s, deps);
      s = r.state;
      etag = await store.save(s, etag);
      expect(r.next).not.toBe('done');
    }
    expect(s.phase).toBe('polling');
    expect((await store.get(id))?.state.operationUrl).toMatch(/\/operations\//);
    // Worker 2 (e.g. the CLI, or the next queue message) picks it up from the table.
    const progress: string[] = [];
    const done = await runProvisionToCompletion({ ...deps, store }, { onProgress: (p) => progress.push(p.phase) });
    expect(done.phase).toBe('ready');
    expect(progress[0]).toBe('polling');
    expect(logger.lines.join('\n')).toMatch(/resuming provisioning of .* at phase polling/);
    const log = (await requests(emu.info)).filter((r) => r.connectionId === id);
    expect(log.filter((r) => r.method === 'PATCH' && r.route === 'schema')).toHaveLength(1);
    const creates = (await requests(emu.info)).filter((r) => r.method === 'POST' && r.route === 'connections');
    expect(creates).toHaveLength(1);
  });
});

describe('queue-driven provisioning (provisionTick)', () => {
  it('a throttled group call is not slept on: the step returns Retry-After as the delay and keeps partial progress', async () => {
    const id = connectionId('tick');
    const definition = exampleDefinition(id);
    const graph = clientFor(emu.info, { retry: { maxRetries: 0 } });
    const groups = [
      {
        id: 'g1',
        displayName: 'One',
        members: [{ id: '55555555-5555-5555-5555-555555555555', type: 'user' as const }],
      },
      { id: 'g2', displayName: 'Two', members: [] },
    ];
    const deps = {
      graph,
      definition,
      groups,
      logger: createMemoryLogger('info'),
      store,
      options: { pollIntervalMs: 50 },
    };
    const seen: string[] = [];
    let r = await provisionTick(deps);
    while (r.next !== 'done' && r.state.phase !== 'groups') {
      seen.push(r.state.phase);
      if (r.next.delayMs)
        await new Promise((res) => setTimeout(res, Math.min(r.next !== 'done' ? r.next.delayMs : 0, 200)));
      r = await provisionTick(deps);
    }
    expect(r.state.phase).toBe('groups');
    await admin(emu.info, 'POST', 'faults', {
      match: { method: 'POST', route: 'members' },
      action: 'status',
      status: 429,
      retryAfter: 9,
      count: 1,
    });
    const started = Date.now();
    const throttled = await provisionTick(deps);
    expect(Date.now() - started).toBeLessThan(2000);
    expect(throttled.next).toEqual({ delayMs: 9000 });
    expect(throttled.state.phase).toBe('groups');
    expect(throttled.state.lastErrorCode).toBeDefined();
    // g1 was created before its member add was throttled: remembered, so it is not created twice
    expect(throttled.state.groups).toEqual({ g1: { displayName: 'One', members: [] } });
    expect((await store.get(id))?.state.groups).toEqual({ g1: { displayName: 'One', members: [] } });
    // the next message (after the visibility delay) finishes the job
    const done = await provisionTick(deps);
    expect(done.next).toBe('done');
    expect(done.state.phase).toBe('ready');
    expect(Object.keys(done.state.groups ?? {}).sort()).toEqual(['g1', 'g2']);
    expect((await store.get(id))?.state.phase).toBe('ready');
    const groupCalls = (await requests(emu.info)).filter((x) => x.connectionId === id && /group|member/.test(x.route));
    expect(groupCalls.map((x) => `${x.method} ${x.route} ${x.status}`)).toEqual([
      'POST groups 201',
      'POST members 429',
      'POST members 201',
      'POST groups 201',
    ]);
    // a stale worker holding an old etag cannot overwrite
    const stale = await store.get(id);
    await store.save({ ...stale!.state, progress: 'touched' }, stale!.etag);
    await expect(store.save(stale!.state, stale!.etag)).rejects.toBeInstanceOf(ProvisionConflictError);
  });
});
