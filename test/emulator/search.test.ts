/** The ACL-aware search: deny over grant, everyone/everyoneExceptGuests, nested Entra and external groups. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmulator, type EmulatorHandle } from '../../src/emulator/index.js';
import { bearer, call, readyConnection, tokenFor, trust, type Tls, type Rec } from './helpers.js';

const id = (n: number) => `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`;
const U = { adele: id(1), megan: id(2), alex: id(3), diego: id(4), lynne: id(5), guest: id(6) };
const G = { g1: id(101), g2: id(102), g3: id(103) };

const directory = {
  users: [
    { id: U.adele, userPrincipalName: 'adele@contoso.com', displayName: 'Adele' },
    { id: U.megan, userPrincipalName: 'megan@contoso.com', displayName: 'Megan' },
    { id: U.alex, userPrincipalName: 'alex@contoso.com', displayName: 'Alex' },
    { id: U.diego, userPrincipalName: 'diego@contoso.com', displayName: 'Diego' },
    { id: U.lynne, userPrincipalName: 'lynne@contoso.com', displayName: 'Lynne' },
    { id: U.guest, userPrincipalName: 'guest_fabrikam.com#EXT#@contoso.com', displayName: 'Guest', guest: true },
  ],
  groups: [
    { id: G.g1, displayName: 'G1', members: [U.alex] },
    { id: G.g2, displayName: 'G2 (contains G1)', members: [G.g1] },
    { id: G.g3, displayName: 'G3', members: [U.diego] },
  ],
};

const grant = (type: string, value: string) => ({ type, value, accessType: 'grant' });
const deny = (type: string, value: string) => ({ type, value, accessType: 'deny' });

/** item id → ACL, and who must see it. */
const cases: Record<string, { acl: object[]; visible: (keyof typeof U)[] }> = {
  everyone: { acl: [grant('everyone', 'tenant')], visible: ['adele', 'megan', 'alex', 'diego', 'lynne', 'guest'] },
  noGuests: { acl: [grant('everyoneExceptGuests', 'tenant')], visible: ['adele', 'megan', 'alex', 'diego', 'lynne'] },
  everyoneButMegan: {
    acl: [grant('everyone', 't'), deny('user', U.megan)],
    visible: ['adele', 'alex', 'diego', 'lynne', 'guest'],
  },
  denyFirst: { acl: [deny('user', U.megan), grant('user', U.megan), grant('user', U.adele)], visible: ['adele'] },
  nestedEntra: { acl: [grant('group', G.g2)], visible: ['alex'] },
  nestedExternal: { acl: [grant('externalGroup', 'ext2')], visible: ['adele'] },
  externalViaEntra: { acl: [grant('externalGroup', 'ext4')], visible: ['alex'] },
  deniedViaNestedExternal: {
    acl: [grant('user', U.adele), grant('user', U.megan), deny('externalGroup', 'ext2')],
    visible: ['megan'],
  },
  denyEntraGroup: {
    acl: [grant('everyoneExceptGuests', 't'), deny('group', G.g3)],
    visible: ['adele', 'megan', 'alex', 'lynne'],
  },
  denyOnly: { acl: [deny('user', U.adele)], visible: [] },
  upperCaseGuid: { acl: [grant('user', U.lynne.toUpperCase())], visible: ['lynne'] },
  denyNestedEntra: {
    acl: [grant('everyone', 't'), deny('group', G.g2)],
    visible: ['adele', 'megan', 'diego', 'lynne', 'guest'],
  },
  cycle: { acl: [grant('externalGroup', 'cyc1')], visible: ['megan'] },
  unknownGroup: { acl: [grant('externalGroup', 'neverCreated')], visible: [] },
  guestDirect: { acl: [grant('user', U.guest), deny('everyoneExceptGuests', 't')], visible: ['guest'] },
};

