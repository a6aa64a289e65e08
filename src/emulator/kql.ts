/**
 * The part of KQL (Keyword Query Language) the Microsoft Search API applies to external items, as the emulator
 * evaluates it: free-text terms match whole words of the content and of searchable properties (`term*` matches a
 * prefix; `"a phrase"` consecutive words), `property:value` restrictions apply to queryable properties (`:`/`=`
 * word or phrase match for strings and equality for numbers and dates, `<`, `>`, `<=`, `>=`, `<>` comparisons,
 * `value*` prefixes), `AND` (also implicit), `OR`, `NOT` / `-term`, parentheses; `*` alone matches everything.
 * https://learn.microsoft.com/sharepoint/dev/general-development/keyword-query-language-kql-syntax-reference
 */
import { GraphError } from './http.js';

export type Node =
  | { kind: 'all' }
  | { kind: 'term'; words: string[]; prefix: boolean }
  | { kind: 'restriction'; property: string; op: string; value: string; prefix: boolean }
  | { kind: 'and' | 'or'; left: Node; right: Node }
  | { kind: 'not'; node: Node };

type Token =
  | { t: 'word'; v: string }
  | { t: 'phrase'; v: string }
  | { t: 'restriction'; property: string; op: string; value: string; quoted: boolean }
  | { t: '(' }
  | { t: ')' }
  | { t: 'AND' | 'OR' | 'NOT' | '-' };

function bad(message: string): GraphError {
  return new GraphError(400, 'BadRequest', `query.queryString: ${message}`);
}

/** Words of a text, lowercased (letters and digits; everything else separates words). */
export function words(text: string): string[] {
  return text.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? [];
}

function tokenize(q: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  const readQuoted = (): string => {
    const end = q.indexOf('"', i + 1);
    if (end < 0) throw bad(`the quote at position ${i} is never closed.`);
    const v = q.slice(i + 1, end);
    i = end + 1;
    return v;
  };
  while (i < q.length) {
    const ch = q[i]!;
    if (/\s/.test(ch)) {
      i++;
      continue;
    }
    if (ch === '(' || ch === ')') {
      out.push({ t: ch });
      i++;
      continue;
    }
    if (ch === '"') {
      out.push({ t: 'phrase', v: readQuoted() });
      continue;
    }
    if (ch === '-' && i + 1 < q.length && !/\s/.test(q[i + 1]!)) {
      out.push({ t: '-' });
      i++;
      continue;
    }
    const m = /^([A-Za-z_][A-Za-z0-9_]*)(<>|<=|>=|:|=|<|>)/.exec(q.slice(i));
    if (m) {
      i += m[0].length;
      if (q[i] === '"') out.push({ t: 'restriction', property: m[1]!, op: m[2]!, value: readQuoted(), quoted: true });
      else {
        const v = /^[^\s()]*/.exec(q.slice(i))![0];
        i += v.length;
        if (!v) throw bad(`the restriction '${m[0]}' has no value.`);
        out.push({ t: 'restriction', property: m[1]!, op: m[2]!, value: v, quoted: false });
      }
      continue;
    }
    const w = /^[^\s()"]+/.exec(q.slice(i))![0];
    i += w.length;
    if (w === 'AND' || w === 'OR' || w === 'NOT') out.push({ t: w });
    else out.push({ t: 'word', v: w });
  }
  return out;
}

/** Parse a query string into a tree; throws a 400 naming the problem. */
export function parseKql(q: string): Node {
  const tokens = tokenize(q);
  if (tokens.length === 0)
    throw bad('the query is empty; send words, property:value restrictions, or * for everything.');
  let pos = 0;
  const peek = () => tokens[pos];
  const orExpr = (): Node => {
    let left = andExpr();
    while (peek()?.t === 'OR') {
      pos++;
      left = { kind: 'or', left, right: andExpr() };
    }
    return left;
  };
  const andExpr = (): Node => {
    let left = notExpr();
    for (;;) {
      const t = peek();
      if (!t || t.t === ')' || t.t === 'OR') return left;
      if (t.t === 'AND') pos++;
      left = { kind: 'and', left, right: notExpr() };
    }
  };
  const notExpr = (): Node => {
    const t = peek();
    if (t?.t === 'NOT' || t?.t === '-') {
      pos++;
      return { kind: 'not', node: notExpr() };
    }
    return primary();
  };
  const primary = (): Node => {
    const t = tokens[pos++];
    if (!t) throw bad('the query ends where a term was expected (after AND, OR or NOT).');
    switch (t.t) {
      case '(': {
        const inner = orExpr();
        if (tokens[pos++]?.t !== ')') throw bad('a parenthesis is never closed.');
        return inner;
      }
      case 'phrase':
        return { kind: 'term', words: words(t.v), prefix: false };
      case 'word': {
        if (t.v === '*') return { kind: 'all' };
        const prefix = t.v.endsWith('*');
        return { kind: 'term', words: words(prefix ? t.v.slice(0, -1) : t.v), prefix };
      }
      case 'restriction': {
        const prefix = !t.quoted && t.value.endsWith('*') && t.value.length > 1;
        return {
          kind: 'restriction',
          property: t.property,
          op: t.op === '=' ? ':' : t.op,
          value: prefix ? t.value.slice(0, -1) : t.value,
          prefix,
        };
      }
      default:
        throw bad(`unexpected '${t.t === ')' ? ')' : t.t}'.`);
    }
  };
  const tree = orExpr();
  if (pos < tokens.length) throw bad("unexpected ')'.");
  return tree;
}

/** Whether `haystack` (words) contains `needle` (words) consecutively; the last word may be a prefix. */
export function containsWords(haystack: string[], needle: string[], prefix: boolean): boolean {
  if (needle.length === 0) return false;
  outer: for (let i = 0; i + needle.length <= haystack.length; i++) {
    for (let j = 0; j < needle.length; j++) {
      const h = haystack[i + j]!;
      const n = needle[j]!;
      const last = j === needle.length - 1;
      if (last && prefix ? !h.startsWith(n) : h !== n) continue outer;
    }
    return true;
  }
  return false;
}

/** The free-text terms of a query (for searchTerms and highlighting). */
export function freeTextTerms(node: Node): string[] {
  switch (node.kind) {
    case 'term':
      return [node.words.join(' ')].filter((w) => w.length > 0);
    case 'and':
    case 'or':
      return [...freeTextTerms(node.left), ...freeTextTerms(node.right)];
    default:
      return [];
  }
}
