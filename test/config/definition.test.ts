import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rm } from 'node:fs/promises';
import {
  checkConnectorDefinitionFile,
  loadConnectorDefinition,
  validateConnectorDefinition,
} from '../../src/config/definition.js';
import { ConfigError } from '../../src/config/problems.js';
import { runCli } from '../support/cli.js';

type Def = any;
let dir: string;
const example = async (): Promise<Def> =>
  JSON.parse(await readFile(new URL('../../connector.json', import.meta.url), 'utf8'));

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gc-def-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function write(name: string, value: unknown): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, typeof value === 'string' ? value : JSON.stringify(value, null, 2));
  return path;
}

describe('connector definition', () => {
  it('the shipped Contoso Tasks example is valid, with no warnings', async () => {
    const { definition, warnings } = await loadConnectorDefinition(
      new URL('../../connector.json', import.meta.url).pathname,
    );
    expect(definition.connection.id).toBe('contosotasks');
    expect(definition.connection.contentCategory).toBe('taskManagement');
    const labelled = Object.fromEntries(
      definition.schema.properties.flatMap((p) => (p.labels ?? []).map((l) => [l, p.name])),
    );
    expect(labelled).toMatchObject({ title: 'title', url: 'url', iconUrl: 'iconUrl', fileName: 'fileName' });
    const last = definition.schema.properties.find((p) => p.name === 'lastEditedDate')!;
    expect(last).toMatchObject({ type: 'dateTime', isRefinable: true, labels: ['lastModifiedDateTime'] });
    expect(warnings).toEqual([]);
  });

  it('reports all five mistakes of one file at once, each with its path and a fix', async () => {
    const def = await example();
    def.connection.id = 'contoso-tasks'; // 1: hyphen
    def.schema.properties[0].isRefinable = true; // 2: title searchable + refinable
    def.schema.properties.find((p: { name: string }) => p.name === 'createdDateTime').isSearchable = true; // 3: dateTime searchable
    def.schema.properties.find((p: { name: string }) => p.name === 'url').isRetrievable = false; // 4: label on non-retrievable
    def.schema.properties.push({ name: 'ticketId', type: 'string' }); // 5: duplicate name
    const dup = def.schema.properties.length - 1;
    const path = await write('five.json', def);
    const err = await loadConnectorDefinition(path).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    const errors = (err as ConfigError).problems.filter((p) => p.severity === 'error');
    expect(errors).toHaveLength(5);
    expect(errors.map((p) => p.path.replace(`${path}: `, ''))).toEqual([
      'connection.id',
      'schema.properties[0] (title)',
      'schema.properties[2] (url).labels',
      'schema.properties[10] (createdDateTime).isSearchable',
      `schema.properties[${dup}] (ticketId).name`,
    ]);
    for (const p of errors) expect(p.fix.length).toBeGreaterThan(10);
    expect((err as ConfigError).message).toContain('has 5 problems');
  });

  it.each([
    ['reserved id', (d: Def) => (d.connection.id = 'SharePoint'), 'connection.id', /reserved/],
    ['Microsoft prefix', (d: Def) => (d.connection.id = 'MicrosoftTasks'), 'connection.id', /Microsoft/],
    ['too short', (d: Def) => (d.connection.id = 'ab'), 'connection.id', /3-32/],
    ['long name', (d: Def) => (d.connection.name = 'x'.repeat(129)), 'connection.name', /129/],
    ['long property name', (d: Def) => (d.schema.properties[1].name = 'p'.repeat(33)), 'name', /33 characters/],
    ['illegal char', (d: Def) => (d.schema.properties[1].name = 'ticket#id'), 'name', /'#'/],
    ['bad alias', (d: Def) => (d.schema.properties[1].aliases = ['ok', 'no way']), 'aliases[1]', /whitespace/],
    [
      'boolean refinable',
      (d: Def) => void d.schema.properties.push({ name: 'done', type: 'boolean', isRefinable: true }),
      'isRefinable',
      /boolean/,
    ],
    ['label type mismatch', (d: Def) => (d.schema.properties[10].type = 'string'), 'labels[0]', /dateTime/],
    ['label twice', (d: Def) => (d.schema.properties[1].labels = ['title']), 'labels[0]', /already on property title/],
    ['no properties', (d: Def) => (d.schema.properties = []), 'schema.properties', /0 properties/],
    [
      'three templates',
      (d: Def) =>
        (d.connection.searchSettings = {
          searchResultTemplates: [1, 2, 3].map((i) => ({ id: `t${i}`, priority: i, layout: {} })),
        }),
      'searchResultTemplates',
      /3 templates/,
    ],
    [
      'alias equals a property name',
      (d: Def) => (d.schema.properties[1].aliases = ['status']),
      'schema.properties[4]',
      /both a property name and an alias of ticketId/,
    ],
    ['unknown type', (d: Def) => (d.schema.properties[1].type = 'Collection(String)'), 'type', /not a property type/],
  ])('rejects %s', async (_name, mutate, pathPart, message) => {
    const def = await example();
    mutate(def);
    const problems = validateConnectorDefinition(def).filter((p) => p.severity === 'error');
    expect(problems.length).toBeGreaterThanOrEqual(1);
    const hit = problems.find((p) => p.path.includes(pathPart) && message.test(p.message));
    expect(hit, JSON.stringify(problems)).toBeDefined();
  });

  it('129 properties are too many', async () => {
    const def = await example();
    for (let i = 0; def.schema.properties.length < 129; i++)
      def.schema.properties.push({ name: `p${i}`, type: 'string' });
    expect(validateConnectorDefinition(def).some((p) => p.path === 'schema.properties' && /129/.test(p.message))).toBe(
      true,
    );
  });

  it('warns (without failing) when the Copilot labels title, url and iconUrl are missing', async () => {
    const def = await example();
    for (const p of def.schema.properties) if (p.name !== 'title') delete p.labels;
    const problems = validateConnectorDefinition(def);
    expect(problems.filter((p) => p.severity === 'error')).toEqual([]);
    const warnings = problems.filter((p) => p.severity === 'warning').map((p) => p.message);
    expect(warnings).toHaveLength(2);
    expect(warnings.join()).toMatch(/'url'/);
    expect(warnings.join()).toMatch(/'iconUrl'/);
  });

  it('invalid JSON is reported with line and column', async () => {
    const path = await write(
      'broken.json',
      '{\n  "connection": {\n    "id": "x",\n    "name": "y"\n    "description": "z"\n  }\n}\n',
    );
    const { problems } = await checkConnectorDefinitionFile(path);
    expect(problems).toHaveLength(1);
    expect(problems[0]!.path).toBe(`${path}:5:5`);
    expect(problems[0]!.fix).toMatch(/line 5, column 5/);
  });

  it('a missing file says how to point at one', async () => {
    const { problems } = await checkConnectorDefinitionFile(join(dir, 'nope.json'));
    expect(problems[0]!.message).toBe('does not exist');
    expect(problems[0]!.fix).toMatch(/--config/);
  });

  it('`validate` prints every problem and exits 2 on errors (as `run` does on the same file), 0 on a valid file', async () => {
    const def = await example();
    def.connection.id = 'bad id';
    def.schema.properties[3].labels = [];
    const path = await write('cli.json', def);
    const bad = await runCli(['validate', '--config', path]);
    expect(bad.code).toBe(2);
    expect(bad.stdout).toMatch(/error {2}.*connection\.id/);
    // One meaning per exit code: the same invalid file stops `run` with 2 before anything starts.
    const run = await runCli(['run', '--config', path, '--state-dir', join(dir, 'run-state')]);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/connection\.id/);
    expect(bad.stdout).toMatch(/warning .*'iconUrl'/);
    expect(bad.stdout).toMatch(/[1-9]\d* error\(s\), [1-9]\d* warning\(s\)/);
    const good = await runCli(['validate', '-c', new URL('../../connector.json', import.meta.url).pathname]);
    expect(good.code).toBe(0);
    expect(good.stdout).toMatch(/is valid/);
  });

  it('connector.json points at connector.schema.json, a draft 2020-12 schema covering every label and type', async () => {
    const def = await example();
    expect(def.$schema).toBe('./connector.schema.json');
    const schema = JSON.parse(await readFile(new URL('../../connector.schema.json', import.meta.url), 'utf8'));
    expect(schema.$schema).toBe('https://json-schema.org/draft/2020-12/schema');
    expect(schema.$defs.property.properties.type.enum).toContain('stringCollection');
    expect(schema.$defs.property.properties.labels.items.enum).toContain('iconUrl');
    expect(schema.properties.connection.properties.searchSettings.properties.searchResultTemplates.maxItems).toBe(2);
  });
});
