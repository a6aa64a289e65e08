/**
 * Blob inputs (a file source's `blob: { container, name }`) against Azurite: ranged downloads resume after every
 * page; an overwritten blob fails the resumed read (If-Match on the first read's ETag); the connector's own
 * containers are refused.
 */
import { randomUUID } from 'node:crypto';
import { BlobServiceClient, type ContainerClient } from '@azure/storage-blob';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { silentLogger } from '../../src/log.js';
import type { FileSourceDefinition, SourceDeps } from '../../src/sources/index.js';
import { createSource, SourceError } from '../../src/sources/index.js';
import { collect, collectPages, expectResumable, failure, memorySecrets, stored } from './helpers.js';

let service: BlobServiceClient;
let container: ContainerClient;
const name = `src-${randomUUID().slice(0, 8)}`;

beforeAll(async () => {
  service = BlobServiceClient.fromConnectionString(inject('storageConnectionString'));
  container = service.getContainerClient(name);
  await container.create();
});
afterAll(async () => {
  await container.deleteIfExists();
});

const deps = (over: Partial<SourceDeps> = {}): SourceDeps => ({
  secrets: memorySecrets({}),
  logger: silentLogger,
  baseDir: process.cwd(),
  containers: (c) => service.getContainerClient(c),
  env: {},
  ...over,
});
const upload = async (blob: string, text: string) => {
  await container.getBlockBlobClient(blob).upload(text, Buffer.byteLength(text));
};

describe('blob inputs', () => {
  it('JSON lines: every page resumes with a ranged download; progress counts the blob bytes', async () => {
    const text = Array.from({ length: 30 }, (_, i) => JSON.stringify({ id: `B${i}`, t: `☃ ${i}` })).join('\n');
    await upload('exports/tickets.jsonl', text);
    const def: FileSourceDefinition = {
      type: 'jsonLines',
      blob: { container: name, name: 'exports/tickets.jsonl' },
      keyField: 'id',
    };
    const pages = await expectResumable(createSource(def, deps()), { pageSize: 7 });
    const size = Buffer.byteLength(text);
    expect(pages[0]!.next).toMatchObject({ file: { kind: 'blob', size } });
    expect(pages.at(-1)!.progress).toEqual({ done: size, total: size, unit: 'bytes' });
    expect(pages.flatMap((p) => p.records).map((r) => r.key)).toEqual(Array.from({ length: 30 }, (_, i) => `B${i}`));
  });

  it('CSV with quoted line breaks and a JSON array resume the same way', async () => {
    await upload('t.csv', 'id,body\r\n' + Array.from({ length: 9 }, (_, i) => `${i},"a\r\nb ${i}"`).join('\r\n'));
    await expectResumable(
      createSource({ type: 'csv', blob: { container: name, name: 't.csv' }, keyField: 'id' }, deps()),
      {
        pageSize: 2,
      },
    );
    await upload('t.json', JSON.stringify(Array.from({ length: 9 }, (_, i) => ({ id: i, l: [i, { x: ']' }] }))));
    await expectResumable(
      createSource({ type: 'jsonArray', blob: { container: name, name: 't.json' }, keyField: 'id' }, deps()),
      { pageSize: 4 },
    );
  });

  it('an overwritten blob fails the resumed read with SourceChanged (never a mix of two versions)', async () => {
    await upload('moving.jsonl', Array.from({ length: 10 }, (_, i) => `{"id":${i}}`).join('\n'));
    const def: FileSourceDefinition = { type: 'jsonLines', blob: { container: name, name: 'moving.jsonl' } };
    const pages = await collectPages(createSource(def, deps()), { pageSize: 3 });
    await upload('moving.jsonl', Array.from({ length: 10 }, (_, i) => `{"id":${i + 100}}`).join('\n'));
    const err = await failure(() => collectPages(createSource(def, deps()), { position: stored(pages[0]!.next!) }));
    expect(err).toBeInstanceOf(SourceError);
    expect(err.code).toBe('SourceChanged');
    expect(err.message).toContain(`blob ${name}/moving.jsonl`);
    expect(err.message).toMatch(/start a new crawl/);
  });

  it('a missing blob is a SourceConfig error naming the container and blob', async () => {
    const err = await failure(() =>
      collect(createSource({ type: 'jsonLines', blob: { container: name, name: 'nope.jsonl' } }, deps())),
    );
    expect(err.code).toBe('SourceConfig');
    expect(err.message).toMatch(new RegExp(`blob ${name}/nope\\.jsonl does not exist; check source\\.blob`));
  });

  it("refuses the connector's own containers, and a process without blob storage, at read time too", async () => {
    const claims = await failure(() =>
      collect(createSource({ type: 'csv', blob: { container: 'graph-claims', name: 'x.csv' } }, deps())),
    );
    expect(claims.code).toBe('SourceConfig');
    expect(claims.message).toMatch(/claim-check container/);
    const custom = await failure(() =>
      collect(
        createSource(
          { type: 'csv', blob: { container: 'my-claims', name: 'x.csv' } },
          deps({ env: { CLAIMS_CONTAINER: 'my-claims' } }),
        ),
      ),
    );
    expect(custom.message).toMatch(/CLAIMS_CONTAINER/);
    const none = await failure(() =>
      collect(createSource({ type: 'csv', blob: { container: name, name: 't.csv' } }, deps({ containers: undefined }))),
    );
    expect(none.code).toBe('SourceConfig');
    expect(none.message).toMatch(/storage account/);
  });

  it('reads groups from a blob', async () => {
    await upload('teams.json', JSON.stringify([{ id: 'payments', members: [{ id: 'u1', type: 'user' }] }]));
    const source = createSource(
      {
        type: 'jsonLines',
        blob: { container: name, name: 'exports/tickets.jsonl' },
        groups: { blob: { container: name, name: 'teams.json' } },
      },
      deps(),
    );
    const groups = [];
    for await (const g of source.groups!()) groups.push(g);
    expect(groups).toEqual([{ id: 'payments', members: [{ id: 'u1', type: 'user' }] }]);
  });
});
