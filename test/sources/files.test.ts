import { execFileSync } from 'node:child_process';
import { createWriteStream, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/log.js';
import type { SourceDefinition } from '../../src/config/source-definition.js';
import { createSource, SourceError, splitJsonArray } from '../../src/sources/index.js';
import { collect, memorySecrets } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'gc-sources-'));
const deps = { secrets: memorySecrets({}), logger: silentLogger, baseDir: dir };
const make = (def: SourceDefinition) => createSource(def, deps);
afterAll(() => {
  // tmp files are left for the OS; nothing to close
});

describe('JSON lines', () => {
  it('yields every good line and reports each malformed line with a reason', async () => {
    writeFileSync(join(dir, 'a.jsonl'), '\ufeff{"id":"A","n":1}\n\n{"id":"B",\n[1,2]\n{"id":"C"}\r\n42\n{"id":"D"}');
    const records = await collect(make({ type: 'jsonLines', path: 'a.jsonl', keyField: 'id' }));
    expect(records.filter((r) => r.data).map((r) => r.key)).toEqual(['A', 'C', 'D']);
    const bad = records.filter((r) => r.error !== undefined);
    expect(bad.map((r) => r.key)).toEqual(['line 3', 'line 4', 'line 6']);
    expect(bad[0]!.error).toMatch(/line 3: invalid JSON/);
    expect(bad[1]!.error).toMatch(/expected a JSON object, got an array/);
  });

  it('fails with a SourceError naming the file when it does not exist', async () => {
    await expect(collect(make({ type: 'jsonLines', path: 'missing.jsonl' }))).rejects.toThrow(/missing\.jsonl.*ENOENT/);
  });

  it('refuses a cursor: file sources are not incremental', () => {
    const s = make({ type: 'jsonLines', path: 'a.jsonl' });
    expect(s.capabilities).toEqual({ incremental: false, groups: false });
    expect(() => s.read({ cursor: 'x' })).toThrow(SourceError);
  });
});

describe('CSV', () => {
  it('reads a header row with a delimiter and BOM; bad rows are errors with a line number', async () => {
    writeFileSync(
      join(dir, 'a.csv'),
      '\ufeffticketId;title;priority\nT1;"Card; declined";1\nT2;too;many;fields\nT3;"unterminated;2\nT4;ok;3\n',
    );
    const records = await collect(make({ type: 'csv', path: 'a.csv', delimiter: ';', keyField: 'ticketId' }));
    expect(records.map((r) => r.key)).toEqual(['T1', 'line 3', 'line 5']);
    expect(records[0]!.data).toEqual({ ticketId: 'T1', title: 'Card; declined', priority: '1' });
    expect(records[1]!.error).toMatch(/line 3: .*columns length is 3, got 4/);
    // An unclosed quote swallows the rest of the file: one error, never a silent stop.
    expect(records[2]!.error).toMatch(/Quote Not Closed/);
  });

  it('counts rows with the wrong number of fields and keeps every good row', async () => {
    const lines = ['id,name'];
    for (let i = 1; i <= 50; i++) lines.push(i % 10 === 0 ? `${i},x,EXTRA` : `${i},name${i}`);
    writeFileSync(join(dir, 'b.csv'), lines.join('\n'));
    const records = await collect(make({ type: 'csv', path: 'b.csv', keyField: 'id' }));
    expect(records.filter((r) => r.data).length).toBe(45);
    expect(records.filter((r) => r.error !== undefined).map((r) => r.key)).toEqual([
      'line 11',
      'line 21',
      'line 31',
      'line 41',
      'line 51',
    ]);
  });
});

describe('JSON array', () => {
  it('splits a streamed array across arbitrary chunk boundaries', async () => {
    const doc = ' [ {"a":"x,]}\\"{"}, [1,[2]] , "s", 3 ,{"b":{"c":[{}]}} ] ';
    for (let size = 1; size <= 7; size++) {
      const chunks: string[] = [];
      for (let i = 0; i < doc.length; i += size) chunks.push(doc.slice(i, i + size));
      const out: string[] = [];
      for await (const t of splitJsonArray(
        (async function* () {
          yield* chunks;
        })(),
      ))
        out.push(JSON.parse(t) as string);
      expect(out).toEqual([{ a: 'x,]}"{' }, [1, [2]], 's', 3, { b: { c: [{}] } }]);
    }
  });

  it('yields objects, reports bad elements, and fails on a truncated array (silent truncation class)', async () => {
    writeFileSync(join(dir, 'a.json'), '[{"id":1},{"id":},7,{"id":3}]');
    const records = await collect(make({ type: 'jsonArray', path: 'a.json', keyField: 'id' }));
    expect(records.map((r) => r.key)).toEqual(['1', 'element 2', 'element 3', '3']);
    expect(records[1]!.error).toMatch(/invalid JSON/);
    writeFileSync(join(dir, 'cut.json'), '[{"id":1},{"id":2},{"id":');
    const seen: string[] = [];
    const err = await (async () => {
      try {
        for await (const r of make({ type: 'jsonArray', path: 'cut.json', keyField: 'id' }).read()) seen.push(r.key);
      } catch (e) {
        return e as SourceError;
      }
    })();
    expect(seen).toEqual(['1', '2']);
    expect(err).toBeInstanceOf(SourceError);
    expect(err?.code).toBe('SourceTruncated');
    writeFileSync(join(dir, 'obj.json'), '{"value": []}');
    await expect(collect(make({ type: 'jsonArray', path: 'obj.json' }))).rejects.toThrow(/expected "\["/);
  });
});

