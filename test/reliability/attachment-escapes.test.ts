/**
 * Hostile attachments among good ones, through the whole stack (Azurite, the emulator, the real crawl and
 * ingest). Every good record is ingested with its file's text; no hostile one leaks a byte of what it aimed at.
 *
 * - SSRF attempts: URLs (and 302 hops from the allowed file server) at another loopback service, `localhost`,
 *   `0.0.0.0`, decimal and IPv4-mapped spellings of 127.0.0.1, the instance metadata address, a private address,
 *   a `file:` URL, a redirect loop — and forged queue messages naming the metadata address and a loopback port.
 * - Container and symlink escapes: records naming the host keys (`azure-webjobs-secrets`), the host's locks, the
 *   claims container and the deployment package, a blob name climbing out of its container (`../`); links out of the attachments folder (relative, absolute,
 *   through a linked directory, a chain of links); and forged messages naming a blob of the host keys and an
 *   absolute path outside the folder.
 *
 * "Leaked" counts markers only the targets hold found in any published item, plus requests that reached the
 * internal service: it must be 0.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BlobServiceClient, type ContainerClient } from '@azure/storage-blob';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ingestItem } from '../../src/ingest/ingest.js';
import type { ItemAttachment } from '../../src/state/queues/items.js';
import { expectNoSecrets, jsonl, reportFigures, sized, startReliabilityStack, ticket, type RStack } from './support.js';

const uid = randomBytes(4).toString('hex');
const SECRETS = {
  internal: `internalservice${uid}`,
  hostKey: `hostkey${uid}`,
  claim: `claimbody${uid}`,
  pkg: `packagebytes${uid}`,
  outside: `outsidefile${uid}`,
};
const GOOD = sized(240, 60);
const REPEAT = sized(4, 1);

let stack: RStack;
let root: string;
let internal: Server;
const internalRequests: string[] = [];
let files: Server;
const claims = `claims${uid}`;
const attContainer = `att${uid}`;
const deployContainer = `app-package-func${uid}-abc1234`;
const created: ContainerClient[] = [];

/** Hostile records: [id prefix, attachment entry, kind]. */
const ssrf: [string, unknown][] = [];
const escapes: [string, unknown][] = [];

const blobs = () => BlobServiceClient.fromConnectionString(inject('storageConnectionString'));
async function put(container: string, name: string, body: string) {
  const c = blobs().getContainerClient(container);
  if (!(await c.exists())) {
    await c.create();
    if (container !== 'azure-webjobs-secrets') created.push(c);
  }
  await c.getBlockBlobClient(name).upload(body, Buffer.byteLength(body));
}
const listen = async (server: Server, host: string) => {
  await new Promise<void>((resolve) => server.listen({ port: 0, host, ipv6Only: false }, resolve));
  return (server.address() as AddressInfo).port;
};

