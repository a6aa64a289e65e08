/**
 * createSource: the built-in sources behind one factory.
 */
import type { ExternalGroup, ExternalGroupMember } from '../config/model.js';
import type { GroupsDefinition, RestSourceDefinition, SourceDefinition } from '../config/source-definition.js';
import { createAuthProvider } from './auth.js';
import { readCsv, readJsonArray, readJsonLines } from './files.js';
import type { AuthProvider } from './http.js';
import { pagesBySkipping } from './paging.js';
import { readPages } from './rest.js';
import type { ReadOptions, Source, SourceDeps, SourceRecord } from './types.js';
import { SourceError } from './types.js';

export type { ReadOptions, SecretWriter, Source, SourceCapabilities, SourceDeps, SourceRecord } from './types.js';
export { SourceError, displayUrl } from './types.js';
export { splitJsonArray } from './files.js';
export { parseRetryAfter } from './http.js';
export { nextFromLinkHeader } from './rest.js';

const MEMBER_TYPES = new Set(['user', 'group', 'externalGroup']);

/** Check one group record from a groups file/endpoint. Throws SourceError (a group must never be half-synced). */
export function toExternalGroup(value: unknown, where: string): ExternalGroup {
  const v = value as Record<string, unknown> | null;
  if (!v || typeof v !== 'object' || Array.isArray(v))
    throw new SourceError('parse', `${where}: a group must be a JSON object`);
  if (typeof v.id !== 'string' || v.id.trim() === '') throw new SourceError('parse', `${where}: the group has no "id"`);
  if (v.displayName !== undefined && typeof v.displayName !== 'string') {
    throw new SourceError('parse', `${where} (group ${v.id}): "displayName" must be a string`);
  }
  const members: ExternalGroupMember[] = [];
  if (v.members !== undefined && !Array.isArray(v.members)) {
    throw new SourceError('parse', `${where} (group ${v.id}): "members" must be an array`);
  }
  for (const [i, m] of ((v.members as unknown[] | undefined) ?? []).entries()) {
    const mm = m as Record<string, unknown> | null;
    if (!mm || typeof mm.id !== 'string' || !mm.id || !MEMBER_TYPES.has(mm.type as string)) {
      throw new SourceError(
        'parse',
        `${where} (group ${v.id}): members[${i}] must be {"id": "...", "type": "user" | "group" | "externalGroup"}`,
      );
    }
    members.push({ id: mm.id, type: mm.type as ExternalGroupMember['type'] });
  }
  return {
    id: v.id,
    ...(typeof v.displayName === 'string' ? { displayName: v.displayName } : {}),
    ...(typeof v.description === 'string' ? { description: v.description } : {}),
    members,
  };
}

async function* readGroups(
  def: GroupsDefinition,
  deps: SourceDeps,
  auth: AuthProvider | undefined,
  rest: RestSourceDefinition | undefined,
  signal?: AbortSignal,
): AsyncGenerator<ExternalGroup> {
  const name = def.path ?? def.url ?? '';
  const format = def.format ?? (/\.(jsonl|ndjson)$/i.test(name) ? 'jsonLines' : 'jsonArray');
  if (format === 'rest') {
    const cfg = {
      url: def.url!,
      recordsPath: def.recordsPath,
      paging: def.paging,
      headers: rest?.headers,
      retry: rest?.retry,
      timeoutSeconds: rest?.timeoutSeconds,
      maxPages: rest?.maxPages,
    };
    for await (const { record, page, index } of readPages(cfg, deps, auth, { signal })) {
      yield toExternalGroup(record, `groups page ${page} item ${index + 1}`);
    }
    return;
  }
  const reader = format === 'jsonLines' ? readJsonLines : readJsonArray;
  for await (const r of reader({ path: def.path, url: def.url }, deps, { signal })) {
    if (r.error !== undefined) throw new SourceError('parse', `groups ${name}: ${r.error}`);
    yield toExternalGroup(r.data, `groups ${name} ${r.position ?? ''}`.trim());
  }
}

function keyOf(data: Record<string, unknown>, keyField: string | undefined, fallback: string): string {
  if (!keyField) return fallback;
  let v: unknown = Object.prototype.hasOwnProperty.call(data, keyField) ? data[keyField] : undefined;
  if (v === undefined) {
    v = data;
    for (const seg of keyField.split('.'))
      v = v && typeof v === 'object' ? (v as Record<string, unknown>)[seg] : undefined;
  }
  return typeof v === 'string' || typeof v === 'number' ? String(v) : fallback;
}

function formatCursor(date: Date, format: 'iso' | 'epochSeconds' | 'epochMs' | undefined): string {
  if (format === 'epochSeconds') return String(Math.floor(date.getTime() / 1000));
  if (format === 'epochMs') return String(date.getTime());
  return date.toISOString();
}

/** Build the source for a validated definition. Nothing is read until read()/groups() is iterated. */
export function createSource(def: SourceDefinition, deps: SourceDeps): Source {
  const logger = deps.logger.child({ source: def.type });
  const d: SourceDeps = { ...deps, logger };
  const hasGroups = def.groups !== undefined;

  if (def.type === 'rest') {
    const auth = createAuthProvider(def.auth, d, { caPath: def.caPath });
    const inc = def.incremental;
    const source: Source = {
      kind: 'rest',
      capabilities: { incremental: inc !== undefined, groups: hasGroups },
      async *read(options: ReadOptions = {}): AsyncGenerator<SourceRecord> {
        let extraQuery: Record<string, string> | undefined;
        if (options.cursor !== undefined) {
          if (!inc)
            throw new SourceError('config', 'an incremental read was asked of a source without source.incremental');
          const cursor = options.cursor;
          extraQuery = Object.fromEntries(
            Object.entries(inc.query).map(([k, v]) => [k, v.split('{cursor}').join(cursor)]),
          );
        }
        for await (const { record, page, index } of readPages(def, d, auth, { signal: options.signal, extraQuery })) {
          const position = `page ${page} item ${index + 1}`;
          if (typeof record !== 'object' || record === null || Array.isArray(record)) {
            yield {
              key: position,
              position,
              error: `${position}: expected a JSON object, got ${Array.isArray(record) ? 'an array' : typeof record}`,
            };
            continue;
          }
          const data = record as Record<string, unknown>;
          yield { key: keyOf(data, def.keyField, position), data, position };
        }
      },
      readPages(options = {}) {
        return pagesBySkipping((o) => source.read(o), options);
      },
    };
    if (inc) {
      source.readCursor = async () => {
        const now = (d.now ?? (() => new Date()))();
        return formatCursor(new Date(now.getTime() - (inc.overlapSeconds ?? 300) * 1000), inc.cursorFormat);
      };
    }
    if (def.groups) {
      const g = def.groups;
      source.groups = (options = {}) => readGroups(g, d, auth, def, options.signal);
    }
    return source;
  }

  const reader = def.type === 'csv' ? readCsv : def.type === 'jsonArray' ? readJsonArray : readJsonLines;
  const source: Source = {
    kind: def.type,
    capabilities: { incremental: false, groups: hasGroups },
    read(options: ReadOptions = {}) {
      if (options.cursor !== undefined) {
        throw new SourceError('config', `a ${def.type} source cannot read incrementally; run a full crawl`);
      }
      return reader(def, d, options);
    },
    readPages(options = {}) {
      return pagesBySkipping((o) => source.read(o), options);
    },
  };
  if (def.groups) {
    const g = def.groups;
    source.groups = (options = {}) => readGroups(g, d, undefined, undefined, options.signal);
  }
  return source;
}
