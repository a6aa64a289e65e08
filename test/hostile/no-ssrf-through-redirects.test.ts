/**
 * Regression (bug class: server-side request forgery through attachment URLs). A loopback `http` URL that
 * answered 302 with another loopback service's address got that service's answer published as the item's
 * content. Every hop is now checked (scheme, allow-list, the address DNS gives, at connect time), and only a
 * host the definition names — here the file server's own `host:port` — may be a non-public address.
 *
 * Real `node:http` servers on loopback: `files` is the file server the definition allows; `secret` plays every
 * internal service an attacker would aim at (instance metadata, an admin API, Azurite). Nothing may reach it.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  countedServer,
  deadLetters,
  forgedUpsert,
  hostileStack,
  ingestForged,
  itemIds,
  leaked,
  ticket,
  type Counted,
  type HStack,
} from './support.js';

const SECRET = `internalsecret${randomBytes(4).toString('hex')}`;
let secret: Counted;
let files: Counted;
let stack: HStack;

/** Hostile records: [item id, the URL it names (filled in once the servers listen), what refuses it]. */
let cases: [string, string, RegExp][] = [];

beforeAll(async () => {
  // Listening on :: with ipv6Only false: reachable as 127.0.0.1, ::1 and ::ffff:127.0.0.1.
  secret = await countedServer((_req, res) => res.end(`instance metadata ${SECRET}`), '::');
  const s = secret.port;
  files = await countedServer((req, res) => {
    const to: Record<string, string> = {
      '/hop': `http://127.0.0.1:${s}/latest/meta-data/`,
      '/hop-localhost': `http://localhost:${s}/`,
      '/hop-v6': `http://[::1]:${s}/`,
      '/hop-mapped': `http://[::ffff:127.0.0.1]:${s}/`,
      '/hop-decimal': `http://2130706433:${s}/`,
      '/hop-zero': `http://0.0.0.0:${s}/`,
      '/hop-metadata': 'http://169.254.169.254/latest/meta-data/iam/security-credentials/',
      '/hop-private': 'http://10.0.0.7/admin',
      '/hop-file': 'file:///etc/passwd',
      '/loop': '/loop',
    };
    const target = to[req.url ?? ''];
    if (target) res.writeHead(302, { location: target }).end();
    else if (req.url === '/ok.txt') res.end('A harmless attachment from the file server.');
    else res.writeHead(404).end();
  });
  const f = files.url;
  cases = [
    ['SSRF1', `${f}/hop`, /127\.0\.0\.1.*not a public address/],
    ['SSRF2', `${f}/hop-localhost`, /localhost.*(not a public address|127\.0\.0\.1|::1)/],
    ['SSRF3', `${f}/hop-v6`, /\[::1\].*not a public address/],
    ['SSRF4', `${f}/hop-mapped`, /not a public address/],
    ['SSRF5', `${f}/hop-decimal`, /127\.0\.0\.1.*not a public address/],
    ['SSRF6', `${f}/hop-zero`, /0\.0\.0\.0.*not a public address/],
    ['SSRF7', `${f}/hop-metadata`, /169\.254\.169\.254.*not a public address/],
    ['SSRF8', `${f}/hop-private`, /10\.0\.0\.7.*not a public address/],
    ['SSRF9', `${f}/hop-file`, /file:.*http or https/],
    ['SSRF10', `${f}/loop`, /more than 5 redirects/],
    ['SSRF11', `http://127.0.0.1:${s}/direct`, /127\.0\.0\.1.*not a public address/],
    ['SSRF12', `http://localhost:${s}/direct`, /localhost.*not a public address/],
    ['SSRF13', `http://[::ffff:7f00:1]:${s}/direct`, /not a public address/],
    ['SSRF14', 'http://169.254.169.254/latest/meta-data/', /169\.254\.169\.254.*not a public address/],
    ['SSRF15', `http://0.0.0.0:${s}/direct`, /not a public address/],
  ];
  stack = await hostileStack({
    // The file server is named with its port: the one non-public address the definition allows.
    attachments: { allowHttp: true, privateHosts: [`127.0.0.1:${files.port}`], timeoutMs: 3_000 },
    records: [ticket('SSRFOK', `${f}/ok.txt`), ...cases.map(([id, url]) => ticket(id, url))],
  });
}, 60_000);

afterAll(async () => {
  await stack?.close();
  await secret?.close();
  await files?.close();
});

describe('attachment URLs cannot reach internal services', () => {
  it('no redirect, literal, name or encoding reaches the internal service; each refusal names the hop', async () => {
    const { job } = await stack.crawl({ mode: 'full' });
    expect(job?.status, job?.error).toBe('completed');
    expect(secret.requests, 'requests that reached the internal service').toEqual([]);
    expect(await leaked(stack, [SECRET])).toEqual([]);
    expect(await itemIds(stack)).toEqual(['SSRFOK']);
    const dls = await deadLetters(stack);
    const problems: string[] = [];
    for (const [id, url, why] of cases) {
      const d = dls.find((x) => x.itemId === id || x.message.includes(`record ${id}:`));
      if (!d) problems.push(`${id} (${url}): no dead letter or rejection`);
      else if (!why.test(d.message)) problems.push(`${id} (${url}): ${d.message}`);
    }
    expect(problems).toEqual([]);
  }, 60_000);

  it('a forged queue message naming the metadata address or a loopback port is refused at ingest', async () => {
    for (const url of ['http://169.254.169.254/latest/meta-data/', `http://127.0.0.1:${secret.port}/forged`]) {
      const outcome = await ingestForged(
        stack,
        forgedUpsert(stack, 'FORGEDURL', [{ name: 'x.txt', url, fingerprint: 'x' }]),
      );
      expect(outcome.outcome, url).toBe('deadLettered');
      expect((outcome as { reason: string }).reason, url).toMatch(/not a public address/);
    }
    expect(secret.requests).toEqual([]);
    expect(await leaked(stack, [SECRET])).toEqual([]);
  });
});
