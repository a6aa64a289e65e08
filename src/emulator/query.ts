/**
 * `POST /{version}/search/query` for `externalItem`, as Microsoft Search answers it — trimmed by the ACL of the
 * signed-in user (a delegated token with ExternalItem.Read.All). Sources:
 * https://learn.microsoft.com/graph/api/search-query, https://learn.microsoft.com/graph/api/resources/searchrequest,
 * https://learn.microsoft.com/graph/search-concept-custom-types, https://learn.microsoft.com/graph/api/resources/search-api-overview
 * (paging, fields, known limitations). Matching rules: kql.ts. See docs/emulator.md for what is UNCONFIRMED.
 */
import type { Emu } from './context.js';
import { GraphError, isObject, type Ctx, type Reply } from './http.js';
import type { Principal } from './identity.js';
import { containsWords, freeTextTerms, parseKql, words, type Node } from './kql.js';
import { canSee, entraGroupsOf, externalGroupsOf, type UserView } from './search.js';
import { isDeleting } from './connections.js';
import type { Connection, SchemaProperty, StoredItem } from './store.js';

const SEARCH_SCOPES = ['ExternalItem.Read.All', 'ExternalItem.ReadWrite.All', 'ExternalItem.ReadWrite.OwnedBy'];
const REQUEST_KEYS = [
  'entityTypes',
  'contentSources',
  'query',
  'from',
  'size',
  'fields',
  'aggregations',
  'aggregationFilters',
  'sortProperties',
  'collapseProperties',
  'enableTopResults',
  'queryAlterationOptions',
  'resultTemplateOptions',
  'region',
  'sharePointOneDriveOptions',
  'trimDuplicates',
];
const MAX_SIZE = 500;
const DEFAULT_SIZE = 25;

function bad(message: string): GraphError {
  return new GraphError(400, 'BadRequest', message);
}

interface Doc {
  conn: Connection;
  item: StoredItem;
  /** Words of the content (HTML stripped) and of the searchable properties. */
  text: string[];
  /** Words of the title-labelled property (ranked higher). */
  title: string[];
}

function stripHtml(s: string): string {
  return s.replace(/<[^>]*>/g, ' ').replace(/&nbsp;/g, ' ');
}

function contentText(item: StoredItem): string {
  if (!item.content) return '';
  return item.content.type === 'html' ? stripHtml(item.content.value) : item.content.value;
}

function stringsOf(v: unknown): string[] {
  if (typeof v === 'string') return [v];
  if (Array.isArray(v)) return v.filter((x): x is string => typeof x === 'string');
  return [];
}

function toDoc(conn: Connection, item: StoredItem): Doc {
  const props = conn.schema?.properties ?? [];
  const parts = [contentText(item)];
  for (const p of props) if (p.isSearchable) parts.push(...stringsOf(item.properties[p.name]));
  const titleProp = props.find((p) => p.labels.includes('title'));
  return {
    conn,
    item,
    text: words(parts.join('\n')),
    title: titleProp ? words(stringsOf(item.properties[titleProp.name]).join(' ')) : [],
  };
}

function findProperty(conn: Connection, name: string): SchemaProperty | undefined {
  const n = name.toLowerCase();
  return conn.schema?.properties.find(
    (p) => p.name.toLowerCase() === n || p.aliases.some((a) => a.toLowerCase() === n),
  );
}

function compare(a: number | string, b: number | string, op: string): boolean {
  switch (op) {
    case ':':
      return a === b;
    case '<>':
      return a !== b;
    case '<':
      return a < b;
    case '>':
      return a > b;
    case '<=':
      return a <= b;
    case '>=':
      return a >= b;
  }
  return false;
}

function restrictionMatches(doc: Doc, n: Extract<Node, { kind: 'restriction' }>): boolean {
  const def = findProperty(doc.conn, n.property);
  // Only queryable properties take restrictions; any other name finds nothing (Graph does not say why).
  if (!def || !def.isQueryable) return false;
  const raw = doc.item.properties[def.name];
  const values = (Array.isArray(raw) ? raw : [raw]).filter((v) => v !== null && v !== undefined);
  const base = def.type.replace(/Collection$/, '');
  const one = (v: unknown): boolean => {
    if (base === 'string') {
      const s = String(v);
      if (n.op === ':' || n.op === '<>') {
        const hit =
          s.toLowerCase() === n.value.toLowerCase() ||
          (n.prefix && s.toLowerCase().startsWith(n.value.toLowerCase())) ||
          containsWords(words(s), words(n.value), n.prefix);
        return n.op === ':' ? hit : !hit;
      }
      return compare(s.toLowerCase(), n.value.toLowerCase(), n.op);
    }
    if (base === 'int64' || base === 'double') {
      const want = Number(n.value);
      return Number.isFinite(want) && typeof v === 'number' && compare(v, want, n.op);
    }
    if (base === 'dateTime') {
      const have = Date.parse(String(v));
      if (!/T/.test(n.value) && (n.op === ':' || n.op === '<>')) {
        const same = String(v).slice(0, 10) === n.value.slice(0, 10);
        return n.op === ':' ? same : !same;
      }
      const want = Date.parse(n.value);
      return Number.isFinite(want) && Number.isFinite(have) && compare(have, want, n.op);
    }
    if (base === 'boolean') return compare(String(v), n.value.toLowerCase(), n.op);
    return false;
  };
  return values.some(one);
}

