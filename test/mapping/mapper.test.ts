import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { MappingDefinition } from '../../src/config/mapping-definition.js';
import type { SchemaProperty } from '../../src/config/model.js';
import type { MapResult } from '../../src/mapping/mapper.js';
import { createMapper } from '../../src/mapping/mapper.js';

const schema: SchemaProperty[] = [
  { name: 'title', type: 'string', isSearchable: true, isRetrievable: true, labels: ['title'] },
  { name: 'url', type: 'string', isRetrievable: true, labels: ['url'] },
  { name: 'iconUrl', type: 'string', isRetrievable: true, labels: ['iconUrl'] },
  { name: 'priority', type: 'int64', isQueryable: true },
  { name: 'score', type: 'double', isRetrievable: true },
  { name: 'active', type: 'boolean', isRetrievable: true },
  { name: 'due', type: 'dateTime', isRetrievable: true },
  { name: 'tags', type: 'stringCollection', isRetrievable: true },
  { name: 'counts', type: 'int64Collection', isRetrievable: true },
  { name: 'weights', type: 'doubleCollection', isRetrievable: true },
  { name: 'dates', type: 'dateTimeCollection', isRetrievable: true },
];

const ADELE = '11111111-1111-4111-8111-111111111111';
const MEGAN = '22222222-2222-4222-8222-222222222222';
const directory = new Map([
  ['adele@contoso.com', ADELE],
  ['megan@contoso.com', MEGAN],
]);

const baseAcl: MappingDefinition['acl'] = {
  onUnresolved: 'reject',
  rules: [{ access: 'grant', type: 'externalGroup', value: '{team}' }],
};

function def(over: Partial<MappingDefinition> = {}): MappingDefinition {
  return {
    id: '{id}',
    properties: {
      title: 'title',
      priority: 'priority',
      score: 'score',
      active: 'active',
      due: 'due',
      tags: { field: 'tags', split: ';' },
      counts: 'counts',
      weights: 'weights',
      dates: 'dates',
    },
    acl: baseAcl,
    ...over,
  };
}

async function mapOne(
  data: Record<string, unknown>,
  over: Partial<MappingDefinition> = {},
  key = 'R1',
): Promise<MapResult> {
  const mapper = await createMapper(def(over), schema, { directory, baseDir: process.cwd() });
  return mapper.map({ key, data });
}
function ok(r: MapResult) {
  if (!r.ok) throw new Error(`expected ok, got ${r.reason.message}`);
  return r;
}
function rejected(r: MapResult) {
  if (r.ok) throw new Error(`expected a rejection, got ${JSON.stringify(r.item)}`);
  return r.reason;
}

