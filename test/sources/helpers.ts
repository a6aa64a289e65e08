import { expect } from 'vitest';
import type { SecretProvider } from '../../src/secrets/types.js';
import type {
  PagedReadOptions,
  Source,
  SourceError,
  SourcePage,
  SourcePosition,
  SourceRecord,
} from '../../src/sources/index.js';

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

export async function collectPages(source: Source, options: PagedReadOptions = {}): Promise<SourcePage[]> {
  const out: SourcePage[] = [];
  for await (const page of source.readPages(options)) out.push(page);
  return out;
}

/** A position as the crawl stores and reads it back: through JSON. */
export const stored = (position: SourcePosition): SourcePosition =>
  JSON.parse(JSON.stringify(position)) as SourcePosition;

/** The error a read fails with (or a failed assertion when it does not fail). */
export async function failure(read: () => Promise<unknown>): Promise<SourceError> {
  try {
    await read();
  } catch (e) {
    return e as SourceError;
  }
  throw new Error('expected the read to fail');
}

/**
 * The resume property, checked from every page: reading all pages gives read()'s records; resuming after page i
 * (from its position, stored as JSON) gives exactly the records, positions and progress of pages i+1.. of the
 * uninterrupted read. Returns the uninterrupted pages.
 */
export async function expectResumable(
  source: Source,
  options: Omit<PagedReadOptions, 'position'> = {},
): Promise<SourcePage[]> {
  const pages = await collectPages(source, options);
  expect(pages.length).toBeGreaterThan(0);
  const flat = pages.flatMap((p) => p.records);
  expect(flat).toEqual(await collect(source, options.cursor !== undefined ? { cursor: options.cursor } : {}));
  expect(pages.at(-1)!.next).toBeUndefined();
  for (const p of pages.slice(0, -1)) expect(p.next).toBeDefined();
  let before = 0;
  for (const [i, page] of pages.entries()) {
    before += page.records.length;
    if (!page.next) continue;
    const resumed = await collectPages(source, { ...options, position: stored(page.next) });
    expect(resumed.flatMap((p) => p.records)).toEqual(flat.slice(before));
    expect(resumed.map((p) => p.next)).toEqual(pages.slice(i + 1).map((p) => p.next));
    expect(resumed.map((p) => p.progress)).toEqual(pages.slice(i + 1).map((p) => p.progress));
  }
  return pages;
}

/** Keys of records, in order. */
export const keysOf = (records: SourceRecord[]) => records.map((r) => r.key);
