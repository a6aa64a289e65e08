/**
 * DOCX, PPTX and XLSX text and core properties. Parts come from the bounded zip reader (inflated bytes counted
 * against `maxInflatedBytes`) and every XML part is read by the linear markup scanner in one pass: no regular
 * expression runs over document text, no DOM is built, and no element stack is searched.
 */
import { localName, scanMarkup } from './markup.js';
import type { Attributes } from './markup.js';
import { ExtractError } from './types.js';
import type { ExtractMetadata } from './types.js';
import type { InflateBudget, ZipArchive } from './zip.js';

export type OoxmlKind = 'docx' | 'pptx' | 'xlsx';

export function ooxmlKind(names: readonly string[]): OoxmlKind | undefined {
  const set = new Set(names);
  if (set.has('word/document.xml')) return 'docx';
  if (set.has('ppt/presentation.xml')) return 'pptx';
  if (set.has('xl/workbook.xml')) return 'xlsx';
  return undefined;
}

type CoreProps = Pick<ExtractMetadata, 'title' | 'author' | 'created' | 'modified' | 'pageCount'>;

function isoDate(v: string | undefined): string | undefined {
  if (!v) return undefined;
  const d = new Date(v);
  return Number.isNaN(d.getTime()) ? undefined : d.toISOString();
}

/** Text of the first element with each of `names` (qualified names), trimmed; bounded to 4 KB each. */
function firstTexts(xml: string, names: readonly string[]): Map<string, string> {
  const found = new Map<string, string>();
  let current: string | undefined;
  let depth = 0;
  let buf = '';
  scanMarkup(xml, 'xml', {
    open(name) {
      if (current) depth++;
      else if (names.includes(name) && !found.has(name)) {
        current = name;
        depth = 0;
        buf = '';
      }
    },
    close(name) {
      if (!current) return;
      if (depth > 0) depth--;
      else if (name === current) {
        found.set(current, buf.trim());
        current = undefined;
      }
    },
    text(t) {
      if (current && buf.length < 4096) buf += t.slice(0, 4096 - buf.length);
    },
  });
  return found;
}

/** docProps/core.xml (title, creator, dates) and docProps/app.xml (pages, slides). */
export function coreProperties(zip: ZipArchive, budget: InflateBudget): CoreProps {
  const out: CoreProps = {};
  const core = zip.readText('docProps/core.xml', budget);
  if (core) {
    const t = firstTexts(core, ['dc:title', 'dc:creator', 'dcterms:created', 'dcterms:modified']);
    const title = t.get('dc:title');
    const author = t.get('dc:creator');
    const created = isoDate(t.get('dcterms:created'));
    const modified = isoDate(t.get('dcterms:modified'));
    if (title) out.title = title;
    if (author) out.author = author;
    if (created) out.created = created;
    if (modified) out.modified = modified;
  }
  const app = zip.readText('docProps/app.xml', budget);
  if (app) {
    const t = firstTexts(app, ['Pages', 'Slides']);
    const pages = Number(t.get('Pages') || t.get('Slides'));
    if (Number.isInteger(pages) && pages > 0) out.pageCount = pages;
  }
  return out;
}

/**
 * Lines of text collected while scanning: `push` appends to the current paragraph, `end` closes it. The total is
 * bounded by the XML it came from (which the inflation budget bounds).
 */
class Paragraphs {
  readonly lines: string[] = [];
  private line = '';
  push(s: string): void {
    this.line += s;
  }
  end(): void {
    const t = this.line.trim();
    if (t) this.lines.push(t);
    this.line = '';
  }
}

/**
 * DrawingML text (slides, notes): `<a:t>` runs grouped by `<a:p>` paragraphs, `<a:br/>` and `<a:tab/>` kept.
 * Nested or unclosed paragraphs simply end the current line: one pass, whatever the nesting.
 */
export function drawingText(xml: string): string {
  const out = new Paragraphs();
  let inText = 0;
  scanMarkup(xml, 'xml', {
    open(name, _attrs, selfClosing) {
      const n = localName(name);
      if (n === 'p') out.end();
      else if (n === 't' && !selfClosing) inText++;
      else if (n === 'br') out.push('\n');
      else if (n === 'tab') out.push('\t');
    },
    close(name) {
      const n = localName(name);
      if (n === 'p') out.end();
      else if (n === 't' && inText > 0) inText--;
    },
    text(t) {
      if (inText > 0) out.push(t);
    },
  });
  out.end();
  return out.lines.join('\n');
}

