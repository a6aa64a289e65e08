import { describe, expect, it } from 'vitest';
import { diffSchema } from '../../src/provision/schema-diff.js';
import type { SchemaProperty } from '../../src/config/model.js';

const base: SchemaProperty[] = [
  { name: 'title', type: 'string', isSearchable: true, isRetrievable: true, labels: ['title'] },
  { name: 'status', type: 'string', isQueryable: true, isRefinable: true },
];

describe('schema diff (what Graph accepts on an existing schema)', () => {
  it('treats Graph defaults (false flags, empty arrays) and its own aliases as no change', () => {
    const current = [
      { ...base[0]!, isQueryable: false, isRefinable: false, aliases: [] },
      { ...base[1]!, isSearchable: false, isRetrievable: false, labels: [], aliases: ['statusalias'] },
    ] as SchemaProperty[];
    expect(diffSchema(current, base)).toEqual({ same: true, additive: [], breaking: [], reingest: [] });
  });

  it('added properties, aliases and labels are additive; names compare case-insensitively', () => {
    const desired: SchemaProperty[] = [
      { ...base[0]!, name: 'Title', aliases: ['subject'] },
      { ...base[1]!, isRetrievable: true, labels: ['state'] },
      { name: 'owner', type: 'string', isQueryable: true },
    ];
    const d = diffSchema(base, desired);
    expect(d.same).toBe(false);
    expect(d.breaking).toEqual([]);
    expect(d.additive).toEqual([
      'add alias subject to Title',
      'set isRetrievable on status',
      'add label state to status',
      'add property owner (string)',
    ]);
  });

  it('removing, retyping, or making an existing property refinable is breaking', () => {
    const desired: SchemaProperty[] = [{ ...base[0]!, type: 'stringCollection', isRefinable: false }];
    const d = diffSchema(
      [...base, { name: 'team', type: 'string', isQueryable: true }],
      [...desired, { name: 'team', type: 'string', isQueryable: true, isRefinable: true }],
    );
    expect(d.breaking.map((b) => b.property).sort()).toEqual(['status', 'team', 'title']);
  });

  it('ignores unknownFutureValue labels (a newer label shown to a client that did not ask for it)', () => {
    const current = [{ ...base[0]!, labels: ['title', 'unknownFutureValue'] }, base[1]!] as SchemaProperty[];
    expect(diffSchema(current, base).same).toBe(true);
  });
});
