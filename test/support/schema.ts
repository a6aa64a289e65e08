/**
 * connector.schema.json compiled with ajv (draft 2020-12, formats), and the hand validators
 * (validateConnectorDefinition with the default source and mapping validators), side by side: the two answers
 * test/config/schema-agrees.test.ts compares, and the check the end-to-end stack runs on every definition it builds.
 */
import { readFileSync } from 'node:fs';
import { Ajv2020, type ErrorObject, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { defaultValidators, validateConnectorDefinition } from '../../src/config/definition.js';

const SCHEMA = new URL('../../connector.schema.json', import.meta.url);

// ajv-formats is CommonJS: its default export is the plugin function.
const addFormats = addFormatsModule as unknown as (ajv: Ajv2020) => Ajv2020;

let compiled: ValidateFunction | undefined;

/** The compiled schema (strict: a keyword ajv does not know is an error in the schema itself; an `if` without its `type`, or a `not: {required}` that forbids a key, is fine). */
export function schemaValidator(): ValidateFunction {
  if (!compiled) {
    const ajv = new Ajv2020({
      allErrors: true,
      strict: true,
      strictTypes: false,
      strictRequired: false,
      allowUnionTypes: true,
    });
    addFormats(ajv);
    compiled = ajv.compile(JSON.parse(readFileSync(SCHEMA, 'utf8')) as object);
  }
  return compiled;
}

/** The schema's errors for a definition, one line each (`/mapping/acl must have required property 'rules'`). */
export function schemaErrors(def: unknown): string[] {
  const validate = schemaValidator();
  if (validate(def)) return [];
  return (validate.errors ?? []).map((e: ErrorObject) => `${e.instancePath || '/'} ${e.message ?? ''}`.trim());
}

/** The hand validators' errors (warnings left out), one line each (`mapping.acl.rules: ...`). */
export function handErrors(def: unknown): string[] {
  return validateConnectorDefinition(def, defaultValidators)
    .filter((p) => p.severity === 'error')
    .map((p) => `${p.path}: ${p.message}`);
}

/** Throw unless connector.schema.json accepts `def` (for builders of test definitions). */
export function assertSchemaValid(def: unknown, what: string): void {
  const errors = schemaErrors(def);
  if (errors.length) throw new Error(`${what} does not match connector.schema.json:\n  ${errors.join('\n  ')}`);
}
