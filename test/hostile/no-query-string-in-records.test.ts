/**
 * Regression (bug class: a URL's query string — a SAS token's `sig=` — is stored and logged in full). An
 * attachment URL's query was copied into rejection reasons, dead letters (message and body), the ledger's
 * `lastError` and log lines, where anyone who reads status, dead letters or logs would find a working token.
 * The URL is still fetched with its query; everything written about it shows `origin + path` only.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  countedServer,
  deadLetters,
  forgedUpsert,
  hostileStack,
  ingestForged,
  ticket,
  type Counted,
  type HStack,
} from './support.js';

const SIG = `sasSignature${randomBytes(6).toString('hex')}`;
const query = `?sv=2024-11-04&se=2030-01-01&sp=r&sig=${SIG}`;
let files: Counted;
let stack: HStack;

beforeAll(async () => {
  files = await countedServer((req, res) => {
    const path = (req.url ?? '').split('?')[0];
    const signed = (req.url ?? '').includes(`sig=${SIG}`);
    if (path === '/signed.txt' && signed) res.end('A signed download.');
    else if (path === '/flaky.txt') res.writeHead(503).end();
    else res.writeHead(path === '/signed.txt' ? 403 : 404).end();
  });
  stack = await hostileStack({
    attachments: {
      allowHttp: true,
      allowHosts: ['files.contoso.com'],
      privateHosts: [`127.0.0.1:${files.port}`],
      timeoutMs: 3_000,
    },
    records: [
      ticket('SASOK', `${files.url}/signed.txt${query}`),
      ticket('SASGONE', `${files.url}/gone.pdf${query}`),
      // Refused by the mapping (not on the allow-list): the rejection reason names the URL.
      ticket('SASHOST', `https://files.example.com/a.pdf${query}`),
    ],
  });
}, 60_000);

afterAll(async () => {
  await stack?.close();
  await files?.close();
});

/** Every place the connector writes about a failure, as text. */
async function everythingWritten(): Promise<string> {
  const dls = await deadLetters(stack);
  const bodies = await Promise.all(dls.map((d) => stack.rt.pipeline.state.deadLetters.body(d)));
  const ledger = await Promise.all(
    ['SASOK', 'SASGONE', 'SASFLAKY', 'SASFORGED'].map((id) =>
      stack.rt.pipeline.state.items.getItem(stack.rt.pipeline.connectionId, id),
    ),
  );
  return [JSON.stringify(dls), ...bodies, JSON.stringify(ledger), ...stack.logger.lines].join('\n');
}

describe('query strings never leave the fetch', () => {
  it('reasons, dead letters, lastError and logs show the URL without its query; the fetch still uses it', async () => {
    const { job } = await stack.crawl({ mode: 'full' });
    expect(job?.status, job?.error).toBe('completed');
    expect(job!.counts).toMatchObject({ ingested: 1, deadLettered: 1, rejected: 1 });
    // The signed URL was fetched with its signature (that is how SASOK got its content).
    expect(files.requests.some((r) => r.includes(`/signed.txt?`) && r.includes(SIG))).toBe(true);
    const dls = await deadLetters(stack);
    expect(dls.find((d) => d.itemId === 'SASGONE')?.message).toMatch(
      new RegExp(`${files.url.replace(/\./g, '\\.')}/gone\\.pdf\\b.*HTTP 404`),
    );
    expect(dls.find((d) => d.message.includes('SASHOST'))?.message).toMatch(/https:\/\/files\.example\.com\/a\.pdf/);
    const written = await everythingWritten();
    expect(written).toContain('gone.pdf');
    expect(written).not.toContain(SIG);
  }, 60_000);

  it('a transient failure (503) throws for redelivery with a message and log lines free of the query', async () => {
    const outcome = await ingestForged(
      stack,
      forgedUpsert(stack, 'SASFLAKY', [{ name: 'flaky.txt', url: `${files.url}/flaky.txt${query}`, fingerprint: 'x' }]),
    );
    expect(outcome.outcome).toBe('thrown');
    expect((outcome as { error: string }).error).toMatch(/flaky\.txt.*503/);
    expect((outcome as { error: string }).error).not.toContain(SIG);
    expect(await everythingWritten()).not.toContain(SIG);
  });

  it('a dead-lettered operation keeps no query in its body; replaying it says to resync instead', async () => {
    const outcome = await ingestForged(
      stack,
      forgedUpsert(stack, 'SASFORGED', [{ name: 'gone.pdf', url: `${files.url}/gone.pdf${query}`, fingerprint: 'x' }]),
    );
    expect(outcome.outcome).toBe('deadLettered');
    const d = (await deadLetters(stack)).find((x) => x.itemId === 'SASFORGED')!;
    const body = (await stack.rt.pipeline.state.deadLetters.body(d))!;
    expect(body).toContain('gone.pdf');
    expect(body).not.toContain(SIG);
    // The stored operation, sent again as a replay would, is refused with the way out.
    const again = await ingestForged(stack, JSON.parse(body));
    expect(again.outcome).toBe('deadLettered');
    expect((again as { reason: string }).reason).toMatch(/query string .* resync/);
    expect(await everythingWritten()).not.toContain(SIG);
  });
});
