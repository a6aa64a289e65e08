/**
 * External groups with their members, from a JSON file (local, URL or blob) or a paged REST endpoint, and the
 * `groups` part of a source definition. A malformed group fails the read: a group is never half-synced.
 */
import type { ExternalGroup, ExternalGroupMember } from '../config/model.js';
import type { ConfigProblem } from '../config/problems.js';
import { problem, warning } from '../config/problems.js';
import { checkInput } from './files/definition.js';
import { readFileRecords } from './files/read.js';
import type { AuthProvider } from './http.js';
import { checkPaging } from './rest/definition.js';
import type { RestSourceDefinition } from './rest/definition.js';
import { fetchPages, firstState } from './rest/pages.js';
import type { GroupsDefinition, SourceValidationContext } from './shared/common.js';
import { isObj } from './shared/validate.js';
import type { SourceDeps } from './types.js';
import { SourceError } from './types.js';

const MEMBER_TYPES = new Set(['user', 'group', 'externalGroup']);

/** Check one group record from a groups file/endpoint. Throws SourceError (a group must never be half-synced). */
export function toExternalGroup(value: unknown, where: string): ExternalGroup {
  const v = value as Record<string, unknown> | null;
  if (!v || typeof v !== 'object' || Array.isArray(v))
    throw new SourceError('SourceParse', `${where}: a group must be a JSON object`);
  if (typeof v.id !== 'string' || v.id.trim() === '')
    throw new SourceError('SourceParse', `${where}: the group has no "id"`);
  if (v.displayName !== undefined && typeof v.displayName !== 'string') {
    throw new SourceError('SourceParse', `${where} (group ${v.id}): "displayName" must be a string`);
  }
  const members: ExternalGroupMember[] = [];
  if (v.members !== undefined && !Array.isArray(v.members)) {
    throw new SourceError('SourceParse', `${where} (group ${v.id}): "members" must be an array`);
  }
  for (const [i, m] of ((v.members as unknown[] | undefined) ?? []).entries()) {
    const mm = m as Record<string, unknown> | null;
    if (!mm || typeof mm.id !== 'string' || !mm.id || !MEMBER_TYPES.has(mm.type as string)) {
      throw new SourceError(
        'SourceParse',
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

/**
 * The groups a definition names. `format: "rest"` endpoints use the rest source's auth, headers, retry and TLS
 * settings (`auth` and `rest`); files, URLs and blobs are read as JSON arrays or JSON lines.
 */
export async function* readGroups(
  def: GroupsDefinition,
  deps: SourceDeps,
  options: { abortSignal?: AbortSignal; auth?: AuthProvider; rest?: RestSourceDefinition } = {},
): AsyncGenerator<ExternalGroup> {
  const name = def.path ?? def.url ?? def.blob?.name ?? '';
  const format = def.format ?? (/\.(jsonl|ndjson)$/i.test(name) ? 'jsonLines' : 'jsonArray');
  if (format === 'rest') {
    const cfg = {
      url: def.url!,
      recordsPath: def.recordsPath,
      paging: def.paging,
      headers: options.rest?.headers,
      retry: options.rest?.retry,
      timeoutSeconds: options.rest?.timeoutSeconds,
      maxPages: options.rest?.maxPages,
    };
    const start = firstState(cfg, undefined);
    for await (const { records, page } of fetchPages(cfg, deps, options.auth, start, options)) {
      for (const [i, record] of records.entries()) yield toExternalGroup(record, `groups page ${page} item ${i + 1}`);
    }
    return;
  }
  const spec = { path: def.path, url: def.url, blob: def.blob, format };
  const stamp = { source: `groups-${format}`, def: '' };
  for await (const r of readFileRecords(spec, stamp, deps, { abortSignal: options.abortSignal })) {
    if (r.error !== undefined) throw new SourceError('SourceParse', `groups ${name}: ${r.error}`);
    yield toExternalGroup(r.data, `groups ${name} ${r.position ?? ''}`.trim());
  }
}

/** The `groups` part of a definition. */
export function checkGroups(
  value: unknown,
  path: string,
  out: ConfigProblem[],
  sourceType: unknown,
  ctx: SourceValidationContext,
): void {
  if (value === undefined) return;
  if (!isObj(value)) {
    out.push(problem(path, 'must be an object', 'write e.g. {"path": "./teams.json"}'));
    return;
  }
  checkInput(value, path, out, ctx, 'groups', value.format === 'rest' ? 'loopback' : 'warn');
  if (value.format !== undefined && !['jsonArray', 'jsonLines', 'rest'].includes(value.format as string)) {
    out.push(
      problem(
        `${path}.format`,
        `unknown format ${JSON.stringify(value.format)}`,
        'use "jsonArray", "jsonLines" or "rest"',
      ),
    );
  }
  if (value.format === 'rest') {
    if (value.url === undefined) {
      out.push(problem(`${path}.url`, 'format "rest" needs a url', 'set url to the groups endpoint'));
    }
    if (sourceType !== 'rest') {
      out.push(
        warning(
          `${path}.format`,
          'groups are read from a REST endpoint without auth because the source is not a rest source',
          'make sure the endpoint needs no credentials',
        ),
      );
    }
  }
  if (value.recordsPath !== undefined && typeof value.recordsPath !== 'string') {
    out.push(problem(`${path}.recordsPath`, 'must be a dotted path string', 'e.g. "value"'));
  }
  checkPaging(value.paging, `${path}.paging`, out);
}