describe('coercion and @odata.type annotations', () => {
  it('coerces every type and annotates collections and non-ASCII strings', async () => {
    const r = ok(
      await mapOne({
        id: 'A1',
        team: 'payments',
        title: 'Zahlung fehlgeschlagen in Zürich',
        priority: '3',
        score: '2.5',
        active: 'yes',
        due: '2025-03-01T10:00:00+02:00',
        tags: 'a; b;;c ',
        counts: [1, '2'],
        weights: [0.5, '1e3'],
        dates: ['2025-01-01', '2025-01-02T03:04:05.678-01:30'],
      }),
    );
    expect(r.item.properties).toEqual({
      title: 'Zahlung fehlgeschlagen in Zürich',
      'title@odata.type': 'String',
      priority: 3,
      score: 2.5,
      active: true,
      due: '2025-03-01T08:00:00.000Z',
      tags: ['a', 'b', 'c'],
      'tags@odata.type': 'Collection(String)',
      counts: [1, 2],
      'counts@odata.type': 'Collection(Int64)',
      weights: [0.5, 1000],
      'weights@odata.type': 'Collection(Double)',
      dates: ['2025-01-01T00:00:00.000Z', '2025-01-02T04:34:05.678Z'],
      'dates@odata.type': 'Collection(DateTimeOffset)',
    });
    expect(r.item.acl).toEqual([{ type: 'externalGroup', value: 'payments', accessType: 'grant' }]);
  });

  it('does not annotate plain ASCII strings', async () => {
    const r = ok(await mapOne({ id: 'A2', team: 't', title: 'Plain title' }));
    expect(r.item.properties['title@odata.type']).toBeUndefined();
  });

  it('omits missing optional values and treats blank CSV cells as missing', async () => {
    const r = ok(await mapOne({ id: 'A3', team: 't', title: 'x', priority: '', due: null }));
    expect(r.item.properties).toEqual({ title: 'x' });
  });

  it.each([
    [{ priority: 'high' }, 'priority', 'type', 'expected int64, got "high"'],
    [{ priority: 2.5 }, 'priority', 'type', 'not an integer'],
    [{ priority: '99999999999999999999' }, 'priority', 'range', 'outside'],
    [{ score: 'abc' }, 'score', 'type', 'expected double'],
    [{ active: 'maybe' }, 'active', 'type', 'expected boolean'],
    [{ due: '2025-02-30' }, 'due', 'type', 'not a real calendar date'],
    [{ due: 'yesterday' }, 'due', 'type', 'ISO 8601'],
    [{ due: 1700000000 }, 'due', 'type', 'ISO 8601'],
    [{ counts: [1, 'x'] }, 'counts', 'type', 'element 1'],
    [{ title: { nested: true } }, 'title', 'type', 'expected string'],
    [{ title: ['a'] }, 'title', 'type', 'array'],
  ])('rejects %j on field %s with rule %s', async (bad, field, rule, text) => {
    const reason = rejected(await mapOne({ id: 'TSP1234', team: 't', title: 'x', ...bad }));
    expect(reason).toMatchObject({ recordKey: 'R1', field, rule });
    expect(reason.message).toContain(`record R1: field "${field}": `);
    expect(reason.message).toContain(text);
    expect(reason.message).toContain(`(rule: ${rule})`);
  });

  it('formats the reject message as the docs promise', async () => {
    const reason = rejected(await mapOne({ id: 'X', team: 't', title: 'x', priority: 'high' }, {}, 'TSP1234'));
    expect(reason.message).toBe('record TSP1234: field "priority": expected int64, got "high" (rule: type)');
  });
});

describe('ids, templates, url and iconUrl', () => {
  it('encodes ids Graph does not accept and returns the source id', async () => {
    const r = ok(await mapOne({ id: 'TSP-12/3', team: 't', title: 'x' }));
    expect(r.item.id).toMatch(/^b32[a-z2-7]+$/);
    expect(r.sourceId).toBe('TSP-12/3');
  });

  it('builds ids from templates and rejects a record with no id', async () => {
    const r = ok(await mapOne({ a: 'X', b: 7, team: 't', title: 'x' }, { id: '{a}{b}' }));
    expect(r.item.id).toBe('X7');
    const reason = rejected(await mapOne({ a: 'X', team: 't', title: 'x' }, { id: '{a}{b}' }));
    expect(reason).toMatchObject({ field: 'id', rule: 'required' });
  });

  it('fills the url / iconUrl labelled properties and rejects a non-URL', async () => {
    const over = { url: 'https://tasks.contoso.com/tickets/{id}', iconUrl: 'https://cdn.contoso.com/icon.png' };
    const r = ok(await mapOne({ id: 'A9', team: 't', title: 'x' }, over));
    expect(r.item.properties.url).toBe('https://tasks.contoso.com/tickets/A9');
    expect(r.item.properties.iconUrl).toBe('https://cdn.contoso.com/icon.png');
    const reason = rejected(await mapOne({ id: 'A9', team: 't', title: 'x', path: 'x y' }, { url: '{path}' }));
    expect(reason).toMatchObject({ field: 'url', rule: 'url' });
  });

  it('rejects a required property that is missing', async () => {
    const reason = rejected(
      await mapOne({ id: 'A', team: 't' }, { properties: { title: { field: 'title', required: true } } }),
    );
    expect(reason).toMatchObject({ field: 'title', rule: 'required' });
  });

  it('rejects a record with no properties at all (Graph needs one)', async () => {
    const reason = rejected(await mapOne({ id: 'A', team: 't' }, { properties: { title: 'title' } }));
    expect(reason).toMatchObject({ field: 'properties', rule: 'required' });
  });

  it('loads mapping.acl.directory itself and fails at start-up on a bad path', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gc-dir-'));
    writeFileSync(
      join(dir, 'dir.json'),
      JSON.stringify({ users: [{ id: ADELE, userPrincipalName: 'Adele@Contoso.com' }] }),
    );
    const acl = {
      onUnresolved: 'reject' as const,
      directory: 'dir.json',
      rules: [{ access: 'grant' as const, type: 'user' as const, from: 'owner' }],
    };
    const mapper = await createMapper(def({ acl }), schema, { baseDir: dir });
    expect(ok(mapper.map({ key: 'K', data: { id: 'K1', title: 'x', owner: 'adele@contoso.com' } })).item.acl).toEqual([
      { type: 'user', value: ADELE, accessType: 'grant' },
    ]);
    await expect(
      createMapper(def({ acl: { ...acl, directory: 'nope.json' } }), schema, { baseDir: dir }),
    ).rejects.toThrow(/mapping\.acl\.directory: cannot read .*nope\.json/);
  });

  it('turns a source parse error into a rejection, not a throw', async () => {
    const mapper = await createMapper(def(), schema, { baseDir: '.' });
    const r = mapper.map({ key: 'line 7', error: 'line 7: invalid JSON' });
    expect(rejected(r)).toMatchObject({ recordKey: 'line 7', rule: 'parse' });
  });
});

