/**
 * The attachment service on real files, real loopback HTTP servers and Azurite: fingerprints at crawl time,
 * guarded reads and extraction at ingest, the item hash, the source's credentials (its own origin only), and the
 * trust rules each read is held to (folder, containers, URL hops). The end-to-end attacks are test/hostile/.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BlobServiceClient, type ContainerClient } from '@azure/storage-blob';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import {
  AttachmentError,
  createAttachmentService,
  stripAttachmentQueries,
  type AttachmentService,
  type AttachmentServiceOptions,
} from '../../src/attachments/index.js';
import type { CompileOptions } from '../../src/attachments/settings.js';
import { UrlFetcher } from '../../src/attachments/urls.js';
import type { AttachmentsMapping } from '../../src/config/mapping-definition.js';
import type { SchemaProperty } from '../../src/config/model.js';
import { ConfigError } from '../../src/config/problems.js';
import { makeDocx, makePdf } from '../../src/extract/fixtures/index.js';
import { silentLogger } from '../../src/log.js';
import { itemHash } from '../../src/crawl/hash.js';
import { sourceCredentials } from '../../src/host/runtime.js';
import type { SecretProvider } from '../../src/secrets/types.js';

const schema: SchemaProperty[] = [
  { name: 'title', type: 'string', isRetrievable: true, labels: ['title'] },
  { name: 'pages', type: 'int64', isRetrievable: true },
  { name: 'sizes', type: 'int64Collection', isRetrievable: true },
  { name: 'authors', type: 'stringCollection', isRetrievable: true },
  { name: 'modified', type: 'dateTime', isRetrievable: true },
];

const services: AttachmentService[] = [];
function service(
  def: Partial<AttachmentsMapping>,
  options: Partial<CompileOptions & AttachmentServiceOptions> = {},
): AttachmentService {
  const s = createAttachmentService({ field: 'files', join: 'append', ...def }, schema, {
    baseDir: '/',
    allowEveryone: true,
    ...options,
  });
  services.push(s);
  return s;
}
afterAll(async () => {
  for (const s of services) await s.close();
});

const item = () => ({
  id: 'R1',
  acl: [{ type: 'everyone' as const, value: 't', accessType: 'grant' as const }],
  properties: { title: 't' },
  content: { type: 'text' as const, value: 'Record text.' },
});

async function listen(handler: (url: string, res: ServerResponse, headers: IncomingHttpHeaders) => void) {
  const seen: { url: string; headers: IncomingHttpHeaders }[] = [];
  const server: Server = createServer((req, res) => {
    seen.push({ url: req.url ?? '', headers: req.headers });
    handler(req.url ?? '', res, req.headers);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

describe('the item hash', () => {
  it('changes with a fingerprint and with the settings that shape the text; never without attachments', () => {
    const plain = service({});
    const ocr = service({ ocr: true });
    const it1 = { id: 'R1', acl: [], properties: { title: 't' } };
    const a = [{ name: 'a.pdf', path: '/srv/a.pdf', fingerprint: 'sha256:1' }];
    const h1 = itemHash(it1, plain.hashExtra(a));
    expect(itemHash(it1, plain.hashExtra(a))).toBe(h1);
    expect(itemHash(it1, plain.hashExtra([{ ...a[0]!, fingerprint: 'sha256:2' }]))).not.toBe(h1);
    expect(itemHash(it1, ocr.hashExtra(a))).not.toBe(h1);
    expect(itemHash(it1)).not.toBe(h1);
  });
});

describe('local files', () => {
  let dir: string;
  let files: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'gc-files-'));
    files = join(dir, 'files');
    execFileSync('mkdir', ['-p', join(files, 'sub')]);
    await writeFile(join(dir, 'outside.txt'), 'outside');
  });
  afterAll(async () => rm(dir, { recursive: true, force: true }));
  const svc = () => service({ folder: files, maxFileBytes: 100, timeoutMs: 1000 });

  it('hashes the bytes: equal bytes equal fingerprint, an edit changes it, touch alone does not', async () => {
    const p = join(files, 'a.txt');
    await writeFile(p, 'hello');
    const f1 = await svc().fingerprintFile({ name: 'a.txt', path: p });
    expect(f1).toMatch(/^sha256:[0-9a-f]{64}$/);
    await writeFile(p, 'hello'); // rewritten, same bytes, new mtime
    expect(await svc().fingerprintFile({ name: 'a.txt', path: p })).toBe(f1);
    await writeFile(p, 'hellp');
    expect(await svc().fingerprintFile({ name: 'a.txt', path: p })).not.toBe(f1);
  });

  it('never throws: missing, a folder, a FIFO, outside the folder, a link out of it; too big is not read', async () => {
    const s = svc();
    expect(await s.fingerprintFile({ name: 'x', path: join(files, 'nope') })).toBe('unreadable:not-found');
    expect(await s.fingerprintFile({ name: 'd', path: join(files, 'sub') })).toBe('unreadable:not-a-file');
    execFileSync('mkfifo', [join(files, 'pipe')]);
    expect(await s.fingerprintFile({ name: 'p', path: join(files, 'pipe') })).toBe('unreadable:not-a-file');
    expect(await s.fingerprintFile({ name: 'o', path: join(dir, 'outside.txt') })).toBe('unreadable:outside-folder');
    await symlink(join(dir, 'outside.txt'), join(files, 'link.txt'));
    expect(await s.fingerprintFile({ name: 'l', path: join(files, 'link.txt') })).toBe('unreadable:outside-folder');
    const big = join(files, 'big.bin');
    await writeFile(big, Buffer.alloc(200));
    expect(await s.fingerprintFile({ name: 'big', path: big })).toMatch(/^size:200:mtime:/);
  });

  it('at ingest, a path or link out of the folder is a dead letter naming where it leads and the folder', async () => {
    const s = svc();
    const r = await s.apply(item(), [{ name: 'l', path: join(files, 'link.txt'), fingerprint: 'x' }]);
    expect(r.ok).toBe(false);
    if (!r.ok)
      expect(r.reason).toMatch(
        /outside-folder: .*link\.txt resolves to .*outside\.txt, outside the attachments folder .*files \(mapping\.attachments\.folder\)/,
      );
    const forged = await s.apply(item(), [{ name: 'p', path: '/etc/passwd', fingerprint: 'x' }]);
    expect(!forged.ok && forged.reason).toMatch(/outside-folder: \/etc\/passwd is outside the attachments folder/);
  });
});

describe("attachment URLs and the source's credentials", () => {
  let api: Awaited<ReturnType<typeof listen>>;
  let other: Awaited<ReturnType<typeof listen>>;
  beforeAll(async () => {
    other = await listen((_url, res) => res.end('elsewhere'));
    api = await listen((url, res) => {
      if (url === '/files/a.txt') res.end('from the api');
      else if (url === '/files/moved') res.writeHead(302, { location: '/files/a.txt' }).end();
      else if (url === '/files/away') res.writeHead(302, { location: `${other.url}/b.txt` }).end();
      else res.writeHead(404).end();
    });
  });
  afterAll(async () => {
    await api.close();
    await other.close();
  });
  const secrets: SecretProvider = {
    get: (name) =>
      name === 'api-token' ? Promise.resolve('s3cret-token-value') : Promise.reject(new Error(`no ${name}`)),
    invalidate: () => {},
    describe: () => 'test',
  };
  const fetcher = () => {
    const source = sourceCredentials(
      { type: 'rest', url: `${api.url}/api/tasks`, auth: { type: 'bearer', tokenSecret: 'api-token' } },
      { secrets, logger: silentLogger, baseDir: '/' },
    )!;
    // The other server is named with its port: the only other loopback address allowed.
    return new UrlFetcher(
      { allowHttp: true, privateHosts: [{ hostname: '127.0.0.1', port: String(other.port) }] },
      { source },
    );
  };

  it('sends the source auth to its own origin only (regression: credentials leaked to a host a record names)', async () => {
    const get = fetcher();
    const text = async (url: string) => (await get.fetch(url, { timeoutMs: 2000 })).text();
    expect(await text(`${api.url}/files/a.txt`)).toBe('from the api');
    expect(await text(`${other.url}/b.txt`)).toBe('elsewhere');
    // same-origin redirect keeps the credentials; a redirect to another origin drops them
    expect(await text(`${api.url}/files/moved`)).toBe('from the api');
    expect(await text(`${api.url}/files/away`)).toBe('elsewhere');
    await get.close();
    expect(api.seen.map((r) => `${r.url} ${r.headers.authorization ?? '-'}`)).toEqual([
      '/files/a.txt Bearer s3cret-token-value',
      '/files/moved Bearer s3cret-token-value',
      '/files/a.txt Bearer s3cret-token-value',
      '/files/away Bearer s3cret-token-value',
    ]);
    expect(other.seen.map((r) => `${r.url} ${r.headers.authorization ?? '-'}`)).toEqual(['/b.txt -', '/b.txt -']);
  });

  it('file sources have no credentials to add', () => {
    expect(
      sourceCredentials({ type: 'jsonLines', path: 'x.jsonl' }, { secrets, logger: silentLogger, baseDir: '/' }),
    ).toBeUndefined();
  });

  it('fingerprints a URL: HEAD without an ETag falls back to hashing a capped GET; a 404 is unreadable', async () => {
    const source = sourceCredentials(
      { type: 'rest', url: `${api.url}/api/tasks`, auth: { type: 'bearer', tokenSecret: 'api-token' } },
      { secrets, logger: silentLogger, baseDir: '/' },
    )!;
    const s = service({ maxFileBytes: 1000, timeoutMs: 2000 }, { source });
    expect(await s.fingerprintFile({ name: 'a.txt', url: `${api.url}/files/a.txt` })).toMatch(/^sha256:/);
    expect(await s.fingerprintFile({ name: 'x', url: `${api.url}/files/none` })).toBe('unreadable:http-404');
  });
});

describe('the URL rules, hop by hop', () => {
  let files: Awaited<ReturnType<typeof listen>>;
  beforeAll(async () => {
    files = await listen((url, res, headers) => {
      if (url === '/hop-localhost') res.writeHead(307, { location: `http://localhost:${files.port}/a.txt` }).end();
      else if (url === '/a.txt') res.end(`served to ${headers.host}`);
      else res.writeHead(404).end();
    });
  });
  afterAll(async () => files.close());
  const read = async (get: UrlFetcher, url: string) => {
    try {
      return await (await get.fetch(url, { timeoutMs: 2000 })).text();
    } catch (e) {
      return `${(e as AttachmentError).code}: ${(e as Error).message}`;
    }
  };

  it('plain http needs allowHttp; schemes other than http(s) are refused', async () => {
    const get = new UrlFetcher({ allowHttp: false, privateHosts: [{ hostname: '127.0.0.1', port: '' }] });
    expect(await read(get, `${files.url}/a.txt`)).toMatch(
      /^url-refused: http:\/\/127\.0\.0\.1:\d+\/a\.txt: plain http is not allowed; use https, or set mapping\.attachments\.allowHttp: true$/,
    );
    expect(await read(get, 'ftp://127.0.0.1/a.txt')).toMatch(/only http or https URLs/);
    await get.close();
    expect(files.seen).toEqual([]);
  });

  it('a name that resolves to loopback is refused at connect time, after a redirect too', async () => {
    const get = new UrlFetcher({
      allowHttp: true,
      privateHosts: [{ hostname: '127.0.0.1', port: String(files.port) }],
    });
    expect(await read(get, `${files.url}/hop-localhost`)).toMatch(
      new RegExp(
        `^url-refused: http://localhost:${files.port}/a\\.txt \\(redirected from http://127\\.0\\.0\\.1:${files.port}/hop-localhost\\): localhost resolves to (127\\.0\\.0\\.1|::1), which is not a public address \\(loopback\\)`,
      ),
    );
    await get.close();
    expect(files.seen.map((r) => r.url)).toEqual(['/hop-localhost']);
  });

  it('connects to the address it checked: one resolution per connection, no second lookup to rebind', async () => {
    files.seen.length = 0;
    const asked: string[] = [];
    const resolve = async (host: string) => {
      asked.push(host);
      return [{ address: '127.0.0.1', family: 4 }];
    };
    // files.test exists nowhere but in this resolver: reaching the server proves the connection used its answer.
    const get = new UrlFetcher(
      { allowHttp: true, privateHosts: [{ hostname: 'files.test', port: String(files.port) }] },
      { resolve },
    );
    expect(await read(get, `http://files.test:${files.port}/a.txt`)).toBe(`served to files.test:${files.port}`);
    expect(await read(get, `http://evil.test:${files.port}/a.txt`)).toMatch(
      /^url-refused: .*evil\.test resolves to 127\.0\.0\.1, which is not a public address \(loopback\)/,
    );
    await get.close();
    expect(asked).toEqual(['files.test', 'evil.test']);
    expect(files.seen.map((r) => r.headers.host)).toEqual([`files.test:${files.port}`]);
  });

  it('the allow-list holds on every hop; a wildcard covers subdomains only', async () => {
    const get = new UrlFetcher(
      {
        allowHttp: true,
        allowHosts: ['*.contoso.test'],
        privateHosts: [{ hostname: '127.0.0.1', port: String(files.port) }],
      },
      { resolve: async () => [{ address: '127.0.0.1', family: 4 }] },
    );
    expect(await read(get, 'https://contoso.test/a.txt')).toMatch(
      /contoso\.test is not in mapping\.attachments\.allowHosts \(\*\.contoso\.test\)/,
    );
    expect(await read(get, 'https://files.contoso.test.evil.test/a.txt')).toMatch(
      /not in mapping\.attachments\.allowHosts/,
    );
    // allowed by name, yet the address is loopback and the host is not a private-named one
    expect(await read(get, `http://files.contoso.test:${files.port}/a.txt`)).toMatch(/not a public address/);
    await get.close();
  });

  it('a URL whose query a dead letter removed is refused with the way out; stripping keeps other URLs as they are', async () => {
    const [signed, plain, path] = stripAttachmentQueries([
      { name: 'a', url: 'https://acct.blob.core.windows.net/c/a.pdf?sv=1&sig=SECRET', fingerprint: 'f' },
      { name: 'b', url: 'https://files.example.com/b.pdf', fingerprint: 'f' },
      { name: 'c', path: '/srv/c.pdf', fingerprint: 'f' },
    ]);
    expect(signed!.url).toBe('https://acct.blob.core.windows.net/c/a.pdf#query-removed');
    expect(plain!.url).toBe('https://files.example.com/b.pdf');
    expect(path).toEqual({ name: 'c', path: '/srv/c.pdf', fingerprint: 'f' });
    const get = new UrlFetcher({ allowHttp: false, privateHosts: [] });
    expect(await read(get, signed!.url!)).toMatch(/^query-removed: .*resync the item/);
    await get.close();
  });
});

describe('apply: join, metadata, limits', () => {
  let dir: string;
  const svc = (def: Partial<AttachmentsMapping>, extra: Partial<CompileOptions> = {}) =>
    service({ folder: dir, ...def }, extra);
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
    const s = svc({
      join: 'append',
      separator: '\n--\n',
      metadata: { pageCount: 'pages', sizeBytes: 'sizes', author: 'authors', modified: 'modified' },
    });
    const r = await s.apply(item(), [at('a.pdf'), at('b.docx')]);
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
    const r = await svc({ join: 'replace', html: 'keep' }).apply(item(), [at('c.html'), at('b.docx')]);
    expect(r.ok && r.item.content?.type).toBe('html');
    if (!r.ok) return;
    expect(r.item.content!.value).not.toContain('Record text');
    expect(r.item.content!.value).not.toContain('<script>');
    expect(r.item.content!.value).toContain('<b>bold</b>');
    expect(r.item.content!.value).toContain('<pre>Bravo paragraph</pre>');
    // appended to a text record, the kept HTML is converted to text
    const appended = await svc({ join: 'append', html: 'keep' }).apply(item(), [at('c.html')]);
    expect(appended.ok && appended.item.content).toEqual({ type: 'text', value: 'Record text.\n\nCharlie & bold' });
  });

  it('a file over maxFileBytes is refused before it is read, naming the limit', async () => {
    const r = await svc({ maxFileBytes: 100 }).apply(item(), [at('a.pdf')]);
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
    const r = await svc({ timeoutMs: 5 }).apply(item(), [at('long.pdf')]);
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.reason).toMatch(/attachment "long\.pdf" .*timeout: extraction took longer than 5 ms \(timeoutMs\)/);
    expect(r.files).toEqual([expect.objectContaining({ name: 'long.pdf', ok: false, code: 'timeout' })]);
  });

  it('truncation keeps HTML well-formed at the cut and the final item under the cap', async () => {
    await writeFile(join(dir, 'long.html'), `<p>${'word '.repeat(3000)}</p><p>${'more '.repeat(3000)}</p>`);
    const s = svc({ join: 'replace', html: 'keep' }, { maxItemBytes: 4096, overflow: 'truncate' });
    const r = await s.apply(item(), [at('long.html')]);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(Buffer.byteLength(JSON.stringify(r.item), 'utf8')).toBeLessThanOrEqual(4096);
    expect(r.item.content!.value).not.toMatch(/<[^>]*$/);
    expect(r.warnings.join()).toMatch(/content truncated at a word boundary/);
  });
});

describe('blob attachments against Azurite', () => {
  const blobService = () => BlobServiceClient.fromConnectionString(inject('storageConnectionString'));
  const name = `att${randomBytes(4).toString('hex')}`;
  let container: ContainerClient;
  const containers = (c: string) => blobService().getContainerClient(c);
  const svc = (maxFileBytes = 10_000, options: Partial<AttachmentServiceOptions> = {}) =>
    service({ container: name, maxFileBytes, timeoutMs: 5_000 }, { containers, ...options });
  beforeAll(async () => {
    container = blobService().getContainerClient(name);
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
    const f1 = await svc().fingerprintFile(ref('a.txt'));
    expect(f1).toMatch(/^blob:"?0x[0-9A-F]+"?:\d{4}-/);
    expect(await svc().fingerprintFile(ref('a.txt'))).toBe(f1);
    await upload('a.txt', 'hellp');
    const f2 = await svc().fingerprintFile(ref('a.txt'));
    expect(f2).not.toBe(f1);
    const [fa] = await svc().fingerprint([ref('a.txt')]);
    expect(fa).toEqual({ name: 'a.txt', blob: { container: name, name: 'a.txt' }, fingerprint: f2 });
  });

  it('a missing blob, a container that is not an attachments container, or no blob storage: unreadable, never a request', async () => {
    expect(await svc().fingerprintFile(ref('nope.pdf'))).toBe('unreadable:blob-not-found');
    expect(await svc().fingerprintFile({ name: 'x', blob: { container: `${name}-gone`, name: 'x' } })).toBe(
      'unreadable:blob-refused',
    );
    // Dot segments would be resolved into another container by the URL the SDK builds: refused first.
    for (const bad of ['../azure-webjobs-secrets/host.json', './../x', 'a/../../b', 'a\\..\\b'])
      expect(await svc().fingerprintFile({ name: 'x', blob: { container: name, name: bad } }), bad).toBe(
        'unreadable:blob-refused',
      );
    const none = service({ container: name }, {});
    expect(await none.fingerprintFile(ref('a.txt'))).toBe('unreadable:no-blob-storage');
  });

  it('ingest downloads and extracts the blob; a missing one dead-letters naming the container and blob', async () => {
    await upload('plan.docx', makeDocx(['Plan', 'The blob sentence about teal umbrellas.']));
    const s = svc(100_000);
    const ok = await s.apply(item(), [{ ...ref('plan.docx'), fingerprint: 'f' }]);
    expect(ok.ok ? ok.item.content?.value : ok.reason).toMatch(/Record text\.\n\n[\s\S]*teal umbrellas/);
    const missing = await s.apply(item(), [{ ...ref('gone.pdf'), fingerprint: 'f' }]);
    expect(missing).toMatchObject({ ok: false, code: 'ExtractionFailed' });
    if (!missing.ok)
      expect(missing.reason).toMatch(
        new RegExp(`blob:${name}/gone\\.pdf.*blob-not-found.*"gone\\.pdf" in container "${name}"`),
      );
  });

  it('a blob over maxFileBytes is refused from its length before its bytes are read', async () => {
    await upload('big.pdf', makePdf({ pages: [{ lines: ['x'.repeat(50)] }] }));
    const r = await svc(100).apply(item(), [{ ...ref('big.pdf'), fingerprint: 'f' }]);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.reason).toMatch(/too-large: blob "big\.pdf" .* is \d+ bytes, above the 100-byte limit/);
  });

  it('an unreachable storage endpoint is a retryable error (the queue redelivers), not a dead letter', async () => {
    const dead = new BlobServiceClient('http://127.0.0.1:1/devstoreaccount1', undefined, {
      retryOptions: { maxTries: 1 },
    });
    const s = svc(100_000, { containers: (c) => dead.getContainerClient(c) });
    const err = await s.apply(item(), [{ ...ref('plan.docx'), fingerprint: 'f' }]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AttachmentError);
    expect((err as AttachmentError).retryable).toBe(true);
  });

  it('a reserved container or the claims container cannot be configured as an attachments container', () => {
    expect(() => service({ container: 'azure-webjobs-secrets' })).toThrow(ConfigError);
    expect(() => service({ containers: ['app-package-func-x-1234567'] })).toThrow(/deployment package/);
    expect(() => service({ container: 'graph-claims' }, { claimsContainer: 'graph-claims' })).toThrow(
      /"graph-claims" is the claims container \(CLAIMS_CONTAINER\)/,
    );
  });
});
