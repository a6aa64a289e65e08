/**
 * The provision queue parses its own messages: what the Functions host delivers (an object, or base64 text) and
 * what a worker receives are read the same way, and a message that cannot be read is dropped with a log line
 * instead of failing the invocation (which would only send it round to the poison queue).
 */
import { QueueClient } from '@azure/storage-queue';
import { InvocationContext } from '@azure/functions';
import { describe, expect, inject, it } from 'vitest';
import { createMemoryLogger } from '../../src/log.js';
import { createHandlers } from '../../src/host/handlers.js';
import type { Runtime } from '../../src/host/runtime.js';
import {
  ProvisionMessageError,
  ProvisionQueue,
  parseProvisionMessage,
  provisionMessage,
} from '../../src/state/queues/provision.js';
import { encodeQueueMessage } from '../../src/state/storage.js';

describe('provision queue messages', () => {
  it('reads a message as the host delivers it (object), as base64 text, and as plain JSON text', () => {
    const message = provisionMessage('contosotasks');
    expect(message).toEqual({ v: 1, kind: 'provision', connectionId: 'contosotasks' });
    expect(parseProvisionMessage(message)).toEqual(message);
    expect(parseProvisionMessage(encodeQueueMessage(JSON.stringify(message)))).toEqual(message);
    expect(parseProvisionMessage(JSON.stringify(message))).toEqual(message);
    expect(parseProvisionMessage(Buffer.from(JSON.stringify(message)))).toEqual(message);
  });

  it.each([
    ['not JSON', 'garbage{', /not JSON/],
    ['not an object', 42, /not an object/],
    ['an array', [1], /not an object/],
    ['another version', { v: 2, kind: 'provision', connectionId: 'c' }, /version 2 is not supported/],
    ['another kind', { v: 1, kind: 'crawl', connectionId: 'c' }, /kind "crawl" is unknown/],
    ['no connection id', { v: 1, kind: 'provision' }, /needs a connectionId/],
  ])('refuses %s with a ProvisionMessageError', (_what, input, why) => {
    let error: unknown;
    try {
      parseProvisionMessage(input);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ProvisionMessageError);
    expect((error as ProvisionMessageError).code).toBe('InvalidProvisionMessage');
    expect((error as ProvisionMessageError).retryable).toBe(false);
    expect((error as Error).message).toMatch(why);
  });

  it('sends base64 JSON that never expires, hidden for the visibility delay', async () => {
    const client = new QueueClient(inject('storageConnectionString'), `prov-${process.pid}-${Date.now()}`);
    const queue = new ProvisionQueue(client);
    await queue.ensure();
    try {
      await queue.send(provisionMessage('now'));
      await queue.send(provisionMessage('later'), { visibilityDelayMs: 60_000 });
      const { receivedMessageItems } = await client.receiveMessages({ numberOfMessages: 32 });
      expect(receivedMessageItems.map((m) => parseProvisionMessage(m.messageText))).toEqual([provisionMessage('now')]);
      expect(receivedMessageItems[0]!.expiresOn.getUTCFullYear()).toBe(9999);
    } finally {
      await client.delete();
    }
  });

  it('the handler drops a malformed message with a log line and does not throw', async () => {
    const logger = createMemoryLogger('info');
    const handlers = createHandlers(async () => ({ logger }) as unknown as Runtime);
    const context = new InvocationContext({ functionName: 'provision', invocationId: 'bad', logHandler: () => {} });
    await expect(handlers.provision({ v: 9, kind: 'provision', connectionId: 'c' }, context)).resolves.toBeUndefined();
    expect(logger.lines.join('\n')).toMatch(/provision message dropped.*version 9 is not supported/);
  });
});