function matches(doc: Doc, n: Node): boolean {
  switch (n.kind) {
    case 'all':
      return true;
    case 'term':
      return containsWords(doc.text, n.words, n.prefix);
    case 'restriction':
      return restrictionMatches(doc, n);
    case 'and':
      return matches(doc, n.left) && matches(doc, n.right);
    case 'or':
      return matches(doc, n.left) || matches(doc, n.right);
    case 'not':
      return !matches(doc, n.node);
  }
}

/** A crude relevance: occurrences of the free-text words, title words counted three times. */
function score(doc: Doc, terms: string[]): number {
  let s = 0;
  for (const term of terms)
    for (const w of words(term)) {
      s += doc.text.filter((x) => x === w || x.startsWith(w)).length;
      s += 3 * doc.title.filter((x) => x === w || x.startsWith(w)).length;
    }
  return s;
}

/** A snippet of the content around the first matching word, matches in <c0>…</c0>, cuts marked <ddd/>. */
function summary(item: StoredItem, terms: string[]): string {
  const text = contentText(item).replace(/\s+/g, ' ').trim();
  if (!text) return '';
  const tokens = text.split(' ');
  const wanted = new Set(terms.flatMap((t) => words(t)));
  const isHit = (tok: string) => words(tok).some((w) => [...wanted].some((x) => w === x || w.startsWith(x)));
  const first = Math.max(0, tokens.findIndex(isHit));
  const start = Math.max(0, first - 8);
  const end = Math.min(tokens.length, start + 30);
  const body = tokens
    .slice(start, end)
    .map((tok) => (wanted.size && isHit(tok) ? `<c0>${tok}</c0>` : tok))
    .join(' ');
  return `${start > 0 ? '<ddd/>' : ''}${body}${end < tokens.length ? ' <ddd/>' : ''}`;
}

/** The retrievable properties a hit returns: `fields` (names, aliases or label_<label>), or all retrievable ones. */
function hitProperties(conn: Connection, item: StoredItem, fields: string[] | undefined): Record<string, unknown> {
  const props = conn.schema?.properties ?? [];
  const out: Record<string, unknown> = {};
  if (!fields) {
    for (const p of props)
      if (p.isRetrievable && item.properties[p.name] !== undefined) out[p.name] = item.properties[p.name];
    return out;
  }
  for (const f of fields) {
    const label = /^label_(.+)$/i.exec(f)?.[1]?.toLowerCase();
    const def = label ? props.find((p) => p.labels.some((l) => l.toLowerCase() === label)) : findProperty(conn, f);
    // Fields that are unknown or not retrievable are silently ignored, as the search API overview says.
    if (!def || !def.isRetrievable || item.properties[def.name] === undefined) continue;
    out[label ? f : def.name] = item.properties[def.name];
  }
  return out;
}

function parseRequest(raw: unknown): {
  connectionIds: string[] | 'all';
  queryString: string;
  from: number;
  size: number;
  fields?: string[];
} {
  if (!isObject(raw)) throw bad('requests[0] must be a searchRequest object.');
  for (const k of Object.keys(raw))
    if (!REQUEST_KEYS.includes(k))
      throw bad(`requests[0].${k}: the property does not exist on type 'microsoft.graph.searchRequest'.`);
  const types = raw.entityTypes;
  if (!Array.isArray(types) || types.length === 0)
    throw bad('requests[0].entityTypes is required: ["externalItem"] to search what connectors ingested.');
  const other = types.filter((t) => !/^(microsoft\.graph\.)?externalItem$/i.test(String(t)));
  if (other.length)
    throw bad(
      `requests[0].entityTypes: the emulator holds only external items, so it answers entityTypes ["externalItem"]; got ${JSON.stringify(other)}.`,
    );
  let connectionIds: string[] | 'all' = 'all';
  if (raw.contentSources !== undefined) {
    if (!Array.isArray(raw.contentSources) || raw.contentSources.some((s) => typeof s !== 'string'))
      throw bad('requests[0].contentSources must be an array of "/external/connections/{connectionId}" strings.');
    const ids: string[] = [];
    for (const s of raw.contentSources as string[]) {
      const m = /^\/?external\/connections\/([^/]+)$/i.exec(s.trim());
      if (!m) throw bad(`requests[0].contentSources: '${s}' must look like "/external/connections/{connectionId}".`);
      if (m[1] === '*') return parseRest(raw, 'all');
      ids.push(m[1]!);
    }
    connectionIds = ids;
  }
  return parseRest(raw, connectionIds);
}