describe('content', () => {
  it('escapes placeholder values in html mode only', async () => {
    const data = { id: 'C1', team: 't', title: '<b>"x" & y</b>' };
    const html = ok(await mapOne(data, { content: { type: 'html', template: '<h1>{title}</h1>' } }));
    expect(html.item.content).toEqual({ type: 'html', value: '<h1>&lt;b&gt;&quot;x&quot; &amp; y&lt;/b&gt;</h1>' });
    const text = ok(await mapOne(data, { content: { type: 'text', template: '{title} / {missing}' } }));
    expect(text.item.content).toEqual({ type: 'text', value: '<b>"x" & y</b> / ' });
  });

  const big = Array.from({ length: 30_000 }, (_, i) => `word${i}`).join(' '); // ~ 260 KB

  it('rejects an item over the size cap with contentOverflow "reject" (default)', async () => {
    const reason = rejected(
      await mapOne(
        { id: 'C2', team: 't', title: 'x', body: big },
        { maxItemBytes: 100_000, content: { type: 'text', field: 'body' } },
      ),
    );
    expect(reason).toMatchObject({ field: 'content', rule: 'size' });
    expect(reason.message).toContain('100000');
  });

  it('truncates at a word boundary with a warning under contentOverflow "truncate"', async () => {
    const r = ok(
      await mapOne(
        { id: 'C3', team: 't', title: 'x', body: big },
        { maxItemBytes: 100_000, contentOverflow: 'truncate', content: { type: 'text', field: 'body' } },
      ),
    );
    const size = Buffer.byteLength(JSON.stringify(r.item));
    expect(size).toBeLessThanOrEqual(100_000);
    expect(size).toBeGreaterThan(99_000);
    expect(big.startsWith(r.item.content!.value)).toBe(true);
    expect(big[r.item.content!.value.length]).toBe(' '); // cut before a space: a whole word
    expect(r.warnings.join()).toMatch(/truncated/);
  });

  it('counts JSON escaping and multi-byte characters when truncating', async () => {
    const tricky = '"é\n日'.repeat(40_000);
    const r = ok(
      await mapOne(
        { id: 'C4', team: 't', title: 'x', body: tricky },
        { maxItemBytes: 50_000, contentOverflow: 'truncate', content: { type: 'text', field: 'body' } },
      ),
    );
    expect(Buffer.byteLength(JSON.stringify(r.item))).toBeLessThanOrEqual(50_000);
  });

  it('enforces the 4 MB cap by default', async () => {
    const huge = 'x '.repeat(2_100_000);
    const reason = rejected(
      await mapOne({ id: 'C5', team: 't', title: 'x', body: huge }, { content: { type: 'text', field: 'body' } }),
    );
    expect(reason.message).toContain('4000000');
  });
});

