/**
 * Throttling that tests patience: Retry-After values drawn from a range, throttling windows (every call of a
 * connection 429 for N seconds) and 503 storms — and the official Graph client's RetryHandler honouring them.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmulator, type EmulatorHandle } from '../../src/emulator/index.js';
import { parseWindowSpec } from '../../src/emulator/throttling.js';
import { bearer, call, graphClient, secretCredential, tokenFor, trust, type Rec, type Tls } from './helpers.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('emulator throttling', () => {
  let emu: EmulatorHandle;
  let tls: Tls;
  let token: string;
  const g = (method: string, path: string, body?: unknown) => call(emu, tls, method, path, body, bearer(token));
  const admin = (method: string, path: string, body?: unknown) => call(emu, tls, method, `/_emulator/${path}`, body);

  beforeAll(async () => {
    emu = await startEmulator({ seed: 11, retryAfterRange: [3, 9], log: () => {} });
    tls = trust(emu);
    token = await tokenFor(emu, tls);
    for (const id of ['win1', 'calm'])
      await g('POST', '/v1.0/external/connections', { id, name: id, description: 'd' });
  });
  afterAll(async () => {
    await emu?.close();
    await tls?.dispatcher.close();
  });

  it('draws the Retry-After of injected 429/503s from the range, and takes a new range at run time', async () => {
    // Random faults include dropped connections and slow answers: a dropped one answers nothing.
    const attempt = () => g('GET', '/v1.0/external/connections/calm').catch(() => undefined);
    const retryAfters = async (n: number) => {
      const out: number[] = [];
      for (let i = 0; i < n; i++) {
        const r = await attempt();
        if (r && (r.status === 429 || r.status === 503)) out.push(Number(r.headers.get('retry-after')));
      }
      return out;
    };
    await admin('POST', 'faults', { match: { route: 'connection' }, action: 'status', status: 429, count: 30 });
    const scripted = await retryAfters(30);
    expect(scripted).toHaveLength(30);
    expect(scripted.every((v) => v >= 3 && v <= 9)).toBe(true);
    expect(new Set(scripted).size).toBeGreaterThanOrEqual(4);
    await admin('PATCH', 'settings', { faultRate: 1 });
    try {
      const random = await retryAfters(12);
      expect(random.length).toBeGreaterThan(0);
      expect(random.every((v) => v >= 3 && v <= 9)).toBe(true);
    } finally {
      await admin('PATCH', 'settings', { faultRate: 0 });
    }
    await admin('PATCH', 'settings', { retryAfterMin: 1, retryAfterMax: 120 });
    await admin('POST', 'faults', { match: { route: 'connection' }, action: 'status', status: 503, count: 40 });
    const wide = await retryAfters(40);
    expect(wide.every((v) => v >= 1 && v <= 120)).toBe(true);
    expect(Math.max(...wide)).toBeGreaterThan(30);
    const bad = await admin('PATCH', 'settings', { retryAfterMin: 10, retryAfterMax: 5 });
    expect(bad.status).toBe(400);
    expect(bad.body.error.message).toMatch(/retryAfterMin/);
    expect((await admin('GET', 'state')).body.settings).toMatchObject({ retryAfterMin: 1, retryAfterMax: 120 });
    await admin('PATCH', 'settings', { retryAfterMin: 3, retryAfterMax: 9 });
  });

  it('a throttling window answers every call of its connection 429 until it ends; other connections are untouched', async () => {
    await admin('PATCH', 'settings', { retryAfterMin: 0, retryAfterMax: 0 });
    try {
      const added = await admin('POST', 'throttle', { connectionId: 'WIN1', seconds: 2 });
      expect(added.status).toBe(201);
      expect(added.body.value[0]).toMatchObject({ status: 429, connectionId: 'WIN1', active: true });
      const t0 = Date.now();
      const r = await g('GET', '/v1.0/external/connections/win1');
      expect(r.status).toBe(429);
      expect(r.body.error.code).toBe('TooManyRequests');
      expect(r.body.error.message).toMatch(/Throttling window/);
      // Without a range, Retry-After is the time left in the window.
      expect(Number(r.headers.get('retry-after'))).toBe(2);
      expect((await g('PUT', '/v1.0/external/connections/win1/items/x', {})).status).toBe(429);
      expect((await g('GET', '/v1.0/external/connections/calm')).status).toBe(200);
      // The official client waits as told and gets through once the window has passed.
      await admin('DELETE', 'requests');
      const client = graphClient(emu, tls, secretCredential(emu, tls), { maxRetries: 3 });
      expect((await client.api('/external/connections/win1').get()).id).toBe('win1');
      expect(Date.now() - t0).toBeGreaterThanOrEqual(1900);
      const log = (await admin('GET', 'requests?connectionId=win1')).body.value as Rec[];
      expect(log.filter((e) => String(e.fault).startsWith('window:')).length).toBeGreaterThanOrEqual(1);
      expect(log.at(-1)!.status).toBe(200);
      // No retry came before the Retry-After it was given.
      for (let i = 0; i + 1 < log.length; i++) {
        const e = log[i]!;
        if (e.retryAfter === undefined || e.method !== 'GET') continue;
        const next = log.slice(i + 1).find((x) => x.method === 'GET');
        if (!next) continue;
        const answeredAt = Date.parse(String(e.time)) + Number(e.durationMs);
        expect(Date.parse(String(next.time))).toBeGreaterThanOrEqual(answeredAt + Number(e.retryAfter) * 1000 - 5);
      }
    } finally {
      await admin('PATCH', 'settings', { retryAfterMin: 3, retryAfterMax: 9 });
    }
  });

  it('a window can start later and carry a fixed Retry-After', async () => {
    await admin('POST', 'throttle', { connectionId: 'calm', seconds: 1, startInSeconds: 0.5, retryAfter: 7 });
    expect((await g('GET', '/v1.0/external/connections/calm')).status).toBe(200);
    await sleep(600);
    const r = await g('GET', '/v1.0/external/connections/calm');
    expect(r.status).toBe(429);
    expect(r.headers.get('retry-after')).toBe('7');
    await sleep(1000);
    expect((await g('GET', '/v1.0/external/connections/calm')).status).toBe(200);
  });

  it('a 503 storm refuses a share of every Graph call (any connection, lists too) with Retry-After from the range', async () => {
    await admin('POST', 'throttle', { status: 503, seconds: 3, share: 0.5 });
    const statuses: number[] = [];
    const retryAfters: number[] = [];
    for (let i = 0; i < 40; i++) {
      const r = await g('GET', i % 2 ? '/v1.0/external/connections' : '/v1.0/external/connections/calm');
      statuses.push(r.status);
      if (r.status === 503) {
        expect(r.body.error.code).toBe('ServiceUnavailable');
        retryAfters.push(Number(r.headers.get('retry-after')));
      }
    }
    const refused = statuses.filter((s) => s === 503).length;
    expect(refused).toBeGreaterThan(8);
    expect(refused).toBeLessThan(32);
    expect(statuses.every((s) => s === 200 || s === 503)).toBe(true);
    expect(retryAfters.every((v) => v >= 3 && v <= 9)).toBe(true);
    // Tokens are not Graph calls: the storm leaves the token endpoint alone.
    await expect(tokenFor(emu, tls)).resolves.toBeTruthy();
    expect((await admin('GET', 'throttle')).body.value).toHaveLength(1);
    expect((await admin('DELETE', 'throttle')).body.removed).toBe(1);
    expect((await g('GET', '/v1.0/external/connections')).status).toBe(200);
  });

  it.each([
    [{ status: 500, seconds: 1 }, /status must be 429/],
    [{ status: 429 }, /seconds is required/],
    [{ seconds: 1, share: 2 }, /share must be a number from 0 to 1/],
    [{ seconds: 1, every: 3 }, /Unknown field 'every'/],
  ])('refuses a bad window %j with 400 naming the field', async (body, message) => {
    const r = await admin('POST', 'throttle', body);
    expect(r.status).toBe(400);
    expect(r.body.error.message).toMatch(message);
  });

  it('takes windows from the start options and the CLI form', async () => {
    expect(parseWindowSpec('30s+60s')).toEqual({ startInSeconds: 30, seconds: 60, status: 429 });
    expect(parseWindowSpec('500ms+2m:503:0.25@contosotasks')).toEqual({
      startInSeconds: 0.5,
      seconds: 120,
      status: 503,
      share: 0.25,
      connectionId: 'contosotasks',
    });
    expect(() => parseWindowSpec('60s')).toThrow(/START\+DURATION/);
    const other = await startEmulator({ throttleWindows: [{ seconds: 30 }], log: () => {} });
    try {
      const otherTls = trust(other);
      const t = await tokenFor(other, otherTls);
      const r = await call(other, otherTls, 'GET', '/v1.0/external/connections', undefined, bearer(t));
      expect(r.status).toBe(429);
      expect(Number(r.headers.get('retry-after'))).toBeGreaterThan(25);
      await otherTls.dispatcher.close();
    } finally {
      await other.close();
    }
  });
});