function parseRest(raw: Record<string, unknown>, connectionIds: string[] | 'all'): ReturnType<typeof parseRequest> {
  const query = raw.query;
  if (!isObject(query) || typeof query.queryString !== 'string' || query.queryString.trim() === '')
    throw bad('requests[0].query.queryString is required: the words to find (KQL), or * for every item.');
  let queryString = query.queryString;
  if (typeof query.queryTemplate === 'string')
    queryString = query.queryTemplate.replace(/\{searchTerms\}/g, queryString);
  const int = (k: string, dflt: number, min: number, max: number): number => {
    if (raw[k] === undefined || raw[k] === null) return dflt;
    const v = raw[k];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max)
      throw bad(`requests[0].${k} must be an integer from ${min} to ${max}; got ${JSON.stringify(v)}.`);
    return v;
  };
  const from = int('from', 0, 0, 2 ** 31 - 1);
  const size = int('size', DEFAULT_SIZE, 0, MAX_SIZE);
  let fields: string[] | undefined;
  if (raw.fields !== undefined && raw.fields !== null) {
    if (!Array.isArray(raw.fields) || raw.fields.some((f) => typeof f !== 'string'))
      throw bad('requests[0].fields must be an array of property names (or label_<label>).');
    fields = raw.fields as string[];
  }
  return { connectionIds, queryString, from, size, ...(fields ? { fields } : {}) };
}

/** The user's view for ACL checks: their directory entry (or a bare one) and their Entra groups. */
function userView(emu: Emu, p: Principal): UserView {
  const dir = emu.store.state.directory;
  const user = dir.users.find((u) => u.id.toLowerCase() === p.objectId.toLowerCase()) ?? {
    id: p.objectId,
    userPrincipalName: p.upn ?? p.objectId,
  };
  return { user, groups: entraGroupsOf(dir, user.id) };
}

export function searchQuery(emu: Emu, ctx: Ctx, p: Principal, body: Record<string, unknown>, version: string): Reply {
  if (p.kind !== 'user')
    throw new GraphError(
      403,
      'Forbidden',
      `Searching externalItem runs as the signed-in user, and the token of app '${p.appId}' is app-only. Get a delegated token (the emulator's token endpoint serves grant_type=password for users of its directory) with ExternalItem.Read.All.`,
    );
  if (!p.scopes.some((s) => SEARCH_SCOPES.includes(s)))
    throw new GraphError(
      403,
      'Forbidden',
      `Searching externalItem needs the delegated permission ExternalItem.Read.All; the token carries scp '${p.scopes.join(' ')}'.`,
    );
  for (const k of Object.keys(body))
    if (k !== 'requests') throw bad(`'${k}' is not a parameter of search/query; send {"requests": [searchRequest]}.`);
  const requests = body.requests;
  if (!Array.isArray(requests) || requests.length === 0)
    throw bad('requests is required: an array holding one searchRequest.');
  if (requests.length > 1)
    throw bad(`The service supports only a single searchRequest at a time; got ${requests.length}.`);
  const r = parseRequest(requests[0]);
  const tree = parseKql(r.queryString);
  const terms = freeTextTerms(tree);

  const all = [...emu.store.state.connections.values()].filter((c) => !isDeleting(c) && c.schema);
  let conns: Connection[];
  if (r.connectionIds === 'all') conns = all;
  else {
    conns = [];
    for (const id of r.connectionIds) {
      const c = all.find((x) => x.id.toLowerCase() === id.toLowerCase());
      if (!c)
        throw bad(
          `requests[0].contentSources: there is no connection '${id}' with a registered schema in this tenant.`,
        );
      if (!conns.includes(c)) conns.push(c);
    }
  }

  const view = userView(emu, p);
  const hits: { doc: Doc; score: number }[] = [];
  for (const conn of conns) {
    const external = externalGroupsOf(conn, view);
    for (const item of conn.items.values()) {
      if (!canSee(item, view, external)) continue;
      const doc = toDoc(conn, item);
      if (!matches(doc, tree)) continue;
      hits.push({ doc, score: score(doc, terms) });
    }
  }
  hits.sort(
    (a, b) =>
      b.score - a.score ||
      b.doc.item.lastModifiedDateTime.localeCompare(a.doc.item.lastModifiedDateTime) ||
      a.doc.item.id.localeCompare(b.doc.item.id),
  );
  const page = hits.slice(r.from, r.from + r.size);
  const container: Record<string, unknown> = {
    total: hits.length,
    moreResultsAvailable: r.from + page.length < hits.length,
  };
  if (page.length)
    container.hits = page.map(({ doc }, i) => ({
      hitId: doc.item.id,
      rank: r.from + i + 1,
      summary: summary(doc.item, terms),
      contentSource: `/external/connections/${doc.conn.id}`,
      resource: {
        '@odata.type': '#microsoft.graph.externalConnectors.externalItem',
        properties: hitProperties(doc.conn, doc.item, r.fields),
      },
    }));
  return {
    status: 200,
    body: {
      '@odata.context': `${emu.baseUrl}/${version}/$metadata#Collection(microsoft.graph.searchResponse)`,
      value: [{ searchTerms: terms, hitsContainers: [container] }],
    },
  };
}
