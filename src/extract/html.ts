/** HTML to clean text (block-level line breaks, scripts and styles dropped) and HTML sanitising for `html: 'keep'`. */
import { Parser } from 'htmlparser2';

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
  const parser = new Parser(
    {
      onopentag(name, attrs) {
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
      ontext(data) {
        if (inTitle) title += data;
        if (dropDepth) return;
        out.push(preDepth ? data.replace(/ /g, '\ue000') : data.replace(/\s+/g, ' '));
      },
      onclosetag(name) {
        if (name === 'title') inTitle = false;
        if (DROP.has(name)) {
          if (!VOID.has(name) && dropDepth > 0) dropDepth--;
          return;
        }
        if (dropDepth) return;
        if (name === 'pre') preDepth = Math.max(0, preDepth - 1);
        if (BLOCK.has(name)) newline();
      },
    },
    { decodeEntities: true, lowerCaseTags: true, lowerCaseAttributeNames: true },
  );
  parser.write(html);
  parser.end();
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

/**
 * Re-serialise HTML keeping structure and text but dropping script/style/iframe/object/embed/template elements,
 * comments, event-handler attributes (`on*`), `style` attributes and non-http(s)/mailto/tel URLs.
 */
export function sanitizeHtml(html: string): string {
  const out: string[] = [];
  let dropDepth = 0;
  const parser = new Parser(
    {
      onopentag(name, attrs) {
        if (DROP.has(name) && name !== 'head' && name !== 'svg' && name !== 'math') {
          if (!VOID.has(name)) dropDepth++;
          return;
        }
        if (name === 'svg' || name === 'math') {
          dropDepth++;
          return;
        }
        if (dropDepth || name === 'meta' || name === 'link' || name === 'base') return;
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
      },
      ontext(data) {
        if (!dropDepth) out.push(escapeText(data));
      },
      onclosetag(name) {
        if (DROP.has(name) && name !== 'head') {
          if (!VOID.has(name) && dropDepth > 0) dropDepth--;
          return;
        }
        if (dropDepth || VOID.has(name)) return;
        out.push(`</${name}>`);
      },
    },
    { decodeEntities: true, lowerCaseTags: true, lowerCaseAttributeNames: true, recognizeSelfClosing: true },
  );
  parser.write(html);
  parser.end();
  return out.join('').trim();
}
