/**
 * Sources own their configuration: each type in the registry validates its part of `source` (every problem at
 * once, with JSON path and fix), creates its Source and states its capabilities.
 */
import { describe, expect, it } from 'vitest';
import { validateConnectorDefinition, defaultValidators } from '../../src/config/definition.js';
import { silentLogger } from '../../src/log.js';
import {
  createSource,
  SOURCE_REGISTRY,
  SOURCE_TYPES,
  sourceCapabilities,
  validateSourceDefinition,
} from '../../src/sources/index.js';
import { memorySecrets } from './helpers.js';

const env = { env: {} };
const validate = (value: unknown, ctx = env) => validateSourceDefinition(value, 'source', ctx);
const errors = (value: unknown, ctx = env) => validate(value, ctx).filter((p) => p.severity === 'error');
const warnings = (value: unknown, ctx = env) => validate(value, ctx).filter((p) => p.severity === 'warning');
const paths = (ps: { path: string }[]) => ps.map((p) => p.path);

describe('the registry', () => {
  it('lists every built-in type once, each with validate, create and capabilities', () => {
    expect(SOURCE_TYPES).toEqual(['csv', 'jsonLines', 'jsonArray', 'rest']);
    for (const t of SOURCE_TYPES) {
      const entry = SOURCE_REGISTRY[t];
      expect([typeof entry.validate, typeof entry.create, typeof entry.capabilities]).toEqual([
        'function',
        'function',
        'function',
      ]);
    }
    expect(paths(errors({ type: 'xml' }))).toEqual(['source.type']);
    expect(errors({ type: 'xml' })[0]!.fix).toBe('use one of "csv", "jsonLines", "jsonArray", "rest"');
  });

  it('capabilities are known from the definition and match the created source', () => {
    const defs = [
      { type: 'csv', path: 'a.csv' },
      { type: 'jsonLines', path: 'a.jsonl', groups: { path: 't.json' } },
      { type: 'rest', url: 'https://x.example/api', incremental: { query: { $filter: 'm ge {cursor}' } } },
    ] as const;
    const deps = { secrets: memorySecrets({}), logger: silentLogger, baseDir: '.' };
    for (const def of defs) {
      const source = createSource(def, deps);
      expect(source.kind).toBe(def.type);
      expect(source.capabilities).toEqual(sourceCapabilities(def));
    }
    expect(sourceCapabilities(defs[1])).toEqual({ incremental: false, groups: true });
    expect(sourceCapabilities(defs[2])).toEqual({ incremental: true, groups: false });
  });

  it('connector.json validation goes through the registry (a source problem appears with the others)', () => {
    const problems = validateConnectorDefinition(
      { connection: {}, schema: { properties: [] }, source: { type: 'csv', blob: { container: 'X' } }, mapping: {} },
      defaultValidators,
    );
    expect(paths(problems)).toEqual(expect.arrayContaining(['source.blob.container', 'source.blob.name']));
  });
});

