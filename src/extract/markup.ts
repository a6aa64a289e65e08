/**
 * A linear-time markup scanner for XML parts (OOXML) and HTML: htmlparser2's `Tokenizer` (a character state
 * machine, one pass) turned into open/close/text events, with no element stack. htmlparser2's `Parser` is not
 * used: it keeps open elements in an array it `unshift`s and searches on every close tag, which is quadratic on
 * thousands of unclosed or mismatched tags. Consumers keep their own counters, never a search over open elements.
 */
import { Tokenizer } from 'htmlparser2';

export type Attributes = Record<string, string>;

export interface MarkupHandler {
  /** A start tag; `selfClosing` for `<x/>`, which is followed by `close(name)` */
  open?(name: string, attrs: Attributes, selfClosing: boolean): void;
  close?(name: string): void;
  /** Text with entities decoded; one run of text may arrive in several calls */
  text?(text: string): void;
}

/**
 * Scan `source` once. `xml`: names keep their case, CDATA is text, only XML's entities are decoded. `html`: names
 * and attribute names are lower-cased, `<script>`/`<style>`/`<title>`/`<textarea>` contents are raw text up to their
 * end tag, HTML's named entities are decoded, CDATA is ignored.
 */
export function scanMarkup(source: string, mode: 'xml' | 'html', handler: MarkupHandler): void {
  const html = mode === 'html';
  const name = (start: number, end: number) => {
    const s = source.slice(start, end);
    return html ? s.toLowerCase() : s;
  };
  let tag = '';
  let attrs: Attributes = Object.create(null) as Attributes;
  let attrName = '';
  let attrValue = '';
  const tokenizer = new Tokenizer(
    { xmlMode: !html, decodeEntities: true },
    {
      onopentagname(start, end) {
        tag = name(start, end);
        attrs = Object.create(null) as Attributes;
      },
      onattribname(start, end) {
        attrName = name(start, end);
        attrValue = '';
      },
      onattribdata(start, end) {
        attrValue += source.slice(start, end);
      },
      onattribentity(codepoint) {
        attrValue += String.fromCodePoint(codepoint);
      },
      onattribend() {
        if (!(attrName in attrs)) attrs[attrName] = attrValue;
        attrValue = '';
      },
      onopentagend() {
        handler.open?.(tag, attrs, false);
      },
      onselfclosingtag() {
        handler.open?.(tag, attrs, true);
        handler.close?.(tag);
      },
      onclosetag(start, end) {
        handler.close?.(name(start, end));
      },
      ontext(start, end) {
        if (end > start) handler.text?.(source.slice(start, end));
      },
      ontextentity(codepoint) {
        handler.text?.(String.fromCodePoint(codepoint));
      },
      oncdata(start, end, offset) {
        if (!html && end - offset > start) handler.text?.(source.slice(start, end - offset));
      },
      oncomment() {},
      ondeclaration() {},
      onprocessinginstruction() {},
      onend() {},
    },
  );
  tokenizer.write(source);
  tokenizer.end();
}

/** Local name of a qualified XML name (`a:t` → `t`). */
export const localName = (qname: string): string => qname.slice(qname.indexOf(':') + 1);
