/**
 * One source of truth for connector.json: connector.schema.json (what editors check) and the hand validators
 * (what `graph-connector validate` and start-up check) must agree. Every shipped and fixture definition is valid
 * under both, and on a corpus of mutations of the sample — wrong types, missing keys, unknown keys, values outside an
 * enum or a pattern, empty values — both accept or both reject. The hand validators may be stricter only where a
 * rule needs the rest of the definition (a mapping that names a schema property, a label on the right type): those
 * cases are listed below with the reason, and each must still be one the schema accepts.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { exampleDefinition } from '../support/definition.js';
import { stackDefinition } from '../support/stack.js';
import { handErrors, schemaErrors } from '../support/schema.js';

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type Path = (string | number)[];

const ROOT = new URL('../..', import.meta.url).pathname;
const sample = (): Json => JSON.parse(readFileSync(join(ROOT, 'connector.json'), 'utf8')) as Json;

/** Every JSON file under `dir` (not node_modules, not dot folders) whose content is a connector definition. */
function definitionFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules' || name.startsWith('.')) continue;
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...definitionFiles(p));
    else if (name.endsWith('.json') && name !== 'connector.schema.json') {
      let v: unknown;
      try {
        v = JSON.parse(readFileSync(p, 'utf8'));
      } catch {
        continue;
      }
      if (v && typeof v === 'object' && ['connection', 'schema', 'source', 'mapping'].every((k) => k in v)) out.push(p);
    }
  }
  return out;
}

const pathText = (p: Path) =>
  p
    .map((k) => (typeof k === 'number' ? `[${k}]` : `.${k}`))
    .join('')
    .slice(1) || '(root)';

function get(v: Json, p: Path): Json {
  return p.reduce<Json>((x, k) => (x as Record<string | number, Json>)[k]!, v);
}

/** Every node of a JSON value with its path (root excluded). */
function* nodes(v: Json, p: Path = []): Generator<[Path, Json]> {
  if (p.length) yield [p, v];
  if (Array.isArray(v)) for (let i = 0; i < v.length; i++) yield* nodes(v[i]!, [...p, i]);
  else if (v && typeof v === 'object') for (const k of Object.keys(v)) yield* nodes(v[k]!, [...p, k]);
}

interface Mutation {
  name: string;
  def: Json;
}

function mutate(
  base: Json,
  p: Path,
  edit: (parent: Record<string | number, Json>, key: string | number) => void,
): Json {
  const copy = structuredClone(base);
  const parent = get(copy, p.slice(0, -1)) as Record<string | number, Json>;
  edit(parent, p.at(-1)!);
  return copy;
}

function wrongType(v: Json): Json {
  if (typeof v === 'string') return 42;
  if (typeof v === 'number') return 'seven';
  if (typeof v === 'boolean') return 'yes';
  if (Array.isArray(v)) return 'a string';
  return ['an', 'array'];
}

/** The corpus: mutations of the sample, each named by what it does where. */
function corpus(): Mutation[] {
  const base = sample();
  const out: Mutation[] = [];
  for (const [p, v] of nodes(base)) {
    const at = pathText(p);
    if (at === '$schema') continue;
    out.push({
      name: `missing ${at}`,
      def: mutate(base, p, (o, k) => (Array.isArray(o) ? o.splice(k as number, 1) : delete o[k])),
    });
    out.push({ name: `wrong type ${at}`, def: mutate(base, p, (o, k) => (o[k] = wrongType(v))) });
    if (v && typeof v === 'object' && !Array.isArray(v))
      out.push({
        name: `unknown key in ${at}`,
        def: mutate(base, p, (o, k) => ((o[k] as Record<string, Json>).notAKey = true)),
      });
    if (typeof v === 'string') {
      out.push({ name: `not in enum/pattern ${at}`, def: mutate(base, p, (o, k) => (o[k] = 'not a value#')) });
      out.push({ name: `empty ${at}`, def: mutate(base, p, (o, k) => (o[k] = '')) });
    }
    if (typeof v === 'number') out.push({ name: `negative ${at}`, def: mutate(base, p, (o, k) => (o[k] = -1)) });
    if (Array.isArray(v)) out.push({ name: `empty array ${at}`, def: mutate(base, p, (o, k) => (o[k] = [])) });
  }
  out.push({ name: 'unknown key at the root', def: { ...(base as object), notAKey: true } });
  return out;
}

/**
 * Mutations the hand validators reject and the schema accepts, because the rule needs another part of the
 * definition (JSON Schema checks each value where it is). Matched against the mutation's name.
 */
const CROSS_FIELD: [RegExp, string][] = [
  [/^missing schema\.properties\[\d+\]$/, 'the mapping maps a property the schema no longer declares'],
  [/^(missing|empty array) schema\.properties\[\d+\]\.labels/, 'mapping.url / iconUrl need a property with that label'],
  [/^not in enum\/pattern mapping\.attachments\.metadata\./, 'metadata names a schema property that does not exist'],
];

describe('connector.schema.json and the hand validators', () => {
  it('the schema compiles under ajv strict mode', () => {
    expect(schemaErrors({})).not.toEqual([]);
  });

  it('every shipped, sample and fixture definition is valid under both', () => {
    const files = definitionFiles(ROOT);
    expect(files.map((f) => relative(ROOT, f))).toContain('connector.json');
    const defs: [string, unknown][] = [
      ...files.map((f): [string, unknown] => [relative(ROOT, f), JSON.parse(readFileSync(f, 'utf8'))]),
      ['test/support exampleDefinition()', exampleDefinition('fixture1')],
      ['test/support stackDefinition()', stackDefinition({ dir: '/tmp/gc-stack-x' })],
    ];
    for (const [what, def] of defs) {
      expect(schemaErrors(def), `${what}: schema`).toEqual([]);
      expect(handErrors(def), `${what}: hand validators`).toEqual([]);
    }
  });

  it('accept and reject the same mutations of the sample', () => {
    const disagreements: string[] = [];
    const mutations = corpus();
    let rejected = 0;
    for (const m of mutations) {
      const schema = schemaErrors(m.def);
      const hand = handErrors(m.def);
      if (schema.length || hand.length) rejected++;
      if (!!schema.length === !!hand.length) continue;
      const allowed = !schema.length && CROSS_FIELD.some(([re]) => re.test(m.name));
      if (allowed) continue;
      disagreements.push(
        schema.length
          ? `${m.name}: only the schema rejects (${schema[0]})`
          : `${m.name}: only the hand validators reject (${hand[0]})`,
      );
    }
    expect(disagreements).toEqual([]);
    // The corpus is mostly invalid definitions, and not only those.
    expect(mutations.length).toBeGreaterThan(400);
    expect(rejected).toBeGreaterThan(mutations.length / 2);
    expect(rejected).toBeLessThan(mutations.length);
  });
});
