/**
 * Local file sources resume natively: reading all pages equals read(); resuming after every page yields exactly the
 * rest (same keys, labels, positions and progress); a file changed between slices fails clearly.
 */
import { appendFileSync, mkdtempSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/log.js';
import type { FileSourceDefinition, SourcePosition } from '../../src/sources/index.js';
import { createSource, SourceError } from '../../src/sources/index.js';
import { splitJsonArrayBytes } from '../../src/sources/files/json-array.js';
import { collect, collectPages, expectResumable, failure, keysOf, memorySecrets, stored } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'gc-resume-'));
const deps = { secrets: memorySecrets({}), logger: silentLogger, baseDir: dir };
const make = (def: FileSourceDefinition) => createSource(def, deps);
const write = (name: string, text: string | Buffer) => {
  writeFileSync(join(dir, name), text);
  return name;
};

/** JSON lines with what a real export has: a BOM, CRLF, blank lines, malformed lines and multi-byte text. */
function jsonLinesText(n: number): string {
  const lines: string[] = [];
  for (let i = 1; i <= n; i++) {
    if (i % 11 === 0) lines.push(`{"id":"T${i}",`);
    else if (i % 13 === 0) lines.push('[1,2]');
    else lines.push(JSON.stringify({ id: `T${i}`, title: `Zoë ☃ 𝄞 ticket ${i}`, n: i }) + (i % 3 === 0 ? '\r' : ''));
    if (i % 7 === 0) lines.push('');
  }
  return '\ufeff' + lines.join('\n');
}

/** CSV whose quoted fields hold line breaks (LF and CRLF), escaped quotes and delimiters, plus malformed rows. */
function csvText(n: number, { errors = true } = {}): string {
  const rows = ['id;title;body'];
  for (let i = 1; i <= n; i++) {
    if (errors && i % 9 === 0) rows.push(`${i};too;many;fields`);
    else if (i % 4 === 0) rows.push(`${i};"multi\nline ${i}";"said ""hi""; then\r\nleft"`);
    else if (i % 5 === 0) rows.push(`${i};"Zoë ☃";plain`);
    else rows.push(`${i};title ${i};body ${i}`);
  }
  return '\ufeff' + rows.join('\r\n') + '\r\n';
}

function jsonArrayText(n: number): string {
  const parts: string[] = [];
  for (let i = 1; i <= n; i++) {
    if (i % 10 === 0) parts.push('{"id": }');
    else if (i % 12 === 0) parts.push('"just a string, with ] and }"');
    else
      parts.push(
        JSON.stringify({ id: i, text: `a,]}"{ ${'☃'.repeat(i % 4)}`, nested: { list: [i, [i + 1], { k: '[' }] } }),
      );
  }
  return ' [\n  ' + parts.join(' ,\n  ') + '\n] \n';
}

