/**
 * mapping.attachments without any I/O: the definition's validation (path + fix), the record → reference
 * resolution (paths confined to the folder, URLs https-only), and the item message that carries the
 * references to the ingest (an optional field the validator must keep, not silently drop).
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BlobServiceClient, type ContainerClient } from '@azure/storage-blob';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { validateMappingDefinition } from '../../src/config/mapping-definition.js';
import type { AttachmentsMapping, MappingDefinition } from '../../src/config/mapping-definition.js';
import type { SchemaProperty } from '../../src/config/model.js';
import { createMapper } from '../../src/mapping/mapper.js';
import type { SourceDefinition } from '../../src/config/source-definition.js';
import { silentLogger } from '../../src/log.js';
import { makeDocx, makePdf } from '../../src/extract/fixtures/index.js';
import {
  AttachmentTransientError,
  applyAttachments,
  attachmentHashExtra,
  fingerprintAttachment,
  fingerprintAttachments,
  sourceAttachmentFetch,
} from '../../src/pipeline/attachments.js';
import { attachmentResolver } from '../../src/mapping/attachments.js';
import type { SecretProvider } from '../../src/secrets/types.js';
import { itemHash } from '../../src/crawl/hash.js';
import { parseItemMessage, type ItemMessage } from '../../src/state/queues/items.js';

const schema: SchemaProperty[] = [
  { name: 'title', type: 'string', isRetrievable: true, labels: ['title'] },
  { name: 'fileName', type: 'string', isRetrievable: true, labels: ['fileName'] },
  { name: 'ext', type: 'string', isRetrievable: true },
  { name: 'pages', type: 'int64', isRetrievable: true },
];
const acl = { onUnresolved: 'reject' as const, rules: [{ access: 'grant' as const, type: 'everyone' as const }] };
const base = (attachments: unknown): Record<string, unknown> => ({
  id: '{id}',
  properties: { title: 'title' },
  acl: { ...acl, allowEveryone: true },
  attachments,
});
const errors = (ps: { severity: string; path: string }[]) =>
  ps.filter((p) => p.severity === 'error').map((p) => p.path);

describe('mapping.attachments validation', () => {
  it('accepts a complete definition; metadata properties count as mapped', () => {
    const ps = validateMappingDefinition(
      base({
        field: 'files',
        join: 'append',
        folder: 'files',
        ocr: true,
        maxFileBytes: 1000,
        timeoutMs: 5000,
        html: 'keep',
        metadata: { fileName: 'fileName', fileExtension: 'ext', pageCount: 'pages' },
      }),
      schema,
    );
    expect(errors(ps)).toEqual([]);
    // only the missing fileExtension label is worth a warning; no "not mapped" warnings
    expect(ps.map((p) => p.path)).toEqual(['mapping.attachments.metadata.fileExtension']);
    expect(ps[0]!.fix).toMatch(/labels/);
  });

  it('reports every problem with its path and a fix', () => {
    const ps = validateMappingDefinition(
      base({
        field: '',
        join: 'merge',
        ocr: 'yes',
        maxFileBytes: -1,
        timeoutMs: 10_000_000,
        html: 'raw',
        blobContainer: 'files',
        metadata: { fileName: 'nope', pageCount: 'fileName', author: 'title', colour: 'x' },
      }),
      schema,
    );
    expect(errors(ps)).toEqual(
      expect.arrayContaining([
        'mapping.attachments.field',
        'mapping.attachments.join',
        'mapping.attachments.ocr',
        'mapping.attachments.maxFileBytes',
        'mapping.attachments.timeoutMs',
        'mapping.attachments.html',
        'mapping.attachments.blobContainer',
        'mapping.attachments.metadata.fileName',
        'mapping.attachments.metadata.pageCount',
        'mapping.attachments.metadata.author',
        'mapping.attachments.metadata.colour',
      ]),
    );
    const blob = ps.find((p) => p.path === 'mapping.attachments.blobContainer')!;
    expect(blob.fix).toMatch(/rename it to "container"/);
    expect(ps.find((p) => p.path === 'mapping.attachments.metadata.pageCount')!.message).toMatch(/string.*int64/);
    expect(ps.find((p) => p.path === 'mapping.attachments.metadata.author')!.message).toMatch(/also mapped/);
  });
});

describe('attachment references from records', () => {
  const mapper = (folder = '/srv/files') =>
    createMapper(base({ field: 'files', join: 'append', folder, metadata: { fileName: 'fileName' } }), schema, {
      baseDir: '/srv/connector',
    });
  const map = async (files: unknown) => (await mapper()).map({ key: 'r1', data: { id: 'R1', title: 't', files } });

  it('resolves names, paths, objects and URLs (absolute paths under the folder)', async () => {
    const r = await map([
      'a.pdf',
      'sub/b.docx',
      { path: 'c.png', name: 'Receipt.png' },
      'https://files.example.com/x/report%20q3.pdf',
      { url: 'http://127.0.0.1:8080/n.html', name: 'notes.html' },
    ]);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.attachments).toEqual([
      { name: 'a.pdf', path: '/srv/files/a.pdf' },
      { name: 'b.docx', path: '/srv/files/sub/b.docx' },
      { name: 'Receipt.png', path: '/srv/files/c.png' },
      { name: 'report q3.pdf', url: 'https://files.example.com/x/report%20q3.pdf' },
      { name: 'notes.html', url: 'http://127.0.0.1:8080/n.html' },
    ]);
    // the record's own item is untouched: extraction happens at ingest
    expect(r.item.content).toBeUndefined();
  });

  it('a record without attachments maps as before (no attachments field)', async () => {
    for (const v of [undefined, null, '', []]) {
      const r = await map(v);
      expect(r.ok && r.attachments).toBe(undefined);
    }
  });

  it('path traversal out of the folder is rejected with the field and the folder (regression: file exfiltration)', async () => {
    for (const bad of ['../secret.txt', '/etc/passwd', 'sub/../../x', { path: '../../etc/shadow' }]) {
      const r = await map([bad]);
      expect(r.ok, JSON.stringify(bad)).toBe(false);
      if (!r.ok) {
        expect(r.reason.field).toBe('files');
        expect(r.reason.message).toMatch(/outside the attachments folder \/srv\/files/);
      }
    }
  });

  it('plain http to a remote host, blobs and malformed entries are rejected with a reason', async () => {
    const cases: [unknown, RegExp][] = [
      ['http://files.example.com/a.pdf', /must be https/],
      ['ftp://files.example.com/a.pdf', /must be https/],
      [{ path: 'a', url: 'https://x/a' }, /exactly one of "path", "url" or "blob"/],
      [{ url: 'https://x/a', blob: 'a' }, /exactly one of "path", "url" or "blob"/],
      [42, /expected a path, a URL/],
    ];
    for (const [entry, why] of cases) {
      const r = await map([entry, 'ok.pdf']);
      expect(r.ok).toBe(false);
      if (!r.ok) {
        expect(r.reason.field).toBe('files[0]');
        expect(r.reason.message).toMatch(why);
      }
    }
  });
});

describe('attachments in the item message and the hash', () => {
  const msg = (extra: Partial<ItemMessage> = {}): ItemMessage => ({
    v: 1,
    op: 'upsert',
    connectionId: 'conn1',
    itemId: 'R1',
    crawlId: 'c1',
    generation: 1,
    hash: 'h',
    attempt: 0,
    item: { id: 'R1', acl: [], properties: { title: 't' } },
    ...extra,
  });

  it('keeps attachments through validation (regression: optional fields silently dropped by the parser)', () => {
    const attachments = [
      { name: 'a.pdf', path: '/srv/files/a.pdf', fingerprint: 'sha256:ab' },
      { name: 'n.html', url: 'https://x/n.html', fingerprint: 'etag:"1"' },
    ];
    expect(parseItemMessage(JSON.stringify(msg({ attachments }))).attachments).toEqual(attachments);
    expect(parseItemMessage(msg()).attachments).toBeUndefined();
  });

  it('refuses malformed attachments and attachments on a delete', () => {
    const bad = (attachments: unknown) => () => parseItemMessage({ ...msg(), attachments });
    expect(bad('a.pdf')).toThrow(/attachments must be an array/);
    expect(bad([{ name: 'a', fingerprint: 'f' }])).toThrow(/exactly one of path, url or blob/);
    expect(bad([{ name: 'a', url: 'file:///etc/passwd', fingerprint: 'f' }])).toThrow(/http\(s\) URL/);
    expect(bad([{ name: '', path: '/a', fingerprint: 'f' }])).toThrow(/name/);
    expect(() =>
      parseItemMessage({
        ...msg({ op: 'delete', item: undefined }),
        attachments: [{ name: 'a', path: '/a', fingerprint: 'f' }],
      }),
    ).toThrow(/a delete carries no item/);
  });

  it('the item hash changes with an attachment fingerprint and with settings that shape the text', async () => {
    const m = await createMapper(base({ field: 'files', join: 'append' }), schema, {
      baseDir: '/srv',
    });
    const ocr = await createMapper(base({ field: 'files', join: 'append', ocr: true }), schema, {
      baseDir: '/srv',
    });
    const item = { id: 'R1', acl: [], properties: { title: 't' } };
    const a = [{ name: 'a.pdf', path: '/srv/a.pdf', fingerprint: 'sha256:1' }];
    const h1 = itemHash(item, attachmentHashExtra(a, m.attachments!));
    expect(itemHash(item, attachmentHashExtra(a, m.attachments!))).toBe(h1);
    expect(itemHash(item, attachmentHashExtra([{ ...a[0]!, fingerprint: 'sha256:2' }], m.attachments!))).not.toBe(h1);
    expect(itemHash(item, attachmentHashExtra(a, ocr.attachments!))).not.toBe(h1);
    expect(itemHash(item)).not.toBe(h1);
  });
});

describe('fingerprints of local files', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'gc-fp-'));
  });
  afterAll(async () => rm(dir, { recursive: true, force: true }));
  const settings = { maxFileBytes: 100, timeoutMs: 1000 };

  it('hashes the bytes: equal bytes equal fingerprint, an edit changes it, touch alone does not', async () => {
    const p = join(dir, 'a.txt');
    await writeFile(p, 'hello');
    const f1 = await fingerprintAttachment({ name: 'a.txt', path: p }, settings);
    expect(f1).toMatch(/^sha256:[0-9a-f]{64}$/);
    await writeFile(p, 'hello'); // rewritten, same bytes, new mtime
    expect(await fingerprintAttachment({ name: 'a.txt', path: p }, settings)).toBe(f1);
    await writeFile(p, 'hellp');
    expect(await fingerprintAttachment({ name: 'a.txt', path: p }, settings)).not.toBe(f1);
  });

  it('never throws: a missing file or folder gets an unreadable fingerprint; a too-big file is not read', async () => {
    expect(await fingerprintAttachment({ name: 'x', path: join(dir, 'nope') }, settings)).toBe('unreadable:ENOENT');
    expect(await fingerprintAttachment({ name: 'd', path: dir }, settings)).toBe('unreadable:not-a-file');
    const big = join(dir, 'big.bin');
    await writeFile(big, Buffer.alloc(200));
    expect(await fingerprintAttachment({ name: 'big', path: big }, settings)).toMatch(/^size:200:mtime:/);
  });
});

describe("attachment URLs and the source's credentials", () => {
  const seen: { server: string; url: string; headers: IncomingHttpHeaders }[] = [];
  const servers: Server[] = [];
  let api = '';
  let other = '';
  const listen = async (name: string, handler: (url: string, res: ServerResponse) => void) => {
    const server = createServer((req, res) => {
      seen.push({ server: name, url: req.url ?? '', headers: req.headers });
      handler(req.url ?? '', res);
    });
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  };
  beforeAll(async () => {
    other = await listen('other', (_url, res) => res.end('elsewhere'));
    api = await listen('api', (url, res) => {
      if (url === '/files/a.txt') res.end('from the api');
      else if (url === '/files/moved') res.writeHead(302, { location: '/files/a.txt' }).end();
      else if (url === '/files/away') res.writeHead(302, { location: `${other}/b.txt` }).end();
      else res.writeHead(404).end();
    });
  });
  afterAll(async () => {
    for (const s of servers) await new Promise((resolve) => s.close(resolve));
  });
  const secrets: SecretProvider = {
    get: (name) =>
      name === 'api-token' ? Promise.resolve('s3cret-token-value') : Promise.reject(new Error(`no ${name}`)),
    invalidate: () => {},
    describe: () => 'test',
  };
  const source = (): SourceDefinition => ({
    type: 'rest',
    url: `${api}/api/tasks`,
    auth: { type: 'bearer', tokenSecret: 'api-token' },
  });

  it('sends the source auth to its own origin only (regression: credentials leaked to a host a record names)', async () => {
    const get = sourceAttachmentFetch(source(), { secrets, logger: silentLogger, baseDir: '/' })!;
    seen.length = 0;
    expect(await (await get(`${api}/files/a.txt`, {})).text()).toBe('from the api');
    expect(await (await get(`${other}/b.txt`, {})).text()).toBe('elsewhere');
    // same-origin redirect keeps the credentials; a redirect to another origin drops them
    expect(await (await get(`${api}/files/moved`, {})).text()).toBe('from the api');
    expect(await (await get(`${api}/files/away`, {})).text()).toBe('elsewhere');
    const auth = (server: string) =>
      seen.filter((r) => r.server === server).map((r) => `${r.url} ${r.headers.authorization ?? '-'}`);
    expect(auth('api')).toEqual([
      '/files/a.txt Bearer s3cret-token-value',
      '/files/moved Bearer s3cret-token-value',
      '/files/a.txt Bearer s3cret-token-value',
      '/files/away Bearer s3cret-token-value',
    ]);
    expect(auth('other')).toEqual(['/b.txt -', '/b.txt -']);
  });

  it('file sources have no credentials to add (plain fetch)', () => {
    expect(
      sourceAttachmentFetch(
        { type: 'jsonLines', path: 'x.jsonl' },
        {
          secrets,
          logger: silentLogger,
          baseDir: '/',
        },
      ),
    ).toBeUndefined();
  });

  it('fingerprints a URL through the authenticated fetch', async () => {
    const get = sourceAttachmentFetch(source(), { secrets, logger: silentLogger, baseDir: '/' })!;
    const fp = await fingerprintAttachment(
      { name: 'a.txt', url: `${api}/files/a.txt` },
      { maxFileBytes: 1000, timeoutMs: 2000, fetch: get },
    );
    expect(fp).toMatch(/^sha256:/); // no ETag: hashed from a GET
    expect(
      await fingerprintAttachment(
        { name: 'x', url: `${api}/files/none` },
        { maxFileBytes: 1000, timeoutMs: 2000, fetch: get },
      ),
    ).toBe('unreadable:http-404');
  });
});

describe('applyAttachments: join, metadata, limits', () => {
  let dir: string;
  const metaSchema: SchemaProperty[] = [
    { name: 'title', type: 'string', isRetrievable: true, labels: ['title'] },
    { name: 'pages', type: 'int64', isRetrievable: true },
    { name: 'sizes', type: 'int64Collection', isRetrievable: true },
    { name: 'authors', type: 'stringCollection', isRetrievable: true },
    { name: 'modified', type: 'dateTime', isRetrievable: true },
  ];
  const settingsFor = async (attachments: Partial<AttachmentsMapping>, extra: Partial<MappingDefinition> = {}) =>
    (
      await createMapper(
        {
          id: '{id}',
          properties: { title: 'title' },
          acl: { ...acl, allowEveryone: true },
          attachments: { field: 'files', join: 'append', folder: dir, ...attachments },
          ...extra,
        },
        metaSchema,
        { baseDir: dir },
      )
    ).attachments!;
  const item = () => ({
    id: 'R1',
    acl: [{ type: 'everyone' as const, value: 't', accessType: 'grant' as const }],
    properties: { title: 't' },
    content: { type: 'text' as const, value: 'Record text.' },
  });
  const at = (name: string) => ({ name, path: join(dir, name), fingerprint: 'f' });

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'gc-apply-'));
    await writeFile(
      join(dir, 'a.pdf'),
      makePdf({
        pages: [{ lines: ['Alpha page one'] }, { lines: ['Alpha page two'] }],
        info: { author: 'Ann Author', modified: new Date('2025-10-03T11:42:09Z') },
      }),
    );
    await writeFile(join(dir, 'b.docx'), makeDocx(['Bravo paragraph'], { author: 'Bob Writer' }));
    await writeFile(join(dir, 'c.html'), '<p>Charlie &amp; <b>bold</b></p><script>x()</script>');
  });
  afterAll(async () => rm(dir, { recursive: true, force: true }));

  it('append keeps the record text first; metadata fills single and collection properties, typed', async () => {
    const settings = await settingsFor({
      join: 'append',
      separator: '\n--\n',
      metadata: { pageCount: 'pages', sizeBytes: 'sizes', author: 'authors', modified: 'modified' },
    });
    const r = await applyAttachments(item(), [at('a.pdf'), at('b.docx')], settings);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.item.content!.value).toMatch(
      /^Record text\.\n--\nAlpha page one[\s\S]*Alpha page two\n--\nBravo paragraph$/,
    );
    expect(r.item.properties.pages).toBe(2);
    expect(r.item.properties.sizes).toHaveLength(2);
    expect(r.item.properties['sizes@odata.type']).toBe('Collection(Int64)');
    expect(r.item.properties.authors).toEqual(['Ann Author', 'Bob Writer']);
    expect(r.item.properties.modified).toBe('2025-10-03T11:42:09.000Z');
    expect(r.files.map((f) => [f.name, f.ok, f.pageCount])).toEqual([
      ['a.pdf', true, 2],
      ['b.docx', true, undefined],
    ]);
  });

  it('replace drops the record text; html "keep" becomes the content type when the files lead', async () => {
    const settings = await settingsFor({ join: 'replace', html: 'keep' });
    const r = await applyAttachments(item(), [at('c.html'), at('b.docx')], settings);
    expect(r.ok && r.item.content?.type).toBe('html');
    if (!r.ok) return;
    expect(r.item.content!.value).not.toContain('Record text');
    expect(r.item.content!.value).not.toContain('<script>');
    expect(r.item.content!.value).toContain('<b>bold</b>');
    expect(r.item.content!.value).toContain('<pre>Bravo paragraph</pre>');
    // appended to a text record, the kept HTML is converted to text
    const appended = await applyAttachments(
      item(),
      [at('c.html')],
      await settingsFor({ join: 'append', html: 'keep' }),
    );
    expect(appended.ok && appended.item.content).toEqual({ type: 'text', value: 'Record text.\n\nCharlie & bold' });
  });

  it('a file over maxFileBytes is refused before it is read, naming the limit', async () => {
    const r = await applyAttachments(item(), [at('a.pdf')], await settingsFor({ join: 'append', maxFileBytes: 100 }));
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.code).toBe('ExtractionFailed');
    expect(r.reason).toMatch(
      /item R1: attachment "a\.pdf" .*too-large: .*100-byte limit \(mapping\.attachments\.maxFileBytes\)/,
    );
  });

  it('a file that takes longer than timeoutMs is a timeout failure naming the limit', async () => {
    const pages = Array.from({ length: 300 }, (_, i) => ({ lines: [`Page ${i} of a long report`] }));
    await writeFile(join(dir, 'long.pdf'), makePdf({ pages }));
    const r = await applyAttachments(item(), [at('long.pdf')], await settingsFor({ join: 'append', timeoutMs: 5 }));
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.reason).toMatch(/attachment "long\.pdf" .*timeout: extraction took longer than 5 ms \(timeoutMs\)/);
    expect(r.files).toEqual([expect.objectContaining({ name: 'long.pdf', ok: false, code: 'timeout' })]);
  });

  it('truncation keeps HTML well-formed at the cut and the final item under the cap', async () => {
    await writeFile(join(dir, 'long.html'), `<p>${'word '.repeat(3000)}</p><p>${'more '.repeat(3000)}</p>`);
    const settings = await settingsFor(
      { join: 'replace', html: 'keep' },
      { maxItemBytes: 4096, contentOverflow: 'truncate' },
    );
    const r = await applyAttachments(item(), [at('long.html')], settings);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(Buffer.byteLength(JSON.stringify(r.item), 'utf8')).toBeLessThanOrEqual(4096);
    expect(r.item.content!.value).not.toMatch(/<[^>]*$/);
    expect(r.warnings.join()).toMatch(/content truncated at a word boundary/);
  });
});

describe('blob attachments', () => {
  const def = (extra: Partial<AttachmentsMapping> = {}): AttachmentsMapping => ({
    field: 'files',
    join: 'append',
    ...extra,
  });
  const resolveWith = (d: AttachmentsMapping, files: unknown) => attachmentResolver(d, '/srv/files')({ files });

  it('validates mapping.attachments.container with the Azure rule and names the fix', () => {
    expect(errors(validateMappingDefinition(base(def({ container: 'ticket-files' })), schema))).toEqual([]);
    for (const bad of ['Files', 'ab', 'a--b', '-ab', 'ab-', 'a_b', 'x'.repeat(64), 7]) {
      const ps = validateMappingDefinition(base(def({ container: bad as string })), schema);
      const p = ps.find((x) => x.path === 'mapping.attachments.container');
      expect(p?.severity, JSON.stringify(bad)).toBe('error');
      expect(p!.fix).toMatch(/3-63 lowercase letters/);
    }
  });

  it('resolves {blob}, {blob, container} and "blob:<container>/<name>"; the entry container wins', () => {
    const r = resolveWith(def({ container: 'default-box' }), [
      { blob: '2025/q3 report.pdf' },
      { blob: 'plan.docx', container: 'other-box', name: 'Plan.docx' },
      'blob:third-box/dir/notes.html',
    ]);
    expect(r).toEqual({
      refs: [
        { name: 'q3 report.pdf', blob: { container: 'default-box', name: '2025/q3 report.pdf' } },
        { name: 'Plan.docx', blob: { container: 'other-box', name: 'plan.docx' } },
        { name: 'notes.html', blob: { container: 'third-box', name: 'dir/notes.html' } },
      ],
    });
  });

  it('a blob without any container, a bad container or a malformed blob entry is rejected with the fix', () => {
    const cases: [AttachmentsMapping, unknown, RegExp][] = [
      [
        def(),
        { blob: 'a.pdf' },
        /names no container; add "container" to the entry or set mapping\.attachments\.container/,
      ],
      [def(), { blob: 'a.pdf', container: 'Bad_Name' }, /not a valid blob container name/],
      [def(), 'blob:a.pdf', /must be "blob:<container>\/<blob name>"/],
      [def(), 'blob:/a.pdf', /names no container/],
      [def({ container: 'box' }), { blob: '' }, /"blob" must be a blob name/],
      [def({ container: 'box' }), { blob: 'x'.repeat(1025) }, /"blob" must be a blob name/],
      [def({ container: 'box' }), { path: 'a.pdf', container: 'box' }, /"container" goes with "blob"/],
    ];
    for (const [d, entry, why] of cases) {
      const r = resolveWith(d, [entry]);
      expect('message' in r && r.message, JSON.stringify(entry)).toMatch(why);
    }
  });

  it('blob attachments survive the item message round trip; malformed ones are refused', () => {
    const m = {
      v: 1,
      op: 'upsert',
      connectionId: 'conn1',
      itemId: 'R1',
      crawlId: 'c1',
      generation: 1,
      hash: 'h',
      attempt: 0,
      item: { id: 'R1', acl: [], properties: { title: 't' } },
    };
    const attachments = [{ name: 'a.pdf', blob: { container: 'box-1', name: 'dir/a.pdf' }, fingerprint: 'blob:"0x1"' }];
    expect(parseItemMessage(JSON.stringify({ ...m, attachments })).attachments).toEqual(attachments);
    const bad = (a: unknown) => () =>
      parseItemMessage({ ...m, attachments: [{ name: 'a', fingerprint: 'f', ...(a as object) }] });
    expect(bad({ blob: { container: 'Box', name: 'a' } })).toThrow(/blob\.container must be a blob container name/);
    expect(bad({ blob: { container: 'box' } })).toThrow(/blob must be \{container, name\}/);
    expect(bad({ blob: 'box/a' })).toThrow(/blob must be \{container, name\}/);
    expect(bad({ blob: { container: 'box', name: 'a' }, path: '/a' })).toThrow(/exactly one of path, url or blob/);
  });

  describe('against Azurite', () => {
    const service = () => BlobServiceClient.fromConnectionString(inject('storageConnectionString'));
    const name = `att${randomBytes(4).toString('hex')}`;
    let container: ContainerClient;
    const settings = () => ({
      maxFileBytes: 10_000,
      timeoutMs: 5_000,
      containers: (c: string) => service().getContainerClient(c),
    });
    beforeAll(async () => {
      container = service().getContainerClient(name);
      await container.create();
    });
    afterAll(async () => {
      await container?.deleteIfExists();
    });
    const ref = (blob: string) => ({ name: blob, blob: { container: name, name: blob } });
    const upload = (blob: string, body: Uint8Array | string) =>
      container
        .getBlockBlobClient(blob)
        .upload(body, typeof body === 'string' ? Buffer.byteLength(body) : body.byteLength);

    it('the fingerprint comes from the properties: it changes when the blob changes and not otherwise', async () => {
      await upload('a.txt', 'hello');
      const f1 = await fingerprintAttachment(ref('a.txt'), settings());
      expect(f1).toMatch(/^blob:"?0x[0-9A-F]+"?:\d{4}-/);
      expect(await fingerprintAttachment(ref('a.txt'), settings())).toBe(f1);
      await upload('a.txt', 'hellp');
      const f2 = await fingerprintAttachment(ref('a.txt'), settings());
      expect(f2).not.toBe(f1);
      const [fa] = await fingerprintAttachments([ref('a.txt')], settings());
      expect(fa).toEqual({ name: 'a.txt', blob: { container: name, name: 'a.txt' }, fingerprint: f2 });
    });

    it('a missing blob, a missing container or no blob storage gives an unreadable fingerprint (never throws)', async () => {
      expect(await fingerprintAttachment(ref('nope.pdf'), settings())).toBe('unreadable:blob-not-found');
      expect(
        await fingerprintAttachment({ name: 'x', blob: { container: `${name}-gone`, name: 'x' } }, settings()),
      ).toBe('unreadable:blob-not-found');
      const { containers: _, ...none } = settings();
      expect(await fingerprintAttachment(ref('a.txt'), none)).toBe('unreadable:no-blob-storage');
    });

    const compiled = async (maxFileBytes: number) => {
      const m = await createMapper(base({ field: 'files', join: 'append', maxFileBytes }), schema, { baseDir: '/srv' });
      return { ...m.attachments!, containers: settings().containers };
    };
    const item = {
      id: 'B1',
      acl: [{ type: 'everyone' as const, value: 't', accessType: 'grant' as const }],
      properties: { title: 't' },
      content: { type: 'text' as const, value: 'Record text.' },
    };

    it('ingest downloads and extracts the blob; a missing one dead-letters naming the container and blob', async () => {
      await upload('plan.docx', makeDocx(['Plan', 'The blob sentence about teal umbrellas.']));
      const s = await compiled(100_000);
      const ok = await applyAttachments(item, [{ ...ref('plan.docx'), fingerprint: 'f' }], s);
      expect(ok.ok ? ok.item.content?.value : ok.reason).toMatch(/Record text\.\n\n[\s\S]*teal umbrellas/);
      const missing = await applyAttachments(item, [{ ...ref('gone.pdf'), fingerprint: 'f' }], s);
      expect(missing).toMatchObject({ ok: false, code: 'ExtractionFailed' });
      if (!missing.ok)
        expect(missing.reason).toMatch(
          new RegExp(`blob:${name}/gone\\.pdf.*blob-not-found.*"gone\\.pdf" in container "${name}"`),
        );
    });

    it('a blob over maxFileBytes is refused from its length before its bytes are read', async () => {
      await upload('big.pdf', makePdf({ pages: [{ lines: ['x'.repeat(50)] }] }));
      const r = await applyAttachments(item, [{ ...ref('big.pdf'), fingerprint: 'f' }], await compiled(100));
      expect(r.ok).toBe(false);
      if (!r.ok) expect(r.reason).toMatch(/too-large: blob "big\.pdf" .* is \d+ bytes, above the 100-byte limit/);
    });

    it('an unreachable storage endpoint is a transient error (the queue redelivers), not a dead letter', async () => {
      const dead = new BlobServiceClient('http://127.0.0.1:1/devstoreaccount1', undefined, {
        retryOptions: { maxTries: 1 },
      });
      const s = { ...(await compiled(100_000)), containers: (c: string) => dead.getContainerClient(c) };
      await expect(applyAttachments(item, [{ ...ref('plan.docx'), fingerprint: 'f' }], s)).rejects.toBeInstanceOf(
        AttachmentTransientError,
      );
    });
  });
});
