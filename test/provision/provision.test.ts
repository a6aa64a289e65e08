import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { EmulatorHandle } from '../../src/emulator/index.js';
import type { ConnectorDefinition } from '../../src/config/definition.js';
import type { ExternalGroup } from '../../src/config/model.js';
import { createMemoryLogger } from '../../src/log.js';
import { ProvisionError, runProvisionToCompletion, type ProvisionOptions } from '../../src/provision/provision.js';
import { MemoryProvisionStore, type ProvisionState, type ProvisionStore } from '../../src/state/provision-store.js';
import type { GraphConnectorClient } from '../../src/graph/client.js';
import {
  admin,
  clientFor,
  connectionId,
  environmentFor,
  failure,
  MemorySecrets,
  requests,
  startTestEmulator,
} from '../graph/helpers.js';
import { exampleDefinition } from '../support/definition.js';

let emu: EmulatorHandle;
beforeAll(async () => {
  emu = await startTestEmulator({ schemaDelayMs: 150 });
});
afterAll(async () => {
  await emu?.close();
});
beforeEach(async () => {
  await admin(emu.info, 'POST', 'reset', {});
  await admin(emu.info, 'PATCH', 'settings', { schemaDelayMs: 150 });
});

const example = exampleDefinition();

function definition(id: string, mutate?: (d: ConnectorDefinition) => void): ConnectorDefinition {
  const d = exampleDefinition(id);
  mutate?.(d);
  return d;
}

const fast: ProvisionOptions = { pollIntervalMs: 50, maxPollIntervalMs: 200, transientDelayMs: 50 };

async function provision(
  def: ConnectorDefinition,
  opts: {
    graph?: GraphConnectorClient;
    store?: ProvisionStore;
    groups?: ExternalGroup[];
    options?: ProvisionOptions;
  } = {},
) {
  const logger = createMemoryLogger('info');
  const progress: ProvisionState[] = [];
  const run = runProvisionToCompletion(
    {
      graph: opts.graph ?? clientFor(emu.info, { retry: { maxRetries: 2, baseDelayMs: 20 } }),
      definition: def,
      logger,
      store: opts.store ?? new MemoryProvisionStore(),
      ...(opts.groups ? { groups: opts.groups } : {}),
      options: { ...fast, ...opts.options },
    },
    { onProgress: (s) => progress.push({ ...s }) },
  );
  return { run, progress, logger };
}

/** "METHOD route status" of the Graph calls since the last reset. */
async function calls(): Promise<string[]> {
  return (await requests(emu.info)).map((r) => `${r.method} ${r.route} ${r.status}`);
}

