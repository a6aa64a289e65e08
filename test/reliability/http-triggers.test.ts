/**
 * Every HTTP trigger refuses what it must refuse, and a refused call enqueues nothing.
 *
 * Keys: every HTTP function is registered with authLevel 'function', so the Functions host answers 401 to a
 * call without a valid key before our code runs. The host cannot run here, so the registration is asserted
 * (through the fake core that captures what the host would receive), not a 401.
 * Bodies: malformed, wrong-typed, oversized (declared and undeclared length) and wrong content types go
 * through the real handlers with real HttpRequest objects, against Azurite and the emulator.
 */
/// <reference types="vite/client" />
import { HttpRequest, InvocationContext } from '@azure/functions';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHandlers, type Handlers } from '../../src/host/handlers.js';
import { registered, triggerOf } from '../functions/fake-core.js';
import { expectNoSecrets, reportFigures, startReliabilityStack, type RStack } from './support.js';

// Running the registration files records their app.* calls in the fake core.
import.meta.glob('../../functions/*.ts', { eager: true });

let stack: RStack;
let handlers: Handlers;

function ctx(name: string) {
  return new InvocationContext({ functionName: name, invocationId: `rel-${name}`, logHandler: () => {} });
}
function post(route: string, body: string, headers: Record<string, string> = { 'content-type': 'application/json' }) {
  return new HttpRequest({
    method: 'POST',
    url: `http://localhost:7071/api/${route}`,
    headers,
    body: { string: body },
  });
}
function get(route: string, params: Record<string, string> = {}, query: Record<string, string> = {}) {
  return new HttpRequest({ method: 'GET', url: `http://localhost:7071/api/${route}`, params, query });
}

/** Messages in every queue the HTTP triggers could write to. */
async function depth(): Promise<number> {
  const queues = [
    stack.rt.pipeline.control.client,
    stack.rt.pipeline.state.queue.queueClient,
    stack.rt.provisionQueue.client,
  ];
  let n = 0;
  for (const q of queues) n += (await q.getProperties()).approximateMessagesCount ?? 0;
  return n;
}

beforeAll(async () => {
  stack = await startReliabilityStack({});
  handlers = createHandlers(async () => stack.rt);
});
afterAll(async () => stack?.close());

const BIG = 'x'.repeat(70_000);

describe('HTTP triggers: keys, malformed and oversized bodies', () => {
  it('every HTTP trigger requires a function key (authLevel "function"; the host enforces it), but the admin center notification', () => {
    const http = registered.filter((r) => Object.values(r.metadata.bindings).some((b) => b.type === 'httpTrigger'));
    expect(http.map((r) => r.metadata.name).sort()).toEqual(
      [
        'connectorNotification',
        'dashboard',
        'deadLetters',
        'job',
        'jobs',
        'provisionHttp',
        'replay',
        'resync',
        'status',
      ].sort(),
    );
    // Microsoft Graph sends no function key; the handler verifies the signed validation tokens instead
    // (test/hostile/no-forged-enablement-notification.test.ts).
    for (const r of http)
      expect(triggerOf(r.metadata.name).authLevel, r.metadata.name).toBe(
        r.metadata.name === 'connectorNotification' ? 'anonymous' : 'function',
      );
  });

  const posts: { name: 'resync' | 'replay' | 'provisionHttp'; route: string }[] = [
    { name: 'resync', route: 'resync' },
    { name: 'replay', route: 'deadletters/replay' },
    { name: 'provisionHttp', route: 'provision' },
  ];
  for (const { name, route } of posts) {
    it(`POST /api/${route}: malformed → 400, oversized → 413, wrong content type → 415; nothing enqueued`, async () => {
      const before = await depth();
      const h = handlers[name];
      const cases: [string, HttpRequest, number][] = [
        ['broken JSON', post(route, '{"mode": '), 400],
        ['JSON that is not an object', post(route, '[1,2,3]'), 400],
        ['unknown and wrong-typed fields', post(route, '{"mode": 7, "all": "yes", "connectionId": {"a": 1}}'), 400],
        [
          'oversized, declared',
          post(route, JSON.stringify({ itemIds: [BIG] }), {
            'content-type': 'application/json',
            'content-length': String(BIG.length + 14),
          }),
          413,
        ],
        ['oversized, length not declared', post(route, JSON.stringify({ itemIds: [BIG] })), 413],
        ['wrong content type', post(route, '{"mode":"full"}', { 'content-type': 'text/plain' }), 415],
      ];
      const got: string[] = [];
      for (const [what, req, want] of cases) {
        const res = await h(req, ctx(name));
        if (res.status !== want) got.push(`${what}: ${res.status} (want ${want}) ${JSON.stringify(res.jsonBody)}`);
        // A refusal explains itself.
        else expect(JSON.stringify(res.jsonBody ?? res.body ?? '')).toMatch(/problems|error/);
      }
      expect(got).toEqual([]);
      expect(await depth()).toBe(before);
    });
  }

  it('GET triggers refuse malformed parameters with 400 and change nothing', async () => {
    const before = await depth();
    expect((await handlers.job(get('jobs/x', { id: '<script>' }), ctx('job'))).status).toBe(400);
    expect((await handlers.job(get('jobs/x', { id: 'a'.repeat(5000) }), ctx('job'))).status).toBe(400);
    expect((await handlers.deadLetters(get('deadletters', {}, { top: 'lots' }), ctx('deadLetters'))).status).toBe(400);
    expect((await handlers.deadLetters(get('deadletters', {}, { op: 'drop' }), ctx('deadLetters'))).status).toBe(400);
    expect(await depth()).toBe(before);
    await reportFigures('HTTP triggers refuse bad calls', {
      items: 0,
      faultsInjected: posts.length * 6 + 4,
      retries: 0,
      deadLetters: 0,
      lost: 0,
      note: 'every refusal 400/413/415 with nothing enqueued; keys: authLevel "function" on all 8 (enforced by the host), the notification verifies signed tokens',
    });
  });

  it('logged no secret value', () => {
    expectNoSecrets(stack.logger.lines, stack.secrets());
  });
});
