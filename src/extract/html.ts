/**
 * HTML to clean text (block-level line breaks, scripts and styles dropped) and HTML sanitising for `html: 'keep'`.
 * Both read the document with the linear markup scanner (src/extract/markup.ts): no element stack is searched, so
 * thousands of unclosed or mismatched tags cost one pass.
 */
import { scanMarkup } from './markup.js';

const DROP = new Set(['script', 'style', 'noscript', 'template', 'head', 'svg', 'math', 'iframe', 'object', 'embed']);
const BLOCK = new Set([
  'address',
  'article',
  'aside',
  'blockquote',
  'body',
  'caption',
  'dd',
  'details',
  'dialog',
  'div',
  'dl',
  'dt',
  'fieldset',
  'figcaption',
  'figure',
  'footer',
  'form',
  'h1',
  'h2',
  'h3',
  'h4',
  'h5',
  'h6',
  'header',
  'hr',
  'html',
  'legend',
  'li',
  'main',
  'nav',
  'ol',
  'p',
  'pre',
  'section',
  'summary',
  'table',
  'tbody',
  'tfoot',
  'thead',
  'tr',
  'ul',
]);
const VOID = new Set([
  'area',
  'base',
  'br',
  'col',
  'embed',
  'hr',
  'img',
  'input',
  'link',
  'meta',
  'source',
  'track',
  'wbr',
]);

export interface HtmlText {
  text: string;
  title?: string;
  author?: string;
}

/** Convert HTML to text: one line per block element, cells separated by tabs, whitespace collapsed elsewhere. */
export function htmlToText(html: string): HtmlText {
  const out: string[] = [];
  let dropDepth = 0;
  let preDepth = 0;
  let inTitle = false;
  let title = '';
  let author: string | undefined;
  const newline = () => out.push('\n');
  scanMarkup(html, 'html', {
    open(name, attrs) {
      if (name === 'title') inTitle = true;
      if (name === 'meta' && attrs.name?.toLowerCase() === 'author' && attrs.content) author = attrs.content.trim();
      if (DROP.has(name)) {
        if (!VOID.has(name)) dropDepth++;
        return;
      }
      if (dropDepth) return;
      if (name === 'pre') preDepth++;
      if (name === 'br') newline();
      else if (name === 'td' || name === 'th') out.push('\t');
      else if (name === 'img' && attrs.alt) out.push(` ${attrs.alt} `);
      else if (BLOCK.has(name)) newline();
    },
    text(data) {
      if (inTitle) title += data;
      if (dropDepth) return;
      out.push(preDepth ? data.replace(/ /g, '\ue000') : data.replace(/\s+/g, ' '));
    },
    close(name) {
      if (name === 'title') inTitle = false;
      if (DROP.has(name)) {
        if (!VOID.has(name) && dropDepth > 0) dropDepth--;
        return;
      }
      if (dropDepth) return;
      if (name === 'pre') preDepth = Math.max(0, preDepth - 1);
      if (BLOCK.has(name)) newline();
    },
  });
  const text = out
    .join('')
    .split('\n')
    .map((line) =>
      line
        .replace(/[ \u00a0]+/g, ' ')
        .replace(/ ?\t ?/g, '\t')
        .replace(/^\t/, '')
        .trim()
        .replace(/\ue000/g, ' '),
    )
    .filter((line) => line !== '')
    .join('\n');
  const t = title.replace(/\s+/g, ' ').trim();
  return { text, ...(t ? { title: t } : {}), ...(author ? { author } : {}) };
}

const URL_ATTRS = new Set(['href', 'src', 'action', 'formaction', 'xlink:href', 'background', 'poster', 'srcset']);
const SAFE_SCHEME = /^(?:https?:|mailto:|tel:|#|\/|\.|[^:]*$)/i;

const escapeAttr = (v: string) => v.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;');
const escapeText = (v: string) => v.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** Opening one of these closes the open element on top when it is one of the listed (as HTML parsers do). */
const IMPLIES_CLOSE: Record<string, ReadonlySet<string>> = {
  li: new Set(['li']),
  p: new Set(['p']),
  tr: new Set(['tr', 'td', 'th']),
  td: new Set(['td', 'th']),
  th: new Set(['td', 'th']),
  dd: new Set(['dd', 'dt']),
  dt: new Set(['dd', 'dt']),
  option: new Set(['option']),
  tbody: new Set(['thead', 'tbody']),
  tfoot: new Set(['thead', 'tbody']),
};

/**
 * Re-serialise HTML keeping structure and text but dropping script/style/iframe/object/embed/template elements,
 * comments, event-handler attributes (`on*`), `style` attributes and non-http(s)/mailto/tel URLs. Elements are
 * balanced: a stray end tag is dropped, unclosed elements are closed at the end.
 */
export function sanitizeHtml(html: string): string {
  const out: string[] = [];
  let dropDepth = 0;
  const stack: string[] = [];
  const openCount = new Map<string, number>();
  const pop = () => {
    const name = stack.pop()!;
    openCount.set(name, openCount.get(name)! - 1);
    out.push(`</${name}>`);
    return name;
  };
  scanMarkup(html, 'html', {
    open(name, attrs) {
      if ((DROP.has(name) && name !== 'head') || name === 'svg' || name === 'math') {
        if (!VOID.has(name)) dropDepth++;
        return;
      }
      if (dropDepth || name === 'meta' || name === 'link' || name === 'base') return;
      const closes = IMPLIES_CLOSE[name];
      while (closes && stack.length && closes.has(stack[stack.length - 1]!)) pop();
      const kept = Object.entries(attrs)
        .filter(([k, v]) => {
          if (k.startsWith('on') || k === 'style' || k === 'srcdoc') return false;
          // eslint-disable-next-line no-control-regex -- browsers ignore control characters inside URL schemes
          if (URL_ATTRS.has(k)) return SAFE_SCHEME.test(v.replace(/[\s\u0000-\u001f]/g, ''));
          return /^[a-z][a-z0-9_:.-]*$/.test(k);
        })
        .map(([k, v]) => ` ${k}="${escapeAttr(v)}"`)
        .join('');
      out.push(`<${name}${kept}>`);
      if (!VOID.has(name)) {
        stack.push(name);
        openCount.set(name, (openCount.get(name) ?? 0) + 1);
      }
    },
    text(data) {
      if (!dropDepth) out.push(escapeText(data));
    },
    close(name) {
      if ((DROP.has(name) && name !== 'head') || name === 'svg' || name === 'math') {
        if (!VOID.has(name) && dropDepth > 0) dropDepth--;
        return;
      }
      if (dropDepth || VOID.has(name) || !openCount.get(name)) return;
      while (pop() !== name);
    },
  });
  while (stack.length) pop();
  return out.join('').trim();
}
