/**
 * The provision queue (`PROVISION_QUEUE`, default `graph-provision`): one small versioned message per step of
 * the provisioning state machine. A step that must wait (the schema operation is still `inprogress`,
 * Retry-After, admin consent settling) sends the next message with a visibility delay instead of blocking an
 * invocation. Messages are JSON, base64 on the wire (the Functions host's default `messageEncoding`), and never
 * expire. This module is the only one that builds, validates and parses them.
 */
import type { QueueClient } from '@azure/storage-queue';
import type { OperationOptions } from '../../core/async.js';
import { ConnectorError } from '../../core/errors.js';
import { decodeQueueMessage, encodeQueueMessage } from '../storage.js';

export const PROVISION_MESSAGE_VERSION = 1 as const;

/** "Run the next provisioning step of this connection." */
export interface ProvisionMessage {
  v: typeof PROVISION_MESSAGE_VERSION;
  kind: 'provision';
  connectionId: string;
}

/** The longest visibility delay Azure Queue Storage accepts (7 days), in seconds. */
const MAX_VISIBILITY_S = 7 * 24 * 3600;

/** A provision queue message that cannot be read: log it and drop it (retrying cannot make it readable). */
export class ProvisionMessageError extends ConnectorError {
  override name = 'ProvisionMessageError';
  constructor(message: string) {
    super(message, { code: 'InvalidProvisionMessage' });
  }
}

export function provisionMessage(connectionId: string): ProvisionMessage {
  return { v: PROVISION_MESSAGE_VERSION, kind: 'provision', connectionId };
}

/**
 * Validate a message as the Functions queue trigger delivers it (base64-decoded; JSON possibly already parsed
 * into an object) or as received from the queue (base64 text). Throws {@link ProvisionMessageError}.
 */
export function parseProvisionMessage(input: unknown): ProvisionMessage {
  let value = input;
  if (typeof input === 'string' || Buffer.isBuffer(input)) {
    try {
      value = JSON.parse(decodeQueueMessage(Buffer.isBuffer(input) ? input.toString('utf8') : input));
    } catch {
      throw new ProvisionMessageError('provision message is not JSON');
    }
  }
  const m = value as Partial<Record<string, unknown>> | null;
  if (!m || typeof m !== 'object' || Array.isArray(m))
    throw new ProvisionMessageError('provision message is not an object');
  if (m.v !== PROVISION_MESSAGE_VERSION) {
    throw new ProvisionMessageError(
      `provision message version ${JSON.stringify(m.v)} is not supported (expected ${PROVISION_MESSAGE_VERSION})`,
    );
  }
  if (m.kind !== 'provision') {
    throw new ProvisionMessageError(`provision message kind ${JSON.stringify(m.kind)} is unknown (expected provision)`);
  }
  if (typeof m.connectionId !== 'string' || m.connectionId === '') {
    throw new ProvisionMessageError('provision message needs a connectionId string');
  }
  return provisionMessage(m.connectionId);
}

export class ProvisionQueue {
  constructor(readonly client: QueueClient) {}

  async ensure(options: OperationOptions = {}): Promise<void> {
    await this.client.createIfNotExists({ abortSignal: options.abortSignal });
  }

  /** Send a message, visible after `visibilityDelayMs` (rounded up to seconds, at most 7 days). */
  async send(
    message: ProvisionMessage,
    options: { visibilityDelayMs?: number } & OperationOptions = {},
  ): Promise<void> {
    const delayS = Math.min(MAX_VISIBILITY_S, Math.ceil((options.visibilityDelayMs ?? 0) / 1000));
    await this.client.sendMessage(encodeQueueMessage(JSON.stringify(message)), {
      messageTimeToLive: -1,
      ...(delayS > 0 ? { visibilityTimeout: delayS } : {}),
      abortSignal: options.abortSignal,
    });
  }
}
