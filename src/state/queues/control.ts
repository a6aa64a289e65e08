/**
 * The control queue (`CRAWL_QUEUE`, default `graph-crawl`): small versioned messages that move a crawl along
 * without ever blocking an invocation for long — `crawl` (run one slice of a crawl's enumeration: read pages for a
 * bounded time from the last checkpoint, then enqueue the next slice) and `finalize` (check whether every item of
 * a crawl settled; if so sweep, commit the cursor and finish, otherwise look again after a delay).
 */
import type { QueueClient } from '@azure/storage-queue';
import type { OperationOptions } from '../../core/async.js';
import { ConnectorError } from '../../core/errors.js';
import { isNotFound } from '../util.js';
import { decodeQueueMessage, encodeQueueMessage } from './codec.js';

export const CONTROL_MESSAGE_VERSION = 1 as const;

export type ControlMessage =
  | { v: 1; kind: 'crawl'; connectionId: string; crawlId: string; slice: number }
  | { v: 1; kind: 'finalize'; connectionId: string; crawlId: string; checks: number };

export class ControlMessageError extends ConnectorError {
  override name = 'ControlMessageError';
  constructor(message: string) {
    super(message, { code: 'InvalidControlMessage' });
  }
}

export function parseControlMessage(input: unknown): ControlMessage {
  let value = input;
  if (typeof input === 'string') {
    try {
      value = JSON.parse(decodeQueueMessage(input));
    } catch {
      throw new ControlMessageError('control message is not JSON');
    }
  }
  const m = value as Partial<Record<string, unknown>> | null;
  if (!m || typeof m !== 'object') throw new ControlMessageError('control message is not an object');
  if (m.v !== CONTROL_MESSAGE_VERSION)
    throw new ControlMessageError(`control message version ${String(m.v)} is not supported (expected 1)`);
  if (typeof m.connectionId !== 'string' || typeof m.crawlId !== 'string') {
    throw new ControlMessageError('control message needs connectionId and crawlId strings');
  }
  if (m.kind === 'crawl') {
    const slice = m.slice === undefined ? 0 : m.slice;
    if (typeof slice !== 'number' || !Number.isSafeInteger(slice) || slice < 0)
      throw new ControlMessageError('a crawl message\'s "slice" must be a non-negative integer');
    return { v: 1, kind: 'crawl', connectionId: m.connectionId, crawlId: m.crawlId, slice };
  }
  if (m.kind === 'finalize') {
    return {
      v: 1,
      kind: 'finalize',
      connectionId: m.connectionId,
      crawlId: m.crawlId,
      checks: typeof m.checks === 'number' ? m.checks : 0,
    };
  }
  throw new ControlMessageError(
    `control message kind ${JSON.stringify(m.kind)} is unknown (expected crawl or finalize)`,
  );
}

export interface ReceivedControlMessage {
  messageId: string;
  popReceipt: string;
  dequeueCount: number;
  message?: ControlMessage;
  error?: ControlMessageError;
}

export class ControlQueue {
  constructor(readonly client: QueueClient) {}

  async ensure(options: OperationOptions = {}): Promise<void> {
    await this.client.createIfNotExists(options);
  }

  async send(message: ControlMessage, options: { visibilityDelayMs?: number } & OperationOptions = {}): Promise<void> {
    const delayS = options.visibilityDelayMs ? Math.ceil(options.visibilityDelayMs / 1000) : 0;
    await this.client.sendMessage(encodeQueueMessage(JSON.stringify(message)), {
      messageTimeToLive: -1,
      ...(delayS > 0 ? { visibilityTimeout: delayS } : {}),
      abortSignal: options.abortSignal,
    });
  }

  async receive(
    max: number,
    visibilityTimeoutMs: number,
    options: OperationOptions = {},
  ): Promise<ReceivedControlMessage[]> {
    const r = await this.client.receiveMessages({
      numberOfMessages: Math.max(1, Math.min(32, max)),
      visibilityTimeout: Math.max(1, Math.ceil(visibilityTimeoutMs / 1000)),
      abortSignal: options.abortSignal,
    });
    return r.receivedMessageItems.map((m) => {
      const out: ReceivedControlMessage = {
        messageId: m.messageId,
        popReceipt: m.popReceipt,
        dequeueCount: m.dequeueCount,
      };
      try {
        out.message = parseControlMessage(m.messageText);
      } catch (err) {
        out.error = err as ControlMessageError;
      }
      return out;
    });
  }

  /** Keep a message hidden while it is being worked on (returns the new pop receipt). */
  async extend(
    handle: { messageId: string; popReceipt: string },
    visibilityTimeoutMs: number,
    options: OperationOptions = {},
  ): Promise<string> {
    const r = await this.client.updateMessage(
      handle.messageId,
      handle.popReceipt,
      undefined,
      Math.ceil(visibilityTimeoutMs / 1000),
      options,
    );
    return r.popReceipt ?? handle.popReceipt;
  }

  async delete(handle: { messageId: string; popReceipt: string }, options: OperationOptions = {}): Promise<void> {
    await this.client.deleteMessage(handle.messageId, handle.popReceipt, options).catch((err: unknown) => {
      if (!isNotFound(err)) throw err;
    });
  }

  /** Messages in the queue (approximate, as the service reports it; hidden ones included). */
  async approximateCount(options: OperationOptions = {}): Promise<number> {
    const p = await this.client.getProperties(options);
    return p.approximateMessagesCount ?? 0;
  }
}