describe('ACL (fail closed)', () => {
  const restricted: MappingDefinition['acl'] = {
    onUnresolved: 'reject',
    allowEveryone: true,
    rules: [
      { access: 'grant', type: 'externalGroup', value: '{team}', when: { field: 'visibility', equals: 'team' } },
      { access: 'grant', type: 'user', from: 'allowed', when: { field: 'visibility', equals: 'restricted' } },
      { access: 'grant', type: 'everyone', when: { field: 'visibility', equals: 'public' } },
      { access: 'deny', type: 'user', from: 'denied' },
    ],
  };

  it('grants an external group, users by UPN or object id, and writes deny entries', async () => {
    const team = ok(
      await mapOne(
        { id: 'T1', title: 'x', team: 'payments', visibility: 'team', denied: ['Megan@Contoso.com'] },
        { acl: restricted },
      ),
    );
    expect(team.item.acl).toEqual([
      { type: 'externalGroup', value: 'payments', accessType: 'grant' },
      { type: 'user', value: MEGAN, accessType: 'deny' },
    ]);
    const users = ok(
      await mapOne(
        { id: 'T2', title: 'x', visibility: 'restricted', allowed: `adele@contoso.com,${MEGAN.toUpperCase()}` },
        { acl: restricted },
      ),
    );
    expect(users.item.acl).toEqual([
      { type: 'user', value: ADELE, accessType: 'grant' },
      { type: 'user', value: MEGAN, accessType: 'grant' },
    ]);
  });

  it('encodes external group ids that are not alphanumeric', async () => {
    const r = ok(
      await mapOne({ id: 'T3', title: 'x', team: 'hr-onboarding', visibility: 'team' }, { acl: restricted }),
    );
    expect(r.item.acl[0]!.value).toMatch(/^b32/);
  });

  it('grants everyone only with allowEveryone, using the tenant id', async () => {
    const mapper = await createMapper(def({ acl: restricted }), schema, { baseDir: '.', tenantId: 'tenant-guid' });
    const r = ok(mapper.map({ key: 'P', data: { id: 'P1', title: 'x', visibility: 'public' } }));
    expect(r.item.acl).toEqual([{ type: 'everyone', value: 'tenant-guid', accessType: 'grant' }]);
    const noFlag = rejected(
      await mapOne({ id: 'P2', title: 'x', visibility: 'public' }, { acl: { ...restricted, allowEveryone: false } }),
    );
    expect(noFlag.rule).toBe('acl.everyone');
  });

  it('rejects a record whose ACL resolves to no grant (onUnresolved: reject)', async () => {
    for (const data of [
      { id: 'N1', title: 'x', visibility: 'restricted', allowed: ['stranger@fabrikam.com'] },
      { id: 'N2', title: 'x', visibility: 'restricted' },
      { id: 'N3', title: 'x', visibility: 'unknown-value' },
      { id: 'N4', title: 'x', visibility: 'team' }, // no team
    ]) {
      const reason = rejected(await mapOne(data, { acl: restricted }));
      expect(reason).toMatchObject({ field: 'acl', rule: 'acl.noGrant' });
    }
  });

  it('denies everyone instead of sharing when onUnresolved is denyAll', async () => {
    const r = ok(
      await mapOne(
        { id: 'D1', title: 'x', visibility: 'restricted', allowed: ['stranger@fabrikam.com'] },
        { acl: { ...restricted, onUnresolved: 'denyAll' } },
      ),
    );
    expect(r.item.acl).toEqual([{ type: 'everyone', value: 'everyone', accessType: 'deny' }]);
    expect(r.warnings.join()).toMatch(/denied to everyone/);
  });

  it('treats an unresolvable deny as unresolved, never as "no deny" (fail-closed deny class)', async () => {
    const reason = rejected(
      await mapOne(
        { id: 'D2', title: 'x', team: 'payments', visibility: 'team', denied: ['ghost@contoso.com'] },
        { acl: restricted },
      ),
    );
    expect(reason.rule).toBe('acl.unresolvedDeny');
    const denyAll = ok(
      await mapOne(
        { id: 'D3', title: 'x', team: 'payments', visibility: 'team', denied: ['ghost@contoso.com'] },
        { acl: { ...restricted, onUnresolved: 'denyAll' } },
      ),
    );
    expect(denyAll.item.acl).toEqual([{ type: 'everyone', value: 'everyone', accessType: 'deny' }]);
  });
});

