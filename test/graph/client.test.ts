import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { EmulatorHandle } from '../../src/emulator/index.js';
import { GraphConnectorClient } from '../../src/graph/client.js';
import { parseRetryAfter } from '../../src/core/async.js';
import { GraphError } from '../../src/graph/errors.js';
import { admin, failure, clientFor, connectionId, environmentFor, requests, startTestEmulator } from './helpers.js';
import { createTestTls } from '../fakes/tls.js';
import { createServer as createHttpsServer } from 'node:https';
import { readFileSync } from 'node:fs';
import { Agent } from 'undici';

let emu: EmulatorHandle;
beforeAll(async () => {
  emu = await startTestEmulator();
});
afterAll(async () => {
  await emu?.close();
});
beforeEach(async () => {
  await admin(emu.info, 'POST', 'reset', {});
});

const fault = (body: unknown) => admin(emu.info, 'POST', 'faults', body);

describe('Graph client against the emulator', () => {
  it('lists, creates, reads, updates (204) and deletes (202) a connection without choking on empty bodies', async () => {
    const client = clientFor(emu.info);
    const id = connectionId('crud');
    expect(await client.getConnection(id)).toBeNull();
    const created = await client.createConnection({ id, name: 'CRUD', description: 'test' });
    expect(created.id).toBe(id);
    await client.updateConnection(id, { description: 'changed' });
    expect((await client.getConnection(id))?.description).toBe('changed');
    expect((await client.listConnections()).map((c) => c.id)).toContain(id);
    await client.deleteConnection(id);
    const log = await requests(emu.info);
    expect(log.map((r) => `${r.method} ${r.route} ${r.status}`)).toEqual([
      'GET connection 404',
      'POST connections 201',
      'PATCH connection 204',
      'GET connection 200',
      'GET connections 200',
      'DELETE connection 202',
    ]);
  });

  it('builds GraphError from the envelope: status, code, requestId, clientRequestId, permanent 4xx', async () => {
    const client = clientFor(emu.info);
    const err = await failure(client.createConnection({ id: 'bad-id', name: 'x', description: 'y' }));
    expect(err).toBeInstanceOf(GraphError);
    expect(err).toBeInstanceOf(Error);
    expect(err.status).toBe(400);
    expect(err.code).toBe('InvalidRequest');
    expect(err.retryable).toBe(false);
    expect(err.requestId).toMatch(/.+/);
    const [logged] = (await requests(emu.info)).filter((r) => r.route === 'connections');
    expect(err.clientRequestId).toBe(logged!.clientRequestId);
    expect(err.requestId).toBe(logged!.requestId);
    expect(err.message).toContain('POST');
  });

  it('sends a distinct client-request-id on every request', async () => {
    const client = clientFor(emu.info);
    await client.listConnections();
    await client.listConnections();
    const ids = (await requests(emu.info)).map((r) => r.clientRequestId);
    expect(ids).toHaveLength(2);
    expect(new Set(ids).size).toBe(2);
    for (const id of ids) expect(id).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('never retries sooner than Retry-After (measured from the emulator request log)', async () => {
    const client = clientFor(emu.info, { retry: { maxRetries: 3 } });
    await fault({
      match: { method: 'GET', route: 'connections' },
      action: 'status',
      status: 429,
      retryAfter: 1,
      count: 2,
    });
    await client.listConnections();
    const log = (await requests(emu.info)).filter((r) => r.route === 'connections');
    expect(log.map((r) => r.status)).toEqual([429, 429, 200]);
    for (let i = 1; i < log.length; i++) {
      const gap = Date.parse(log[i]!.time) - Date.parse(log[i - 1]!.time);
      expect(gap).toBeGreaterThanOrEqual(1000);
    }
  });

  it('with a 0-retry budget returns the 429 at once as a transient GraphError with retryAfterMs', async () => {
    const client = clientFor(emu.info, { retry: { maxRetries: 0 } });
    await fault({
      match: { method: 'GET', route: 'connections' },
      action: 'status',
      status: 429,
      retryAfter: 7,
      count: 1,
    });
    const started = Date.now();
    const err = await failure(client.listConnections());
    expect(Date.now() - started).toBeLessThan(1000);
    expect(err).toBeInstanceOf(GraphError);
    expect(err.status).toBe(429);
    expect(err.retryable).toBe(true);
    expect(err.retryAfterMs).toBe(7000);
    expect((await requests(emu.info)).filter((r) => r.route === 'connections')).toHaveLength(1);
  });

  it('a per-call budget of 0 overrides the client policy (ingest path re-enqueues instead of sleeping)', async () => {
    const client = clientFor(emu.info, { retry: { maxRetries: 5 } });
    await fault({
      match: { method: 'GET', route: 'connections' },
      action: 'status',
      status: 503,
      retryAfter: 30,
      count: 1,
    });
    const err = await failure(client.listConnections({ retry: { maxRetries: 0 } }));
    expect(err.status).toBe(503);
    expect(err.retryAfterMs).toBe(30_000);
  });

  it('backs off exponentially with full jitter on 500/502 (injected random and sleep)', async () => {
    const slept: number[] = [];
    const client = clientFor(emu.info, {
      retry: { maxRetries: 4, baseDelayMs: 100, maxDelayMs: 1000 },
      clock: { random: () => 0.5, sleep: async (ms: number) => void slept.push(ms) },
    });
    await fault({ match: { method: 'GET', route: 'connections' }, action: 'status', status: 500, count: 1 });
    await fault({ match: { method: 'GET', route: 'connections' }, action: 'status', status: 502, count: 2 });
    await client.listConnections();
    expect(slept).toEqual([50, 100, 200]);
    expect((await requests(emu.info)).map((r) => r.status)).toEqual([500, 502, 502, 200]);
  });

  it('a Retry-After beyond maxDelayMs is not undercut: the error comes back for the caller to reschedule', async () => {
    const slept: number[] = [];
    const client = clientFor(emu.info, {
      retry: { maxRetries: 4, maxDelayMs: 1000 },
      clock: { sleep: async (ms: number) => void slept.push(ms) },
    });
    await fault({
      match: { method: 'GET', route: 'connections' },
      action: 'status',
      status: 429,
      retryAfter: 5,
      count: 1,
    });
    const err = await failure(client.listConnections());
    expect(slept).toEqual([]);
    expect(err.retryAfterMs).toBe(5000);
  });

  it('turns a dropped connection into GraphError status 0 NetworkError after the retries', async () => {
    const slept: number[] = [];
    const client = clientFor(emu.info, {
      retry: { maxRetries: 1 },
      clock: { sleep: async (ms: number) => void slept.push(ms) },
    });
    await fault({ match: { method: 'GET', route: 'connections' }, action: 'drop-connection', count: 5 });
    const err = await failure(client.listConnections());
    expect(err).toBeInstanceOf(GraphError);
    expect(err.status).toBe(0);
    expect(err.code).toBe('NetworkError');
    expect(err.retryable).toBe(true);
    expect(slept).toHaveLength(1);
  });

  it('URL-encodes item ids in the path', async () => {
    const client = clientFor(emu.info);
    await client.getItem('someconnection', 'a b/c?d').catch(() => undefined);
    const [r] = await requests(emu.info);
    expect(r!.path).toContain('/items/a%20b%2Fc%3Fd');
  });

  it('without the extra CA the emulator certificate is rejected (TlsCertificateNotAccepted, not retried), so GRAPH_CA_CERT_PATH is what makes it work', async () => {
    const { caCertPath: _ca, ...rest } = emu.info;
    const env = environmentFor(emu.info); // the credential trusts the CA; the Graph fetch does not
    const client = clientFor({ ...rest }, { caCertPath: undefined }, env);
    const err = await failure<Error>(client.listConnections());
    // token acquisition goes through identity (which has the CA), the Graph call through fetch (which has not)
    expect((err as GraphError).code ?? err.name).toBe('TlsCertificateNotAccepted');
    expect((err as GraphError).retryable).toBe(false);
    expect(err.message).toContain(`the TLS certificate of ${emu.info.baseUrl} is not trusted`);
  });
});

describe('Authorization goes only to the configured Graph host', () => {
  let server: Server;
  let seen: IncomingHttpHeaders[] = [];
  let port = 0;
  beforeAll(async () => {
    server = createServer((req, res) => {
      seen.push(req.headers);
      if (req.url?.includes('retry-date')) {
        const first = seen.length === 1;
        res.writeHead(first ? 503 : 200, {
          'content-type': 'application/json',
          ...(first ? { 'retry-after': new Date(Date.now() + 2000).toUTCString() } : {}),
        });
        res.end(first ? '{"error":{"code":"serviceNotAvailable","message":"busy"}}' : '{"ok":true}');
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"value":[]}');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(async () => {
    await new Promise((r) => server.close(r));
  });
  beforeEach(() => {
    seen = [];
  });

  it('an absolute https URL on another host gets no token; the base host gets one; plain http elsewhere is refused', async () => {
    const tls = await createTestTls();
    const foreignSeen: IncomingHttpHeaders[] = [];
    const foreign = createHttpsServer({ key: tls.key, cert: tls.cert }, (req, res) => {
      foreignSeen.push(req.headers);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{}');
    });
    await new Promise<void>((r) => foreign.listen(0, '127.0.0.1', r));
    try {
      const dispatcher = new Agent({ connect: { ca: [readFileSync(emu.info.caCertPath!, 'utf8'), tls.caCert] } });
      const client = clientFor(emu.info, { dispatcher });
      await client.listConnections();
      const [own] = await requests(emu.info);
      expect(own!.appId).toBe(emu.info.clientId); // the emulator saw a valid token
      const fport = (foreign.address() as AddressInfo).port;
      await client.request('GET', `https://localhost:${fport}/v1.0/elsewhere`);
      expect(foreignSeen).toHaveLength(1);
      expect(foreignSeen[0]!.authorization).toBeUndefined();
      const err = await failure(client.request('GET', `http://127.0.0.1:${port}/v1.0/x`));
      expect(err.code).toBe('InvalidUrl');
      expect(seen).toHaveLength(0);
      await dispatcher.close();
    } finally {
      await new Promise((r) => foreign.close(r));
    }
  });

  it('a loopback http base URL gets the token (local development) and its absolute URLs still work', async () => {
    const local = new GraphConnectorClient({
      baseUrl: `http://127.0.0.1:${port}`,
      credential: { getToken: async () => ({ token: 'tok-123456', expiresOnTimestamp: Date.now() + 3600_000 }) },
    });
    await local.request('GET', 'anything');
    await local.request('GET', `http://127.0.0.1:${port}/v1.0/external/connections/x/operations/y`);
    expect(seen.map((h) => h.authorization)).toEqual(['Bearer tok-123456', 'Bearer tok-123456']);
    expect(seen[0]!['client-request-id']).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('honours Retry-After given as an HTTP-date (never sooner)', async () => {
    const slept: number[] = [];
    const now = Date.now();
    const local = new GraphConnectorClient({
      baseUrl: `http://127.0.0.1:${port}`,
      credential: { getToken: async () => ({ token: 'tok-123456', expiresOnTimestamp: Date.now() + 3600_000 }) },
      clock: { now: () => now, sleep: async (ms: number) => void slept.push(ms) },
    });
    await local.request('GET', 'retry-date');
    expect(seen).toHaveLength(2);
    // HTTP-dates have 1 s resolution: the wait is at least what the date says relative to our clock
    expect(slept[0]).toBeGreaterThanOrEqual(1000);
    expect(slept[0]).toBeLessThanOrEqual(2000);
  });
});

describe('parseRetryAfter', () => {
  it('reads seconds and HTTP-dates; garbage is ignored', () => {
    expect(parseRetryAfter('3')).toBe(3000);
    expect(parseRetryAfter('0')).toBe(0);
    const now = Date.parse('2026-01-01T00:00:00Z');
    expect(parseRetryAfter('Thu, 01 Jan 2026 00:00:10 GMT', now)).toBe(10_000);
    expect(parseRetryAfter('Wed, 31 Dec 2025 23:59:00 GMT', now)).toBe(0);
    expect(parseRetryAfter('soon')).toBeUndefined();
    expect(parseRetryAfter(null)).toBeUndefined();
  });
});

describe('GraphError inner codes', () => {
  it('carries innerError.code from the envelope (a boolean refiner is refused synchronously)', async () => {
    await admin(emu.info, 'POST', 'reset', {});
    const client = clientFor(emu.info);
    const id = connectionId('inner');
    await client.createConnection({ id, name: 'Inner', description: 'inner codes' });
    const err = await failure(
      client.patchSchema(id, {
        baseType: 'microsoft.graph.externalItem',
        properties: [{ name: 'done', type: 'boolean', isQueryable: true, isRefinable: true }],
      }),
    );
    expect(err.status).toBe(400);
    expect(err.code).toBe('InvalidRequest');
    expect(err.innerCode).toBe('RefinerShouldNotBeOfType');
    expect(err.message).toMatch(/done/);
  });
});

describe('cancellation', () => {
  it('an aborted signal ends the call promptly with the caller’s reason, even while waiting out a Retry-After', async () => {
    await admin(emu.info, 'POST', 'reset', {});
    const client = clientFor(emu.info, { retry: { maxRetries: 3 } });
    await admin(emu.info, 'POST', 'faults', {
      match: { method: 'GET', route: 'connections' },
      action: 'status',
      status: 429,
      retryAfter: 30,
      count: 1,
    });
    const ac = new AbortController();
    setTimeout(() => ac.abort(new Error('stop requested')), 300);
    const started = Date.now();
    const err = await failure<Error>(client.listConnections({ abortSignal: ac.signal }));
    expect(Date.now() - started).toBeLessThan(3000);
    expect(err.message).toBe('stop requested');
    // and an already-aborted signal never reaches Graph
    await admin(emu.info, 'DELETE', 'requests');
    const err2 = await failure<Error>(client.listConnections({ abortSignal: AbortSignal.abort(new Error('already')) }));
    expect(err2.message).toBe('already');
    expect(await requests(emu.info)).toEqual([]);
  });
});
