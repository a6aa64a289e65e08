import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { MappingDefinition } from '../../src/config/mapping-definition.js';
import type { SchemaProperty } from '../../src/config/model.js';
import { canSee } from '../../src/emulator/search.js';
import type { StoredItem } from '../../src/emulator/store.js';
import { externalGroupKey, indexExternalGroups } from '../../src/mapping/external-groups.js';
import { encodeExternalGroupId } from '../../src/mapping/item-id.js';
import type { MapResult, MapperDeps } from '../../src/mapping/mapper.js';
import { createMapper } from '../../src/mapping/mapper.js';

const schema: SchemaProperty[] = [{ name: 'title', type: 'string', isRetrievable: true, labels: ['title'] }];
const TENANT = 'tenant-1';
// The groups the connector synced this crawl, as the groups source spells them.
const synced: ReadonlySet<string> = new Set(['payments', 'finance', 'hr-onboarding']);

const acl = (onUnresolved: 'reject' | 'denyAll' = 'reject'): MappingDefinition['acl'] => ({
  onUnresolved,
  allowEveryone: true,
  rules: [
    { access: 'grant', type: 'everyone', when: { field: 'visibility', equals: 'public' } },
    { access: 'grant', type: 'externalGroup', value: '{team}', when: { field: 'visibility', equals: 'team' } },
    { access: 'deny', type: 'externalGroup', from: 'deniedTeams' },
  ],
});

async function mapper(deps: Partial<MapperDeps> = {}, onUnresolved: 'reject' | 'denyAll' = 'reject') {
  return createMapper({ id: '{n}', properties: { title: 'title' }, acl: acl(onUnresolved) }, schema, {
    baseDir: process.cwd(),
    tenantId: TENANT,
    syncsExternalGroups: true,
    ...deps,
  });
}
const ok = (r: MapResult) => {
  if (!r.ok) throw new Error(r.reason.message);
  return r;
};

/** Would a member of `payments` (and nothing else) find this item? The emulator's ACL evaluation decides. */
const paymentsMemberSees = (r: MapResult) =>
  canSee(
    { acl: ok(r).item.acl } as StoredItem,
    { user: { id: 'u-adele', userPrincipalName: 'adele@contoso.com' }, groups: new Set() },
    new Set(['payments']),
  );

