import type { SecretProvider } from '../../src/secrets/types.js';
import type { Source, SourceRecord } from '../../src/sources/index.js';

/** An in-memory SecretProvider that records reads and invalidations. */
export function memorySecrets(values: Record<string, string>): SecretProvider & {
  reads: string[];
  invalidated: string[];
  values: Record<string, string>;
} {
  const reads: string[] = [];
  const invalidated: string[] = [];
  return {
    values,
    reads,
    invalidated,
    get(name) {
      reads.push(name);
      const v = values[name];
      return v === undefined ? Promise.reject(new Error(`secret ${name} not found`)) : Promise.resolve(v);
    },
    invalidate(name) {
      invalidated.push(name);
    },
    describe(name) {
      return `memory:${name}`;
    },
  };
}

export async function collect(source: Source, options = {}): Promise<SourceRecord[]> {
  const out: SourceRecord[] = [];
  for await (const r of source.read(options)) out.push(r);
  return out;
}
