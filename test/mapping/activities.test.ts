/**
 * mapping.activities: the definition's checks, reading a record's activities (UPNs through the directory, times
 * normalised, bad entries skipped with a warning) and telling new activities from ones already sent.
 */
import { describe, expect, it } from 'vitest';
import { validateMappingDefinition } from '../../src/config/mapping-definition.js';
import type { SchemaProperty } from '../../src/config/model.js';
import {
  buildActivities,
  compileActivityRules,
  MAX_ACTIVITIES_PER_ITEM,
  newActivities,
  type ItemActivity,
} from '../../src/mapping/activities.js';
import { createMapper } from '../../src/mapping/index.js';

const schema: SchemaProperty[] = [{ name: 'title', type: 'string', isRetrievable: true, labels: ['title'] }];
const acl = {
  onUnresolved: 'reject',
  directory: 'directory.json',
  rules: [{ access: 'grant', type: 'externalGroup', value: '{team}' }],
};
const ADELE = '821a90b9-f6e5-59d1-aa60-ed677782f646';
const MEGAN = '26448647-0f73-5850-b3e8-4de577dbba6a';
const directory = new Map([
  ['adele@contoso.com', ADELE],
  ['megan@contoso.com', MEGAN],
]);

function problems(activities: unknown, extra: Record<string, unknown> = {}) {
  return validateMappingDefinition(
    { id: '{id}', properties: { title: 'title' }, acl, activities, ...extra },
    schema,
    'mapping',
  );
}
const errorPaths = (ps: ReturnType<typeof problems>) => ps.filter((p) => p.severity === 'error').map((p) => p.path);

describe('mapping.activities: the definition', () => {
  it('accepts created/modified/viewed/commented rules, with or without "from"', () => {
    const ps = problems([
      { type: 'created', user: 'createdBy', time: 'createdDate' },
      { type: 'commented', from: 'comments', user: 'author.upn', time: 'at' },
    ]);
    expect(errorPaths(ps)).toEqual([]);
  });

  it('names the field and the fix of each problem', () => {
    const ps = problems([
      { type: 'liked', user: 'by', time: 'at' },
      { type: 'created', time: 'at' },
      { type: 'viewed', user: 'by' },
      { type: 'modified', user: '', time: 'at', form: 'x' },
      'created',
    ]);
    expect(errorPaths(ps)).toEqual([
      'mapping.activities[0].type',
      'mapping.activities[1].user',
      'mapping.activities[2].time',
      'mapping.activities[3].form',
      'mapping.activities[3].user',
      'mapping.activities[4]',
    ]);
    expect(ps.find((p) => p.path === 'mapping.activities[0].type')?.message).toMatch(/created, modified/);
    expect(ps.find((p) => p.path === 'mapping.activities[1].user')?.fix).toMatch(/UPN/);
    expect(errorPaths(problems([]))).toEqual(['mapping.activities']);
    expect(errorPaths(problems({ type: 'created' }))).toEqual(['mapping.activities']);
  });

  it('warns that UPNs cannot resolve without a directory', () => {
    const ps = validateMappingDefinition(
      {
        id: '{id}',
        properties: { title: 'title' },
        acl: { ...acl, directory: undefined },
        activities: [{ type: 'created', user: 'by', time: 'at' }],
      },
      schema,
      'mapping',
    );
    expect(ps.find((p) => p.path === 'mapping.activities')).toMatchObject({ severity: 'warning' });
  });
});

