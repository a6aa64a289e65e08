/**
 * Regression (bug class: a record publishes any blob of the storage account). A record could name
 * `blob:azure-webjobs-secrets/<app>/host.json` — the Functions host's keys — and the connector published the
 * file verbatim as the item's content; the claims container (other items' bodies) and the deployment
 * container were reachable the same way. Only the configured attachments container(s) may be read; the host's
 * containers, the claims container and the deployment container never, even when a definition names them.
 * Against Azurite and the emulator, through the real crawl and ingest.
 */
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BlobServiceClient, type ContainerClient } from '@azure/storage-blob';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createRuntime } from '../../src/host/runtime.js';
import {
  deadLetters,
  forgedUpsert,
  hostileStack,
  ingestForged,
  itemIds,
  leaked,
  ticket,
  type HStack,
} from './support.js';

const uid = randomBytes(4).toString('hex');
const HOST_KEY = `hostmasterkey${uid}`;
const CLAIM_MARKER = `claimbody${uid}`;
const PACKAGE_MARKER = `packagefile${uid}`;
const OK_MARKER = `attachmentok${uid}`;
const MARKERS = [HOST_KEY, CLAIM_MARKER, PACKAGE_MARKER];

const service = () => BlobServiceClient.fromConnectionString(inject('storageConnectionString'));
const attContainer = `att${uid}`;
const deployContainer = `app-package-func${uid}-abc1234`;
let stack: HStack;
const containers: ContainerClient[] = [];

async function put(container: string, name: string, body: string): Promise<void> {
  const c = service().getContainerClient(container);
  if (!(await c.exists())) {
    await c.create();
    if (container !== 'azure-webjobs-secrets') containers.push(c);
  }
  await c.getBlockBlobClient(name).upload(body, Buffer.byteLength(body));
}

beforeAll(async () => {
  const claims = `claims${uid}`;
  await put('azure-webjobs-secrets', `app${uid}/host.json`, JSON.stringify({ masterKey: { value: HOST_KEY } }));
  await put(claims, `leak${uid}.txt`, `another item's body ${CLAIM_MARKER}`);
  await put(deployContainer, 'released-package.txt', `package ${PACKAGE_MARKER}`);
  await put(attContainer, 'ok.txt', `A fine attachment ${OK_MARKER}`);
  stack = await hostileStack({
    env: { CLAIMS_CONTAINER: claims },
    attachments: { container: attContainer },
    records: [
      ticket('BLOBOK', { blob: 'ok.txt' }),
      ticket('BLOBHOST', `blob:azure-webjobs-secrets/app${uid}/host.json`),
      ticket('BLOBHOSTS', { blob: 'locks/x', container: 'azure-webjobs-hosts' }),
      ticket('BLOBCLAIM', { blob: `leak${uid}.txt`, container: claims }),
      ticket('BLOBDEPLOY', `blob:${deployContainer}/released-package.txt`),
      // Dot segments: the storage SDK builds the URL, and URL parsing resolves `..` into another container.
      ticket('BLOBDOTDOT', { blob: `../azure-webjobs-secrets/app${uid}/host.json` }),
      ticket('BLOBDOTDOT2', `blob:${attContainer}/./../azure-webjobs-secrets/app${uid}/host.json`),
    ],
  });
}, 60_000);

afterAll(async () => {
  await stack?.close();
  await service().getContainerClient('azure-webjobs-secrets').getBlobClient(`app${uid}/host.json`).deleteIfExists();
  for (const c of containers) await c.deleteIfExists();
});

describe('blob attachments: only the configured container', () => {
  it('a record naming the host keys, the claims or the deployment container publishes nothing of them', async () => {
    const { job } = await stack.crawl({ mode: 'full' });
    expect(job?.status, job?.error).toBe('completed');
    expect(await leaked(stack, MARKERS)).toEqual([]);
    // The legitimate attachment still goes through.
    expect(await leaked(stack, [OK_MARKER])).toEqual([OK_MARKER]);
    expect(await itemIds(stack)).toEqual(['BLOBOK']);
    // Each refused record says which container it named and what is allowed.
    const dls = await deadLetters(stack);
    for (const id of ['BLOBHOST', 'BLOBHOSTS', 'BLOBCLAIM', 'BLOBDEPLOY']) {
      const d = dls.find((x) => x.itemId === id || x.message.includes(`record ${id}`));
      expect(d, id).toBeDefined();
      expect(d!.message, id).toMatch(/container "[a-z0-9-]+" is not an attachments container/);
      expect(d!.message, id).toMatch(new RegExp(`mapping\\.attachments\\.container`));
    }
    for (const id of ['BLOBDOTDOT', 'BLOBDOTDOT2']) {
      const d = dls.find((x) => x.itemId === id || x.message.includes(`record ${id}`));
      expect(d?.message, id).toMatch(/"\." or "\.\." segment/);
    }
  }, 60_000);

  it('a forged queue message naming the host keys is dead-lettered at ingest, never PUT', async () => {
    const outcome = await ingestForged(
      stack,
      forgedUpsert(stack, 'FORGEDBLOB', [
        {
          name: 'host.json',
          blob: { container: 'azure-webjobs-secrets', name: `app${uid}/host.json` },
          fingerprint: 'x',
        },
      ]),
    );
    expect(outcome.outcome).toBe('deadLettered');
    expect((outcome as { reason: string }).reason).toMatch(/"azure-webjobs-secrets" is not an attachments container/);
    expect(await itemIds(stack)).not.toContain('FORGEDBLOB');
    const dotdot = await ingestForged(
      stack,
      forgedUpsert(stack, 'FORGEDDOTDOT', [
        {
          name: 'host.json',
          blob: { container: attContainer, name: `../azure-webjobs-secrets/app${uid}/host.json` },
          fingerprint: 'x',
        },
      ]),
    );
    expect(dotdot.outcome).toBe('deadLettered');
    expect((dotdot as { reason: string }).reason).toMatch(/"\." or "\.\." segment/);
    expect(await leaked(stack, MARKERS)).toEqual([]);
  });

  it('a definition that names a reserved container as an attachments container does not start', async () => {
    const def = JSON.parse(await readFile(join(stack.dir, 'connector.json'), 'utf8')) as Record<string, any>;
    for (const [container, why] of [
      ['azure-webjobs-secrets', /reserved for the Functions host/],
      [`claims${uid}`, /the claims container \(CLAIMS_CONTAINER\)/],
    ] as const) {
      def.mapping.attachments.container = container;
      const configPath = join(stack.dir, `reserved-${container}.json`);
      await writeFile(configPath, JSON.stringify(def));
      await expect(createRuntime({ env: stack.env, configPath })).rejects.toThrow(why);
    }
  });
});