beforeAll(async () => {
  // The internal service every SSRF attempt aims at, reachable as 127.0.0.1, ::1 and ::ffff:127.0.0.1.
  internal = createServer((req, res) => {
    internalRequests.push(`${req.headers.host ?? ''}${req.url ?? ''}`);
    res.end(`credentials ${SECRETS.internal}`);
  });
  const s = await listen(internal, '::');
  // The file server the definition allows (by host and port): good files, and hops into the internal service.
  files = createServer((req, res) => {
    const hops: Record<string, string> = {
      '/hop': `http://127.0.0.1:${s}/latest/meta-data/`,
      '/hop-localhost': `http://localhost:${s}/`,
      '/hop-v6': `http://[::1]:${s}/`,
      '/hop-mapped': `http://[::ffff:127.0.0.1]:${s}/`,
      '/hop-decimal': `http://2130706433:${s}/`,
      '/hop-metadata': 'http://169.254.169.254/latest/meta-data/iam/security-credentials/',
      '/hop-file': 'file:///etc/passwd',
      '/loop': '/loop',
    };
    const to = hops[req.url ?? ''];
    if (to) return res.writeHead(302, { location: to }).end();
    const m = /^\/good\/(\d+)\.txt$/.exec(req.url ?? '');
    if (m) return res.end(`Good remote file ${m[1]} zqremote${m[1]}`);
    res.writeHead(404).end();
  });
  const f = await listen(files, '127.0.0.1');
  const fileUrl = `http://127.0.0.1:${f}`;

  root = await mkdtemp(join(tmpdir(), 'gc-rel-escape-'));
  const folder = join(root, 'files');
  await mkdir(folder);
  await mkdir(join(root, 'outside'));
  await writeFile(join(root, 'outside', 'secret.txt'), `private ${SECRETS.outside}`);
  await symlink(join('..', 'outside', 'secret.txt'), join(folder, 'relative-link.txt'));
  await symlink(join(root, 'outside', 'secret.txt'), join(folder, 'absolute-link.txt'));
  await symlink(join('..', 'outside'), join(folder, 'dirlink'));
  await symlink(join(folder, 'relative-link.txt'), join(folder, 'chain-link.txt'));

  await put('azure-webjobs-secrets', `app${uid}/host.json`, JSON.stringify({ masterKey: { value: SECRETS.hostKey } }));
  await put('azure-webjobs-hosts', `locks/app${uid}/host`, `lock ${SECRETS.hostKey}`);
  await put(claims, `leak${uid}.txt`, `another item ${SECRETS.claim}`);
  await put(deployContainer, 'released-package.txt', `package ${SECRETS.pkg}`);

  const good: Record<string, unknown>[] = [];
  for (let i = 0; i < GOOD; i++) {
    const kind = i % 3;
    let attachment: unknown;
    if (kind === 0) {
      await writeFile(join(folder, `good${i}.txt`), `Good local file ${i} zqlocal${i}`);
      attachment = `good${i}.txt`;
    } else if (kind === 1) {
      attachment = `${fileUrl}/good/${i}.txt`;
    } else {
      await put(attContainer, `good${i}.txt`, `Good blob ${i} zqblob${i}`);
      attachment = { blob: `good${i}.txt` };
    }
    good.push({ ...ticket(i, 0, 'ESC'), attachments: attachment });
  }
  const loopback = [
    ['hop', `${fileUrl}/hop`],
    ['hoplocal', `${fileUrl}/hop-localhost`],
    ['hopvsix', `${fileUrl}/hop-v6`],
    ['hopmapped', `${fileUrl}/hop-mapped`],
    ['hopdecimal', `${fileUrl}/hop-decimal`],
    ['hopmeta', `${fileUrl}/hop-metadata`],
    ['hopfile', `${fileUrl}/hop-file`],
    ['loop', `${fileUrl}/loop`],
    ['direct', `http://127.0.0.1:${s}/direct`],
    ['localhost', `http://localhost:${s}/direct`],
    ['zero', `http://0.0.0.0:${s}/direct`],
    ['mapped', `http://[::ffff:7f00:1]:${s}/direct`],
    ['meta', 'http://169.254.169.254/latest/meta-data/'],
    ['private', 'http://10.0.0.7/admin'],
  ] as const;
  const containers = [
    ['hostkeys', `blob:azure-webjobs-secrets/app${uid}/host.json`],
    ['hostlocks', { blob: `locks/app${uid}/host`, container: 'azure-webjobs-hosts' }],
    ['claims', { blob: `leak${uid}.txt`, container: claims }],
    ['package', `blob:${deployContainer}/released-package.txt`],
    ['dotdot', { blob: `../azure-webjobs-secrets/app${uid}/host.json` }],
    ['relative', 'relative-link.txt'],
    ['absolute', 'absolute-link.txt'],
    ['dirlink', 'dirlink/secret.txt'],
    ['chain', 'chain-link.txt'],
  ] as const;
  for (let r = 0; r < REPEAT; r++) {
    for (const [k, url] of loopback) ssrf.push([`SSRF${k}${r}`, url]);
    for (const [k, entry] of containers) escapes.push([`ESCAPE${k}${r}`, entry]);
  }
  const hostile = [...ssrf, ...escapes].map(([id, entry]) => ({
    ...ticket(0, 0, 'X'),
    ticketId: id,
    attachments: entry,
  }));
  stack = await startReliabilityStack({
    records: jsonl([...good, ...hostile]),
    editDefinition: (def) => {
      def.mapping.attachments = {
        field: 'attachments',
        join: 'append',
        folder,
        container: attContainer,
        allowHttp: true,
        privateHosts: [`127.0.0.1:${f}`],
        timeoutMs: 3_000,
        metadata: { fileName: 'fileName', fileExtension: 'fileExtension' },
      };
    },
  });
}, 120_000);

afterAll(async () => {
  await stack?.close();
  await new Promise((resolve) => internal?.close(resolve));
  await new Promise((resolve) => files?.close(resolve));
  await blobs().getContainerClient('azure-webjobs-secrets').getBlobClient(`app${uid}/host.json`).deleteIfExists();
  await blobs().getContainerClient('azure-webjobs-hosts').getBlobClient(`locks/app${uid}/host`).deleteIfExists();
  for (const c of created) await c.deleteIfExists();
  if (root) await rm(root, { recursive: true, force: true });
});