describe('JSON lines resume from every page', () => {
  const file = write('t.jsonl', jsonLinesText(40));

  it.each([1, 3, 7, 40, 1000])('page size %i', async (pageSize) => {
    const pages = await expectResumable(make({ type: 'jsonLines', path: file, keyField: 'id' }), { pageSize });
    // Pages hold exactly the requested number of records (malformed ones included); the last one the rest.
    for (const p of pages.slice(0, -1)) expect(p.records.length).toBe(pageSize);
    const all = pages.flatMap((p) => p.records);
    expect(all.length).toBe(40);
    expect(all.find((r) => r.key === 'line 12')?.error).toMatch(/line 12: invalid JSON/);
    expect(all.find((r) => r.key === 'T40')?.position).toBe('line 45');
  });

  it('positions are byte offsets after the last line, with the line number; progress counts bytes', async () => {
    const size = statSync(join(dir, file)).size;
    const pages = await collectPages(make({ type: 'jsonLines', path: file }), { pageSize: 10 });
    const first = pages[0]!;
    // Ten records end on line 11 (a blank line follows record 7).
    expect(first.next).toMatchObject({ v: 1, source: 'jsonLines', line: 11, file: { kind: 'path', size } });
    expect(first.progress).toEqual({ done: first.next!.offset, total: size, unit: 'bytes' });
    const text = Buffer.from(jsonLinesText(40));
    expect(
      text
        .subarray(0, first.next!.offset as number)
        .toString()
        .split('\n').length,
    ).toBe(12); // 11 full lines
    expect(pages.at(-1)!.progress).toEqual({ done: size, total: size, unit: 'bytes' });
    const done = pages.map((p) => p.progress!.done);
    expect([...done].sort((a, b) => a - b)).toEqual(done);
  });

  it('a file over several read chunks (multi-byte text across chunk boundaries) resumes exactly', async () => {
    const big = write('big.jsonl', jsonLinesText(4000));
    expect(statSync(join(dir, big)).size).toBeGreaterThan(3 * 64 * 1024);
    const pages = await expectResumable(make({ type: 'jsonLines', path: big, keyField: 'id' }), { pageSize: 700 });
    expect(pages.map((p) => p.records.length)).toEqual([700, 700, 700, 700, 700, 500]);
  });

  it.each(['utf16le', 'latin1'] as const)('%s files', async (encoding) => {
    // A byte order mark only where the encoding has one.
    const bom = encoding === 'utf16le' ? '\ufeff' : '';
    const text = bom + ['{"id":"A","t":"é"}', '', '{"id":"B","t":"\u00fc"}', '{"id":', '{"id":"C"}'].join('\r\n');
    const name = write(`enc-${encoding}.jsonl`, Buffer.from(text, encoding));
    const pages = await expectResumable(make({ type: 'jsonLines', path: name, keyField: 'id', encoding }), {
      pageSize: 1,
    });
    const records = pages.flatMap((p) => p.records);
    expect(keysOf(records)).toEqual(['A', 'B', 'line 4', 'C']);
    expect(records[0]!.data).toEqual({ id: 'A', t: 'é' });
  });
});

describe('CSV resume from every page', () => {
  const file = write('t.csv', csvText(30));

  it.each([1, 2, 3, 5, 1000])('page size %i (quoted line breaks across page boundaries)', async (pageSize) => {
    const pages = await expectResumable(make({ type: 'csv', path: file, delimiter: ';', keyField: 'id' }), {
      pageSize,
    });
    const records = pages.flatMap((p) => p.records);
    expect(records.filter((r) => r.data).length).toBe(27);
    expect(records.filter((r) => r.error !== undefined).length).toBe(3);
    const r4 = records.find((r) => r.key === '4')!;
    expect(r4.data).toEqual({ id: '4', title: 'multi\nline 4', body: 'said "hi"; then\r\nleft' });
  });

  it('a page may end right after a record with quoted line breaks; its position is the next record', async () => {
    const source = make({ type: 'csv', path: file, delimiter: ';', keyField: 'id' });
    const pages = await collectPages(source, { pageSize: 1 });
    const after4 = pages.find((p) => p.records[0]?.key === '4')!;
    expect(after4.next).toMatchObject({ header: ['id', 'title', 'body'] });
    const resumed = await collect(source, {});
    const next = await collectPages(source, { pageSize: 1, position: stored(after4.next!) });
    expect(next[0]!.records[0]!.key).toBe('5');
    expect(next[0]!.records[0]!.position).toBe(resumed.find((r) => r.key === '5')!.position);
  });

  it('malformed rows keep their line numbers and messages in a resumed read', async () => {
    const source = make({ type: 'csv', path: file, delimiter: ';', keyField: 'id' });
    const all = await collect(source);
    const bad = all.filter((r) => r.error !== undefined);
    expect(bad[0]!.error).toMatch(/^line \d+: Invalid Record Length: columns length is 3, got 4 on line \d+$/);
    const [, lineInKey, lineInMessage] = /^line (\d+): .* on line (\d+)$/.exec(bad[0]!.error)!;
    expect(lineInKey).toBe(lineInMessage);
  });

  it('without malformed rows pages hold exactly the requested number of records', async () => {
    const clean = write('clean.csv', csvText(23, { errors: false }));
    const pages = await expectResumable(make({ type: 'csv', path: clean, delimiter: ';' }), { pageSize: 5 });
    expect(pages.map((p) => p.records.length)).toEqual([5, 5, 5, 5, 3]);
  });

  it('rows with the wrong number of fields end pages too: a file of them pages (and resumes) like any other', async () => {
    const rows = ['id,title', ...Array.from({ length: 10 }, (_, i) => `${i},x,EXTRA`), '10,ok', '11,"bad"quote"'];
    const name = write('bad.csv', rows.join('\n'));
    const pages = await expectResumable(make({ type: 'csv', path: name, keyField: 'id' }), { pageSize: 3 });
    expect(pages.map((p) => p.records.length)).toEqual([3, 3, 3, 3]);
    expect(pages.flatMap((p) => p.records).map((r) => r.key)).toEqual([
      ...Array.from({ length: 10 }, (_, i) => `line ${i + 2}`),
      '10',
      'line 13',
    ]);
  });

  it('a UTF-16LE CSV resumes at byte offsets', async () => {
    const name = write('u16.csv', Buffer.from(csvText(12), 'utf16le'));
    await expectResumable(make({ type: 'csv', path: name, delimiter: ';', encoding: 'utf16le', keyField: 'id' }), {
      pageSize: 2,
    });
  });
});

