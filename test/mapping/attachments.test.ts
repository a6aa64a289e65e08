/**
 * mapping.attachments without any I/O: the definition's validation (path + fix), the record → reference
 * resolution (paths confined to the folder, URLs https-only unless allowed, hosts on the allow-list, blobs in the
 * attachments containers only, reasons without query strings), and the item message that carries the references
 * to the ingest (an optional field the validator must keep, not silently drop). The reads themselves are
 * test/attachments/service.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { validateMappingDefinition } from '../../src/config/mapping-definition.js';
import type { AttachmentsMapping } from '../../src/config/mapping-definition.js';
import type { SchemaProperty } from '../../src/config/model.js';
import { createMapper } from '../../src/mapping/mapper.js';
import { attachmentResolver } from '../../src/mapping/attachments.js';
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

  it('accepts the trust settings: containers, allowHttp, allowHosts (with wildcards), privateHosts (with ports)', () => {
    const ps = validateMappingDefinition(
      base({
        field: 'files',
        join: 'append',
        container: 'ticket-files',
        containers: ['archive-files'],
        allowHttp: true,
        allowHosts: ['files.contoso.com', '*.blob.core.windows.net'],
        privateHosts: ['intranet.contoso.com', '127.0.0.1:8080', '[::1]:8443'],
      }),
      schema,
    );
    expect(errors(ps)).toEqual([]);
  });

  it('refuses reserved containers and malformed host lists, naming the entry', () => {
    const ps = validateMappingDefinition(
      base({
        field: 'files',
        join: 'append',
        container: 'azure-webjobs-secrets',
        containers: ['ok-box', 'app-package-func-abc-1234567', 'Bad'],
        allowHttp: 'yes',
        allowHosts: ['https://files.contoso.com/', 'files.contoso.com:443'],
        privateHosts: [],
      }),
      schema,
    );
    const byPath = new Map(ps.filter((p) => p.severity === 'error').map((p) => [p.path, p.message]));
    expect(byPath.get('mapping.attachments.container')).toMatch(/reserved for the Functions host/);
    expect(byPath.get('mapping.attachments.containers[1]')).toMatch(/deployment package/);
    expect(byPath.get('mapping.attachments.containers[2]')).toMatch(/not a valid blob container name/);
    expect(byPath.has('mapping.attachments.containers[0]')).toBe(false);
    expect(byPath.get('mapping.attachments.allowHttp')).toMatch(/true or false/);
    expect(byPath.get('mapping.attachments.allowHosts[0]')).toMatch(/bare host name, not a URL/);
    expect(byPath.get('mapping.attachments.allowHosts[1]')).toMatch(/without a port/);
    expect(byPath.get('mapping.attachments.privateHosts')).toMatch(/non-empty array/);
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
    createMapper(
      base({ field: 'files', join: 'append', folder, allowHttp: true, metadata: { fileName: 'fileName' } }),
      schema,
      { baseDir: '/srv/connector' },
    );
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

  it('plain http without allowHttp, other schemes and malformed entries are rejected with a reason', async () => {
    const strict = await createMapper(base({ field: 'files', join: 'append', folder: '/srv/files' }), schema, {
      baseDir: '/srv/connector',
    });
    for (const url of ['http://127.0.0.1:8080/a.pdf', 'http://files.example.com/a.pdf']) {
      const r = strict.map({ key: 'r1', data: { id: 'R1', title: 't', files: [url] } });
      expect(!r.ok && r.reason.message, url).toMatch(
        /must be https \(plain http only with mapping\.attachments\.allowHttp: true\)/,
      );
    }
    const cases: [unknown, RegExp][] = [
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

describe('attachment URLs in the mapping: the allow-list and what reasons show', () => {
  const resolve = (d: Partial<AttachmentsMapping>, files: unknown) =>
    attachmentResolver({ field: 'files', join: 'append', ...d }, '/srv/files')({ files });

  it('with allowHosts, a URL on another host is rejected naming the list; a privateHosts host counts as allowed', () => {
    const d = {
      allowHosts: ['files.contoso.com', '*.blob.core.windows.net'],
      privateHosts: ['intranet.contoso.com:8443'],
    };
    expect(resolve(d, 'https://files.contoso.com/a.pdf')).toMatchObject({ refs: [{ name: 'a.pdf' }] });
    expect(resolve(d, 'https://acct.blob.core.windows.net/c/a.pdf')).toMatchObject({ refs: [{ name: 'a.pdf' }] });
    expect(resolve(d, 'https://intranet.contoso.com:8443/a.pdf')).toMatchObject({ refs: [{ name: 'a.pdf' }] });
    const r = resolve(d, 'https://blob.core.windows.net.evil.example/a.pdf');
    expect('message' in r && r.message).toMatch(
      /blob\.core\.windows\.net\.evil\.example is not in mapping\.attachments\.allowHosts \(files\.contoso\.com, \*\.blob\.core\.windows\.net/,
    );
  });

  it("a rejection never shows the URL's query string or user info (regression: SAS tokens in reasons)", () => {
    const cases: [Partial<AttachmentsMapping>, string][] = [
      [{}, 'http://files.example.com/a.pdf?sv=1&sig=SECRETSIG'],
      [{ allowHosts: ['x.example'] }, 'https://user:SECRETSIG@files.example.com/a.pdf?sig=SECRETSIG'],
      [{}, 'https://exa mple.com/a.pdf?sig=SECRETSIG'],
    ];
    for (const [d, url] of cases) {
      const r = resolve(d, url);
      expect('message' in r, url).toBe(true);
      if ('message' in r) {
        expect(r.message).toContain('a.pdf');
        expect(r.message).not.toContain('SECRETSIG');
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
    const r = resolveWith(def({ container: 'default-box', containers: ['other-box', 'third-box'] }), [
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
      [
        def({ container: 'box-one' }),
        { blob: 'host.json', container: 'azure-webjobs-secrets' },
        /container "azure-webjobs-secrets" is not an attachments container \(allowed: box-one\)/,
      ],
      [def(), 'blob:other-box/a.pdf', /container "other-box" is not an attachments container \(none is configured\)/],
      [def(), 'blob:a.pdf', /must be "blob:<container>\/<blob name>"/],
      [def(), 'blob:/a.pdf', /names no container/],
      [def({ container: 'box' }), { blob: '' }, /"blob" must be a blob name/],
      [def({ container: 'box' }), { blob: '../azure-webjobs-secrets/host.json' }, /"\." or "\.\." segment/],
      [def({ container: 'box' }), 'blob:box/./../other/x', /"\." or "\.\." segment/],
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
});
