/**
 * URL-to-item resolvers (`connection.activitySettings.urlToItemResolvers`) against the mapping: when Copilot or
 * Search meets a shared URL, Graph turns it into an item id with these resolvers, so the id they build must be the
 * id the mapping gives the record whose `url` that is. docs/mapping.md "URL-to-item resolvers".
 *
 * Graph documents a resolver (https://learn.microsoft.com/graph/api/resources/externalconnectors-itemidresolver,
 * …-urlmatchinfo) as: the URL must start with one of `baseUrls`; `urlPattern` is an ECMAScript regular expression
 * matched against the URL; `itemId` references its named groups as `{name}`; resolvers are tried by `priority`.
 * Microsoft's samples write `urlPattern` for the part after the base URL (`/(?<slug>[^/]+)` with base
 * `https://blog.example.com`), so that is the part it is matched against here; captures are used as they appear
 * in the URL (not decoded).
 */
import {
  classifyValueRef,
  encodeForUrlTemplate,
  parseTemplate,
  renderTemplateParts,
  templatePlaceholders,
  valueRefAsTemplate,
  type TemplatePart,
  type ValueRef,
} from './mapping-template.js';
import { isItemIdKeptAsIs } from './mapping-item-id.js';
import type { SchemaProperty } from './model.js';
import { warning, type ConfigProblem } from './problems.js';

/** The parts of an itemIdResolver this check reads (structurally connection.activitySettings.urlToItemResolvers[i]). */
export interface UrlToItemResolver {
  itemId: string;
  priority: number;
  urlMatchInfo: { baseUrls: string[]; urlPattern: string };
}

export interface ResolveOptions {
  /**
   * What `urlPattern` is matched against: the rest of the URL after the base URL (default, as Microsoft's samples
   * write their patterns) or the whole URL (the literal reading of the docs).
   */
  patternInput?: 'afterBaseUrl' | 'wholeUrl';
}

/**
 * The item id the resolvers make of a URL, and which resolver (its index) made it; undefined when none matches.
 * A base URL matches as a prefix that ends at a `/`, `?`, `#` or the end of the URL (so `https://x.com` does not
 * match `https://x.com.evil.net/…`).
 */
export function resolveUrlToItemId(
  url: string,
  resolvers: readonly UrlToItemResolver[],
  options: ResolveOptions = {},
): { itemId: string; resolverIndex: number } | undefined {
  const order = resolvers.map((r, i) => ({ r, i })).sort((a, b) => a.r.priority - b.r.priority || a.i - b.i);
  for (const { r, i } of order) {
    let pattern: RegExp;
    try {
      pattern = new RegExp(r.urlMatchInfo.urlPattern);
    } catch {
      continue;
    }
    for (const base of r.urlMatchInfo.baseUrls) {
      if (!startsWithBaseUrl(url, base)) continue;
      const input = options.patternInput === 'wholeUrl' ? url : url.slice(base.length);
      const groups = pattern.exec(input)?.groups;
      if (!groups) continue;
      let complete = true;
      const itemId = r.itemId.replace(/\{([^}]+)\}/g, (_, name: string) => {
        const v = groups[name];
        if (v === undefined) complete = false;
        return v ?? '';
      });
      if (complete) return { itemId, resolverIndex: i };
    }
  }
  return undefined;
}