describe('streaming (never the whole source in memory)', () => {
  const TOTAL = 100_000;

  /** Feeds a FIFO line by line, honouring back-pressure; `written` says how far the writer got. */
  function fifoWriter(name: string, line: (i: number) => string, head = '', tail = '') {
    const path = join(dir, name);
    execFileSync('mkfifo', [path]);
    const state = { written: 0, done: false };
    const run = async () => {
      const out = createWriteStream(path);
      if (head) out.write(head);
      for (let i = 0; i < TOTAL; i++) {
        if (!out.write(line(i))) await new Promise<void>((r) => out.once('drain', () => r()));
        state.written = i + 1;
      }
      out.end(tail);
      await new Promise<void>((r) => out.once('close', () => r()));
      state.done = true;
    };
    return { path: name, state, run };
  }

  it('yields the first JSON line long before a 100k-line file is fully written, then reads all of it', async () => {
    const w = fifoWriter('big.jsonl', (i) => `{"id":"T${i}","title":"ticket number ${i} with some padding text"}\n`);
    const writing = w.run();
    let first = -1;
    let count = 0;
    for await (const r of make({ type: 'jsonLines', path: w.path, keyField: 'id' }).read()) {
      if (count === 0) first = w.state.written;
      expect(r.key).toBe(`T${count}`);
      count++;
    }
    await writing;
    expect(count).toBe(TOTAL);
    expect(first).toBeGreaterThan(0);
    expect(first).toBeLessThan(TOTAL / 10);
  });

  it('pages the same way: the first page of 500 arrives long before the pipe is written, a page at a time', async () => {
    const w = fifoWriter('paged.jsonl', (i) => `{"id":"P${i}","title":"ticket number ${i} with some padding text"}\n`);
    const writing = w.run();
    const writtenAtPage: number[] = [];
    let count = 0;
    for await (const page of make({ type: 'jsonLines', path: w.path, keyField: 'id' }).readPages({ pageSize: 500 })) {
      writtenAtPage.push(w.state.written);
      expect(page.records.length).toBe(page.next ? 500 : 0);
      expect(page.records[0]?.key ?? `P${count}`).toBe(`P${count}`);
      count += page.records.length;
    }
    await writing;
    expect(count).toBe(TOTAL);
    expect(writtenAtPage[0]).toBeLessThan(TOTAL / 10);
  });

  it('streams a JSON array the same way', async () => {
    const w = fifoWriter('big.json', (i) => `${i ? ',' : ''}{"id":${i},"v":"${'x'.repeat(40)}"}\n`, '[', ']');
    const writing = w.run();
    let first = -1;
    let count = 0;
    for await (const r of make({ type: 'jsonArray', path: w.path }).read()) {
      if (count === 0) first = w.state.written;
      if (r.error) throw new Error(r.error);
      count++;
    }
    await writing;
    expect(count).toBe(TOTAL);
    expect(first).toBeLessThan(TOTAL / 10);
  });

  it('streams CSV the same way', async () => {
    const w = fifoWriter('big.csv', (i) => `${i},title ${i},${i % 4}\n`, 'id,title,priority\n');
    const writing = w.run();
    let first = -1;
    let count = 0;
    for await (const r of make({ type: 'csv', path: w.path }).read()) {
      if (count === 0) first = w.state.written;
      if (r.error) throw new Error(r.error);
      count++;
    }
    await writing;
    expect(count).toBe(TOTAL);
    expect(first).toBeLessThan(TOTAL / 10);
  });
});

describe('groups', () => {
  it('reads external groups with members from a JSON array file and rejects a malformed member', async () => {
    writeFileSync(
      join(dir, 'teams.json'),
      JSON.stringify([
        { id: 'payments', displayName: 'Payments', members: [{ id: 'u1', type: 'user' }] },
        {
          id: 'finance',
          members: [
            { id: 'payments', type: 'externalGroup' },
            { id: 'g1', type: 'group' },
          ],
        },
      ]),
    );
    const s = make({ type: 'jsonLines', path: 'a.jsonl', groups: { path: 'teams.json' } });
    expect(s.capabilities.groups).toBe(true);
    const groups = [];
    for await (const g of s.groups!()) groups.push(g);
    expect(groups).toEqual([
      { id: 'payments', displayName: 'Payments', members: [{ id: 'u1', type: 'user' }] },
      {
        id: 'finance',
        members: [
          { id: 'payments', type: 'externalGroup' },
          { id: 'g1', type: 'group' },
        ],
      },
    ]);
    writeFileSync(join(dir, 'bad-teams.json'), JSON.stringify([{ id: 'x', members: [{ id: 'u1', type: 'robot' }] }]));
    const bad = make({ type: 'jsonLines', path: 'a.jsonl', groups: { path: 'bad-teams.json' } });
    await expect(
      (async () => {
        for await (const _ of bad.groups!()) void _;
      })(),
    ).rejects.toThrow(/members\[0\]/);
  });
});
