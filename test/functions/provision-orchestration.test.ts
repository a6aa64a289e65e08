/**
 * The orchestrating function: POST /api/provision starts it; each provision-queue message runs one step and,
 * while the schema operation is `inprogress`, re-enqueues itself with a visibility delay instead of blocking
 * the invocation. Driven here exactly as the host would deliver the messages.
 */
import { HttpRequest, InvocationContext } from '@azure/functions';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHandlers, type Handlers } from '../../src/host/handlers.js';
import { decodeQueueMessage } from '../../src/state/storage.js';
import { startStack, type Stack } from '../support/stack.js';

let stack: Stack;
let handlers: Handlers;

beforeAll(async () => {
  stack = await startStack({ provision: false, emulator: { schemaDelayMs: 1500 }, records: '' });
  handlers = createHandlers(async () => stack.rt);
}, 60_000);
afterAll(async () => stack?.close());

const ctx = (name: string) =>
  new InvocationContext({ functionName: name, invocationId: `t-${name}`, logHandler: () => {} });

describe('provisioning orchestration through the provision queue', () => {
  it('takes a new connection to ready in short steps, waiting by visibility delay, never blocking', async () => {
    const start = await handlers.provisionHttp(
      new HttpRequest({ method: 'POST', url: 'http://localhost/api/provision', body: { string: '' } }),
      ctx('provisionHttp'),
    );
    expect(start.status).toBe(202);
    const queue = stack.rt.provisionQueue.client;
    const phases: string[] = [];
    let steps = 0;
    let sawDelay = false;
    const deadline = Date.now() + 40_000;
    while (Date.now() < deadline) {
      const { receivedMessageItems } = await queue.receiveMessages({ numberOfMessages: 1, visibilityTimeout: 30 });
      const m = receivedMessageItems[0];
      if (!m) {
        const stored = await stack.rt.provisionStore.get('contosotasks');
        if (stored?.state.phase === 'ready') break;
        // Nothing visible while a step waits: the next message is hidden by its visibility delay.
        sawDelay = true;
        await new Promise((r) => setTimeout(r, 200));
        continue;
      }
      const t0 = Date.now();
      await handlers.provision(JSON.parse(decodeQueueMessage(m.messageText)), ctx('provision'));
      expect(Date.now() - t0).toBeLessThan(10_000); // a step is short: it never polls in a loop
      await queue.deleteMessage(m.messageId, m.popReceipt);
      steps++;
      const stored = await stack.rt.provisionStore.get('contosotasks');
      phases.push(stored!.state.phase);
      if (stored?.state.phase === 'ready' || stored?.state.phase === 'failed') break;
    }
    expect(phases.at(-1)).toBe('ready');
    expect(steps).toBeGreaterThanOrEqual(3);
    expect(sawDelay).toBe(true);
    expect(phases).toContain('polling');
    const conn = await stack.admin<{ connections: { id: string; state: string }[] }>('state');
    expect(JSON.stringify(conn)).toMatch(/"state":"ready"/);
  });
});