describe('mapping.activities: a record', () => {
  const rules = compileActivityRules([
    { type: 'created', user: 'createdBy', time: 'createdDate' },
    { type: 'commented', from: 'comments', user: 'author', time: 'at' },
  ]);

  it('resolves UPNs (any case) and object ids, normalises times, orders oldest first, drops duplicates', () => {
    const { activities, warnings } = buildActivities(
      rules,
      {
        createdBy: 'Adele@Contoso.com',
        createdDate: '2025-03-01T10:00:00+01:00',
        comments: [
          { author: MEGAN.toUpperCase(), at: '2025-03-02T08:00:00Z' },
          { author: 'megan@contoso.com', at: '2025-03-02T08:00:00.000Z' },
        ],
      },
      directory,
    );
    expect(warnings).toEqual([]);
    expect(activities).toEqual([
      { type: 'created', startDateTime: '2025-03-01T09:00:00.000Z', userId: ADELE },
      { type: 'commented', startDateTime: '2025-03-02T08:00:00.000Z', userId: MEGAN },
    ]);
  });

  it('skips an activity it cannot send, with a warning that says why; a record without one is fine', () => {
    const { activities, warnings } = buildActivities(
      rules,
      {
        createdBy: 'nobody@contoso.com',
        createdDate: '2025-03-01T10:00:00Z',
        comments: [{ author: 'adele@contoso.com', at: 'yesterday' }, { author: 'adele@contoso.com' }, {}],
      },
      directory,
    );
    expect(activities).toEqual([]);
    expect(warnings).toHaveLength(3);
    expect(warnings[0]).toMatch(/activities\[0\]: user "nobody@contoso.com" is not in the directory/);
    expect(warnings[1]).toMatch(/activities\[1\] \(comments\[0\]\): "at": expected an ISO 8601 dateTime/);
    expect(warnings[2]).toMatch(/comments\[1\].*no time/);
    expect(buildActivities(rules, { title: 'no activities' }, directory)).toEqual({ activities: [], warnings: [] });
  });

  it(`keeps the newest ${MAX_ACTIVITIES_PER_ITEM} of a record with more`, () => {
    const comments = Array.from({ length: MAX_ACTIVITIES_PER_ITEM + 5 }, (_, i) => ({
      author: 'adele@contoso.com',
      at: new Date(Date.UTC(2025, 0, 1, 0, i)).toISOString(),
    }));
    const { activities, warnings } = buildActivities(rules, { comments }, directory);
    expect(activities).toHaveLength(MAX_ACTIVITIES_PER_ITEM);
    expect(activities[0]!.startDateTime).toBe(comments[5]!.at);
    expect(warnings[0]).toMatch(/only the newest/);
  });

  it('the mapper adds them to its result, for the declarative mapping', async () => {
    const mapper = await createMapper(
      {
        id: '{id}',
        properties: { title: 'title' },
        acl: { onUnresolved: 'reject', rules: [{ access: 'grant', type: 'user', value: ADELE }] },
        activities: [{ type: 'viewed', user: 'viewer', time: 'seen' }],
      },
      schema,
      { baseDir: '.', directory },
    );
    const r = mapper.map({
      key: '1',
      data: { id: 'T1', title: 't', viewer: 'megan@contoso.com', seen: '2025-01-01T00:00:00Z' },
    });
    expect(r.ok && r.activities).toEqual([
      { type: 'viewed', startDateTime: '2025-01-01T00:00:00.000Z', userId: MEGAN },
    ]);
  });
});

describe('mapping.activities: new since the last send', () => {
  const a = (t: string, userId = ADELE, type: ItemActivity['type'] = 'commented'): ItemActivity => ({
    type,
    startDateTime: `2025-01-01T00:00:0${t}.000Z`,
    userId,
  });

  it('sends everything the first time, then only what is later, or at the newest time and not yet sent', () => {
    const first = newActivities([a('1'), a('2')], undefined);
    expect(first.fresh).toEqual([a('1'), a('2')]);
    expect(newActivities([a('1'), a('2')], first.mark)).toEqual({ fresh: [], mark: first.mark });
    const tie = a('2', MEGAN);
    const second = newActivities([a('1'), a('2'), tie, a('3')], first.mark);
    expect(second.fresh).toEqual([tie, a('3')].sort((x, y) => (x.startDateTime < y.startDateTime ? -1 : 1)));
    expect(newActivities([a('1'), a('2'), tie, a('3')], second.mark).fresh).toEqual([]);
    const sameTime = newActivities([a('1'), a('2'), tie, a('3'), a('3', MEGAN, 'viewed')], second.mark);
    expect(sameTime.fresh).toEqual([a('3', MEGAN, 'viewed')]);
  });
});