const partNumber = (name: string): number => {
  const m = /(\d{1,9})\.xml$/.exec(name);
  return m ? Number(m[1]) : 0;
};

export function pptxText(zip: ZipArchive, budget: InflateBudget): { text: string; slides: number } {
  const slides = zip.names
    .filter((n) => /^ppt\/slides\/slide\d{1,9}\.xml$/.test(n))
    .sort((a, b) => partNumber(a) - partNumber(b));
  const blocks: string[] = [];
  for (const name of slides) {
    const body = drawingText(zip.readText(name, budget) ?? '');
    const notesXml = zip.readText(`ppt/notesSlides/notesSlide${partNumber(name)}.xml`, budget);
    const notes = notesXml ? drawingText(notesXml) : '';
    const block = [body, notes && `Notes: ${notes}`].filter(Boolean).join('\n');
    if (block) blocks.push(block);
  }
  return { text: blocks.join('\n\n'), slides: slides.length };
}

/**
 * WordprocessingML body text: one line per paragraph (`<w:t>` runs, tabs, breaks), a table row as one line of
 * tab-separated cells; deleted text, field instructions and the `mc:Choice` copy of alternate content (its
 * `mc:Fallback` holds the same text) are left out. Paragraphs are separated by a blank line.
 */
export function docxText(xml: string): string {
  const out = new Paragraphs();
  let inText = 0;
  let skip = 0; // inside w:delText, w:instrText, mc:Choice
  let cellDepth = 0; // table cells open (nested tables stay inside the outer cell)
  let cell = ''; // text of the outermost open cell
  let row: string[] | undefined; // cells of the outermost open row
  const put = (s: string) => {
    if (cellDepth) cell += s;
    else out.push(s);
  };
  scanMarkup(xml, 'xml', {
    open(name, _attrs, selfClosing) {
      const n = localName(name);
      if (n === 'Choice' || n === 'delText' || n === 'instrText') {
        if (!selfClosing) skip++;
        return;
      }
      if (skip) return;
      if (n === 'p') {
        if (!cellDepth) out.end();
        else if (cell) cell += ' ';
      } else if (n === 't') {
        if (!selfClosing) inText++;
      } else if (n === 'tab') put('\t');
      else if (n === 'br' || n === 'cr') put(cellDepth ? ' ' : '\n');
      else if (n === 'noBreakHyphen') put('-');
      else if (n === 'tr' && !cellDepth && !selfClosing) {
        out.end();
        row = [];
      } else if (n === 'tc' && !selfClosing) {
        if (cellDepth === 0) cell = '';
        cellDepth++;
      }
    },
    close(name) {
      const n = localName(name);
      if (n === 'Choice' || n === 'delText' || n === 'instrText') {
        if (skip > 0) skip--;
        return;
      }
      if (skip) return;
      if (n === 't') {
        if (inText > 0) inText--;
      } else if (n === 'p') {
        if (!cellDepth) out.end();
      } else if (n === 'tc' && cellDepth > 0) {
        cellDepth--;
        if (cellDepth === 0) {
          row?.push(cell.replace(/\s+/g, ' ').trim());
          cell = '';
        }
      } else if (n === 'tr' && !cellDepth && row) {
        while (row.length && !row[row.length - 1]) row.pop();
        out.push(row.join('\t'));
        out.end();
        row = undefined;
      }
    },
    text(t) {
      if (inText > 0 && !skip) put(t);
    },
  });
  if (row) out.push(row.join('\t'));
  out.end();
  return out.lines.join('\n\n');
}

function attr(attrs: Attributes, name: string): string | undefined {
  return attrs[name];
}

function resolveTarget(base: string, target: string): string {
  if (target.startsWith('/')) return target.slice(1);
  const parts = base.split('/').slice(0, -1);
  for (const seg of target.split('/')) {
    if (seg === '..') parts.pop();
    else if (seg !== '.') parts.push(seg);
  }
  return parts.join('/');
}

/** Shared strings: each `<si>`'s `<t>` runs, phonetic `<rPh>` runs left out. */
function sharedStrings(xml: string): string[] {
  const shared: string[] = [];
  let inSi = false;
  let inT = 0;
  let inPhonetic = 0;
  let s = '';
  scanMarkup(xml, 'xml', {
    open(name, _attrs, selfClosing) {
      const n = localName(name);
      if (n === 'si') {
        if (inSi) shared.push(s);
        inSi = true;
        s = '';
        if (selfClosing) {
          shared.push('');
          inSi = false;
        }
      } else if (n === 'rPh' && !selfClosing) inPhonetic++;
      else if (n === 't' && !selfClosing) inT++;
    },
    close(name) {
      const n = localName(name);
      if (n === 'si' && inSi) {
        shared.push(s);
        inSi = false;
        inT = 0;
        inPhonetic = 0;
      } else if (n === 'rPh' && inPhonetic > 0) inPhonetic--;
      else if (n === 't' && inT > 0) inT--;
    },
    text(t) {
      if (inSi && inT > 0 && !inPhonetic) s += t;
    },
  });
  if (inSi) shared.push(s);
  return shared;
}

