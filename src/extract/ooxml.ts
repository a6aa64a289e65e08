/** DOCX (mammoth), PPTX and XLSX (fflate + a small XML scanner) text and core-properties extraction. */
import { unzipSync } from 'fflate';
import mammoth from 'mammoth';
import { ExtractError } from './types.js';
import type { ExtractMetadata } from './types.js';

export type OoxmlKind = 'docx' | 'pptx' | 'xlsx';

export interface ZipEntries {
  files: Record<string, Uint8Array>;
}

/** Unzip with a bomb guard: refuse when the declared uncompressed total exceeds `maxUncompressed`. */
export function readZip(bytes: Uint8Array, maxUncompressed: number, wanted?: (name: string) => boolean): ZipEntries {
  let total = 0;
  let overflow: string | undefined;
  try {
    const files = unzipSync(bytes, {
      filter: (f) => {
        if (wanted && !wanted(f.name)) return false;
        total += f.originalSize;
        if (total > maxUncompressed) {
          overflow = f.name;
          return false;
        }
        return true;
      },
    });
    if (overflow)
      throw new ExtractError(
        'too-large',
        `the archive expands to more than ${maxUncompressed} bytes (at entry ${overflow}); it may be a zip bomb`,
      );
    return { files };
  } catch (err) {
    if (err instanceof ExtractError) throw err;
    throw new ExtractError('corrupt', `the zip container could not be read: ${(err as Error).message}`);
  }
}

/** Entry names and declared uncompressed sizes, without inflating anything (cheap). */
export function zipEntries(bytes: Uint8Array): { name: string; size: number }[] {
  const entries: { name: string; size: number }[] = [];
  try {
    unzipSync(bytes, {
      filter: (f) => {
        entries.push({ name: f.name, size: f.originalSize });
        return false;
      },
    });
  } catch (err) {
    throw new ExtractError('corrupt', `the zip container could not be read: ${(err as Error).message}`);
  }
  return entries;
}

export function ooxmlKind(names: readonly string[]): OoxmlKind | undefined {
  const set = new Set(names);
  if (set.has('word/document.xml')) return 'docx';
  if (set.has('ppt/presentation.xml')) return 'pptx';
  if (set.has('xl/workbook.xml')) return 'xlsx';
  return undefined;
}

const ENTITIES: Record<string, string> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };
export function decodeXml(s: string): string {
  return s.replace(/&(#x[0-9a-f]+|#\d+|[a-z]+);/gi, (m, e: string) => {
    if (e[0] === '#') {
      const code = e[1] === 'x' || e[1] === 'X' ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10);
      return Number.isFinite(code) && code <= 0x10ffff ? String.fromCodePoint(code) : m;
    }
    return ENTITIES[e] ?? m;
  });
}

const utf8 = new TextDecoder('utf-8');
const xmlOf = (zip: ZipEntries, name: string): string | undefined => {
  const f = zip.files[name];
  return f ? utf8.decode(f) : undefined;
};

function tagText(xml: string, tag: string): string | undefined {
  const m = new RegExp(`<${tag}(?:\\s[^>]*)?>([\\s\\S]*?)</${tag}>`).exec(xml);
  const v = m ? decodeXml(m[1]!).trim() : '';
  return v || undefined;
}

function isoDate(v: string | undefined): string | undefined {
  if (!v) return undefined;
  const d = new Date(v);
  return Number.isNaN(d.getTime()) ? undefined : d.toISOString();
}

/** docProps/core.xml (title, creator, dates) and docProps/app.xml (pages, slides). */
export function coreProperties(
  zip: ZipEntries,
): Pick<ExtractMetadata, 'title' | 'author' | 'created' | 'modified' | 'pageCount'> {
  const out: Pick<ExtractMetadata, 'title' | 'author' | 'created' | 'modified' | 'pageCount'> = {};
  const core = xmlOf(zip, 'docProps/core.xml');
  if (core) {
    const title = tagText(core, 'dc:title');
    const author = tagText(core, 'dc:creator');
    const created = isoDate(tagText(core, 'dcterms:created'));
    const modified = isoDate(tagText(core, 'dcterms:modified'));
    if (title) out.title = title;
    if (author) out.author = author;
    if (created) out.created = created;
    if (modified) out.modified = modified;
  }
  const app = xmlOf(zip, 'docProps/app.xml');
  const pages = app ? Number(tagText(app, 'Pages') ?? tagText(app, 'Slides')) : NaN;
  if (Number.isInteger(pages) && pages > 0) out.pageCount = pages;
  return out;
}

/** Text of `<a:t>` runs grouped by `<a:p>` paragraphs (DrawingML: slides, notes, charts). */
function drawingText(xml: string): string {
  const paras: string[] = [];
  for (const p of xml.matchAll(/<a:p[\s>][\s\S]*?<\/a:p>|<a:p\/>/g)) {
    let line = '';
    for (const t of p[0].matchAll(/<a:t(?:\s[^>]*)?>([\s\S]*?)<\/a:t>|<a:br\/>|<a:tab\/>/g))
      line += t[1] !== undefined ? decodeXml(t[1]) : t[0] === '<a:tab/>' ? '\t' : '\n';
    if (line.trim()) paras.push(line.trim());
  }
  return paras.join('\n');
}