describe('provisioning against the emulator', () => {
  it('takes a new connection to ready, reporting progress through every phase', async () => {
    const id = connectionId('new');
    const { run, progress } = await provision(definition(id));
    const state = await run;
    expect(state.phase).toBe('ready');
    const phases = [...new Set(progress.map((p) => p.phase))];
    expect(phases).toEqual(['schema', 'polling', 'ready']);
    expect(progress.some((p) => /created/.test(p.progress))).toBe(true);
    const graph = clientFor(emu.info);
    expect((await graph.getConnection(id))?.state).toBe('ready');
    const schema = await graph.getSchema(id);
    expect(schema?.properties.map((p) => p.name).sort()).toEqual(example.schema.properties.map((p) => p.name).sort());
    const log = await calls();
    expect(log.filter((c) => c.startsWith('POST connections'))).toEqual(['POST connections 201']);
    expect(log.filter((c) => c.startsWith('PATCH schema'))).toEqual(['PATCH schema 202']);
  });

  it('is idempotent: a second run creates nothing and sends no schema PATCH', async () => {
    const id = connectionId('idem');
    const store = new MemoryProvisionStore();
    await (
      await provision(definition(id), { store })
    ).run;
    await admin(emu.info, 'DELETE', 'requests');
    const { run, progress } = await provision(definition(id), { store });
    expect((await run).phase).toBe('ready');
    expect(await calls()).toEqual(['GET connection 200', 'GET schema 200']);
    expect(progress.map((p) => p.progress).join('\n')).toMatch(/exists and matches[\s\S]*schema of .* is up to date/);
  });

  it('an added property gives exactly one schema PATCH, with the full desired schema', async () => {
    const id = connectionId('add');
    await (
      await provision(definition(id))
    ).run;
    await admin(emu.info, 'DELETE', 'requests');
    const extended = definition(id, (d) =>
      d.schema.properties.push({
        name: 'dueDate',
        type: 'dateTime',
        isQueryable: true,
        isRetrievable: true,
        labels: ['dueDate'],
      }),
    );
    expect((await (await provision(extended)).run).phase).toBe('ready');
    const log = await calls();
    expect(log.filter((c) => c.startsWith('PATCH schema'))).toEqual(['PATCH schema 202']);
    expect(log.filter((c) => c.startsWith('POST'))).toEqual([]);
    const schema = await clientFor(emu.info).getSchema(id);
    expect(schema?.properties.find((p) => p.name === 'dueDate')).toMatchObject({
      type: 'dateTime',
      labels: ['dueDate'],
    });
    expect(schema?.properties).toHaveLength(definition(id).schema.properties.length + 1);
  });

  it('a name/description drift is PATCHed onto the connection', async () => {
    const id = connectionId('drift');
    await (
      await provision(definition(id))
    ).run;
    await admin(emu.info, 'DELETE', 'requests');
    await (
      await provision(definition(id, (d) => (d.connection.description = 'A new description')))
    ).run;
    expect((await calls()).filter((c) => c.startsWith('PATCH'))).toEqual(['PATCH connection 204']);
    expect((await clientFor(emu.info).getConnection(id))?.description).toBe('A new description');
  });

  it('result templates: set at creation, not re-PATCHed when unchanged, PATCHed when they change', async () => {
    const id = connectionId('tpl');
    const template = (title: string) => ({
      id: 'tasks',
      priority: 1,
      layout: { type: 'AdaptiveCard', version: '1.3', body: [{ type: 'TextBlock', text: title }] },
    });
    const withTemplate = (title: string) =>
      definition(id, (d) => (d.connection.searchSettings = { searchResultTemplates: [template(title)] }));
    await (
      await provision(withTemplate('${title}'))
    ).run;
    await admin(emu.info, 'DELETE', 'requests');
    await (
      await provision(withTemplate('${title}'))
    ).run;
    expect((await calls()).filter((c) => c.startsWith('PATCH'))).toEqual([]);
    await (
      await provision(withTemplate('${ticketId}: ${title}'))
    ).run;
    expect((await calls()).filter((c) => c.startsWith('PATCH'))).toEqual(['PATCH connection 204']);
    const conn = await clientFor(emu.info).getConnection(id);
    expect(JSON.stringify(conn?.searchSettings)).toContain('${ticketId}: ${title}');
  });

  it('503 on create then 409 on the retry means the connection was created: provisioning continues', async () => {
    const id = connectionId('dup');
    await admin(emu.info, 'POST', 'faults', {
      match: { method: 'POST', route: 'connections' },
      action: '503-but-create',
      count: 1,
    });
    const { run, logger } = await provision(definition(id));
    expect((await run).phase).toBe('ready');
    const log = await calls();
    expect(log.filter((c) => c.startsWith('POST connections'))).toEqual([
      'POST connections 503',
      'POST connections 409',
    ]);
    expect(logger.lines.join('\n')).toMatch(/409/);
  });

  it('a failed schema operation is a ProvisionError carrying Graph’s message', async () => {
    const id = connectionId('fail');
    await admin(emu.info, 'POST', 'faults', {
      action: 'fail-next-schema-operation',
      message: 'The property tags could not be indexed',
    });
    const { run, progress } = await provision(definition(id));
    const err = await failure<ProvisionError>(run);
    expect(err).toBeInstanceOf(ProvisionError);
    expect(err.message).toContain('The property tags could not be indexed');
    expect(err.message).toMatch(/operations\//);
    expect(progress.at(-1)?.phase).toBe('failed');
  });

  it('a schema operation that outlives the deadline fails with the operation URL', async () => {
    await admin(emu.info, 'PATCH', 'settings', { schemaDelayMs: 60_000 });
    const id = connectionId('slow');
    const { run } = await provision(definition(id), { options: { operationTimeoutMs: 400 } });
    const err = await failure<ProvisionError>(run);
    expect(err.code).toBe('SchemaOperationTimeout');
    expect(err.message).toMatch(new RegExp(`/external/connections/${id}/operations/\\S+`));
    expect(err.message).toMatch(/run provision again to resume/);
  });

  it('refuses a non-additive schema change, naming the property and the way out; nothing is PATCHed', async () => {
    const id = connectionId('brk');
    await (
      await provision(definition(id))
    ).run;
    await admin(emu.info, 'DELETE', 'requests');
    const changed = definition(id, (d) => {
      d.schema.properties = d.schema.properties.filter((p) => p.name !== 'assignedTo');
      d.schema.properties.find((p) => p.name === 'ticketId')!.isRefinable = true;
      d.schema.properties.find((p) => p.name === 'priority')!.type = 'double';
    });
    const err = await failure<ProvisionError>((await provision(changed)).run);
    expect(err.code).toBe('NonAdditiveSchemaChange');
    expect(err.message).toMatch(/property 'assignedTo' is registered in Graph but no longer declared/);
    expect(err.message).toMatch(/property 'ticketId' becomes refinable/);
    expect(err.message).toMatch(/property 'priority' changes type from int64 to double/);
    expect(err.message).toMatch(/new connection\.id[\s\S]*full crawl/);
    expect((await calls()).filter((c) => c.startsWith('PATCH'))).toEqual([]);
  });

  it('a wrong client secret stops provisioning with what to fix', async () => {
    const graph = clientFor(
      emu.info,
      {},
      environmentFor(emu.info),
      new MemorySecrets({ 'graph-client-secret': 'wrong-secret-value' }),
    );
    const err = await failure<ProvisionError>((await provision(definition(connectionId('sec')), { graph })).run);
    expect(err.code).toBe('AuthenticationFailed');
    expect(err.message).toMatch(/check that the secret named 'graph-client-secret'/);
    expect(err.message).not.toContain('wrong-secret-value');
  });

  it('a missing role is retried for the consent window, explained in the log, then named in the error', async () => {
    const app = await admin(emu.info, 'POST', 'apps', { displayName: 'unconsented', roles: [] });
    const graph = clientFor(
      emu.info,
      {},
      environmentFor(emu.info, { GRAPH_CLIENT_ID: app.clientId }),
      new MemorySecrets({ 'graph-client-secret': app.clientSecret }),
    );
    const { run, logger } = await provision(definition(connectionId('role')), {
      graph,
      options: { consentTimeoutMs: 500, consentRetryMs: 150 },
    });
    const err = await failure<ProvisionError>(run);
    expect(err.message).toMatch(/missing the Graph application permission ExternalConnection\.ReadWrite\.OwnedBy/);
    expect(logger.lines.join('\n')).toMatch(/Right after admin consent, permissions take a few minutes to apply/);
    const attempts = (await requests(emu.info)).filter((r) => r.route === 'connection');
    expect(attempts.length).toBeGreaterThanOrEqual(3);
    expect(attempts.every((r) => r.status === 403)).toBe(true);
  });

  it('consent that arrives during the window lets provisioning finish', async () => {
    const app = await admin(emu.info, 'POST', 'apps', { displayName: 'late consent', roles: [] });
    const graph = clientFor(
      emu.info,
      {},
      environmentFor(emu.info, { GRAPH_CLIENT_ID: app.clientId }),
      new MemorySecrets({ 'graph-client-secret': app.clientSecret }),
    );
    const { run } = await provision(definition(connectionId('late')), {
      graph,
      options: { consentTimeoutMs: 10_000, consentRetryMs: 200 },
    });
    setTimeout(() => {
      void admin(emu.info, 'PATCH', `apps/${app.clientId}`, {
        roles: ['ExternalConnection.ReadWrite.OwnedBy', 'ExternalItem.ReadWrite.OwnedBy'],
      });
    }, 300);
    expect((await run).phase).toBe('ready');
  });

  it('syncs external groups: creates, then removes what is gone, then touches nothing unchanged', async () => {
    const id = connectionId('grp');
    const store = new MemoryProvisionStore();
    const u = [
      '11111111-1111-1111-1111-111111111111',
      '22222222-2222-2222-2222-222222222222',
      '33333333-3333-3333-3333-333333333333',
    ];
    const groups: ExternalGroup[] = [
      {
        id: 'teamA',
        displayName: 'Team A',
        members: [
          { id: u[0]!, type: 'user' },
          { id: u[1]!, type: 'user' },
        ],
      },
      { id: 'teamB', displayName: 'Team B', members: [{ id: 'teamA', type: 'externalGroup' }] },
    ];
    const first = await (await provision(definition(id), { store, groups })).run;
    expect(first.groups).toEqual({
      teamA: { displayName: 'Team A', members: [`user:${u[0]}`, `user:${u[1]}`] },
      teamB: { displayName: 'Team B', members: ['externalGroup:teamA'] },
    });
    let log = (await calls()).filter((c) => /group|member/.test(c));
    expect(log).toEqual([
      'POST groups 201',
      'POST members 201',
      'POST members 201',
      'POST groups 201',
      'POST members 201',
    ]);

    await admin(emu.info, 'DELETE', 'requests');
    const changed: ExternalGroup[] = [
      {
        id: 'teamA',
        displayName: 'Team A',
        members: [
          { id: u[0]!, type: 'user' },
          { id: u[2]!, type: 'user' },
        ],
      },
    ];
    await (
      await provision(definition(id), { store, groups: changed })
    ).run;
    log = (await calls()).filter((c) => /group|member/.test(c));
    expect(log).toEqual(['POST members 201', 'DELETE member 204', 'DELETE group 204']);
    const paths = (await requests(emu.info)).filter((r) => r.method === 'DELETE').map((r) => r.path);
    expect(paths.some((p) => p.endsWith(`/groups/teamA/members/${u[1]}`))).toBe(true);
    expect(paths.some((p) => p.endsWith('/groups/teamB'))).toBe(true);

    await admin(emu.info, 'DELETE', 'requests');
    const { run, progress } = await provision(definition(id), { store, groups: changed });
    await run;
    expect((await calls()).filter((c) => /group|member/.test(c))).toEqual([]);
    expect(progress.at(-1)?.progress).toMatch(/0 created, 0 updated, 0 deleted, 0 members added, 0 removed/);
  });
});

describe('provisioning while a schema operation is already running', () => {
  it('waits for a running operation instead of failing on its 409, then applies the rest', async () => {
    await admin(emu.info, 'PATCH', 'settings', { schemaDelayMs: 700 });
    const id = connectionId('busy');
    const def = definition(id);
    const graph = clientFor(emu.info);
    await graph.createConnection({ id, name: def.connection.name, description: def.connection.description });
    // someone else's registration (one property short) is still running when we start
    await graph.patchSchema(id, {
      baseType: 'microsoft.graph.externalItem',
      properties: def.schema.properties.slice(0, 11),
    });
    const { run, progress } = await provision(def, { options: { pollIntervalMs: 100 } });
    expect((await run).phase).toBe('ready');
    const log = await calls();
    const patches = log.filter((c) => c.startsWith('PATCH schema'));
    expect(patches[0]).toBe('PATCH schema 202');
    expect(patches.at(-1)).toBe('PATCH schema 202');
    expect(patches.slice(1, -1).length).toBeGreaterThan(0);
    expect(patches.slice(1, -1).every((c) => c === 'PATCH schema 409')).toBe(true);
    expect((await graph.getSchema(id))?.properties).toHaveLength(def.schema.properties.length);
    expect(progress.some((p) => /another schema operation is in progress/.test(p.progress))).toBe(true);
  });
});
