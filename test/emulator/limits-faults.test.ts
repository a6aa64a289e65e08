/** Throttling (concurrency, items/s), latency, scripted and seeded random faults, the request log. */
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
  type Tls,
  type Rec,
} from './helpers.js';

describe('emulator limits and faults', () => {
  let emu: EmulatorHandle;
  let tls: Tls;
  let token: string;
  const g = (method: string, path: string, body?: unknown) => call(emu, tls, method, path, body, bearer(token));
  const settings = (s: Record<string, number>) => call(emu, tls, 'PATCH', '/_emulator/settings', s);

  beforeAll(async () => {
    emu = await startEmulator({ schemaDelayMs: 20, log: () => {} });
    tls = trust(emu);
    token = await tokenFor(emu, tls);
    await readyConnection(emu, tls, token, 'limits');
  });
  afterAll(async () => {
    await emu?.close();
    await tls?.dispatcher.close();
  });

  it('answers 429 TooManyRequests + Retry-After beyond maxConcurrency per connection', async () => {
    await settings({ maxConcurrency: 2, latencyMs: 300 });
    try {
      const results = await Promise.all(Array.from({ length: 6 }, () => g('GET', '/v1.0/external/connections/limits')));
      const throttled = results.filter((r) => r.status === 429);
      expect(results.filter((r) => r.status === 200)).toHaveLength(2);
      expect(throttled).toHaveLength(4);
      expect(throttled[0]!.headers.get('retry-after')).toBe('1');
      expect(throttled[0]!.body.error.code).toBe('TooManyRequests');
      // Another connection has its own budget, and so has another app on the same connection (per app per connection).
      expect((await g('GET', '/v1.0/external/connections')).status).toBe(200);
      const other = await call(emu, tls, 'POST', '/_emulator/apps', { roles: ['ExternalConnection.ReadWrite.All'] });
      const otherToken = await tokenFor(emu, tls, other.body.clientId, other.body.clientSecret);
      const mixed = await Promise.all([
        ...Array.from({ length: 2 }, () => g('GET', '/v1.0/external/connections/limits')),
        ...Array.from({ length: 2 }, () =>
          call(emu, tls, 'GET', '/v1.0/external/connections/limits', undefined, bearer(otherToken)),
        ),
      ]);
      expect(mixed.map((r) => r.status)).toEqual([200, 200, 200, 200]);
    } finally {
      await settings({ maxConcurrency: 25, latencyMs: 0 });
    }
  });

  it('adds latencyMs to Graph responses', async () => {
    await settings({ latencyMs: 250 });
    try {
      const t0 = Date.now();
      await g('GET', '/v1.0/external/connections/limits');
      expect(Date.now() - t0).toBeGreaterThanOrEqual(240);
    } finally {
      await settings({ latencyMs: 0 });
    }
  });

  it('throttles item writes with a token bucket; a client honouring Retry-After completes them all', async () => {
    await settings({ rateLimit: 10 });
    try {
      const burst = await Promise.all(
        Array.from({ length: 25 }, (_, i) =>
          g('PUT', `/v1.0/external/connections/limits/items/burst${i}`, item(`burst${i}`)),
        ),
      );
      const limited = burst.filter((r) => r.status === 429);
      expect(burst.filter((r) => r.status === 200).length).toBeGreaterThanOrEqual(10);
      expect(limited.length).toBeGreaterThanOrEqual(10);
      expect(Number(limited[0]!.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      // Reads are not item writes.
      expect((await g('GET', '/v1.0/external/connections/limits/items/burst0')).status).toBe(200);

      await new Promise((r) => setTimeout(r, 1100));
      const client = graphClient(emu, tls, secretCredential(emu, tls), { maxRetries: 10 });
      const t0 = Date.now();
      await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          client.api(`/external/connections/limits/items/honour${i}`).put(item(`honour${i}`)),
        ),
      );
      expect(Date.now() - t0).toBeGreaterThanOrEqual(900);
      const stored = await call(emu, tls, 'GET', '/_emulator/connections/limits/items');
      for (let i = 0; i < 20; i++) expect(stored.body.value.some((x: Rec) => x.id === `honour${i}`)).toBe(true);
      const log = await call(emu, tls, 'GET', '/_emulator/requests?route=item&status=429');
      expect(log.body.value.length).toBeGreaterThan(0);
      expect(log.body.value[0].retryAfter).toBeGreaterThanOrEqual(1);
    } finally {
      await settings({ rateLimit: 0 });
    }
  });

  it('computes Retry-After from the bucket refill time (0.5 items/s → 2 s)', async () => {
    await settings({ rateLimit: 0.5 });
    try {
      // The bucket may still be drained by earlier tests: honour its Retry-After once, then it holds one token.
      let first = await g('PUT', '/v1.0/external/connections/limits/items/slowrate1', item('slowrate1'));
      if (first.status === 429) {
        await new Promise((r) => setTimeout(r, Number(first.headers.get('retry-after')) * 1000));
        first = await g('PUT', '/v1.0/external/connections/limits/items/slowrate1', item('slowrate1'));
      }
      expect(first.status).toBe(200);
      const second = await g('PUT', '/v1.0/external/connections/limits/items/slowrate2', item('slowrate2'));
      expect(second.status).toBe(429);
      expect(second.headers.get('retry-after')).toBe('2');
      await new Promise((r) => setTimeout(r, 2000));
      expect((await g('PUT', '/v1.0/external/connections/limits/items/slowrate2', item('slowrate2'))).status).toBe(200);
    } finally {
      await settings({ rateLimit: 0 });
    }
  });

  it('throttles group administration with its own bucket (groupRateLimit)', async () => {
    await settings({ groupRateLimit: 5 });
    try {
      const res = await Promise.all(
        Array.from({ length: 12 }, (_, i) => g('POST', '/v1.0/external/connections/limits/groups', { id: `grp${i}` })),
      );
      expect(res.filter((r) => r.status === 201).length).toBe(5);
      const limited = res.filter((r) => r.status === 429);
      expect(limited).toHaveLength(7);
      expect(limited[0]!.body.error.message).toMatch(/group administration/);
      // Item writes are not group writes.
      expect((await g('PUT', '/v1.0/external/connections/limits/items/notgroup', item('notgroup'))).status).toBe(200);
    } finally {
      await settings({ groupRateLimit: 0 });
    }
  });

  it('503-but-create: the connection is created, a retry gets 409 (the documented known issue)', async () => {
    await call(emu, tls, 'POST', '/_emulator/faults', {
      match: { method: 'POST', route: 'connections' },
      action: '503-but-create',
      count: 1,
    });
    const first = await g('POST', '/v1.0/external/connections', {
      id: 'halfmade',
      name: 'Half made',
      description: 'd',
    });
    expect(first.status).toBe(503);
    expect(first.body.error.code).toBe('ServiceUnavailable');
    expect((await g('GET', '/v1.0/external/connections/halfmade')).status).toBe(200);
    expect(
      (await g('POST', '/v1.0/external/connections', { id: 'halfmade', name: 'Half made', description: 'd' })).status,
    ).toBe(409);
    // The Graph client's retry handler turns the same fault into the documented 409 on the retry.
    await call(emu, tls, 'POST', '/_emulator/faults', {
      match: { method: 'POST', route: 'connections' },
      action: '503-but-create',
      retryAfter: 1,
    });
    const client = graphClient(emu, tls, secretCredential(emu, tls), { maxRetries: 2 });
    await expect(
      client.api('/external/connections').post({ id: 'halfmade2', name: 'H', description: 'd' }),
    ).rejects.toMatchObject({
      statusCode: 409,
    });
    expect((await g('GET', '/v1.0/external/connections/halfmade2')).status).toBe(200);
  });

  it('status faults with retryAfter and count: the Graph client honours Retry-After and succeeds', async () => {
    const added = await call(emu, tls, 'POST', '/_emulator/faults', {
      match: { method: 'GET', route: 'connection', connectionId: 'limits' },
      action: 'status',
      status: 429,
      retryAfter: 1,
      count: 2,
    });
    expect(added.status).toBe(201);
    const client = graphClient(emu, tls, secretCredential(emu, tls), { maxRetries: 3 });
    const t0 = Date.now();
    expect((await client.api('/external/connections/limits').get()).id).toBe('limits');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1900);
    const log = await call(emu, tls, 'GET', '/_emulator/requests?route=connection&status=429');
    expect(log.body.value.slice(-2).map((e: Rec) => e.retryAfter)).toEqual([1, 1]);
  });

  it('drop-connection destroys the socket; delay slows the response; after:true applies the write then fails', async () => {
    await call(emu, tls, 'POST', '/_emulator/faults', {
      match: { route: 'item', itemId: 'dropme' },
      action: 'drop-connection',
    });
    await expect(g('PUT', '/v1.0/external/connections/limits/items/dropme', item('dropme'))).rejects.toThrow();
    expect((await g('GET', '/v1.0/external/connections/limits/items/dropme')).status).toBe(404);

    await call(emu, tls, 'POST', '/_emulator/faults', { match: { path: '/items/slow1' }, action: 'delay', ms: 300 });
    const t0 = Date.now();
    expect((await g('PUT', '/v1.0/external/connections/limits/items/slow1', item('slow1'))).status).toBe(200);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(290);

    await call(emu, tls, 'POST', '/_emulator/faults', {
      match: { route: 'item', method: 'PUT' },
      action: 'status',
      status: 500,
      after: true,
    });
    expect((await g('PUT', '/v1.0/external/connections/limits/items/after1', item('after1'))).status).toBe(500);
    expect((await g('GET', '/v1.0/external/connections/limits/items/after1')).status).toBe(200);
  });

  it('count 0 keeps a fault until it is deleted; bad fault definitions are 400', async () => {
    await call(emu, tls, 'POST', '/_emulator/faults', {
      match: { route: 'schema' },
      action: 'status',
      status: 502,
      count: 0,
    });
    for (let i = 0; i < 3; i++) expect((await g('GET', '/v1.0/external/connections/limits/schema')).status).toBe(502);
    expect((await call(emu, tls, 'GET', '/_emulator/faults')).body.value).toHaveLength(1);
    await call(emu, tls, 'DELETE', '/_emulator/faults');
    expect((await g('GET', '/v1.0/external/connections/limits/schema')).status).toBe(200);
    expect((await call(emu, tls, 'POST', '/_emulator/faults', { action: 'explode' })).status).toBe(400);
    expect(
      (await call(emu, tls, 'POST', '/_emulator/faults', { action: 'status', match: { verb: 'GET' } })).status,
    ).toBe(400);
  });

  it('counts requests by method, route and status, and clears the log', async () => {
    const index = await call(emu, tls, 'GET', '/_emulator');
    expect(index.body.graph).toEqual([`${emu.info.baseUrl}/v1.0`, `${emu.info.baseUrl}/beta`]);
    await call(emu, tls, 'DELETE', '/_emulator/requests');
    await g('GET', '/v1.0/external/connections/limits');
    await g('GET', '/v1.0/external/connections/nosuch');
    const summary = await call(emu, tls, 'GET', '/_emulator/requests/summary');
    expect(summary.body).toMatchObject({
      total: 2,
      byMethod: { GET: 2 },
      byRoute: { connection: 2 },
      byStatus: { '200': 1, '404': 1 },
    });
    const entries = await call(emu, tls, 'GET', '/_emulator/requests');
    expect(entries.body.value[0]).toMatchObject({
      method: 'GET',
      route: 'connection',
      status: 200,
      connectionId: 'limits',
      appId: emu.info.clientId,
    });
    expect(entries.body.value[0].time).toMatch(/^\d{4}-/);
  });
});

describe('seeded random faults', () => {
  async function run(seed: number): Promise<string[]> {
    const emu = await startEmulator({ seed, faultRate: 0.5, schemaDelayMs: 0, log: () => {} });
    const tls = trust(emu);
    try {
      const token = await tokenFor(emu, tls);
      const outcomes: string[] = [];
      for (let i = 0; i < 14; i++) {
        try {
          const r = await call(emu, tls, 'GET', '/v1.0/external/connections', undefined, bearer(token));
          outcomes.push(`${r.status}${r.headers.get('retry-after') ? `/ra${r.headers.get('retry-after')}` : ''}`);
        } catch {
          outcomes.push('dropped');
        }
      }
      return outcomes;
    } finally {
      await emu.close();
      await tls.dispatcher.close();
    }
  }

  it('reproduces the same fault sequence for the same seed, and faults do occur', async () => {
    const a = await run(42);
    const b = await run(42);
    expect(a).toEqual(b);
    expect(a.some((o) => o !== '200')).toBe(true);
    expect(a.some((o) => o === '200')).toBe(true);
  });
});