describe('externalGroup values that match no synced group (deny-names-no-group class)', () => {
  const record = { key: 'T1', data: { n: 'T1', title: 'x', visibility: 'public', deniedTeams: ['Payments'] } };

  it('reproduces the report: without the synced ids, a deny naming "Payments" denies nobody in "payments"', async () => {
    const m = await mapper({ syncsExternalGroups: false });
    const r = m.map(record);
    expect(ok(r).item.acl).toContainEqual({ type: 'externalGroup', value: 'Payments', accessType: 'deny' });
    expect(paymentsMemberSees(r)).toBe(true); // the hole: the member still finds the item
  });

  it('fixed: with the synced ids, the deny resolves to the synced group "payments" and hides the item', async () => {
    const m = await mapper();
    const r = m.map(record, { externalGroups: synced });
    expect(ok(r).item.acl).toEqual([
      { type: 'everyone', value: TENANT, accessType: 'grant' },
      { type: 'externalGroup', value: 'payments', accessType: 'deny' },
    ]);
    expect(paymentsMemberSees(r)).toBe(false);
  });

  it('a deny naming an unknown group is unresolved: rejected, or denied to everyone (never "deny nobody")', async () => {
    const unknown = { key: 'T2', data: { n: 'T2', title: 'x', visibility: 'public', deniedTeams: ['paymnts'] } };
    const rejected = (await mapper()).map(unknown, { externalGroups: synced });
    expect(rejected.ok).toBe(false);
    if (!rejected.ok) {
      expect(rejected.reason).toMatchObject({ field: 'acl.rules[2]', rule: 'acl.unresolvedDeny' });
      expect(rejected.reason.message).toContain('externalGroup "paymnts" is not one of the 3 external groups');
    }
    const denyAll = (await mapper({}, 'denyAll')).map(unknown, { externalGroups: synced });
    expect(ok(denyAll).item.acl).toEqual([{ type: 'everyone', value: TENANT, accessType: 'deny' }]);
  });

  it('a grant naming an unknown group is dropped with a warning; no grant left is acl.noGrant', async () => {
    const r = (await mapper()).map(
      { key: 'T3', data: { n: 'T3', title: 'x', visibility: 'team', team: 'Treasury' } },
      { externalGroups: synced },
    );
    expect(!r.ok && r.reason.rule).toBe('acl.noGrant');
    expect(!r.ok && r.reason.message).toContain('externalGroup "Treasury" is not one of');
  });

  it('grants resolve ignoring case to the synced spelling, encoded the way the groups are', async () => {
    const m = await mapper();
    const team = (t: string) =>
      ok(m.map({ key: t, data: { n: 'T4', title: 'x', visibility: 'team', team: t } }, { externalGroups: synced })).item
        .acl;
    expect(team('FINANCE')).toEqual([{ type: 'externalGroup', value: 'finance', accessType: 'grant' }]);
    expect(team(' HR-Onboarding ')).toEqual([
      { type: 'externalGroup', value: encodeExternalGroupId('hr-onboarding'), accessType: 'grant' },
    ]);
  });

  it('synced ids that differ only in case are one id: a value naming them is unresolved', async () => {
    const twins = new Set(['payments', 'Payments']);
    expect(indexExternalGroups(twins).collisions).toEqual([['payments', 'Payments']]);
    const r = (await mapper()).map(record, { externalGroups: twins });
    expect(!r.ok && r.reason.message).toContain('matches 2 synced groups whose ids differ only in case');
  });

  it('when the connector syncs groups but the crawl passed no ids, no group value is trusted', async () => {
    const r = (await mapper()).map(record);
    expect(!r.ok && r.reason.rule).toBe('acl.unresolvedDeny');
    expect(!r.ok && r.reason.message).toContain('the crawl did not pass the synced group ids');
  });

  it('the case rule is one function for both sides', () => {
    expect(externalGroupKey(' Payments ')).toBe(externalGroupKey('payments'));
    expect(indexExternalGroups(['payments']).resolve('PAYMENTS')).toEqual({ value: 'payments' });
  });

  it('applies to externalGroup entries a mapping module returns, too', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gc-groups-'));
    writeFileSync(
      join(dir, 'm.mjs'),
      `export function map(r) { return { id: r.n, properties: { title: 'x' }, acl: [
        { type: 'everyone', value: 'x', accessType: 'grant' },
        ...r.deny.map((g) => ({ type: 'externalGroup', value: g, accessType: 'deny' })) ] }; }`,
    );
    const m = await createMapper(
      { module: './m.mjs', acl: { onUnresolved: 'reject', allowEveryone: true, rules: [] } },
      schema,
      {
        baseDir: dir,
        syncsExternalGroups: true,
      },
    );
    const known = m.map({ key: 'M1', data: { n: 'M1', deny: ['PAYMENTS'] } }, { externalGroups: synced });
    expect(ok(known).item.acl[1]).toEqual({ type: 'externalGroup', value: 'payments', accessType: 'deny' });
    const unknown = m.map({ key: 'M2', data: { n: 'M2', deny: ['ghosts'] } }, { externalGroups: synced });
    expect(!unknown.ok && unknown.reason.rule).toBe('acl.unresolvedDeny');
  });

  it('builds the index once per crawl Set', async () => {
    const m = await mapper();
    const ids = new Set(['payments']);
    const data = { n: 'T5', title: 'x', visibility: 'team', team: 'payments' };
    expect(ok(m.map({ key: 'a', data }, { externalGroups: ids })).item.acl[0]!.value).toBe('payments');
    // A new Set for the next crawl is indexed afresh (a group removed between crawls no longer resolves).
    const next = m.map({ key: 'a', data }, { externalGroups: new Set(['finance']) });
    expect(!next.ok && next.reason.rule).toBe('acl.noGrant');
  });
});