describe('emulator ACL search', () => {
  let emu: EmulatorHandle;
  let tls: Tls;
  let token: string;
  const g = (method: string, path: string, body?: unknown) => call(emu, tls, method, path, body, bearer(token));
  const search = (user: string, q = '', cid = 'acls') =>
    call(
      emu,
      tls,
      'GET',
      `/_emulator/search?connectionId=${cid}&user=${encodeURIComponent(user)}&q=${encodeURIComponent(q)}`,
    );

  beforeAll(async () => {
    emu = await startEmulator({ schemaDelayMs: 10, log: () => {}, directory });
    tls = trust(emu);
    token = await tokenFor(emu, tls);
    await readyConnection(emu, tls, token, 'acls');
    const GR = '/v1.0/external/connections/acls/groups';
    for (const gid of ['ext1', 'ext2', 'ext3', 'ext4', 'cyc1', 'cyc2']) await g('POST', GR, { id: gid });
    await g('POST', `${GR}/ext1/members`, { id: U.adele, type: 'user' });
    await g('POST', `${GR}/ext2/members`, { id: 'ext1', type: 'externalGroup' });
    await g('POST', `${GR}/ext3/members`, { id: G.g2, type: 'group' });
    await g('POST', `${GR}/ext4/members`, { id: 'ext3', type: 'externalGroup' });
    await g('POST', `${GR}/cyc1/members`, { id: 'cyc2', type: 'externalGroup' });
    await g('POST', `${GR}/cyc2/members`, { id: 'cyc1', type: 'externalGroup' });
    await g('POST', `${GR}/cyc2/members`, { id: U.megan, type: 'user' });
    for (const [itemId, c] of Object.entries(cases)) {
      const r = await g('PUT', `/v1.0/external/connections/acls/items/${itemId}`, {
        id: itemId,
        acl: c.acl,
        properties: { title: `Ticket ${itemId}`, ticketId: `T${itemId}` },
        content: { type: 'html', value: `<b>shared</b> words for ${itemId}` },
      });
      expect(r.status, itemId).toBe(200);
    }
  });
  afterAll(async () => {
    await emu?.close();
    await tls?.dispatcher.close();
  });

  for (const user of Object.keys(U) as (keyof typeof U)[]) {
    it(`shows ${user} exactly the items their ACLs allow`, async () => {
      const res = await search(U[user]);
      expect(res.status).toBe(200);
      const expected = Object.entries(cases)
        .filter(([, c]) => c.visible.includes(user))
        .map(([k]) => k)
        .sort();
      expect(res.body.value.map((v: Rec) => v.id).sort()).toEqual(expected);
    });
  }

  it('matches all words against content (HTML stripped) and searchable properties only', async () => {
    const both = await search('adele@contoso.com', 'SHARED nestedExternal');
    expect(both.body.value.map((v: Rec) => v.id)).toEqual(['nestedExternal']);
    expect((await search('adele@contoso.com', 'shared <b>')).body.value).toEqual([]);
    // title is searchable, ticketId is not.
    expect((await search(U.adele, 'Ticket everyone')).body.value.map((v: Rec) => v.id)).toContain('everyone');
    expect((await search(U.adele, 'Teveryone')).body.value).toEqual([]);
  });

  it('reflects membership changes at once (no ACL re-ingestion needed)', async () => {
    const GR = '/v1.0/external/connections/acls/groups';
    expect((await search('diego@contoso.com', 'nestedExternal')).body.value).toEqual([]);
    await g('POST', `${GR}/ext1/members`, { id: G.g3, type: 'group' });
    expect((await search('diego@contoso.com', 'nestedExternal')).body.value.map((v: Rec) => v.id)).toEqual([
      'nestedExternal',
    ]);
    await g('DELETE', `${GR}/ext1/members/${G.g3}`);
    expect((await search('diego@contoso.com', 'nestedExternal')).body.value).toEqual([]);
  });

  it('needs a known user, and validates a posted directory', async () => {
    expect((await search('nobody@contoso.com')).status).toBe(404);
    expect((await call(emu, tls, 'GET', '/_emulator/search?connectionId=acls')).status).toBe(400);
    const badDir = await call(emu, tls, 'POST', '/_emulator/directory', {
      users: [{ id: 'not-a-guid', userPrincipalName: 'a@b.c' }],
    });
    expect(badDir.status).toBe(400);
    expect(badDir.body.error.message).toMatch(/users\[0\]\.id/);
    const dangling = await call(emu, tls, 'POST', '/_emulator/directory', {
      users: [],
      groups: [{ id: G.g1, members: [U.alex] }],
    });
    expect(dangling.status).toBe(400);
    expect((await call(emu, tls, 'GET', '/_emulator/directory')).body.users).toHaveLength(6);
  });
});
