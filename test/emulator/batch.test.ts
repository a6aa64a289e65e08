/**
 * JSON batching as https://learn.microsoft.com/graph/json-batching states it: at most 20 requests; dependsOn on
 * every request (one sequence) or on none (unordered, concurrent); a partial chain → 400; each sub-request its
 * own status (and its own 429 + Retry-After); after a failure in a sequence the rest get 424.
 */
import { BatchRequestContent, BatchResponseContent } from '@microsoft/microsoft-graph-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmulator, type EmulatorHandle } from '../../src/emulator/index.js';
import {
  bearer,
  call,
  graphClient,
  item,
  readyConnection,
  secretCredential,
  tokenFor,
  trust,
  type Rec,
  type Tls,
} from './helpers.js';

const I = 'https://graph.microsoft.com/v1.0/external/connections/batches/items';

function put(id: string): Request {
  return new Request(`${I}/${id}`, {
    method: 'PUT',
    body: JSON.stringify(item(id)),
    headers: { 'Content-Type': 'application/json' },
  });
}

describe('emulator $batch rules', () => {
  let emu: EmulatorHandle;
  let tls: Tls;
  let token: string;
  const raw = (requests: unknown) => call(emu, tls, 'POST', '/v1.0/$batch', { requests }, bearer(token));

  beforeAll(async () => {
    emu = await startEmulator({ schemaDelayMs: 10, log: () => {} });
    tls = trust(emu);
    token = await tokenFor(emu, tls);
    await readyConnection(emu, tls, token, 'batches');
  });
  afterAll(async () => {
    await emu?.close();
    await tls?.dispatcher.close();
  });

  it('runs a batch without dependsOn concurrently (20 PUTs, 300 ms each, in far less than 20 × 300 ms)', async () => {
    const client = graphClient(emu, tls, secretCredential(emu, tls));
    const ids = Array.from({ length: 20 }, (_, i) => `par${i}`);
    const content = new BatchRequestContent(ids.map((id) => ({ id, request: put(id) })));
    await call(emu, tls, 'PATCH', '/_emulator/settings', { latencyMs: 300 });
    try {
      const t0 = Date.now();
      const answer = new BatchResponseContent(await client.api('/$batch').post(await content.getContent()));
      const elapsed = Date.now() - t0;
      for (const id of ids) expect(answer.getResponseById(id).status, id).toBe(200);
      expect(elapsed).toBeLessThan(3000);
    } finally {
      await call(emu, tls, 'PATCH', '/_emulator/settings', { latencyMs: 0 });
    }
    const stored = (await call(emu, tls, 'GET', '/_emulator/connections/batches/items')).body.value;
    expect(stored.map((i: Rec) => i.id)).toEqual(expect.arrayContaining(ids));
  });

  it('runs a full sequence in dependsOn order; after a failure the rest get 424', async () => {
    const client = graphClient(emu, tls, secretCredential(emu, tls));
    // The order of the chain (1 → 2 → 4 → 3) differs from the order in the payload, as in the docs' example.
    const content = new BatchRequestContent([
      { id: '1', request: put('seq1') },
      { id: '2', request: new Request(`${I}/seq1`), dependsOn: ['1'] },
      { id: '4', request: new Request(`${I}/nothere`, { method: 'DELETE' }), dependsOn: ['2'] },
      { id: '3', request: put('seq3'), dependsOn: ['4'] },
    ]);
    const body = await client.api('/$batch').post(await content.getContent());
    expect(body.responses.map((r: Rec) => r.id)).toEqual(['1', '2', '4', '3']);
    const answer = new BatchResponseContent(body);
    expect(answer.getResponseById('1').status).toBe(200);
    expect(answer.getResponseById('2').status).toBe(200);
    expect(((await answer.getResponseById('2').json()) as Rec).id).toBe('seq1');
    expect(answer.getResponseById('4').status).toBe(404);
    expect(answer.getResponseById('3').status).toBe(424);
    expect((await call(emu, tls, 'GET', '/_emulator/connections/batches/items/seq3')).status).toBe(404);
  });

  it.each([
    [
      'a partial chain (one request depends, another does not)',
      [
        { id: '1', method: 'GET', url: '/external/connections' },
        { id: '2', method: 'GET', url: '/external/connections', dependsOn: ['1'] },
        { id: '3', method: 'GET', url: '/external/connections' },
      ],
      /partial/,
    ],
    [
      'two chains',
      [
        { id: '1', method: 'GET', url: '/external/connections' },
        { id: '2', method: 'GET', url: '/external/connections', dependsOn: ['1'] },
        { id: '3', method: 'GET', url: '/external/connections' },
        { id: '4', method: 'GET', url: '/external/connections', dependsOn: ['3'] },
      ],
      /partial/,
    ],
    [
      'a branching chain',
      [
        { id: '1', method: 'GET', url: '/external/connections' },
        { id: '2', method: 'GET', url: '/external/connections', dependsOn: ['1'] },
        { id: '3', method: 'GET', url: '/external/connections', dependsOn: ['1'] },
      ],
      /branches/,
    ],
    [
      'a dependency on two requests',
      [
        { id: '1', method: 'GET', url: '/external/connections' },
        { id: '2', method: 'GET', url: '/external/connections', dependsOn: ['1'] },
        { id: '3', method: 'GET', url: '/external/connections', dependsOn: ['1', '2'] },
      ],
      /exactly one/,
    ],
    [
      'a dependency outside the batch',
      [
        { id: '1', method: 'GET', url: '/external/connections' },
        { id: '2', method: 'GET', url: '/external/connections', dependsOn: ['9'] },
      ],
      /not in the batch/,
    ],
    [
      'a cycle',
      [
        { id: '1', method: 'GET', url: '/external/connections' },
        { id: '2', method: 'GET', url: '/external/connections', dependsOn: ['3'] },
        { id: '3', method: 'GET', url: '/external/connections', dependsOn: ['2'] },
      ],
      /cycle/,
    ],
    [
      'ids that differ only in case',
      [
        { id: 'a', method: 'GET', url: '/external/connections' },
        { id: 'A', method: 'GET', url: '/external/connections' },
      ],
      /used twice/,
    ],
    [
      '21 requests',
      Array.from({ length: 21 }, (_, i) => ({ id: `${i}`, method: 'GET', url: '/external/connections' })),
      /at most 20/,
    ],
    ['no request', [], /non-empty/],
  ])('refuses %s with 400 naming the rule, running nothing', async (_what, requests, message) => {
    await call(emu, tls, 'DELETE', '/_emulator/requests');
    const res = await raw(requests);
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('BadRequest');
    expect(res.body.error.message).toMatch(message);
    const log = (await call(emu, tls, 'GET', '/_emulator/requests?route=connections')).body.value;
    expect(log).toEqual([]);
  });

  it('gives a throttled sub-request its own 429 with Retry-After, the batch itself 200', async () => {
    await call(emu, tls, 'PATCH', '/_emulator/settings', { rateLimit: 1 });
    try {
      const res = await raw(
        [0, 1, 2].map((i) => ({
          id: `${i}`,
          method: 'PUT',
          url: `/external/connections/batches/items/bt${i}`,
          body: item(`bt${i}`),
          headers: { 'Content-Type': 'application/json' },
        })),
      );
      expect(res.status).toBe(200);
      const throttled = res.body.responses.filter((r: Rec) => r.status === 429);
      expect(throttled.length).toBeGreaterThanOrEqual(1);
      expect(throttled[0].headers['Retry-After']).toBe('1');
      expect(throttled[0].body.error.code).toBe('TooManyRequests');
    } finally {
      await call(emu, tls, 'PATCH', '/_emulator/settings', { rateLimit: 0 });
    }
    expect((await call(emu, tls, 'POST', '/v1.0/$batch', { requests: [] })).status).toBe(401);
  });
});
