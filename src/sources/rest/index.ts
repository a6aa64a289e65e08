/**
 * The `rest` source (REST / OData JSON APIs): its registry entry and the Source over {@link fetchPages}. A page is one
 * response; its position is the next request's URL with the page and record counters, and the cursor of an
 * incremental read. Progress counts pages, or records against the total when the server announces one.
 */
import type { ConfigProblem } from '../../config/problems.js';
import { createAuthProvider } from '../auth.js';
import { readGroups } from '../groups.js';
import type { PositionStamp } from '../position.js';
import { checkPosition, definitionFingerprint, makePosition, positionInt, recordsOf } from '../position.js';
import { recordFromValue } from '../shared/records.js';
import type { Obj } from '../shared/validate.js';
import type {
  PagedReadOptions,
  ReadOptions,
  Source,
  SourceCapabilities,
  SourceDeps,
  SourcePage,
  SourceProgress,
} from '../types.js';
import { abortSignalOf, displayUrl, SourceError } from '../types.js';
import type { RestSourceDefinition } from './definition.js';
import { validateRestSource } from './definition.js';
import type { RestState } from './pages.js';
import { checkSameOrigin, fetchPages, firstState } from './pages.js';

export type { RestSourceDefinition } from './definition.js';

function formatCursor(date: Date, format: 'iso' | 'epochSeconds' | 'epochMs' | undefined): string {
  if (format === 'epochSeconds') return String(Math.floor(date.getTime() / 1000));
  if (format === 'epochMs') return String(date.getTime());
  return date.toISOString();
}

function capabilities(def: RestSourceDefinition): SourceCapabilities {
  return { incremental: def.incremental !== undefined, groups: def.groups !== undefined };
}

/** The state stored in a position (already checked to be this source's). */
function restStateOf(p: Record<string, unknown>, def: RestSourceDefinition, where: string): RestState {
  if (typeof p.url !== 'string') {
    throw new SourceError('SourcePosition', `${where}: the saved position has no next-page URL; start a new crawl`);
  }
  try {
    checkSameOrigin(p.url, def, `the saved next-page URL`);
  } catch (e) {
    throw new SourceError('SourcePosition', `${where}: ${(e as Error).message}`, { cause: e });
  }
  const state: RestState = {
    url: p.url,
    page: positionInt(p, 'page', where),
    records: positionInt(p, 'records', where),
  };
  if (p.pageNo !== undefined) state.pageNo = positionInt(p, 'pageNo', where);
  if (p.offset !== undefined) state.offset = positionInt(p, 'offset', where);
  if (p.total !== undefined) state.total = positionInt(p, 'total', where);
  return state;
}

function progressOf(page: number, records: number, total: number | undefined): SourceProgress {
  return total !== undefined ? { done: records, total, unit: 'records' } : { done: page, unit: 'pages' };
}

function createRestSource(def: RestSourceDefinition, deps: SourceDeps): Source {
  const auth = createAuthProvider(def.auth, deps, { caPath: def.caPath });
  const inc = def.incremental;
  const { url, query, paging, recordsPath, incremental, headers, keyField } = def;
  const fields = { url, query, paging, recordsPath, incremental, headers, keyField };
  const stamp: PositionStamp = { source: 'rest', def: definitionFingerprint(fields) };
  const where = `source ${displayUrl(def.url)}`;

  const extraQueryFor = (cursor: string | undefined): Record<string, string> | undefined => {
    if (cursor === undefined) return undefined;
    if (!inc) {
      throw new SourceError('SourceConfig', 'an incremental read was asked of a source without source.incremental');
    }
    return Object.fromEntries(Object.entries(inc.query).map(([k, v]) => [k, v.split('{cursor}').join(cursor)]));
  };

  async function* pages(options: PagedReadOptions, extraQuery: Record<string, string> | undefined) {
    const cursor = options.cursor;
    let start: RestState;
    if (options.position) {
      const p = checkPosition(options.position, stamp, where);
      if ((p.cursor ?? undefined) !== cursor) {
        throw new SourceError(
          'SourcePosition',
          `${where}: the saved position belongs to a read ${p.cursor === undefined ? 'without a cursor' : `from cursor ${JSON.stringify(p.cursor)}`}, ` +
            `not ${cursor === undefined ? 'a full read' : `one from cursor ${cursor}`}; resume with the crawl's own cursor`,
        );
      }
      start = restStateOf(p, def, where);
    } else {
      start = firstState(def, extraQuery);
    }
    for await (const p of fetchPages(def, deps, auth, start, { abortSignal: abortSignalOf(options) })) {
      const records = p.records.map((value, i) => recordFromValue(value, `page ${p.page} item ${i + 1}`, def.keyField));
      const page: SourcePage = {
        records,
        next: p.next ? makePosition(stamp, { ...p.next, ...(cursor !== undefined ? { cursor } : {}) }) : undefined,
        progress: progressOf(p.page, p.recordsSoFar, p.total),
      };
      yield page;
    }
  }

  const source: Source = {
    kind: 'rest',
    capabilities: capabilities(def),
    read(options: ReadOptions = {}) {
      return recordsOf(pages(options, extraQueryFor(options.cursor)));
    },
    readPages(options: PagedReadOptions = {}) {
      return pages(options, extraQueryFor(options.cursor));
    },
  };
  if (inc) {
    source.readCursor = async () => {
      const now = (deps.now ?? (() => new Date()))();
      return formatCursor(new Date(now.getTime() - (inc.overlapSeconds ?? 300) * 1000), inc.cursorFormat);
    };
  }
  if (def.groups) {
    const groups = def.groups;
    source.groups = (options = {}) =>
      readGroups(groups, deps, { abortSignal: abortSignalOf(options), auth, rest: def });
  }
  return source;
}

/** The registry entry of the `rest` source type. */
export const restSourceType = {
  type: 'rest' as const,
  validate: (value: Obj, path: string): ConfigProblem[] => validateRestSource(value, path),
  create: createRestSource,
  capabilities,
};