describe('JSON array resume from every page', () => {
  const file = write('t.json', jsonArrayText(25));

  it.each([1, 4, 25])('page size %i', async (pageSize) => {
    const pages = await expectResumable(make({ type: 'jsonArray', path: file, keyField: 'id' }), { pageSize });
    const records = pages.flatMap((p) => p.records);
    expect(keysOf(records).slice(0, 3)).toEqual(['1', '2', '3']);
    expect(records[9]!.error).toMatch(/element 10: invalid JSON/);
    expect(records[11]!.error).toMatch(/element 12: expected a JSON object, got string/);
    expect(records[24]!.data).toMatchObject({ id: 25, nested: { list: [25, [26], { k: '[' }] } });
  });

  it('stores the element count and splitter state; the last element leaves it after the bracket', async () => {
    const pages = await collectPages(make({ type: 'jsonArray', path: file }), { pageSize: 5 });
    expect(pages[0]!.next).toMatchObject({ count: 5, array: 'before' });
    expect(pages[4]!.next).toMatchObject({ count: 25, array: 'after' });
    expect(pages[5]).toEqual({ records: [], next: undefined, progress: pages[5]!.progress });
  });

  it('a truncated array still fails in a resumed read, after its good elements', async () => {
    const cut = write('cut.json', '[{"id":1},{"id":2},{"id":3},{"id":');
    const source = make({ type: 'jsonArray', path: cut, keyField: 'id' });
    const first = (await source.readPages({ pageSize: 1 })[Symbol.asyncIterator]().next()).value!;
    const seen: string[] = [];
    const err = await failure(async () => {
      for await (const r of source.read()) seen.push(r.key);
    });
    expect(seen).toEqual(['1', '2', '3']);
    expect(err.code).toBe('SourceTruncated');
    const resumed = await failure(() => collectPages(source, { pageSize: 1, position: stored(first.next) }));
    expect(resumed.code).toBe('SourceTruncated');
    expect(resumed.message).toContain('cut.json');
  });

  it('the byte splitter handles UTF-16LE split at odd byte boundaries', async () => {
    const doc = Buffer.from('\ufeff[ {"a":"x,]}\\"{☃"}, [1,[2]] , "s", 3 ]', 'utf16le');
    for (const size of [1, 3, 5, 7]) {
      const chunks = async function* () {
        for (let i = 0; i < doc.length; i += size) yield doc.subarray(i, i + size);
      };
      const out: unknown[] = [];
      const ends: number[] = [];
      for await (const e of splitJsonArrayBytes(chunks(), undefined, { wide: true })) {
        out.push(JSON.parse(e.bytes.toString('utf16le')));
        ends.push(e.end);
      }
      expect(out).toEqual([{ a: 'x,]}"{☃' }, [1, [2]], 's', 3]);
      // Every end offset is right after a comma or the closing bracket.
      for (const end of ends) expect([',', ']']).toContain(doc.subarray(end - 2, end).toString('utf16le'));
    }
  });
});

