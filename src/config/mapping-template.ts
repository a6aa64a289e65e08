/**
 * The template language of the mapping (docs/mapping.md "Values: field paths and templates"):
 *
 * - `{field.path}` is replaced by the record's value at that dotted path;
 * - `{{` and `}}` are literal braces;
 * - in URL templates (`mapping.url`, `mapping.iconUrl`) a value is percent-encoded as a URI component, so a
 *   space or a `/` in a ticket id stays inside its path segment; `{+field.path}` is the raw form for values that
 *   are paths or whole URLs: reserved characters (`/`, `?`, `#`, `:` …) and existing `%XX` escapes are kept,
 *   anything else that a URL may not contain is percent-encoded (RFC 6570 reserved expansion).
 *
 * Parsing and rendering only: what a record value is (missing, how it prints) is the caller's business, so
 * the mapper and the definition checks render the same way.
 */

/** One piece of a parsed template: literal text, or a placeholder (`raw`: written `{+path}`). */
export type TemplatePart = { text: string } | TemplatePlaceholder;
export interface TemplatePlaceholder {
  path: string[];
  /** Written `{+path}`: in URL templates the value is kept as a path (reserved characters are not encoded). */
  raw?: true;
}

/** A value taken from the record: a template with `{field.path}` placeholders, or a bare field path. */
export type ValueRef = string | { field: string } | { template: string };

export function isPlaceholder(part: TemplatePart): part is TemplatePlaceholder {
  return 'path' in part;
}

/**
 * Parse `a {x.y} b {+z}`; `{{` and `}}` are literal braces. Throws an Error with a readable message (the
 * position and the fix) on bad syntax; definition checks report it with the JSON path.
 */
export function parseTemplate(template: string): TemplatePart[] {
  const parts: TemplatePart[] = [];
  let text = '';
  for (let i = 0; i < template.length; i++) {
    const c = template[i];
    if (c === '{') {
      if (template[i + 1] === '{') {
        text += '{';
        i++;
        continue;
      }
      const end = template.indexOf('}', i + 1);
      if (end < 0) throw new Error(`unclosed "{" at position ${i}`);
      let inner = template.slice(i + 1, end).trim();
      const raw = inner.startsWith('+');
      if (raw) inner = inner.slice(1).trim();
      if (!inner || inner.includes('{')) throw new Error(`empty or nested placeholder at position ${i}`);
      if (text) parts.push({ text });
      text = '';
      parts.push(raw ? { path: parseFieldPath(inner), raw: true } : { path: parseFieldPath(inner) });
      i = end;
    } else if (c === '}') {
      if (template[i + 1] === '}') {
        text += '}';
        i++;
        continue;
      }
      throw new Error(`unmatched "}" at position ${i} (write "}}" for a literal brace)`);
    } else {
      text += c;
    }
  }
  if (text) parts.push({ text });
  return parts;
}

/** `owner.email` → `['owner', 'email']`. Throws on an empty segment. */
export function parseFieldPath(path: string): string[] {
  const segs = path.split('.').map((s) => s.trim());
  if (segs.some((s) => s.length === 0)) throw new Error(`bad field path "${path}"`);
  return segs;
}

/** A string with a `{` is a template; any other string is a field path; the object forms say which. */
export function classifyValueRef(ref: ValueRef): { template: string } | { field: string } {
  if (typeof ref === 'string') return ref.includes('{') ? { template: ref } : { field: ref };
  return ref;
}

/** A value reference as a parsed template: a field path `a.b` is the template `{a.b}`. */
export function valueRefAsTemplate(ref: ValueRef): TemplatePart[] {
  const kind = classifyValueRef(ref);
  return 'template' in kind ? parseTemplate(kind.template) : [{ path: parseFieldPath(kind.field) }];
}

/** The placeholders of a parsed template, in order. */
export function templatePlaceholders(parts: readonly TemplatePart[]): TemplatePlaceholder[] {
  return parts.filter(isPlaceholder);
}