const partNumber = (name: string) => Number(/(\d+)\.xml$/.exec(name)?.[1] ?? 0);

export function pptxText(zip: ZipEntries): { text: string; slides: number } {
  const slides = Object.keys(zip.files)
    .filter((n) => /^ppt\/slides\/slide\d+\.xml$/.test(n))
    .sort((a, b) => partNumber(a) - partNumber(b));
  const blocks = slides.map((name) => {
    const body = drawingText(xmlOf(zip, name) ?? '');
    const notesName = `ppt/notesSlides/notesSlide${partNumber(name)}.xml`;
    const notes = zip.files[notesName] ? drawingText(xmlOf(zip, notesName) ?? '') : '';
    return [body, notes && `Notes: ${notes}`].filter(Boolean).join('\n');
  });
  return { text: blocks.filter(Boolean).join('\n\n'), slides: slides.length };
}

function attr(tag: string, name: string): string | undefined {
  const m = new RegExp(`\\s${name}="([^"]*)"`).exec(tag);
  return m ? decodeXml(m[1]!) : undefined;
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

export function xlsxText(zip: ZipEntries): { text: string; sheets: number } {
  const shared: string[] = [];
  const sst = xmlOf(zip, 'xl/sharedStrings.xml');
  if (sst)
    for (const si of sst.matchAll(/<si>([\s\S]*?)<\/si>|<si\/>/g)) {
      let s = '';
      // rich text runs <r><t>..</t></r> or plain <t>; skip phonetic <rPh> runs
      const body = (si[1] ?? '').replace(/<rPh[\s\S]*?<\/rPh>/g, '');
      for (const t of body.matchAll(/<t(?:\s[^>]*)?>([\s\S]*?)<\/t>/g)) s += decodeXml(t[1]!);
      shared.push(s);
    }
  const workbook = xmlOf(zip, 'xl/workbook.xml') ?? '';
  const relsXml = xmlOf(zip, 'xl/_rels/workbook.xml.rels') ?? '';
  const targets = new Map<string, string>();
  for (const r of relsXml.matchAll(/<Relationship\s[^>]*>/g)) {
    const id = attr(r[0], 'Id');
    const target = attr(r[0], 'Target');
    if (id && target) targets.set(id, resolveTarget('xl/workbook.xml', target));
  }
  const blocks: string[] = [];
  let sheets = 0;
  for (const s of workbook.matchAll(/<sheet\s[^>]*>/g)) {
    sheets++;
    const name = attr(s[0], 'name') ?? `Sheet${sheets}`;
    const rid = attr(s[0], 'r:id');
    const part = rid ? targets.get(rid) : undefined;
    const xml = part ? xmlOf(zip, part) : undefined;
    if (!xml) continue;
    const lines: string[] = [];
    for (const row of xml.matchAll(/<row[\s>][\s\S]*?<\/row>/g)) {
      const cells: string[] = [];
      for (const c of row[0].matchAll(/<c(\s[^>]*)?(?:\/>|>([\s\S]*?)<\/c>)/g)) {
        const type = attr(c[1] ?? '', 't');
        const inner = c[2] ?? '';
        let value: string | undefined;
        if (type === 'inlineStr') {
          value = [...inner.matchAll(/<t(?:\s[^>]*)?>([\s\S]*?)<\/t>/g)].map((t) => decodeXml(t[1]!)).join('');
        } else {
          const v = /<v>([\s\S]*?)<\/v>/.exec(inner)?.[1];
          if (v === undefined) continue;
          if (type === 's') value = shared[Number(v)];
          else if (type === 'b') value = v === '1' ? 'TRUE' : 'FALSE';
          else value = decodeXml(v);
        }
        if (value !== undefined && value.trim() !== '') cells.push(value.replace(/\s+/g, ' ').trim());
      }
      if (cells.length) lines.push(cells.join('\t'));
    }
    if (lines.length) blocks.push(`${name}\n${lines.join('\n')}`);
  }
  return { text: blocks.join('\n\n'), sheets };
}

export async function docxText(bytes: Uint8Array): Promise<{ text: string; warnings: string[] }> {
  try {
    const result = await mammoth.extractRawText({
      buffer: Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength),
    });
    const text = result.value.replace(/\n{3,}/g, '\n\n').trim();
    const warnings = result.messages
      .filter((m) => m.type === 'error')
      .slice(0, 5)
      .map((m) => `DOCX: ${m.message}`);
    return { text, warnings };
  } catch (err) {
    throw new ExtractError('corrupt', `the DOCX could not be parsed: ${(err as Error).message}`);
  }
}