/** Forged queue messages (an attacker with write access to the item queue), ingested by the real handler. */
function forged(itemId: string, attachment: ItemAttachment) {
  return {
    v: 1,
    op: 'upsert',
    connectionId: stack.connectionId,
    itemId,
    crawlId: 'forged1',
    generation: 1,
    hash: 'forged',
    attempt: 0,
    item: {
      id: itemId,
      acl: [{ type: 'everyone', value: stack.emu.info.tenantId, accessType: 'grant' }],
      properties: { title: `Forged ${itemId}` },
    },
    attachments: [attachment],
  };
}

async function leakedMarkers(): Promise<string[]> {
  const text = JSON.stringify([...(await stack.emulatorItems()).values()]);
  return Object.values(SECRETS).filter((m) => text.includes(m));
}

describe('hostile attachments: SSRF attempts, container and symlink escapes', () => {
  let ingested = new Set<string>();
  let deadLettered = new Set<string>();
  let retries = 0;

  it('every good record is ingested with its file; every hostile one is refused', async () => {
    const { job } = await stack.crawl({ mode: 'full' });
    expect(job?.status, job?.error).toBe('completed');
    const items = await stack.emulatorItems();
    ingested = new Set(items.keys());
    const puts = (await stack.takeItemRequests()).filter((r) => r.method === 'PUT').length;
    retries = puts - ingested.size;
    const missing = Array.from({ length: GOOD }, (_, i) => `ESC${String(i).padStart(6, '0')}`).filter(
      (id) => !ingested.has(id),
    );
    expect(missing, 'good records lost').toEqual([]);
    for (let i = 0; i < GOOD; i++) {
      const content = JSON.stringify(items.get(`ESC${String(i).padStart(6, '0')}`)?.content ?? '');
      expect(content).toContain(['zqlocal', 'zqremote', 'zqblob'][i % 3]! + i);
    }
    const dls = [];
    for await (const d of stack.rt.pipeline.state.deadLetters.list(stack.connectionId)) dls.push(d);
    deadLettered = new Set(dls.map((d) => d.itemId));
    for (const [id] of [...ssrf, ...escapes]) {
      expect(ingested.has(id), `${id} published`).toBe(false);
      const d = dls.find((x) => x.itemId === id || x.message.includes(`record ${id}:`));
      expect(d?.message, id).toMatch(
        /not a public address|more than 5 redirects|http or https|not an attachments container|outside the attachments folder|"\.\." segment/,
      );
    }
  }, 300_000);

  it('forged queue messages are refused at ingest; nothing leaked, nothing reached the internal service', async () => {
    const messages = [
      forged('FORGEDMETA', { name: 'm', url: 'http://169.254.169.254/latest/meta-data/', fingerprint: 'x' }),
      forged('FORGEDLOOP', {
        name: 'l',
        url: `http://127.0.0.1:${(internal.address() as AddressInfo).port}/`,
        fingerprint: 'x',
      }),
      forged('FORGEDKEYS', {
        name: 'h',
        blob: { container: 'azure-webjobs-secrets', name: `app${uid}/host.json` },
        fingerprint: 'x',
      }),
      forged('FORGEDPATH', { name: 's', path: join(root, 'outside', 'secret.txt'), fingerprint: 'x' }),
    ];
    for (const m of messages) {
      const outcome = await ingestItem(stack.rt.pipeline, { payload: m });
      expect(outcome.outcome, m.itemId).toBe('deadLettered');
    }
    const leaked = (await leakedMarkers()).length + internalRequests.length;
    expect(await leakedMarkers()).toEqual([]);
    expect(internalRequests).toEqual([]);
    const ssrfForged = 2;
    await reportFigures('SSRF attempts', {
      items: GOOD,
      faultsInjected: ssrf.length + ssrfForged,
      retries,
      deadLetters: ssrf.filter(([id]) => deadLettered.has(id)).length + ssrfForged,
      lost: 0,
      leaked,
      note: `${ssrf.length / REPEAT} URL kinds × ${REPEAT} (redirect hops, loopback/metadata/private literals and names, file:, loops) + 2 forged messages; requests that reached the internal service: ${internalRequests.length}`,
    });
    await reportFigures('container/symlink escapes', {
      items: GOOD,
      faultsInjected: escapes.length + messages.length - ssrfForged,
      retries,
      deadLetters: escapes.filter(([id]) => deadLettered.has(id)).length + messages.length - ssrfForged,
      lost: 0,
      leaked: (await leakedMarkers()).length,
      note: `host keys, host locks, claims and package containers, a ../ blob name; links out of the folder (relative, absolute, directory, chain) × ${REPEAT}; forged blob and path messages`,
    });
  });

  it('logged no secret value', () => {
    expectNoSecrets(stack.logger.lines, stack.secrets());
  });
});