describe('cancellation', () => {
  it('an aborted read stops at the next page boundary with SourceAborted, even with the next page buffered', async () => {
    const name = write('abort.jsonl', jsonLinesText(200));
    const controller = new AbortController();
    const pages: number[] = [];
    const err = await failure(async () => {
      for await (const page of make({ type: 'jsonLines', path: name }).readPages({
        pageSize: 10,
        abortSignal: controller.signal,
      })) {
        pages.push(page.records.length);
        controller.abort();
      }
    });
    expect(pages).toEqual([10]);
    expect(err).toBeInstanceOf(SourceError);
    expect(err.code).toBe('SourceAborted');
  });
});

describe('a resumed read never mixes two versions of a file', () => {
  async function firstPosition(def: FileSourceDefinition): Promise<SourcePosition> {
    const pages = await collectPages(make(def), { pageSize: 5 });
    return stored(pages[0]!.next!);
  }

  it('fails with SourceChanged, naming the file, when it grew', async () => {
    const name = write('grow.jsonl', jsonLinesText(20));
    const def: FileSourceDefinition = { type: 'jsonLines', path: name };
    const position = await firstPosition(def);
    appendFileSync(join(dir, name), '\n{"id":"NEW"}');
    const err = await failure(() => collectPages(make(def), { position }));
    expect(err).toBeInstanceOf(SourceError);
    expect(err.code).toBe('SourceChanged');
    expect(err.retryable).toBe(false);
    expect(err.message).toContain(join(dir, name));
    expect(err.message).toMatch(/size \d+ → \d+ bytes.*start a new crawl/);
  });

  it('fails when it was rewritten with the same size (modification time)', async () => {
    const name = write('same.csv', csvText(20));
    const def: FileSourceDefinition = { type: 'csv', path: name, delimiter: ';' };
    const position = await firstPosition(def);
    write(name, csvText(20).replace('title 1;', 'title X;'));
    const later = new Date(Date.now() + 5000);
    utimesSync(join(dir, name), later, later);
    const err = await failure(() => collectPages(make(def), { position }));
    expect(err.code).toBe('SourceChanged');
    expect(err.message).toMatch(/modified .* → /);
  });

  it('refuses a position written by another definition or another source type', async () => {
    const name = write('def.jsonl', jsonLinesText(20));
    const position = await firstPosition({ type: 'jsonLines', path: name });
    const other = await failure(() =>
      collectPages(make({ type: 'jsonLines', path: name, keyField: 'id' }), { position }),
    );
    expect(other.code).toBe('SourcePosition');
    expect(other.message).toMatch(/definition changed.*start a new crawl/);
    const csv = await failure(() => collectPages(make({ type: 'csv', path: name }), { position }));
    expect(csv.code).toBe('SourcePosition');
    const broken = await failure(() =>
      collectPages(make({ type: 'jsonLines', path: name }), { position: { ...position, offset: -3 } }),
    );
    expect(broken.code).toBe('SourcePosition');
    expect(broken.message).toMatch(/"offset"/);
  });

  it('the same content and identity resumes (sanity: the checks do not refuse an unchanged file)', async () => {
    const name = write('ok.jsonl', jsonLinesText(20));
    const def: FileSourceDefinition = { type: 'jsonLines', path: name };
    const position = await firstPosition(def);
    const rest = (await collectPages(make(def), { position, pageSize: 100 })).flatMap((p) => p.records);
    expect(rest.length).toBe(15);
  });
});