/** Relationship id → resolved part name. */
function relationships(xml: string, base: string): Map<string, string> {
  const targets = new Map<string, string>();
  scanMarkup(xml, 'xml', {
    open(name, attrs) {
      if (localName(name) !== 'Relationship') return;
      const id = attr(attrs, 'Id');
      const target = attr(attrs, 'Target');
      if (id && target && attr(attrs, 'TargetMode') !== 'External') targets.set(id, resolveTarget(base, target));
    },
  });
  return targets;
}

/** One sheet's rows: cells tab-separated, one line per row. */
function sheetLines(xml: string, shared: readonly string[]): string[] {
  const lines: string[] = [];
  let cells: string[] = [];
  let type: string | undefined;
  let inCell = false;
  let inV = false;
  let inIs = 0;
  let v = '';
  let inline = '';
  let hasV = false;
  const endCell = () => {
    let value: string | undefined;
    if (type === 'inlineStr') value = inline;
    else if (hasV) {
      if (type === 's') value = shared[Number(v)];
      else if (type === 'b') value = v === '1' ? 'TRUE' : 'FALSE';
      else value = v;
    }
    if (value !== undefined && value.trim() !== '') cells.push(value.replace(/\s+/g, ' ').trim());
    inCell = false;
  };
  const endRow = () => {
    if (inCell) endCell();
    if (cells.length) lines.push(cells.join('\t'));
    cells = [];
  };
  scanMarkup(xml, 'xml', {
    open(name, attrs, selfClosing) {
      const n = localName(name);
      if (n === 'row') endRow();
      else if (n === 'c') {
        if (inCell) endCell();
        type = attr(attrs, 't');
        inCell = !selfClosing;
        v = '';
        inline = '';
        hasV = false;
        inIs = 0;
      } else if (!inCell) return;
      else if (n === 'v' && !selfClosing) {
        inV = true;
        hasV = true;
      } else if (n === 'is' && !selfClosing) inIs++;
    },
    close(name) {
      const n = localName(name);
      if (n === 'row') endRow();
      else if (n === 'c' && inCell) endCell();
      else if (n === 'v') inV = false;
      else if (n === 'is' && inIs > 0) inIs--;
    },
    text(t) {
      if (!inCell) return;
      if (inV) v += t;
      else if (inIs > 0) inline += t;
    },
  });
  endRow();
  return lines;
}

export function xlsxText(zip: ZipArchive, budget: InflateBudget): { text: string; sheets: number } {
  const sst = zip.readText('xl/sharedStrings.xml', budget);
  const shared = sst ? sharedStrings(sst) : [];
  const workbook = zip.readText('xl/workbook.xml', budget) ?? '';
  const rels = zip.readText('xl/_rels/workbook.xml.rels', budget);
  const targets = rels ? relationships(rels, 'xl/workbook.xml') : new Map<string, string>();
  const sheets: { name: string; part: string | undefined }[] = [];
  scanMarkup(workbook, 'xml', {
    open(name, attrs) {
      if (localName(name) !== 'sheet') return;
      const rid = attr(attrs, 'r:id');
      sheets.push({ name: attr(attrs, 'name') ?? `Sheet${sheets.length + 1}`, part: rid && targets.get(rid) });
    },
  });
  const blocks: string[] = [];
  const seen = new Set<string>();
  for (const sheet of sheets) {
    if (!sheet.part || seen.has(sheet.part)) continue; // a part listed twice is read once
    seen.add(sheet.part);
    const xml = zip.readText(sheet.part, budget);
    if (!xml) continue;
    const lines = sheetLines(xml, shared);
    if (lines.length) blocks.push(`${sheet.name}\n${lines.join('\n')}`);
  }
  return { text: blocks.join('\n\n'), sheets: sheets.length };
}

/** The main part of a DOCX as text. */
export function docxBodyText(zip: ZipArchive, budget: InflateBudget): string {
  const xml = zip.readText('word/document.xml', budget);
  if (xml === undefined) throw new ExtractError('corrupt', 'the DOCX has no word/document.xml');
  return docxText(xml);
}
