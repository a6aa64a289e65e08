import { describe, expect, it } from 'vitest';
import { validateMappingDefinition } from '../../src/config/mapping-definition.js';
import type { SchemaProperty } from '../../src/config/model.js';
import { validateSourceDefinition } from '../../src/config/source-definition.js';

const schema: SchemaProperty[] = [
  { name: 'title', type: 'string', isRetrievable: true, labels: ['title'] },
  { name: 'url', type: 'string', isRetrievable: true, labels: ['url'] },
  { name: 'priority', type: 'int64' },
  { name: 'tags', type: 'stringCollection' },
];
const acl = { onUnresolved: 'reject', rules: [{ access: 'grant', type: 'externalGroup', value: '{team}' }] };
const errors = <T extends { severity: string }>(ps: T[]) => ps.filter((p) => p.severity === 'error');
const paths = (ps: { severity: string; path: string }[]) => errors(ps).map((p) => p.path);

describe('validateMappingDefinition', () => {
  it('accepts a complete mapping (warnings only for unmapped properties)', () => {
    const ps = validateMappingDefinition(
      {
        id: '{ticketId}',
        properties: { title: 'title', tags: { field: 'tags', split: ';' } },
        url: 'https://x/{id}',
        acl,
      },
      schema,
      'mapping',
    );
    expect(errors(ps)).toEqual([]);
    expect(ps.map((p) => p.path)).toEqual(['mapping.properties.priority']);
  });

  it('reports every problem at once, each with its JSON path and a fix', () => {
    const ps = validateMappingDefinition(
      {
        properties: { nope: 'x', priority: { field: 'p', split: ',' }, title: '{unclosed' },
        url: '{id}',
        iconUrl: '{id}',
        content: { type: 'pdf' },
        contentOverflow: 'drop',
        acl: {
          rules: [
            { access: 'grant', type: 'everyone' },
            { access: 'maybe', type: 'user' },
          ],
        },
      },
      schema,
      'mapping',
    );
    expect(paths(ps)).toEqual(
      expect.arrayContaining([
        'mapping.id',
        'mapping.properties.nope',
        'mapping.properties.priority.split',
        'mapping.properties.title',
        'mapping.iconUrl',
        'mapping.content.type',
        'mapping.content',
        'mapping.contentOverflow',
        'mapping.acl.onUnresolved',
        'mapping.acl.rules[0].type',
        'mapping.acl.rules[1].access',
        'mapping.acl.rules[1]',
      ]),
    );
    for (const p of ps) expect(p.fix.length).toBeGreaterThan(3);
  });

  it('rejects an everyone grant without allowEveryone: true at config time (fail-closed class)', () => {
    const everyone = { onUnresolved: 'denyAll', rules: [{ access: 'grant', type: 'everyoneExceptGuests' }] };
    const ps = validateMappingDefinition(
      { id: 'id', properties: { title: 'title' }, acl: everyone },
      schema,
      'mapping',
    );
    const e = errors(ps).find((p) => p.path === 'mapping.acl.rules[0].type');
    expect(e?.message).toMatch(/allowEveryone/);
    const okPs = validateMappingDefinition(
      { id: 'id', properties: { title: 'title' }, acl: { ...everyone, allowEveryone: true } },
      schema,
      'mapping',
    );
    expect(errors(okPs)).toEqual([]);
  });

  it('requires an explicit ACL policy and at least one grant', () => {
    expect(paths(validateMappingDefinition({ id: 'id', properties: { title: 'title' } }, schema, 'mapping'))).toContain(
      'mapping.acl',
    );
    const denyOnly = { onUnresolved: 'reject', rules: [{ access: 'deny', type: 'user', from: 'x' }] };
    expect(
      paths(validateMappingDefinition({ id: 'id', properties: { title: 'title' }, acl: denyOnly }, schema, 'm')),
    ).toContain('m.acl.rules');
  });

  it('flags url mapped twice and a missing url label', () => {
    const ps = validateMappingDefinition(
      { id: 'id', properties: { title: 'title', url: 'u' }, url: '{x}', acl },
      schema,
      'mapping',
    );
    expect(paths(ps)).toContain('mapping.url');
  });
});

describe('validateSourceDefinition', () => {
  it('accepts the built-in source shapes', () => {
    expect(
      errors(validateSourceDefinition({ type: 'jsonLines', path: 'a.jsonl', groups: { path: 't.json' } }, 'source')),
    ).toEqual([]);
    expect(errors(validateSourceDefinition({ type: 'csv', url: 'https://x/a.csv', delimiter: ';' }, 'source'))).toEqual(
      [],
    );
    expect(
      errors(
        validateSourceDefinition(
          {
            type: 'rest',
            url: 'https://crm.example.com/api/tickets',
            paging: { type: 'page', pageSize: 50 },
            incremental: { query: { $filter: 'modified ge {cursor}' }, overlapSeconds: 120 },
            auth: {
              type: 'oauth2ClientCredentials',
              tokenUrl: 'https://login.example.com/token',
              clientId: 'abc',
              clientSecretSecret: 'crm-secret',
            },
            retry: { maxAttempts: 3 },
          },
          'source',
        ),
      ),
    ).toEqual([]);
  });

  it('refuses literal secrets anywhere, naming the field and the fix (inline secret class)', () => {
    const ps = validateSourceDefinition(
      {
        type: 'rest',
        url: 'https://user:pw@crm.example.com/api',
        headers: { Authorization: 'Bearer abc', 'X-Trace': '1' },
        auth: { type: 'basic', username: 'svc', password: 'hunter22', passwordSecret: 'crm-password' },
      },
      'source',
    );
    expect(paths(ps)).toEqual(
      expect.arrayContaining(['source.url', 'source.headers.Authorization', 'source.auth.password']),
    );
    const pw = ps.find((p) => p.path === 'source.auth.password')!;
    expect(pw.fix).toContain('passwordSecret');
    expect(JSON.stringify(ps)).not.toContain('hunter22');
  });

  it('reports bad types, missing fields and bad secret names with paths', () => {
    const ps = validateSourceDefinition(
      {
        type: 'rest',
        url: 'ftp://x',
        paging: { type: 'cursor' },
        incremental: { query: { since: 'yesterday' } },
        auth: { type: 'oauth2RefreshToken', tokenUrl: 'https://t', clientId: 'c', refreshTokenSecret: 'has spaces' },
      },
      'source',
    );
    expect(paths(ps)).toEqual(
      expect.arrayContaining([
        'source.url',
        'source.paging.type',
        'source.incremental.query',
        'source.auth.refreshTokenSecret',
      ]),
    );
    expect(paths(validateSourceDefinition({ type: 'xml' }, 'source'))).toEqual(['source.type']);
    expect(paths(validateSourceDefinition({ type: 'csv' }, 'source'))).toEqual(['source']);
    expect(
      paths(
        validateSourceDefinition({ type: 'rest', url: 'https://x', auth: { type: 'clientCertificate' } }, 'source'),
      ),
    ).toEqual(['source.auth']);
  });
});
