/**
 * File sources over http(s) resume with `Range: bytes=N-` against real node:http servers: one that honours Range
 * (206), one that ignores it (200: the first N bytes are skipped), one without validators, one that compresses
 * whatever it is asked. A URL that changed between slices fails clearly.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMemoryLogger, silentLogger } from '../../src/log.js';
import type { FileSourceDefinition, SourceDeps } from '../../src/sources/index.js';
import { createSource, SourceError } from '../../src/sources/index.js';
import { collectPages, expectResumable, failure, memorySecrets, stored } from './helpers.js';

interface Served {
  body: Buffer;
  etag?: string;
  lastModified?: string;
}
const files = new Map<string, Served>();
const requests: { mode: string; name: string; range: string | undefined; acceptEncoding: string | undefined }[] = [];

function serve(name: string, body: string | Buffer, version = 1) {
  const buf = typeof body === 'string' ? Buffer.from(body) : body;
  files.set(name, {
    body: buf,
    etag: `"${name}-v${version}"`,
    lastModified: new Date(Date.UTC(2025, 0, version)).toUTCString(),
  });
}

async function handler(req: IncomingMessage, res: ServerResponse) {
  const [, mode = '', name = ''] = new URL(req.url ?? '/', 'http://x').pathname.split('/');
  const range = req.headers.range;
  requests.push({ mode, name, range, acceptEncoding: req.headers['accept-encoding'] });
  const file = files.get(name);
  if (!file) {
    res.writeHead(404).end();
    return;
  }
  const validators: Record<string, string> =
    mode === 'bare' ? {} : { etag: file.etag!, 'last-modified': file.lastModified! };
  const len = file.body.length;
  if (mode === 'gzip') {
    const zipped = gzipSync(file.body);
    res.writeHead(200, { ...validators, 'content-encoding': 'gzip', 'content-length': zipped.length });
    res.end(zipped);
    return;
  }
  const m = /^bytes=(\d+)-$/.exec(range ?? '');
  if (m && mode !== 'plain') {
    const from = Number(m[1]);
    if (from >= len) {
      res.writeHead(416, { 'content-range': `bytes */${len}` }).end();
      return;
    }
    res.writeHead(206, {
      ...validators,
      'accept-ranges': 'bytes',
      'content-range': `bytes ${from}-${len - 1}/${len}`,
      'content-length': len - from,
    });
    await send(res, file.body.subarray(from), mode === 'odd');
    return;
  }
  res.writeHead(200, { ...validators, 'content-length': len });
  await send(res, file.body, mode === 'odd');
}

/** The body at once, or in 7-byte pieces (odd chunk boundaries, splitting UTF-16 units and UTF-8 sequences). */
async function send(res: ServerResponse, body: Buffer, odd: boolean) {
  if (!odd) {
    res.end(body);
    return;
  }
  for (let i = 0; i < body.length; i += 7) {
    res.write(body.subarray(i, i + 7));
    await new Promise((r) => setImmediate(r));
  }
  res.end();
}

let server: Server;
let base = '';
beforeAll(async () => {
  server = createServer((req, res) => void handler(req, res));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

const deps = (over: Partial<SourceDeps> = {}): SourceDeps => ({
  secrets: memorySecrets({}),
  logger: silentLogger,
  baseDir: process.cwd(),
  ...over,
});
const lines = (n: number, tag = '') =>
  Array.from({ length: n }, (_, i) => JSON.stringify({ id: `U${i + 1}`, t: `${tag}Zoë ☃ ${i + 1}` })).join('\n') +
  '\n';

describe('URL inputs resume with Range requests', () => {
  it('a server that honours Range: every resume asks for bytes=<offset>- and gets exactly the rest', async () => {
    serve('a.jsonl', lines(21));
    const def: FileSourceDefinition = { type: 'jsonLines', url: `${base}/ranged/a.jsonl?sig=s3cret`, keyField: 'id' };
    const start = requests.length;
    const pages = await expectResumable(createSource(def, deps()), { pageSize: 3 });
    expect(pages.flatMap((p) => p.records).length).toBe(21);
    const mine = requests.slice(start);
    expect(mine.map((r) => r.acceptEncoding)).toEqual(mine.map(() => 'identity'));
    const offsets = pages.slice(0, -1).map((p) => `bytes=${String(p.next!.offset)}-`);
    for (const o of offsets.slice(0, -1)) expect(mine.map((r) => r.range)).toContain(o);
    // The last full page ends at the end of the file: resuming there needs no request at all.
    const atEnd = pages.at(-2)!.next!;
    expect(atEnd.offset).toBe(files.get('a.jsonl')!.body.length);
    const before = requests.length;
    expect(await collectPages(createSource(def, deps()), { position: stored(atEnd) })).toEqual([
      { records: [], next: undefined, progress: pages.at(-1)!.progress },
    ]);
    expect(requests.length).toBe(before);
    const size = files.get('a.jsonl')!.body.length;
    expect(pages[0]!.next).toMatchObject({ file: { kind: 'url', etag: '"a.jsonl-v1"', size } });
    expect(pages[0]!.progress).toEqual({ done: pages[0]!.next!.offset, total: size, unit: 'bytes' });
  });

  it('a server that ignores Range (200): the bytes already read are skipped, and the log says so', async () => {
    serve('b.csv', 'id,title\n' + Array.from({ length: 12 }, (_, i) => `${i},"two\nlines ${i}"`).join('\n'));
    const logger = createMemoryLogger('debug');
    const source = createSource({ type: 'csv', url: `${base}/plain/b.csv`, keyField: 'id' }, deps({ logger }));
    await expectResumable(source, { pageSize: 5 });
    expect(logger.lines.some((l) => l.includes('ignored the Range request'))).toBe(true);
  });

  it('a server that compresses anyway: positions say so and a resume re-reads from the start', async () => {
    serve('c.json', JSON.stringify(Array.from({ length: 9 }, (_, i) => ({ id: i, t: '☃'.repeat(i) }))));
    const source = createSource({ type: 'jsonArray', url: `${base}/gzip/c.json`, keyField: 'id' }, deps());
    const pages = await expectResumable(source, { pageSize: 2 });
    expect(pages[0]!.next).toMatchObject({ file: { kind: 'url', encoded: true } });
    expect(pages[0]!.progress).toEqual({ done: pages[0]!.next!.offset, unit: 'bytes' });
  });

  it.each([
    ['jsonLines', lines(8)],
    ['jsonArray', JSON.stringify(Array.from({ length: 8 }, (_, i) => ({ id: `U${i + 1}`, t: 'é☃' })))],
    ['csv', 'id,t\r\n' + Array.from({ length: 8 }, (_, i) => `U${i + 1},"é\n☃"`).join('\r\n')],
  ] as const)('UTF-16LE %s delivered in 7-byte pieces', async (type, text) => {
    serve(`u16-${type}`, Buffer.from('\ufeff' + text, 'utf16le'));
    const def: FileSourceDefinition = { type, url: `${base}/odd/u16-${type}`, encoding: 'utf16le', keyField: 'id' };
    const pages = await expectResumable(createSource(def, deps()), { pageSize: 3 });
    expect(pages.flatMap((p) => p.records).map((r) => r.key)).toEqual(Array.from({ length: 8 }, (_, i) => `U${i + 1}`));
  });
});

describe('a URL that changed between slices fails clearly', () => {
  async function positionAfterFirstPage(def: FileSourceDefinition) {
    const pages = await collectPages(createSource(def, deps()), { pageSize: 4 });
    return stored(pages[0]!.next!);
  }

  it.each(['ranged', 'plain'])(
    '%s server: a new ETag is SourceChanged, naming the URL without its query',
    async (mode) => {
      const name = `chg-${mode}.jsonl`;
      serve(name, lines(12));
      const def: FileSourceDefinition = {
        type: 'jsonLines',
        url: `${base}/${mode}/${name}?sig=s3cret`,
        keyField: 'id',
      };
      const position = await positionAfterFirstPage(def);
      serve(name, lines(12, 'edited '), 2);
      const err = await failure(() => collectPages(createSource(def, deps()), { position }));
      expect(err).toBeInstanceOf(SourceError);
      expect(err.code).toBe('SourceChanged');
      expect(err.message).toContain(`${base}/${mode}/${name}`);
      expect(err.message).not.toContain('s3cret');
      expect(err.message).toMatch(/ETag "chg-.*-v1" → "chg-.*-v2".*start a new crawl/);
    },
  );

  it('without validators a change of size is still caught (and the log warns that only size is compared)', async () => {
    serve('bare.jsonl', lines(12));
    const logger = createMemoryLogger('debug');
    const def: FileSourceDefinition = { type: 'jsonLines', url: `${base}/bare/bare.jsonl` };
    const pages = await collectPages(createSource(def, deps()), { pageSize: 4 });
    const position = stored(pages[0]!.next!);
    // Unchanged: resumes, with a warning that the check is weak.
    const rest = await collectPages(createSource(def, deps({ logger })), { position, pageSize: 100 });
    expect(rest.flatMap((p) => p.records).length).toBe(8);
    expect(logger.lines.some((l) => l.includes('no ETag or Last-Modified'))).toBe(true);
    serve('bare.jsonl', lines(13));
    const err = await failure(() => collectPages(createSource(def, deps()), { position }));
    expect(err.code).toBe('SourceChanged');
    expect(err.message).toMatch(/size \d+ → \d+ bytes/);
  });

  it('a file that shrank below the position (416) is SourceChanged', async () => {
    serve('shrink.jsonl', lines(12));
    const def: FileSourceDefinition = { type: 'jsonLines', url: `${base}/bare/shrink.jsonl` };
    const pages = await collectPages(createSource(def, deps()), { pageSize: 10 });
    files.get('shrink.jsonl')!.body = Buffer.from(lines(2));
    const err = await failure(() => collectPages(createSource(def, deps()), { position: stored(pages[0]!.next!) }));
    expect(err.code).toBe('SourceChanged');
  });
});