describe('code hook (mapping.module)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'gc-mapper-'));
  writeFileSync(
    join(dir, 'my-mapper.mjs'),
    `export function map(record, helpers) {
      if (record.skip) helpers.reject('skip', 'custom', 'told to skip');
      if (record.boom) throw new Error('boom');
      return {
        id: 'ext/' + record.n,
        properties: { title: record.name.toUpperCase(), priority: record.p, tags: record.tags },
        content: { type: 'html', value: '<p>' + helpers.escapeHtml(record.name) + '</p>' },
        acl: record.everyone
          ? [{ type: 'everyone', value: 'everyone', accessType: 'grant' }]
          : record.nobody ? [] : [{ type: 'user', value: helpers.resolveUser('adele@contoso.com'), accessType: 'grant' }],
      };
    }`,
  );
  const hook = async (data: Record<string, unknown>, onUnresolved: 'reject' | 'denyAll' = 'reject') => {
    const mapper = await createMapper({ module: './my-mapper.mjs', acl: { onUnresolved, rules: [] } }, schema, {
      directory,
      baseDir: dir,
    });
    return mapper.map({ key: 'M', data });
  };

  it('replaces the declarative mapping; its output is coerced, annotated, encoded and validated', async () => {
    const r = ok(await hook({ n: 5, name: 'a<b', p: '2', tags: ['x'] }));
    expect(r.item).toEqual({
      id: expect.stringMatching(/^b32/),
      acl: [{ type: 'user', value: ADELE, accessType: 'grant' }],
      properties: { title: 'A<B', priority: 2, tags: ['x'], 'tags@odata.type': 'Collection(String)' },
      content: { type: 'html', value: '<p>a&lt;b</p>' },
    });
    expect(r.sourceId).toBe('ext/5');
  });

  it('rejects unknown properties and unencodable ids returned by the module', async () => {
    writeFileSync(
      join(dir, 'loose.mjs'),
      `export function map(r) { return { id: r.id, properties: r.props, acl: [{ type: 'group', value: 'g', accessType: 'grant' }] }; }`,
    );
    const mapper = await createMapper({ module: './loose.mjs', acl: { onUnresolved: 'reject', rules: [] } }, schema, {
      baseDir: dir,
    });
    expect(rejected(mapper.map({ key: 'L', data: { id: 'a', props: { nope: 1 } } }))).toMatchObject({
      field: 'nope',
      rule: 'schema',
    });
    expect(rejected(mapper.map({ key: 'L', data: { id: 'a\ud800', props: { title: 't' } } }))).toMatchObject({
      field: 'id',
      rule: 'id',
    });
    expect(ok(mapper.map({ key: 'L', data: { id: 'a', props: { title: 't' } } })).item.id).toBe('a');
  });

  it('turns helpers.reject, throws, bad types and everyone-without-flag into rejections', async () => {
    expect(rejected(await hook({ skip: true })).rule).toBe('custom');
    expect(rejected(await hook({ boom: true, n: 1, name: 'x' })).message).toContain('boom');
    expect(rejected(await hook({ n: 1, name: 'x', p: 'high' })).rule).toBe('type');
    expect(rejected(await hook({ n: 1, name: 'x', everyone: true })).rule).toBe('acl.everyone');
    expect(rejected(await hook({ n: 1, name: 'x', nobody: true })).rule).toBe('acl.noGrant');
    expect(ok(await hook({ n: 1, name: 'x', nobody: true }, 'denyAll')).item.acl[0]!.accessType).toBe('deny');
  });

  it('fails at start-up, not per record, when the module has no map()', async () => {
    writeFileSync(join(dir, 'empty.mjs'), 'export const x = 1;');
    await expect(
      createMapper({ module: './empty.mjs', acl: { onUnresolved: 'reject', rules: [] } }, schema, { baseDir: dir }),
    ).rejects.toThrow(/does not export a function map/);
  });
});
