/** Items, activities, external groups and members: payload rules, status codes and routes. */
import { connect } from 'node:tls';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmulator, type EmulatorHandle } from '../../src/emulator/index.js';
import {
  bearer,
  call,
  graphClient,
  item,
  readyConnection,
  secretCredential,
  tokenFor,
  trust,
  type Tls,
  type Rec,
} from './helpers.js';

const USER = '5f0c3b8e-0b1a-4a57-9a39-6f3c1c0a1d01';
const GROUP = '7b2e5d0a-2d3c-4c79-9c5b-8b5e3e2c3f03';

describe('emulator items and groups', () => {
  let emu: EmulatorHandle;
  let tls: Tls;
  let token: string;
  const g = (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) =>
    call(emu, tls, method, path, body, { ...bearer(token), ...headers });
  const I = '/v1.0/external/connections/items1/items';

  beforeAll(async () => {
    emu = await startEmulator({ schemaDelayMs: 20, log: () => {} });
    tls = trust(emu);
    token = await tokenFor(emu, tls);
    await readyConnection(emu, tls, token, 'items1');
  });
  afterAll(async () => {
    await emu?.close();
    await tls?.dispatcher.close();
  });

  it('PUT → 200 with an empty body, GET returns the stored item, DELETE → 204, then 404', async () => {
    const body = item('abc1', {
      acl: [
        { type: 'user', value: USER, accessType: 'grant' },
        { type: 'group', value: GROUP, accessType: 'deny' },
        { type: 'everyoneExceptGuests', value: emu.info.tenantId, accessType: 'grant' },
        { type: 'externalGroup', value: 'team1', accessType: 'grant' },
      ],
      properties: {
        title: 'Payment gateway',
        priority: 2,
        ratio: 0.5,
        done: false,
        lastEditedDate: '2024-05-01T10:00:00.123Z',
        'tags@odata.type': 'Collection(String)',
        tags: ['a', 'b'],
        'scores@odata.type': 'Collection(Double)',
        scores: [1.5, 2],
        'counts@odata.type': 'Collection(Int64)',
        counts: [1, 2],
        'dates@odata.type': 'Collection(DateTimeOffset)',
        dates: ['2024-01-01T00:00:00Z'],
        'createdBy@odata.type': 'String',
        createdBy: 'Zoë Ångström',
      },
      content: { type: 'html', value: '<p>hello</p>' },
    });
    const put = await g('PUT', `${I}/abc1`, body);
    expect(put.status).toBe(200);
    expect(put.text).toBe('');
    const got = await g('GET', `${I}/abc1`);
    expect(got.status).toBe(200);
    expect(got.body).toMatchObject({ id: 'abc1', acl: body.acl, properties: body.properties, content: body.content });
    const admin = await call(emu, tls, 'GET', '/_emulator/connections/items1/items');
    expect(admin.body.value.map((i: Rec) => i.id)).toContain('abc1');
    expect((await g('DELETE', `${I}/abc1`)).status).toBe(204);
    expect((await g('GET', `${I}/abc1`)).status).toBe(404);
    const again = await g('DELETE', `${I}/abc1`);
    expect(again.status).toBe(404);
    expect(again.body.error.code).toBe('itemNotFound');
  });

  it('works through the official Graph client (PUT, GET, DELETE)', async () => {
    const client = graphClient(emu, tls, secretCredential(emu, tls));
    await client.api(`/external/connections/items1/items/viaSdk1`).put(item('viaSdk1'));
    expect((await client.api('/external/connections/items1/items/viaSdk1').get()).id).toBe('viaSdk1');
    await client.api('/external/connections/items1/items/viaSdk1').delete();
    await expect(client.api('/external/connections/items1/items/viaSdk1').get()).rejects.toMatchObject({
      statusCode: 404,
    });
  });

  it('answers PATCH and POST on items, and listing items, with 405 No method match route template', async () => {
    await g('PUT', `${I}/m1`, item('m1'));
    for (const [method, path] of [
      ['PATCH', `${I}/m1`],
      ['POST', `${I}/m1`],
      ['POST', I],
      ['GET', I],
    ]) {
      const res = await g(method!, path!, method === 'GET' ? undefined : item('m1'));
      expect(res.status, `${method} ${path}`).toBe(405);
      expect(res.body.error.code).toBe('No method match route template');
    }
  });

  it.each([
    ['a property not in the schema', { properties: { title: 't', nope: 1 } }, 'UnknownProperty'],
    ['a wrong case property', { properties: { Title: 't' } }, 'UnknownProperty'],
    ['a string for int64', { properties: { title: 't', priority: 'high' } }, 'InvalidPropertyValue'],
    ['a fraction for int64', { properties: { title: 't', priority: 1.5 } }, 'InvalidPropertyValue'],
    ['a bad dateTime', { properties: { title: 't', lastEditedDate: '2024-05-01' } }, 'InvalidPropertyValue'],
    [
      'a dateTime without zone',
      { properties: { title: 't', lastEditedDate: '2024-05-01T10:00:00' } },
      'InvalidPropertyValue',
    ],
    ['a collection without annotation', { properties: { title: 't', tags: ['a'] } }, 'InvalidPropertyValue'],
    [
      'Collection(DateTime) for dates',
      { properties: { title: 't', 'dates@odata.type': 'Collection(DateTime)', dates: ['2024-01-01T00:00:00Z'] } },
      'InvalidPropertyValue',
    ],
    [
      'a string element in Collection(Int64)',
      { properties: { title: 't', 'counts@odata.type': 'Collection(Int64)', counts: ['1'] } },
      'InvalidPropertyValue',
    ],
    ['non-ASCII without String annotation', { properties: { title: 'Zoë' } }, 'InvalidPropertyValue'],
    [
      'an annotation without a value',
      { properties: { title: 't', 'tags@odata.type': 'Collection(String)' } },
      undefined,
    ],
    ['no properties', { properties: {} }, 'MissingProperties'],
    ['content as a string', { content: 'plain text' }, 'InvalidContent'],
    ['content with a bad type', { content: { type: 'markdown', value: 'x' } }, 'InvalidContent'],
    ['a missing acl', { acl: undefined }, 'InvalidAcl'],
    ['an empty acl', { acl: [] }, 'InvalidAcl'],
    ['an acl entry with a bad type', { acl: [{ type: 'role', value: 'x', accessType: 'grant' }] }, 'InvalidAcl'],
    [
      'an acl entry with a bad accessType',
      { acl: [{ type: 'everyone', value: 'x', accessType: 'allow' }] },
      'InvalidAcl',
    ],
    [
      'an acl user given as a UPN',
      { acl: [{ type: 'user', value: 'adele@contoso.com', accessType: 'grant' }] },
      'InvalidAcl',
    ],
    ['an acl entry with an empty value', { acl: [{ type: 'everyone', value: '', accessType: 'grant' }] }, 'InvalidAcl'],
    [
      'an acl entry with an extra field on v1.0',
      { acl: [{ type: 'everyone', value: 'x', accessType: 'grant', identitySource: 'external' }] },
      'InvalidAcl',
    ],
    ['a body id that differs from the URL', { id: 'other' }, 'ItemIdMismatch'],
    ['an unknown top-level field', { extra: true }, undefined],
  ])('rejects an item with %s (400)', async (_name, patch, inner) => {
    const body: Record<string, unknown> = { ...item('bad1'), ...patch };
    for (const k of Object.keys(body)) if (body[k] === undefined) delete body[k];
    const res = await g('PUT', `${I}/bad1`, body);
    expect(res.status).toBe(400);
    if (inner) expect(res.body.error.innerError.code).toBe(inner);
    expect(res.body.error.message.length).toBeGreaterThan(10);
  });

  it('matches the documented message for content given as a string', async () => {
    const res = await g('PUT', `${I}/bad2`, { ...item('bad2'), content: 'x' });
    expect(res.body.error).toMatchObject({
      code: 'BadRequest',
      message: 'Property content in payload has a value that does not match schema.',
    });
  });

  // Microsoft's samples PUT slugs (`2-rules-play-spfx`) and `auth__{slug}` ids to Graph (docs/emulator.md).
  it.each(['has-hyphen', 'has_underscore', '2-rules-play-spfx', 'auth__graph-overview', 'x'.repeat(128)])(
    'accepts item id %s (letters, digits, - and _)',
    async (id) => {
      const client = graphClient(emu, tls, secretCredential(emu, tls));
      await client.api(`/external/connections/items1/items/${id}`).put(item(id));
      expect((await client.api(`/external/connections/items1/items/${id}`).get()).id).toBe(id);
      await client.api(`/external/connections/items1/items/${id}`).delete();
    },
  );

  it.each(['dot.ted', 'sp ace', 'sla/sh', 'ümlaut', 'plus+sign', 'x'.repeat(129)])(
    'rejects item id %s with 400 InvalidItemId',
    async (id) => {
      const res = await g('PUT', `${I}/${encodeURIComponent(id)}`, item(id));
      expect(res.status).toBe(400);
      expect(res.body.error.innerError.code).toBe('InvalidItemId');
      expect(res.body.error.innerError.message).toMatch(/letters, digits, '-' and '_'/);
    },
  );

  it('takes the tenant id as the everyone value; another value is accepted and applied, with a logged warning', async () => {
    await call(emu, tls, 'DELETE', '/_emulator/requests');
    const client = graphClient(emu, tls, secretCredential(emu, tls));
    const tenant = emu.info.tenantId;
    await client
      .api(`/external/connections/items1/items/evt`)
      .put(item('evt', { acl: [{ type: 'everyone', value: tenant.toUpperCase(), accessType: 'grant' }] }));
    await client
      .api(`/external/connections/items1/items/evlit`)
      .put(item('evlit', { acl: [{ type: 'everyoneExceptGuests', value: 'everyone', accessType: 'grant' }] }));
    const log = (await call(emu, tls, 'GET', '/_emulator/requests?route=item')).body.value as Rec[];
    expect(log.find((e) => e.itemId === 'evt')!.warnings).toBeUndefined();
    expect(log.find((e) => e.itemId === 'evlit')!.warnings).toEqual([
      `acl[0]: everyoneExceptGuests value 'everyone' is not the tenant id (${tenant}); accepted and applied to the whole tenant`,
    ]);
    expect((await client.api(`/external/connections/items1/items/evlit`).get()).acl[0].value).toBe('everyone');
  });

  it('caps the body at 4 MB with 413', async () => {
    const big = item('big1', { content: { type: 'text', value: 'x'.repeat(4_000_001) } });
    const res = await g('PUT', `${I}/big1`, big);
    expect(res.status).toBe(413);
    const fits = item('big2', { content: { type: 'text', value: 'x'.repeat(3_900_000) } });
    expect((await g('PUT', `${I}/big2`, fits)).status).toBe(200);
  });

  it('keeps omitted top-level fields on a PUT to an existing item and flags it in the request log', async () => {
    await g('PUT', `${I}/part1`, item('part1'));
    const res = await g('PUT', `${I}/part1`, { id: 'part1', properties: { title: 'changed' } });
    expect(res.status).toBe(200);
    const got = await g('GET', `${I}/part1`);
    expect(got.body.properties).toEqual({ title: 'changed' });
    expect(got.body.acl).toEqual(item('part1').acl);
    expect(got.body.content).toEqual(item('part1').content);
    const log = await call(emu, tls, 'GET', '/_emulator/requests?route=item&method=PUT');
    expect(log.body.value.at(-1).warnings.join(' ')).toMatch(/acl/);
    // A new item still needs acl and properties.
    expect((await g('PUT', `${I}/part2`, { id: 'part2', properties: { title: 'x' } })).status).toBe(400);
  });

  it('adds activities through both path forms, ≤ 20, with per-entry results and 207 on partial failure', async () => {
    await g('PUT', `${I}/act1`, item('act1'));
    const act = (type = 'viewed') => ({
      '@odata.type': '#microsoft.graph.externalConnectors.externalActivity',
      type,
      startDateTime: '2021-04-06T18:04:31.033Z',
      performedBy: { type: 'user', id: USER },
    });
    const ok = await g('POST', `${I}/act1/addActivities`, { activities: [act(), act('created')] });
    expect(ok.status).toBe(200);
    expect(ok.body.value).toHaveLength(2);
    expect(ok.body.value.every((v: Rec) => v.error === null)).toBe(true);
    // Each result repeats the activity's type and time; performedBy is a relationship, not returned.
    expect(ok.body.value[1]).toMatchObject({ type: 'created', startDateTime: '2021-04-06T18:04:31.033Z' });
    expect(ok.body.value[1]).not.toHaveProperty('performedBy');
    const ns = await g('POST', `${I}/act1/microsoft.graph.externalConnectors.addActivities`, {
      activities: [act(), act('liked')],
    });
    expect(ns.status).toBe(207);
    expect(ns.body.value[0].error).toBeNull();
    expect(ns.body.value[1].error.message).toMatch(/type/);
    const many = await g('POST', `${I}/act1/addActivities`, { activities: Array.from({ length: 21 }, () => act()) });
    expect(many.status).toBe(400);
    expect((await g('POST', `${I}/missing1/addActivities`, { activities: [act()] })).status).toBe(404);
    const stored = await call(emu, tls, 'GET', '/_emulator/connections/items1/items/act1');
    expect(stored.body.activities).toHaveLength(3);
  });

  it('manages external groups: POST 201, GET, PATCH 204, DELETE 204, id rules and 409', async () => {
    const G = '/v1.0/external/connections/items1/groups';
    const created = await g('POST', G, { id: 'team1', displayName: 'Team 1', description: 'd' });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ id: 'team1', displayName: 'Team 1' });
    expect((await g('POST', G, { id: 'team1' })).status).toBe(409);
    expect((await g('POST', G, { id: 'team-1' })).status).toBe(400);
    expect((await g('POST', G, { id: 'x'.repeat(129) })).status).toBe(400);
    expect((await g('GET', `${G}/team1`)).body.displayName).toBe('Team 1');
    const patched = await g('PATCH', `${G}/team1`, { displayName: 'Renamed' });
    expect(patched.status).toBe(204);
    expect((await g('GET', `${G}/team1`)).body).toMatchObject({ displayName: 'Renamed', description: 'd' });
    expect((await g('GET', `${G}/nogroup`)).status).toBe(404);
    expect((await g('DELETE', `${G}/team1`)).status).toBe(204);
    expect((await g('GET', `${G}/team1`)).status).toBe(404);
  });

  it('manages members: user, group and nested externalGroup (POST 201, DELETE 204, validation)', async () => {
    const G = '/v1.0/external/connections/items1/groups';
    await g('POST', G, { id: 'outer' });
    await g('POST', G, { id: 'inner' });
    const u = await g('POST', `${G}/outer/members`, { id: USER, type: 'user' });
    expect(u.status).toBe(201);
    expect(u.body).toMatchObject({ id: USER, type: 'user' });
    expect((await g('POST', `${G}/outer/members`, { id: GROUP, type: 'group' })).status).toBe(201);
    expect((await g('POST', `${G}/outer/members`, { id: 'inner', type: 'externalGroup' })).status).toBe(201);
    expect((await g('POST', `${G}/outer/members`, { id: USER, type: 'user' })).status).toBe(409);
    expect((await g('POST', `${G}/outer/members`, { id: 'adele@contoso.com', type: 'user' })).status).toBe(400);
    expect((await g('POST', `${G}/outer/members`, { id: 'x', type: 'role' })).status).toBe(400);
    expect((await g('POST', `${G}/outer/members`, { id: 'outer', type: 'externalGroup' })).status).toBe(400);
    expect((await g('POST', `${G}/ghost/members`, { id: USER, type: 'user' })).status).toBe(404);
    const beta = await g('POST', `/beta/external/connections/items1/groups/inner/members`, {
      id: 'outer2',
      type: 'group',
      identitySource: 'external',
    });
    expect(beta.status).toBe(201);
    expect(beta.body).toMatchObject({ id: 'outer2', type: 'group', identitySource: 'external' });
    const groups = await call(emu, tls, 'GET', '/_emulator/connections/items1/groups');
    const outer = groups.body.value.find((x: Rec) => x.id === 'outer');
    expect(outer.members).toEqual([
      { id: USER, type: 'user' },
      { id: GROUP, type: 'group' },
      { id: 'inner', type: 'externalGroup' },
    ]);
    expect((await g('DELETE', `${G}/outer/members/${USER}`)).status).toBe(204);
    expect((await g('DELETE', `${G}/outer/members/${USER}`)).status).toBe(404);
  });

  it('survives malformed JSON, malformed escapes and clients that hang up mid-body', async () => {
    const bad = await call(emu, tls, 'PUT', `${I}/junk1`, '{"id": "junk1", acl: [', bearer(token));
    expect(bad.status).toBe(400);
    expect(bad.body.error.message).toMatch(/Unable to read JSON request payload/);
    const esc = await g('GET', '/v1.0/external/connections/%E0%A4%A/items/x');
    expect(esc.status).toBeLessThan(500);
    const url = new URL(emu.info.baseUrl);
    await new Promise<void>((resolve, reject) => {
      const socket = connect(
        { host: url.hostname, port: Number(url.port), ca: readFileSync(emu.info.caCertPath!) },
        () => {
          socket.write(
            `PUT ${I}/halfway1 HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${token}\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{"id":"half`,
          );
          setTimeout(() => {
            socket.destroy();
            resolve();
          }, 100);
        },
      );
      socket.on('error', reject);
    });
    await new Promise((r) => setTimeout(r, 100));
    expect((await g('GET', '/v1.0/external/connections/items1')).status).toBe(200);
    expect((await g('GET', `${I}/halfway1`)).status).toBe(404);
  });

  it('answers unknown segments with 400 and invalid versions with 400', async () => {
    const seg = await g('GET', '/v1.0/external/connections/items1/widgets');
    expect(seg.status).toBe(400);
    expect(seg.body.error.message).toMatch(/segment/);
    expect((await g('GET', '/v2.0/external/connections')).status).toBe(404);
  });
});