function startsWithBaseUrl(url: string, base: string): boolean {
  if (!base || url.length < base.length || url.slice(0, base.length).toLowerCase() !== base.toLowerCase()) return false;
  if (/[/?#]$/.test(base) || url.length === base.length) return true;
  return /[/?#]/.test(url[base.length]!);
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Values a record might have, three kinds per placeholder; each placeholder gets its own value. */
const PROBES: { kind: string; value: (i: number) => string }[] = [
  { kind: 'digits', value: (i) => String(4821 + 1000 * i) },
  { kind: 'letters and digits', value: (i) => `Qz${i}k7` },
  { kind: 'with - and _', value: (i) => `ab-${i}_c` },
  // Needs encoding: its item id is b32…, so no URL can name it; a resolver that resolves it names another item.
  { kind: 'with a space', value: (i) => `ab 0${i}` },
];

/** mapping.url, else the template or field that fills the property labelled `url` in mapping.properties. */
function urlTemplateOf(
  mapping: Obj,
  schema: SchemaProperty[],
): { source: string; text: string; parts: TemplatePart[] } | undefined {
  if (typeof mapping.url === 'string')
    return { source: 'mapping.url', text: mapping.url, parts: parseTemplate(mapping.url) };
  const sp = schema.find((p) => p.labels?.includes('url'));
  const m = sp && isObj(mapping.properties) ? mapping.properties[sp.name] : undefined;
  if (m === undefined) return undefined;
  const ref = (isObj(m) ? (m.template !== undefined ? { template: m.template } : { field: m.field }) : m) as ValueRef;
  // A field that holds the URL itself (not a template): nothing to probe.
  if ('field' in classifyValueRef(ref)) return undefined;
  return { source: `mapping.properties.${sp!.name}`, text: templateText(ref), parts: valueRefAsTemplate(ref) };
}

/**
 * Warnings for resolvers whose `itemId` cannot produce the ids the mapping produces for its own URLs: each
 * resolver is applied to URLs the mapping makes from sample values (digits, letters, `-`/`_`, a space) and the id
 * it builds is compared with the record's item id. It warns when no sample resolves to the right item, or when
 * one resolves to a different item (a partial capture).
 */
export function checkUrlToItemResolvers(
  resolvers: unknown,
  mapping: unknown,
  schema: SchemaProperty[],
  path = 'connection.activitySettings.urlToItemResolvers',
): ConfigProblem[] {
  if (!Array.isArray(resolvers) || !isObj(mapping) || mapping.module !== undefined || mapping.id === undefined)
    return [];
  let idParts: TemplatePart[];
  let url: ReturnType<typeof urlTemplateOf>;
  try {
    idParts = valueRefAsTemplate(mapping.id as ValueRef);
    url = urlTemplateOf(mapping, schema);
  } catch {
    return []; // a template that does not parse is reported by the mapping checks
  }
  if (!url) return [];
  const idTemplate = templateText(mapping.id as ValueRef);
  const urlTemplate = url.text;
  const names = [...new Set([...templatePlaceholders(idParts), ...templatePlaceholders(url.parts)].map(key))];

  const out: ConfigProblem[] = [];
  resolvers.forEach((r: unknown, i) => {
    if (!isObj(r) || typeof r.itemId !== 'string' || !isObj(r.urlMatchInfo)) return;
    const m = r.urlMatchInfo;
    // Malformed resolvers are reported by the connection checks; only well-formed ones are probed here.
    if (!Array.isArray(m.baseUrls) || !m.baseUrls.every((b) => typeof b === 'string')) return;
    if (typeof m.urlPattern !== 'string' || typeof r.priority !== 'number') return;
    const resolver = r as unknown as UrlToItemResolver;
    const outcomes = PROBES.map((probe) => {
      const valueOf = (p: { path: string[] }) => probe.value(names.indexOf(key(p)));
      const madeUrl = renderTemplateParts(url.parts, valueOf, { strict: true, encode: encodeForUrlTemplate });
      const sourceId = renderTemplateParts(idParts, valueOf, { strict: true });
      if (!('value' in madeUrl) || !('value' in sourceId)) return undefined;
      const resolved = resolveUrlToItemId(madeUrl.value, [resolver])?.itemId;
      const kept = isItemIdKeptAsIs(sourceId.value);
      const state =
        resolved !== undefined && kept && resolved === sourceId.value
          ? 'right'
          : resolved !== undefined && isItemIdKeptAsIs(resolved)
            ? 'wrong'
            : 'none';
      return { probe, url: madeUrl.value, sourceId: sourceId.value, kept, resolved, state };
    }).filter((o) => o !== undefined);
    const wrong = outcomes.find((o) => o.state === 'wrong');
    const right = outcomes.some((o) => o.state === 'right');
    if (right && !wrong) return;
    const both = `itemId "${resolver.itemId}" (urlPattern "${m.urlPattern}") and mapping.id "${idTemplate}" (${url.source} "${urlTemplate}")`;
    const idNames = templatePlaceholders(idParts).map(key);
    const urlNames = templatePlaceholders(url.parts).map(key);
    const otherFields =
      idNames.some((n) => !urlNames.includes(n)) &&
      ` (the id uses {${idNames.join('}, {')}}, the URL carries {${urlNames.join('}, {')}})`;
    let message: string;
    if (wrong) {
      const itemOf = wrong.kept
        ? `"${wrong.sourceId}"`
        : `an encoded id (its source id "${wrong.sourceId}" is not kept as is)`;
      message = `${both} disagree: ${wrong.url} resolves to "${wrong.resolved}", but the record with that URL has the item id ${itemOf}, so a shared link would open another item or none${otherFields || ''}`;
    } else if (!outcomes.some((o) => o.kept)) {
      message = `${both}: the mapping encodes every id (its literal text has characters other than letters, digits, - and _), and a URL can only give an id as written, so no URL resolves to an item`;
    } else if (outcomes.every((o) => o.resolved === undefined)) {
      message = `${both}: the resolver matches none of the URLs the mapping makes (e.g. ${outcomes[0]!.url}), so no URL resolves to an item`;
    } else {
      message = `${both}: the ids the resolver builds are not the mapping's${otherFields || ''}`;
    }
    out.push(
      warning(
        `${path}[${i}].itemId`,
        message,
        'make itemId build exactly mapping.id from the URL: capture the id\'s fields in urlPattern with only letters, digits, - and _, ending at a boundary, e.g. "/tickets/(?<ticketId>[A-Za-z0-9_-]+)(?:[/?#]|$)" with itemId "{ticketId}" and mapping.id "{ticketId}"',
      ),
    );
  });
  return out;
}

const key = (p: { path: string[] }) => p.path.join('.');
function templateText(ref: ValueRef): string {
  const kind = classifyValueRef(ref);
  return 'template' in kind ? kind.template : `{${kind.field}}`;
}
