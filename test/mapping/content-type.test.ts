import { describe, expect, it } from 'vitest';
import type { MappingDefinition } from '../../src/config/mapping-definition.js';
import { validateMappingDefinition } from '../../src/config/mapping-definition.js';
import type { SchemaProperty } from '../../src/config/model.js';
import type { MapResult } from '../../src/mapping/mapper.js';
import { createMapper } from '../../src/mapping/mapper.js';

const schema: SchemaProperty[] = [{ name: 'title', type: 'string', isRetrievable: true, labels: ['title'] }];
const acl: MappingDefinition['acl'] = {
  onUnresolved: 'reject',
  rules: [{ access: 'grant', type: 'externalGroup', value: 'payments' }],
};

async function mapWith(content: MappingDefinition['content'], data: Record<string, unknown>): Promise<MapResult> {
  const mapper = await createMapper({ id: '{n}', properties: { title: 'title' }, content, acl }, schema, {
    baseDir: process.cwd(),
  });
  return mapper.map({ key: 'R7', data: { n: 'N1', title: 'x', ...data } });
}
const contentOf = (r: MapResult) => {
  if (!r.ok) throw new Error(r.reason.message);
  return r.item.content;
};

describe('per-record content type (mapping.content.type from the record)', () => {
  it('follows a field: html when bodyType is html (any case), text when it is text', async () => {
    const content = { type: { field: 'bodyType' }, field: 'body' };
    expect(contentOf(await mapWith(content, { bodyType: 'HTML', body: '<p>a</p>' }))).toEqual({
      type: 'html',
      value: '<p>a</p>',
    });
    expect(contentOf(await mapWith(content, { bodyType: ' text ', body: 'a < b' }))).toEqual({
      type: 'text',
      value: 'a < b',
    });
  });

  it('follows a template, and escapes template values only for the records that are html', async () => {
    const content = { type: '{format}', template: '<h1>{title}</h1>' };
    expect(contentOf(await mapWith(content, { format: 'html', title: 'a & b' }))).toEqual({
      type: 'html',
      value: '<h1>a &amp; b</h1>',
    });
    expect(contentOf(await mapWith(content, { format: 'text', title: 'a & b' }))).toEqual({
      type: 'text',
      value: '<h1>a & b</h1>',
    });
  });

  it('rejects a value outside text/html, naming the field, the value and the allowed set', async () => {
    const r = await mapWith({ type: { field: 'bodyType' }, field: 'body' }, { bodyType: 'markdown', body: '# a' });
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.reason).toMatchObject({ recordKey: 'R7', field: 'content.type', rule: 'contentType' });
    expect(r.reason.message).toBe(
      'record R7: field "content.type": field "bodyType" gives the content type "markdown"; it must be "text" or "html" (any case): fix the record\'s value (rule: contentType)',
    );
  });

  it('a missing value takes the default, else rejects and says how to fix it', async () => {
    expect(
      contentOf(await mapWith({ type: { field: 'bodyType', default: 'text' }, field: 'body' }, { body: 'plain' })),
    ).toEqual({ type: 'text', value: 'plain' });
    const r = await mapWith({ type: { field: 'bodyType' }, field: 'body' }, { body: 'plain' });
    expect(!r.ok && r.reason.rule).toBe('contentType');
    expect(!r.ok && r.reason.message).toContain('set mapping.content.type.default');
  });

  it('needs no type when the record has no content', async () => {
    const r = await mapWith({ type: { field: 'bodyType' }, field: 'body' }, {});
    expect(r.ok && r.item.content).toBeUndefined();
  });

  it('a fixed type behaves as before', async () => {
    expect(contentOf(await mapWith({ type: 'html', template: '<b>{title}</b>' }, { title: '<i>' }))).toEqual({
      type: 'html',
      value: '<b>&lt;i&gt;</b>',
    });
  });
});

describe('validate: mapping.content.type', () => {
  const problemsFor = (type: unknown) =>
    validateMappingDefinition(
      { id: '{n}', properties: { title: 'title' }, content: { type, field: 'body' }, acl },
      schema,
      'mapping',
    ).filter((p) => p.path.startsWith('mapping.content.type'));

  it('accepts text, html, a template, a field and a template with a default', () => {
    for (const t of ['text', 'html', '{bodyType}', { field: 'bodyType' }, { template: '{a}', default: 'html' }])
      expect(problemsFor(t), JSON.stringify(t)).toEqual([]);
  });

  it('refuses anything else with the path and the fix', () => {
    const bare = problemsFor('bodyType');
    expect(bare.map((p) => p.path)).toEqual(['mapping.content.type']);
    expect(bare[0]!.fix).toContain('{"field": "bodyType"');
    expect(problemsFor('pdf')[0]!.message).toContain('"pdf"');
    expect(problemsFor({ field: 'a', template: '{b}' })[0]!.message).toContain('exactly one');
    expect(problemsFor({ field: 'a', default: 'markdown' }).map((p) => p.path)).toEqual([
      'mapping.content.type.default',
    ]);
    expect(problemsFor(7)[0]!.message).toContain('got 7');
  });
});
