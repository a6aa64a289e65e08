/**
 * Connection deletion is long-running, as Graph users report it (docs/emulator.md): after the 202 the connection
 * is gone for reads, a second DELETE gets 409, and its id stays taken (POST → 409) until the deletion finishes.
 * And the connection description is required on create (the v1.0 create page).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('connection deletion (default delay)', () => {
  let emu: EmulatorHandle;
  let tls: Tls;
  let token: string;
  const g = (method: string, path: string, body?: unknown) => call(emu, tls, method, path, body, bearer(token));

  beforeAll(async () => {
    // No deleteDelayMs: the default short delay applies.
    emu = await startEmulator({ schemaDelayMs: 10, log: () => {} });
    tls = trust(emu);
    token = await tokenFor(emu, tls);
  });
  afterAll(async () => {
    await emu?.close();
    await tls?.dispatcher.close();
  });

  it('is long-running: gone for reads, a second DELETE and a POST of the id get 409, then the id is free', async () => {
    const client = graphClient(emu, tls, secretCredential(emu, tls));
    await readyConnection(emu, tls, token, 'doomed');
    expect((await g('PUT', '/v1.0/external/connections/doomed/items/i1', item('i1'))).status).toBe(200);
    const settings = (await call(emu, tls, 'GET', '/_emulator/state')).body.settings;
    expect(settings.deleteDelayMs).toBe(2000);

    const t0 = Date.now();
    await client.api('/external/connections/doomed').delete();
    // Reads: 404 that says why.
    await expect(client.api('/external/connections/doomed').get()).rejects.toMatchObject({
      statusCode: 404,
      code: 'itemNotFound',
    });
    const get = await g('GET', '/v1.0/external/connections/doomed');
    expect(get.body.error.innerError.code).toBe('ConnectionDeletionInProgress');
    expect(get.body.error.message).toMatch(/being deleted/);
    expect((await g('GET', '/v1.0/external/connections/doomed/items/i1')).status).toBe(404);
    expect((await g('GET', '/v1.0/external/connections')).body.value.map((c: Rec) => c.id)).not.toContain('doomed');
    // A second DELETE: 409, the operation is in progress.
    await expect(client.api('/external/connections/doomed').delete()).rejects.toMatchObject({
      statusCode: 409,
      code: 'Conflict',
    });
    const again = await g('DELETE', '/v1.0/external/connections/doomed');
    expect(again.body.error.innerError.code).toBe('DeleteOperationInProgress');
    // The id stays taken: POST → 409 naming the deletion.
    const post = await g('POST', '/v1.0/external/connections', { id: 'DOOMED', name: 'Again', description: 'd' });
    expect(post.status).toBe(409);
    expect(post.body.error.innerError.code).toBe('ConnectionDeletionInProgress');
    // The admin API still shows it, marked.
    const state = (await call(emu, tls, 'GET', '/_emulator/state')).body;
    expect(state.connections.find((c: Rec) => c.id === 'doomed')).toMatchObject({ deleting: true, itemCount: 1 });

    // Once the deletion finishes, the id is free and a new connection starts empty.
    let created: Rec | undefined;
    while (!created && Date.now() - t0 < 10_000) {
      await sleep(100);
      const r = await g('POST', '/v1.0/external/connections', { id: 'doomed', name: 'Again', description: 'd' });
      if (r.status === 201) created = r.body;
      else expect(r.status).toBe(409);
    }
    expect(created).toMatchObject({ id: 'doomed', state: 'draft' });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1900);
    expect((await g('GET', '/v1.0/external/connections/doomed')).body.name).toBe('Again');
    expect((await call(emu, tls, 'GET', '/_emulator/connections/doomed/items')).body.value).toEqual([]);
  });

  it('with deleteDelayMs 0 the connection is gone at once', async () => {
    await call(emu, tls, 'PATCH', '/_emulator/settings', { deleteDelayMs: 0 });
    try {
      await g('POST', '/v1.0/external/connections', { id: 'quick', name: 'Q', description: 'd' });
      expect((await g('DELETE', '/v1.0/external/connections/quick')).status).toBe(202);
      expect((await g('GET', '/v1.0/external/connections/quick')).body.error.innerError.code).toBeUndefined();
      expect((await g('POST', '/v1.0/external/connections', { id: 'quick', name: 'Q', description: 'd' })).status).toBe(
        201,
      );
    } finally {
      await call(emu, tls, 'PATCH', '/_emulator/settings', { deleteDelayMs: 2000 });
    }
  });

  it('requires description on create (v1.0 and beta), naming the field; an update may change it', async () => {
    const client = graphClient(emu, tls, secretCredential(emu, tls));
    for (const body of [
      { id: 'nodesc', name: 'No description' },
      { id: 'nodesc', name: 'Empty description', description: '  ' },
      { id: 'nodesc', name: 'Null description', description: null },
    ]) {
      const err = await client
        .api('/external/connections')
        .post(body)
        .then(
          () => undefined,
          (e: unknown) => e as Rec,
        );
      expect(err).toMatchObject({ statusCode: 400, code: 'InvalidRequest' });
      expect(String(err!.message)).toMatch(/description is required/);
    }
    const beta = await g('POST', '/beta/external/connections', { id: 'nodesc', name: 'Beta' });
    expect(beta.status).toBe(400);
    expect(beta.body.error.innerError.code).toBe('InvalidConnectionDescription');
    await client.api('/external/connections').post({ id: 'withdesc', name: 'W', description: 'What it holds' });
    await client.api('/external/connections/withdesc').patch({ description: 'Changed' });
    expect((await client.api('/external/connections/withdesc').get()).description).toBe('Changed');
  });
});

describe('connection deletion across a restart', () => {
  it('a deletion in progress when the emulator stops finishes on schedule after it starts again', async () => {
    const stateDir = await mkdtemp(join(tmpdir(), 'emu-del-'));
    try {
      let emu = await startEmulator({ stateDir, deleteDelayMs: 1500, log: () => {} });
      let tls = trust(emu);
      let token = await tokenFor(emu, tls);
      await call(
        emu,
        tls,
        'POST',
        '/v1.0/external/connections',
        { id: 'restart', name: 'R', description: 'd' },
        bearer(token),
      );
      expect(
        (await call(emu, tls, 'DELETE', '/v1.0/external/connections/restart', undefined, bearer(token))).status,
      ).toBe(202);
      await emu.close();
      await tls.dispatcher.close();
      emu = await startEmulator({ stateDir, deleteDelayMs: 1500, log: () => {} });
      tls = trust(emu);
      token = await tokenFor(emu, tls);
      const post = () =>
        call(
          emu,
          tls,
          'POST',
          '/v1.0/external/connections',
          { id: 'restart', name: 'R2', description: 'd' },
          bearer(token),
        );
      expect((await post()).status).toBe(409);
      await sleep(1600);
      expect((await post()).status).toBe(201);
      await emu.close();
      await tls.dispatcher.close();
    } finally {
      await rm(stateDir, { recursive: true, force: true });
    }
  });
});
