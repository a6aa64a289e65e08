/**
 * `POST /search/query` for externalItem, as Microsoft Search answers it, trimmed by the signed-in user's ACL:
 * delegated tokens from the emulator's token endpoint (the password grant, through the real
 * UsernamePasswordCredential), the official Graph client, Graph's matching rules, fields, paging, errors.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmulator, type EmulatorHandle } from '../../src/emulator/index.js';
import {
  bearer,
  call,
  graphClient,
  readyConnection,
  secretCredential,
  tokenFor,
  trust,
  userCredential,
  type Rec,
  type Tls,
} from './helpers.js';

const id = (n: number) => `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`;
const U = { adele: id(1), megan: id(2), alex: id(3), guest: id(4) };
const G = { team: id(101), outer: id(102) };
const directory = {
  users: [
    { id: U.adele, userPrincipalName: 'adele@contoso.com', displayName: 'Adele Vance' },
    { id: U.megan, userPrincipalName: 'megan@contoso.com', displayName: 'Megan Bowen', password: 'megans-own' },
    { id: U.alex, userPrincipalName: 'alex@contoso.com', displayName: 'Alex Wilber' },
    { id: U.guest, userPrincipalName: 'guest_fabrikam.com#EXT#@contoso.com', guest: true },
  ],
  groups: [
    { id: G.team, displayName: 'Team', members: [U.alex] },
    { id: G.outer, displayName: 'Outer', members: [G.team] },
  ],
};

const SCHEMA = {
  baseType: 'microsoft.graph.externalItem',
  properties: [
    { name: 'title', type: 'string', isSearchable: true, isQueryable: true, isRetrievable: true, labels: ['title'] },
    { name: 'ticketId', type: 'string', isQueryable: true, isRetrievable: true },
    { name: 'status', type: 'string', isQueryable: true, isRetrievable: true, isRefinable: true },
    { name: 'priority', type: 'int64', isQueryable: true, isRetrievable: true, isRefinable: true },
    { name: 'tags', type: 'stringCollection', isSearchable: true, isQueryable: true, isRetrievable: true },
    { name: 'secret', type: 'string', isSearchable: true, isRetrievable: false },
    { name: 'opened', type: 'dateTime', isQueryable: true, isRetrievable: true },
  ],
};

const grant = (type: string, value: string) => ({ type, value, accessType: 'grant' });
const deny = (type: string, value: string) => ({ type, value, accessType: 'deny' });

const ITEMS: { id: string; acl: object[]; title: string; status: string; priority: number; body: string }[] = [
  {
    id: 'T1',
    acl: [grant('everyone', 'TENANT')],
    title: 'Payment gateway down',
    status: 'open',
    priority: 1,
    body: 'The payment gateway returns errors for every card.',
  },
  {
    id: 'T2',
    acl: [grant('user', U.adele)],
    title: 'Payroll export',
    status: 'done',
    priority: 3,
    body: 'Payroll export shared with finance.',
  },
  {
    id: 'T3',
    acl: [grant('group', G.outer)],
    title: 'Gateway certificate',
    status: 'open',
    priority: 2,
    body: 'Renew the gateway certificate before Friday.',
  },
  {
    id: 'T4',
    acl: [grant('everyoneExceptGuests', 'TENANT'), deny('user', U.megan)],
    title: 'Share drive cleanup',
    status: 'blocked',
    priority: 4,
    body: 'Sharing settings for the drive.',
  },
  {
    id: 'T5',
    acl: [grant('externalGroup', 'reviewers')],
    title: 'Quarterly review',
    status: 'open',
    priority: 2,
    body: 'Quarterly review of payments.',
  },
  { id: 'T6', acl: [deny('user', U.adele)], title: 'Nobody', status: 'open', priority: 1, body: 'Denied to all.' },
];

describe('search/query for externalItem, as each user', () => {
  let emu: EmulatorHandle;
  let tls: Tls;
  let appToken: string;
  const own = (upn: string) =>
    directory.users.find((u) => u.userPrincipalName === upn && 'password' in u) as { password: string } | undefined;
  const asUser = (upn: string, password = own(upn)?.password) =>
    graphClient(emu, tls, userCredential(emu, tls, upn, password));
  const request = (queryString: string, extra: Rec = {}) => ({
    requests: [
      {
        entityTypes: ['externalItem'],
        contentSources: ['/external/connections/tickets'],
        query: { queryString },
        ...extra,
      },
    ],
  });
  const ids = async (upn: string, q: string, extra: Rec = {}) => {
    const res = await asUser(upn).api('/search/query').post(request(q, extra));
    return ((res.value[0].hitsContainers[0].hits ?? []) as Rec[]).map((h) => h.hitId).sort();
  };

  beforeAll(async () => {
    emu = await startEmulator({ schemaDelayMs: 10, log: () => {}, directory });
    tls = trust(emu);
    appToken = await tokenFor(emu, tls);
    await readyConnection(emu, tls, appToken, 'tickets', SCHEMA);
    await readyConnection(emu, tls, appToken, 'other', SCHEMA);
    const g = (method: string, path: string, body?: unknown) => call(emu, tls, method, path, body, bearer(appToken));
    await g('POST', '/v1.0/external/connections/tickets/groups', { id: 'reviewers' });
    await g('POST', '/v1.0/external/connections/tickets/groups/reviewers/members', { id: U.megan, type: 'user' });
    for (const t of ITEMS) {
      const acl = t.acl.map((e) => ({
        ...e,
        value: (e as Rec).value === 'TENANT' ? emu.info.tenantId : (e as Rec).value,
      }));
      const r = await g('PUT', `/v1.0/external/connections/tickets/items/${t.id}`, {
        id: t.id,
        acl,
        properties: {
          title: t.title,
          ticketId: t.id,
          status: t.status,
          priority: t.priority,
          tags: ['ops', t.status],
          'tags@odata.type': 'Collection(String)',
          secret: 'hidden words',
          opened: `2026-0${t.priority}-15T10:00:00Z`,
        },
        content: { type: 'html', value: `<p>${t.body}</p>` },
      });
      expect(r.status, t.id).toBe(200);
    }
    await g('PUT', '/v1.0/external/connections/other/items/O1', {
      id: 'O1',
      acl: [grant('everyone', emu.info.tenantId)],
      properties: { title: 'Payment gateway in the other connection' },
    });
  });
  afterAll(async () => {
    await emu?.close();
    await tls?.dispatcher.close();
  });

  it('issues delegated tokens through the password grant: scp ExternalItem.Read.All, the user, no roles', async () => {
    const t = await userCredential(emu, tls, 'adele@contoso.com').getToken(
      'https://graph.microsoft.com/ExternalItem.Read.All',
    );
    const claims = JSON.parse(Buffer.from(t.token.split('.')[1]!, 'base64url').toString('utf8'));
    expect(claims).toMatchObject({
      aud: 'https://graph.microsoft.com',
      scp: 'ExternalItem.Read.All',
      oid: U.adele,
      upn: 'adele@contoso.com',
      idtyp: 'user',
      appid: emu.info.clientId,
      tid: emu.info.tenantId,
    });
    expect(claims.roles).toBeUndefined();
    // A user with a password of their own in the directory.
    await expect(
      userCredential(emu, tls, 'megan@contoso.com', 'megans-own').getToken('https://graph.microsoft.com/.default'),
    ).resolves.toBeTruthy();
  });

  it.each([
    ['a wrong password', 'adele@contoso.com', 'nope', 'https://graph.microsoft.com/.default', /AADSTS50126/],
    [
      'a user outside the directory',
      'nobody@contoso.com',
      undefined,
      'https://graph.microsoft.com/.default',
      /AADSTS50034/,
    ],
    [
      'a permission the app was not consented',
      'adele@contoso.com',
      undefined,
      'https://graph.microsoft.com/Mail.Read',
      /AADSTS65001/,
    ],
  ])('refuses %s with the Entra error', async (_what, upn, password, scope, code) => {
    const err = await userCredential(emu, tls, upn, password)
      .getToken(scope)
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).name).toMatch(/^Authentication/);
    expect(String((err as Error).message)).toMatch(code);
  });

  it('shows each user exactly the items their ACL allows (deny beats grant, nested groups, external groups, guests)', async () => {
    expect(await ids('adele@contoso.com', '*')).toEqual(['T1', 'T2', 'T4']);
    expect(await ids('megan@contoso.com', '*')).toEqual(['T1', 'T5']);
    expect(await ids('alex@contoso.com', '*')).toEqual(['T1', 'T3', 'T4']);
    expect(await ids('guest_fabrikam.com#EXT#@contoso.com', '*')).toEqual(['T1']);
  });

  it('answers the same visibility as the admin search for every user', async () => {
    for (const u of directory.users) {
      const admin = await call(
        emu,
        tls,
        'GET',
        `/_emulator/search?connectionId=tickets&user=${encodeURIComponent(u.userPrincipalName)}`,
      );
      const res = await asUser(u.userPrincipalName).api('/search/query').post(request('*'));
      const viaApi = ((res.value[0].hitsContainers[0].hits ?? []) as Rec[]).map((h) => h.hitId).sort();
      expect(viaApi, u.userPrincipalName).toEqual(admin.body.value.map((v: Rec) => v.id).sort());
    }
  });

  it('matches whole words and prefixes of content and searchable properties, with AND / OR / NOT and phrases', async () => {
    const a = 'adele@contoso.com';
    expect(await ids(a, 'gateway')).toEqual(['T1']); // T3 (gateway) is not visible to Adele
    expect(await ids('alex@contoso.com', 'gateway')).toEqual(['T1', 'T3']);
    expect(await ids(a, 'share')).toEqual(['T4']); // whole words: 'Share', not 'shared' or 'Sharing'
    expect(await ids(a, 'shared')).toEqual(['T2']);
    expect(await ids(a, 'shar*')).toEqual(['T2', 'T4']);
    expect(await ids(a, 'payment gateway')).toEqual(['T1']); // implicit AND
    expect(await ids(a, 'payroll OR gateway')).toEqual(['T1', 'T2']);
    expect(await ids(a, 'ops NOT payroll')).toEqual(['T1', 'T4']);
    expect(await ids(a, 'ops -payroll')).toEqual(['T1', 'T4']);
    expect(await ids(a, '"export shared"')).toEqual(['T2']);
    expect(await ids(a, '"shared export"')).toEqual([]);
    expect(await ids(a, 'hidden')).toEqual(['T1', 'T2', 'T4']); // searchable, even if not retrievable
    expect(await ids(a, '<p>')).toEqual([]); // HTML is stripped
  });

  it('applies property:value restrictions to queryable properties only', async () => {
    const a = 'adele@contoso.com';
    expect(await ids(a, 'ticketId:T2')).toEqual(['T2']); // queryable, not searchable
    expect(await ids(a, 'T2')).toEqual([]); // so free text does not find it
    expect(await ids(a, 'status:open OR status:blocked')).toEqual(['T1', 'T4']);
    expect(await ids(a, 'status:op*')).toEqual(['T1']);
    expect(await ids(a, 'priority>2')).toEqual(['T2', 'T4']);
    expect(await ids(a, 'priority:1')).toEqual(['T1']);
    expect(await ids(a, 'tags:done')).toEqual(['T2']);
    expect(await ids(a, 'opened>=2026-03-01')).toEqual(['T2', 'T4']);
    expect(await ids(a, '(payroll OR gateway) AND priority<2')).toEqual(['T1']);
    expect(await ids(a, 'secret:hidden')).toEqual([]); // not queryable
  });

  it('returns retrievable properties (or the fields asked for), a highlighted summary, contentSource and rank', async () => {
    const res = await asUser('adele@contoso.com').api('/search/query').post(request('payment'));
    expect(res['@odata.context']).toMatch(/\/v1\.0\/\$metadata#Collection\(microsoft\.graph\.searchResponse\)$/);
    const [response] = res.value;
    expect(response.searchTerms).toEqual(['payment']);
    const [hit] = response.hitsContainers[0].hits;
    expect(hit).toMatchObject({
      hitId: 'T1',
      rank: 1,
      contentSource: '/external/connections/tickets',
      resource: { '@odata.type': '#microsoft.graph.externalConnectors.externalItem' },
    });
    expect(hit.summary).toContain('<c0>payment</c0>');
    expect(Object.keys(hit.resource.properties).sort()).toEqual([
      'opened',
      'priority',
      'status',
      'tags',
      'ticketId',
      'title',
    ]);
    const some = await asUser('adele@contoso.com')
      .api('/search/query')
      .post(request('payment', { fields: ['title', 'label_title', 'secret', 'nosuchfield'] }));
    expect(some.value[0].hitsContainers[0].hits[0].resource.properties).toEqual({
      title: 'Payment gateway down',
      label_title: 'Payment gateway down',
    });
  });

  it('pages with from and size: total, moreResultsAvailable, ranks', async () => {
    const client = asUser('alex@contoso.com');
    const first = await client.api('/search/query').post(request('ops', { from: 0, size: 2 }));
    const c1 = first.value[0].hitsContainers[0];
    expect(c1).toMatchObject({ total: 3, moreResultsAvailable: true });
    expect(c1.hits.map((h: Rec) => h.rank)).toEqual([1, 2]);
    const second = await client.api('/search/query').post(request('ops', { from: 2, size: 2 }));
    const c2 = second.value[0].hitsContainers[0];
    expect(c2).toMatchObject({ total: 3, moreResultsAvailable: false });
    expect(c2.hits.map((h: Rec) => h.rank)).toEqual([3]);
    const all = new Set([...c1.hits, ...c2.hits].map((h: Rec) => h.hitId));
    expect(all.size).toBe(3);
    const none = await client.api('/search/query').post(request('nothingmatchesthis'));
    expect(none.value[0].hitsContainers[0]).toEqual({ total: 0, moreResultsAvailable: false });
  });

  it('searches every connection without contentSources (and with /external/connections/*), on /beta too', async () => {
    const client = asUser('adele@contoso.com');
    const body = { requests: [{ entityTypes: ['externalItem'], query: { queryString: 'gateway' } }] };
    const res = await client.api('/search/query').post(body);
    const hits = res.value[0].hitsContainers[0].hits as Rec[];
    expect(hits.map((h) => [h.contentSource, h.hitId].join(' ')).sort()).toEqual([
      '/external/connections/other O1',
      '/external/connections/tickets T1',
    ]);
    const star = await client
      .api('/search/query')
      .post(request('gateway', { contentSources: ['/external/connections/*'] }));
    expect(star.value[0].hitsContainers[0].total).toBe(2);
    const beta = await client.api('/search/query').version('beta').post(request('gateway'));
    expect(beta['@odata.context']).toMatch(/\/beta\//);
    expect(beta.value[0].hitsContainers[0].hits.map((h: Rec) => h.hitId)).toEqual(['T1']);
  });

  it.each([
    ['two search requests', { requests: [request('a').requests[0], request('b').requests[0]] }, /single searchRequest/],
    ['another entity type', request('a', { entityTypes: ['driveItem'] }), /entityTypes/],
    ['no queryString', { requests: [{ entityTypes: ['externalItem'], query: {} }] }, /queryString is required/],
    ['a page over 500', request('a', { size: 501 }), /size must be an integer from 0 to 500/],
    ['an unknown connection', request('a', { contentSources: ['/external/connections/nope'] }), /no connection 'nope'/],
    [
      'a malformed content source',
      request('a', { contentSources: ['nope'] }),
      /\/external\/connections\/\{connectionId\}/,
    ],
    ['an unclosed quote', request('"open'), /never closed/],
    ['an unknown request property', request('a', { bogus: 1 }), /requests\[0\]\.bogus/],
  ])('answers %s with 400 naming the field', async (_what, body, message) => {
    const err = await asUser('adele@contoso.com')
      .api('/search/query')
      .post(body)
      .catch((e: unknown) => e as Rec);
    expect(err).toMatchObject({ statusCode: 400, code: 'BadRequest' });
    expect(String(err.message)).toMatch(message);
  });

  it('refuses app-only tokens and user tokens without ExternalItem.Read.All (403)', async () => {
    const app = graphClient(emu, tls, secretCredential(emu, tls));
    await expect(app.api('/search/query').post(request('*'))).rejects.toMatchObject({ statusCode: 403 });
    const minted = await call(emu, tls, 'POST', '/_emulator/tokens', {
      user: 'adele@contoso.com',
      scopes: ['ExternalConnection.Read.All'],
    });
    const res = await call(emu, tls, 'POST', '/v1.0/search/query', request('*'), bearer(minted.body.access_token));
    expect(res.status).toBe(403);
    expect(res.body.error.message).toMatch(/ExternalItem\.Read\.All/);
    expect((await call(emu, tls, 'POST', '/v1.0/search/query', request('*'))).status).toBe(401);
  });
});
