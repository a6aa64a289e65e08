/** Connections, schema and operations: id rules, states, the §4.3 schema matrix, updates, legacy POST. */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ResponseType } from '@microsoft/microsoft-graph-client';
import { startEmulator, type EmulatorHandle } from '../../src/emulator/index.js';
import {
  bearer,
  call,
  CONTOSO_SCHEMA,
  graphClient,
  item,
  readyConnection,
  secretCredential,
  tokenFor,
  trust,
  type Tls,
  type Rec,
} from './helpers.js';

describe('emulator connections and schema', () => {
  let emu: EmulatorHandle;
  let tls: Tls;
  let token: string;
  const g = (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) =>
    call(emu, tls, method, path, body, { ...bearer(token), ...headers });

  beforeAll(async () => {
    emu = await startEmulator({ schemaDelayMs: 60, log: () => {} });
    tls = trust(emu);
    token = await tokenFor(emu, tls);
  });
  beforeEach(async () => {
    await call(emu, tls, 'POST', '/_emulator/reset', {});
  });
  afterAll(async () => {
    await emu?.close();
    await tls?.dispatcher.close();
  });

  it('creates a connection in draft with 201 and echoes client-request-id', async () => {
    const res = await g(
      'POST',
      '/v1.0/external/connections',
      { id: 'contosohr', name: 'Contoso HR', description: 'HR' },
      {
        'client-request-id': 'abc-123',
      },
    );
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({
      id: 'contosohr',
      name: 'Contoso HR',
      state: 'draft',
      contentCategory: 'uncategorized',
    });
    expect(res.headers.get('client-request-id')).toBe('abc-123');
    expect(res.headers.get('request-id')).toMatch(/^[0-9a-f-]{36}$/);
    expect(res.headers.get('date')).toBeTruthy();
    const got = await g('GET', '/v1.0/external/connections/contosohr');
    expect(got.body.state).toBe('draft');
    const list = await g('GET', '/v1.0/external/connections');
    expect(list.body.value.map((c: Rec) => c.id)).toEqual(['contosohr']);
  });

  it.each([
    ['ab', 'too short'],
    ['a'.repeat(33), 'too long'],
    ['contoso-hr', 'hyphen'],
    ['contoso hr', 'space'],
    ['MicrosoftThing', 'Microsoft prefix'],
    ['SharePoint', 'reserved'],
    ['teams', 'reserved, any case'],
    ['MSFT_All_Connectors', 'reserved with underscore'],
  ])('rejects connection id %s (%s) with 400 InvalidRequest', async (id) => {
    const res = await g('POST', '/v1.0/external/connections', { id, name: 'x', description: 'd' });
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('InvalidRequest');
    expect(res.body.error.innerError['request-id']).toBe(res.headers.get('request-id'));
  });

  it('enforces name ≤ 128, required name, known contentCategory, unknown properties, and 409 on duplicates', async () => {
    expect(
      (await g('POST', '/v1.0/external/connections', { id: 'longname', name: 'n'.repeat(129), description: 'd' }))
        .status,
    ).toBe(400);
    expect(
      (await g('POST', '/v1.0/external/connections', { id: 'okname', name: 'n'.repeat(128), description: 'd' })).status,
    ).toBe(201);
    expect((await g('POST', '/v1.0/external/connections', { id: 'noname' })).status).toBe(400);
    const cat = await g('POST', '/v1.0/external/connections', {
      id: 'badcat',
      name: 'x',
      description: 'd',
      contentCategory: 'tasks',
    });
    expect(cat.status).toBe(400);
    expect(cat.body.error.innerError.code).toBe('DeserializationError');
    expect(
      (await g('POST', '/v1.0/external/connections', { id: 'extra', name: 'x', description: 'd', bogus: 1 })).status,
    ).toBe(400);
    const beta = await g('POST', '/v1.0/external/connections', {
      id: 'betaonly',
      name: 'x',
      description: 'd',
      enabledContentExperiences: 'search',
    });
    expect(beta.status).toBe(400);
    expect(
      (
        await g('POST', '/beta/external/connections', {
          id: 'betaonly',
          name: 'x',
          description: 'd',
          enabledContentExperiences: 'search',
        })
      ).status,
    ).toBe(201);
    const dup = await g('POST', '/v1.0/external/connections', { id: 'OKNAME', name: 'again', description: 'd' });
    expect(dup.status).toBe(409);
    expect((await g('GET', '/v1.0/external/connections/missing')).status).toBe(404);
  });

  it('updates with PATCH → 204 keeping omitted fields, and deletes with 202 (the connection and its items disappear)', async () => {
    await readyConnection(emu, tls, token, 'patchme');
    expect((await g('PUT', '/v1.0/external/connections/patchme/items/a1', item('a1'))).status).toBe(200);
    const p = await g('PATCH', '/v1.0/external/connections/patchme', {
      description: 'new',
      searchSettings: { searchResultTemplates: [] },
    });
    expect(p.status).toBe(204);
    expect(p.text).toBe('');
    const got = await g('GET', '/v1.0/external/connections/patchme');
    expect(got.body).toMatchObject({ name: 'Conn patchme', description: 'new', state: 'ready' });
    const tooMany = await g('PATCH', '/v1.0/external/connections/patchme', {
      searchSettings: { searchResultTemplates: [1, 2, 3].map((i) => ({ id: `t${i}`, priority: i, layout: {} })) },
    });
    expect(tooMany.status).toBe(400);
    const del = await g('DELETE', '/v1.0/external/connections/patchme');
    expect(del.status).toBe(202);
    expect(del.text).toBe('');
    expect((await g('GET', '/v1.0/external/connections/patchme')).status).toBe(404);
    expect((await g('GET', '/v1.0/external/connections/patchme/items/a1')).status).toBe(404);
  });

  it('registers a schema: GET 404 before, 202 + opaque Location, inprogress → completed, connection ready, GET 200', async () => {
    const client = graphClient(emu, tls, secretCredential(emu, tls));
    await client.api('/external/connections').post({ id: 'schemaflow', name: 'S', description: 'd' });
    await expect(client.api('/external/connections/schemaflow/schema').get()).rejects.toMatchObject({
      statusCode: 404,
    });
    const res: Response = await client
      .api('/external/connections/schemaflow/schema')
      .responseType(ResponseType.RAW)
      .patch(CONTOSO_SCHEMA);
    expect(res.status).toBe(202);
    const loc = res.headers.get('location')!;
    expect(loc).toMatch(/\/v1\.0\/external\/connections\/schemaflow\/operations\/1\.neu\.[0-9A-F]{32}\.[0-9A-F]{32}$/);
    const first = await client.api(loc).get();
    expect(first).toMatchObject({ status: 'inprogress', error: null });
    await expect(client.api('/external/connections/schemaflow/schema').get()).rejects.toMatchObject({
      statusCode: 404,
    });
    // An identical retry while in progress gets the same operation.
    const again: Response = await client
      .api('/external/connections/schemaflow/schema')
      .responseType(ResponseType.RAW)
      .patch(CONTOSO_SCHEMA);
    expect(again.headers.get('location')).toBe(loc);
    await new Promise((r) => setTimeout(r, 120));
    expect((await client.api(loc).get()).status).toBe('completed');
    expect((await client.api('/external/connections/schemaflow').get()).state).toBe('ready');
    const schema = await client.api('/external/connections/schemaflow/schema').get();
    expect(schema.baseType).toBe('microsoft.graph.externalItem');
    expect(schema.properties.find((p: Rec) => p.name === 'title')).toMatchObject({
      type: 'string',
      isSearchable: true,
      labels: ['title'],
    });
    expect((await g('GET', '/v1.0/external/connections/schemaflow/operations/nope')).status).toBe(404);
  });

  const base = { baseType: 'microsoft.graph.externalItem' };
  const prop = (p: Record<string, unknown>) => ({
    ...base,
    properties: [{ name: 'p', type: 'string', isRetrievable: true, ...p }],
  });
  it.each([
    [
      'baseType wrong',
      { baseType: 'microsoft.graph.externalConnector.externalItem', properties: [{ name: 'a', type: 'string' }] },
      'InvalidBaseType',
    ],
    ['properties missing', { ...base }, 'InvalidPropertyCount'],
    ['properties empty', { ...base, properties: [] }, 'InvalidPropertyCount'],
    [
      '129 properties',
      { ...base, properties: Array.from({ length: 129 }, (_, i) => ({ name: `p${i}`, type: 'string' })) },
      'InvalidPropertyCount',
    ],
    ['name > 32', prop({ name: 'x'.repeat(33) }), 'InvalidPropertyName'],
    ['name with space', prop({ name: 'a b' }), 'InvalidPropertyName'],
    ['name with (', prop({ name: 'a(b' }), 'InvalidPropertyName'],
    ['alias too long', prop({ aliases: ['y'.repeat(33)] }), 'InvalidPropertyName'],
    ['alias with #', prop({ aliases: ['a#'] }), 'InvalidPropertyName'],
    ['searchable int64', prop({ type: 'int64', isSearchable: true }), 'SearchableShouldNotBeOfType'],
    ['searchable + refinable', prop({ isSearchable: true, isRefinable: true }), 'SearchableAndRefinableNotAllowed'],
    ['refinable boolean', prop({ type: 'boolean', isRefinable: true }), 'RefinerShouldNotBeOfType'],
    ['label on non-retrievable', prop({ isRetrievable: false, labels: ['title'] }), 'LabelRequiresRetrievable'],
    ['label/type mismatch', prop({ type: 'int64', labels: ['title'] }), 'LabelTypeMismatch'],
    ['type literal Collection(String)', prop({ type: 'Collection(String)' }), 'DeserializationError'],
    ['unknown label', prop({ labels: ['headline'] }), 'DeserializationError'],
    [
      'duplicate names',
      {
        ...base,
        properties: [
          { name: 'a', type: 'string' },
          { name: 'A', type: 'int64' },
        ],
      },
      'DuplicatePropertyName',
    ],
    ['v1.0 isExactMatchRequired', prop({ isExactMatchRequired: true }), 'DeserializationError'],
  ])('rejects a schema synchronously: %s', async (_name, schema, inner) => {
    await g('POST', '/v1.0/external/connections', { id: 'matrix', name: 'M', description: 'd' });
    const res = await g('PATCH', '/v1.0/external/connections/matrix/schema', schema);
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('InvalidRequest');
    expect(res.body.error.innerError.code).toBe(inner);
  });

  it('matches the documented messages for RefinerShouldNotBeOfType and DeserializationError', async () => {
    await g('POST', '/v1.0/external/connections', { id: 'msgs', name: 'M', description: 'd' });
    const r = await g(
      'PATCH',
      '/v1.0/external/connections/msgs/schema',
      prop({ name: 'someproperty', type: 'boolean', isRefinable: true }),
    );
    expect(r.body.error.message).toBe('The request is malformed or incorrect.');
    expect(r.body.error.innerError.message).toBe("Refiner property 'someproperty' cannot be of type 'Boolean'.");
    const d = await g('PATCH', '/v1.0/external/connections/msgs/schema', prop({ type: 'Collection(String)' }));
    expect(d.body.error.innerError.message).toBe("Requested value 'Collection(String)' was not found.");
    const label2 = await g('PATCH', '/v1.0/external/connections/msgs/schema', {
      ...base,
      properties: [
        { name: 'a', type: 'string', isRetrievable: true, labels: ['title'] },
        { name: 'b', type: 'string', isRetrievable: true, labels: ['title'] },
      ],
    });
    expect(label2.body.error.innerError.code).toBe('DuplicateLabel');
    const exact = await g('POST', '/beta/external/connections', { id: 'betaexact', name: 'B', description: 'd' });
    expect(exact.status).toBe(201);
    const be = await g(
      'PATCH',
      '/beta/external/connections/betaexact/schema',
      prop({ isSearchable: true, isExactMatchRequired: true }),
    );
    expect(be.body.error.innerError.code).toBe('ExactMatchNotAllowed');
  });

  it('accepts type literals case-insensitively and hides evolvable labels on reads without the Prefer header', async () => {
    await readyConnection(emu, tls, token, 'evolve', {
      ...base,
      properties: [
        { name: 'title', type: 'String', isRetrievable: true, labels: ['title'] },
        { name: 'icon', type: 'string', isRetrievable: true, labels: ['iconUrl'] },
      ],
    });
    const plain = await g('GET', '/v1.0/external/connections/evolve/schema');
    expect(plain.body.properties[0].type).toBe('string');
    expect(plain.body.properties[1].labels).toEqual(['unknownFutureValue']);
    const full = await g('GET', '/v1.0/external/connections/evolve/schema', undefined, {
      Prefer: 'include-unknown-enum-members',
    });
    expect(full.body.properties[1].labels).toEqual(['iconUrl']);
  });

  it('applies additive updates and fails removals, retypes and late refinable flags through the operation', async () => {
    const s1 = {
      ...base,
      properties: [
        { name: 'a', type: 'string', isRetrievable: true },
        { name: 'n', type: 'int64', isQueryable: true },
      ],
    };
    await readyConnection(emu, tls, token, 'updates', s1);
    const poll = async (loc: string) => {
      for (let i = 0; i < 100; i++) {
        const op = await g('GET', new URL(loc).pathname);
        const body: { status: string; error: { message: string } } = op.body;
        if (body.status !== 'inprogress') return body;
        await new Promise((r) => setTimeout(r, 20));
      }
      throw new Error('operation stuck');
    };
    const add = await g('PATCH', '/v1.0/external/connections/updates/schema', {
      ...base,
      properties: [...s1.properties, { name: 'b', type: 'string' }],
    });
    expect(add.status).toBe(202);
    expect((await poll(add.headers.get('location')!)).status).toBe('completed');
    expect((await g('GET', '/v1.0/external/connections/updates/schema')).body.properties).toHaveLength(3);
    for (const [bad, reason] of [
      [{ ...base, properties: [{ name: 'a', type: 'string' }] }, /removed/],
      [
        {
          ...base,
          properties: [
            { name: 'a', type: 'string' },
            { name: 'n', type: 'double' },
            { name: 'b', type: 'string' },
          ],
        },
        /type/,
      ],
      [
        {
          ...base,
          properties: [
            { name: 'a', type: 'string' },
            { name: 'n', type: 'int64', isRefinable: true },
            { name: 'b', type: 'string' },
          ],
        },
        /refinable/,
      ],
    ] as const) {
      const r = await g('PATCH', '/v1.0/external/connections/updates/schema', bad);
      expect(r.status).toBe(202);
      const op = await poll(r.headers.get('location')!);
      expect(op.status).toBe('failed');
      expect(op.error.message).toMatch(reason);
    }
    expect((await g('GET', '/v1.0/external/connections/updates/schema')).body.properties).toHaveLength(3);
    expect((await g('GET', '/v1.0/external/connections/updates')).body.state).toBe('ready');
  });

  it('fails the next schema operation when scripted, leaving the connection in draft', async () => {
    await g('POST', '/v1.0/external/connections', { id: 'scripted', name: 'S', description: 'd' });
    await call(emu, tls, 'POST', '/_emulator/faults', {
      action: 'fail-next-schema-operation',
      message: 'Boom from the test',
    });
    const r = await g('PATCH', '/v1.0/external/connections/scripted/schema', CONTOSO_SCHEMA);
    await new Promise((res) => setTimeout(res, 120));
    const op = await g('GET', new URL(r.headers.get('location')!).pathname);
    expect(op.body).toMatchObject({ status: 'failed', error: { message: 'Boom from the test' } });
    expect((await g('GET', '/v1.0/external/connections/scripted')).body.state).toBe('draft');
    // The next attempt succeeds.
    const r2 = await g('PATCH', '/v1.0/external/connections/scripted/schema', CONTOSO_SCHEMA);
    await new Promise((res) => setTimeout(res, 120));
    expect((await g('GET', new URL(r2.headers.get('location')!).pathname)).body.status).toBe('completed');
  });

  it('accepts the legacy POST schema: 202 + Location with Prefer respond-async, 201 + schema without', async () => {
    await g('POST', '/v1.0/external/connections', { id: 'legacya', name: 'A', description: 'd' });
    const a = await g('POST', '/v1.0/external/connections/legacya/schema', CONTOSO_SCHEMA, { Prefer: 'respond-async' });
    expect(a.status).toBe(202);
    expect(a.headers.get('location')).toMatch(/operations\//);
    await g('POST', '/v1.0/external/connections', { id: 'legacyb', name: 'B', description: 'd' });
    const b = await g('POST', '/v1.0/external/connections/legacyb/schema', CONTOSO_SCHEMA);
    expect(b.status).toBe(201);
    expect(b.body.properties).toHaveLength(CONTOSO_SCHEMA.properties.length);
    expect((await g('GET', '/v1.0/external/connections/legacyb')).body.state).toBe('ready');
  });

  it('follows the per-state operation table (draft, ready, obsolete, limitExceeded)', async () => {
    const st = (id: string, state: string) => call(emu, tls, 'PATCH', `/_emulator/connections/${id}`, { state });
    // draft: create schema ✓, read schema ✗, items ✗
    await g('POST', '/v1.0/external/connections', { id: 'states', name: 'S', description: 'd' });
    expect((await g('PUT', '/v1.0/external/connections/states/items/x1', item('x1'))).status).toBe(400);
    expect((await g('GET', '/v1.0/external/connections/states/items/x1')).status).toBe(400);
    await readyConnection(emu, tls, token, 'statesr');
    // ready: create schema ✗ (it is an update), items ✓
    expect((await g('PUT', '/v1.0/external/connections/statesr/items/x1', item('x1'))).status).toBe(200);
    expect((await g('PUT', '/v1.0/external/connections/statesr/items/x2', item('x2'))).status).toBe(200);
    // limitExceeded: create ✗, update ✓, delete ✓, read ✓, update connection ✓, schema update ✗
    await st('statesr', 'limitExceeded');
    const create = await g('PUT', '/v1.0/external/connections/statesr/items/x3', item('x3'));
    expect(create.status).toBe(400);
    expect(create.body.error.innerError.code).toBe('ConnectionLimitExceeded');
    expect((await g('PUT', '/v1.0/external/connections/statesr/items/x1', item('x1'))).status).toBe(200);
    expect((await g('GET', '/v1.0/external/connections/statesr/items/x1')).status).toBe(200);
    expect((await g('DELETE', '/v1.0/external/connections/statesr/items/x2')).status).toBe(204);
    expect((await g('PATCH', '/v1.0/external/connections/statesr', { description: 'x' })).status).toBe(204);
    expect((await g('GET', '/v1.0/external/connections/statesr/schema')).status).toBe(200);
    expect((await g('PATCH', '/v1.0/external/connections/statesr/schema', CONTOSO_SCHEMA)).status).toBe(400);
    // obsolete: only read and delete
    await st('statesr', 'obsolete');
    const upd = await g('PATCH', '/v1.0/external/connections/statesr', { description: 'y' });
    expect(upd.status).toBe(400);
    expect(upd.body.error.innerError.code).toBe('ConnectionObsolete');
    expect((await g('PUT', '/v1.0/external/connections/statesr/items/x1', item('x1'))).status).toBe(400);
    expect((await g('DELETE', '/v1.0/external/connections/statesr/items/x1')).status).toBe(400);
    expect((await g('GET', '/v1.0/external/connections/statesr/items/x1')).status).toBe(200);
    expect((await g('GET', '/v1.0/external/connections/statesr/schema')).status).toBe(200);
    expect((await g('GET', '/v1.0/external/connections/statesr')).status).toBe(200);
    expect((await g('DELETE', '/v1.0/external/connections/statesr')).status).toBe(202);
  });

  it('moves to limitExceeded when an item quota is reached, and back when items are deleted', async () => {
    await readyConnection(emu, tls, token, 'quota');
    await call(emu, tls, 'PATCH', '/_emulator/connections/quota', { itemQuota: 2 });
    expect((await g('PUT', '/v1.0/external/connections/quota/items/q1', item('q1'))).status).toBe(200);
    expect((await g('PUT', '/v1.0/external/connections/quota/items/q2', item('q2'))).status).toBe(200);
    expect((await g('GET', '/v1.0/external/connections/quota')).body.state).toBe('limitExceeded');
    expect((await g('GET', '/beta/external/connections/quota/quota')).body.itemsRemaining).toBe(0);
    expect((await g('PUT', '/v1.0/external/connections/quota/items/q3', item('q3'))).status).toBe(400);
    expect((await g('DELETE', '/v1.0/external/connections/quota/items/q1')).status).toBe(204);
    expect((await g('GET', '/v1.0/external/connections/quota')).body.state).toBe('ready');
  });
});
