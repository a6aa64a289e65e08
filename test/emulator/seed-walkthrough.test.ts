/**
 * The seed walk-through: client credentials → connection contosotasks → schema → operation inprogress →
 * completed → external group member → item TSP228082938 with a user grant and an external-group deny →
 * GET returns it; the ACL search shows it to the granted user and hides it from the denied one.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ResponseType } from '@microsoft/microsoft-graph-client';
import { startEmulator, type EmulatorHandle } from '../../src/emulator/index.js';
import { call, graphClient, secretCredential, trust, type Tls, type Rec } from './helpers.js';

const ADELE = '5f0c3b8e-0b1a-4a57-9a39-6f3c1c0a1d01';
const MEGAN = '6a1d4c9f-1c2b-4b68-8b4a-7a4d2d1b2e02';

describe('seed walk-through (contosotasks)', () => {
  let emu: EmulatorHandle;
  let tls: Tls;

  beforeAll(async () => {
    emu = await startEmulator({
      schemaDelayMs: 300,
      log: () => {},
      directory: {
        users: [
          { id: ADELE, userPrincipalName: 'adele@contoso.com', displayName: 'Adele Vance', guest: false },
          { id: MEGAN, userPrincipalName: 'megan@contoso.com', displayName: 'Megan Bowen', guest: false },
        ],
        groups: [],
      },
    });
    tls = trust(emu);
  });
  afterAll(async () => {
    await emu?.close();
    await tls?.dispatcher.close();
  });

  it('goes from a token to an ACL-checked item', async () => {
    const credential = secretCredential(emu, tls);
    const token = await credential.getToken('https://graph.microsoft.com/.default');
    expect(token.token.split('.')).toHaveLength(3);
    const client = graphClient(emu, tls, credential);

    const created = await client
      .api('/external/connections')
      .post({ id: 'contosotasks', name: 'Contoso Tasks', description: 'Tasks', contentCategory: 'taskManagement' });
    expect(created).toMatchObject({ id: 'contosotasks', name: 'Contoso Tasks', state: 'draft' });

    const schemaRes: Response = await client
      .api('/external/connections/contosotasks/schema')
      .responseType(ResponseType.RAW)
      .patch({
        baseType: 'microsoft.graph.externalItem',
        properties: [
          {
            name: 'title',
            type: 'string',
            isSearchable: true,
            isQueryable: true,
            isRetrievable: true,
            labels: ['title'],
          },
          { name: 'createdBy', type: 'string', isQueryable: true, isRetrievable: true, labels: ['createdBy'] },
          {
            name: 'lastEditedDate',
            type: 'dateTime',
            isQueryable: true,
            isRetrievable: true,
            isRefinable: true,
            labels: ['lastModifiedDateTime'],
          },
        ],
      });
    expect(schemaRes.status).toBe(202);
    const location = schemaRes.headers.get('location')!;
    expect(location).toMatch(
      new RegExp(`^${emu.info.baseUrl}/v1.0/external/connections/contosotasks/operations/1\\.neu\\.`),
    );

    const statuses: string[] = [];
    for (let i = 0; i < 100; i++) {
      const op = await client.api(location).get();
      statuses.push(op.status);
      if (op.status !== 'inprogress') break;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(statuses[0]).toBe('inprogress');
    expect(statuses.at(-1)).toBe('completed');
    expect((await client.api('/external/connections/contosotasks').get()).state).toBe('ready');

    await client
      .api('/external/connections/contosotasks/groups')
      .post({ id: 'blockedreviewers', displayName: 'Blocked' });
    const member = await client
      .api('/external/connections/contosotasks/groups/blockedreviewers/members')
      .post({ id: MEGAN, type: 'user' });
    expect(member).toMatchObject({ id: MEGAN, type: 'user' });

    const item = {
      id: 'TSP228082938',
      acl: [
        { type: 'user', value: ADELE, accessType: 'grant' },
        { type: 'user', value: MEGAN, accessType: 'grant' },
        { type: 'externalGroup', value: 'blockedreviewers', accessType: 'deny' },
      ],
      properties: {
        title: 'Error in the payment gateway',
        createdBy: 'adele@contoso.com',
        lastEditedDate: '2024-05-01T10:00:00Z',
      },
      content: { type: 'text', value: 'Error in payment gateway when paying with a card' },
    };
    const put: Response = await client
      .api('/external/connections/contosotasks/items/TSP228082938')
      .responseType(ResponseType.RAW)
      .put(item);
    expect(put.status).toBe(200);
    expect(await put.text()).toBe('');

    const got = await client.api('/external/connections/contosotasks/items/TSP228082938').get();
    expect(got).toMatchObject({ id: item.id, acl: item.acl, properties: item.properties, content: item.content });

    const search = (user: string, q: string) =>
      call(
        emu,
        tls,
        'GET',
        `/_emulator/search?connectionId=contosotasks&user=${encodeURIComponent(user)}&q=${encodeURIComponent(q)}`,
      );
    const adele = await search('adele@contoso.com', 'payment gateway');
    expect(adele.status).toBe(200);
    expect(adele.body.value.map((v: Rec) => v.id)).toEqual(['TSP228082938']);
    const megan = await search(MEGAN, 'payment gateway');
    expect(megan.body.value).toEqual([]);
    const adeleOther = await search(ADELE, 'unrelated words');
    expect(adeleOther.body.value).toEqual([]);
  });
});