describe('file source definitions', () => {
  it('accept exactly one of path, url or blob', () => {
    expect(errors({ type: 'jsonLines', path: 'a.jsonl' })).toEqual([]);
    expect(errors({ type: 'csv', url: 'https://x.example/a.csv' })).toEqual([]);
    expect(errors({ type: 'jsonArray', blob: { container: 'crm-export', name: 'exports/a.json' } })).toEqual([]);
    const two = errors({ type: 'csv', path: 'a.csv', blob: { container: 'crm-export', name: 'a.csv' } });
    expect(paths(two)).toEqual(['source']);
    expect(two[0]!.message).toMatch(/exactly one of "path", "url" or "blob", not 2/);
    expect(paths(errors({ type: 'csv' }))).toEqual(['source']);
  });

  it('check the blob container name and refuse the connector’s own containers, every problem at once', () => {
    const ps = errors({ type: 'csv', blob: { container: 'Bad_Name', name: '' }, encoding: 'ebcdic' });
    expect(paths(ps)).toEqual(['source.blob.container', 'source.blob.name', 'source.encoding']);
    expect(ps[0]!.fix).toMatch(/lowercase letters, digits and single hyphens/);
    for (const container of [
      'azure-webjobs-hosts',
      'azure-webjobs-secrets',
      'graph-claims',
      'graph-state',
      'app-package-gc-abc1234',
    ]) {
      const [p] = errors({ type: 'csv', blob: { container, name: 'a.csv' } });
      expect(p?.path).toBe('source.blob.container');
      expect(p?.message).toContain(`"${container}"`);
      expect(p?.fix).toMatch(/container of its own/);
    }
    // The claims container follows CLAIMS_CONTAINER.
    const renamed = { env: { CLAIMS_CONTAINER: 'tenant-claims' } };
    expect(paths(errors({ type: 'csv', blob: { container: 'tenant-claims', name: 'a.csv' } }, renamed))).toEqual([
      'source.blob.container',
    ]);
    expect(errors({ type: 'csv', blob: { container: 'graph-claims', name: 'a.csv' } }, renamed)).toEqual([]);
  });

  it('warn about keys a file source does not use', () => {
    expect(
      paths(warnings({ type: 'jsonLines', path: 'a.jsonl', delimiter: ';', paging: { type: 'odata' }, pth: 'x' })),
    ).toEqual(['source.delimiter', 'source.paging', 'source.pth']);
  });

  it('a plain-http file URL is allowed with a warning (no credentials travel)', () => {
    const ps = validate({ type: 'csv', url: 'http://files.example.com/a.csv' });
    expect(ps.map((p) => [p.path, p.severity])).toEqual([['source.url', 'warning']]);
  });
});

describe('rest source definitions', () => {
  it('plain http only on loopback, for the source, the token endpoint and a rest groups endpoint', () => {
    expect(errors({ type: 'rest', url: 'http://127.0.0.1:8080/api' })).toEqual([]);
    expect(errors({ type: 'rest', url: 'http://localhost/api' })).toEqual([]);
    expect(errors({ type: 'rest', url: 'http://[::1]:3000/api' })).toEqual([]);
    const ps = errors({
      type: 'rest',
      url: 'http://crm.example.com/api',
      auth: {
        type: 'oauth2ClientCredentials',
        tokenUrl: 'http://login.example.com/t',
        clientId: 'c',
        clientSecretSecret: 's',
      },
      groups: { url: 'http://crm.example.com/teams', format: 'rest' },
    });
    expect(paths(ps)).toEqual(['source.groups.url', 'source.url', 'source.auth.tokenUrl']);
    expect(ps[1]!.fix).toMatch(/use https \(plain http is allowed only for localhost, 127\.0\.0\.1 and \[::1\]\)/);
  });

  it('countPath must be a path; unknown keys are warnings', () => {
    const ps = validate({ type: 'rest', url: 'https://x.example/api', countPath: 3, delimiter: ',' });
    expect(ps.map((p) => [p.path, p.severity])).toEqual([
      ['source.countPath', 'error'],
      ['source.delimiter', 'warning'],
    ]);
  });
});

describe('connector.schema.json', () => {
  it('describes the blob input with the same container rule as the validator', async () => {
    const { readFile } = await import('node:fs/promises');
    const schema = JSON.parse(await readFile(new URL('../../connector.schema.json', import.meta.url), 'utf8'));
    const blob = schema.properties.source.properties.blob;
    expect(blob.required).toEqual(['container', 'name']);
    expect(schema.properties.source.properties.groups.properties.blob.$ref).toBe('#/properties/source/properties/blob');
    const pattern = new RegExp(blob.properties.container.pattern);
    for (const name of ['crm-export', 'abc', 'a-b-c', 'Bad', 'a--b', '-ab', 'ab', 'x'.repeat(64)]) {
      const valid = errors({ type: 'csv', blob: { container: name, name: 'a.csv' } }).length === 0;
      expect(pattern.test(name), name).toBe(valid);
    }
  });
});