export interface RenderOptions {
  /** A placeholder without a value makes the whole result missing (ids, properties, URLs, ACL values). */
  strict: boolean;
  /** How a value is written into the text (HTML escaping, URL encoding); default as is. */
  encode?: (value: string, placeholder: TemplatePlaceholder) => string;
}

/**
 * Render a parsed template. `valueOf` returns the printed value of a placeholder, or undefined when the record
 * has none (the caller decides what "missing" means). Strict: the first missing placeholder is reported;
 * otherwise it renders as an empty string (content).
 */
export function renderTemplateParts(
  parts: readonly TemplatePart[],
  valueOf: (placeholder: TemplatePlaceholder) => string | undefined,
  options: RenderOptions,
): { value: string } | { missing: string } {
  let out = '';
  for (const part of parts) {
    if (!isPlaceholder(part)) {
      out += part.text;
      continue;
    }
    const v = valueOf(part);
    if (v === undefined) {
      if (options.strict) return { missing: part.path.join('.') };
      continue;
    }
    out += options.encode ? options.encode(v, part) : v;
  }
  return { value: out };
}

// ------------------------------------------------------------------------------------------ URLs

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;
/** Lone surrogates cannot be written as UTF-8: they become U+FFFD (and so, percent-encoded, `%EF%BF%BD`). */
const wellFormed = (s: string) => s.replace(LONE_SURROGATE, '\uFFFD');
const hexEscape = (c: string) => '%' + c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0');

/** A value as one URI component (RFC 3986): everything but `A-Z a-z 0-9 - . _ ~` is percent-encoded. */
export function encodeUriComponentStrict(value: string): string {
  return encodeURIComponent(wellFormed(value)).replace(/[!'()*]/g, hexEscape);
}

/**
 * A value as a path or URL (RFC 6570 reserved expansion): unreserved and reserved characters and well-formed
 * `%XX` escapes are kept; anything else (spaces, quotes, non-ASCII, a stray `%`) is percent-encoded.
 */
export function encodeUriReserved(value: string): string {
  return wellFormed(value).replace(/%(?![0-9A-Fa-f]{2})|[^A-Za-z0-9\-._~:/?#[\]@!$&'()*+,;=%]+/g, (run) =>
    run === '%' ? '%25' : encodeURIComponent(run).replace(/[!'()*]/g, hexEscape),
  );
}

/** How a placeholder's value is written into a URL template: `{x}` as a component, `{+x}` as a path. */
export function encodeForUrlTemplate(value: string, placeholder: TemplatePlaceholder): string {
  return placeholder.raw ? encodeUriReserved(value) : encodeUriComponentStrict(value);
}

const URL_CHARS = /^[A-Za-z0-9\-._~:/?#[\]@!$&'()*+,;=%]*$/;

/**
 * Why `s` is not an absolute http(s) URL as written, or undefined when it is one. As written: a string that
 * `new URL()` would repair (a raw space, a non-ASCII letter, a lone `%`) is not a URL Graph should store.
 */
export function whyNotAbsoluteHttpUrl(s: string): string | undefined {
  if (!/^https?:\/\/[^/?#]/i.test(s)) return 'it does not start with http:// or https:// and a host';
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (!URL_CHARS.test(c)) {
      const code = c.charCodeAt(0);
      const shown = c === ' ' ? 'a space' : code < 0x20 || code === 0x7f ? 'a control character' : `"${c}"`;
      return `${shown} at position ${i} is not allowed in a URL`;
    }
    if (c === '%' && !/^[0-9A-Fa-f]{2}$/.test(s.slice(i + 1, i + 3)))
      return `"%" at position ${i} does not start a %XX escape`;
  }
  let url: URL;
  try {
    url = new URL(s);
  } catch {
    return 'it does not parse as a URL';
  }
  if (!url.hostname) return 'it has no host';
  return undefined;
}
