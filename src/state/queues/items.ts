/**
 * The item queue: one small, versioned message per item operation (see docs/state.md for the format).
 *
 * - Messages are JSON, base64-encoded (the Functions host's default `messageEncoding`).
 * - An item whose message would exceed the queue's 64 KiB limit travels by reference (claim check): the item JSON
 *   goes to a blob in the claims container and the message carries the blob name. Nothing is ever truncated.
 *   The ingest deletes the claim after it settled the item ({@link ItemQueue.deleteClaim}).
 * - Every message is validated on receive; a malformed message or an unknown version gives an
 *   {@link ItemMessageError} for the caller to dead-letter, never an exception that would loop the worker.
 * - Messages never expire (TTL -1): an item operation that silently vanished would break "nothing is lost".
 */
import type { QueueClient } from '@azure/storage-queue';
import type { ContainerClient } from '@azure/storage-blob';
import type { ExternalItem } from '../../config/model.js';
import { mapLimit, type OperationOptions } from '../../core/async.js';
import { ConnectorError } from '../../core/errors.js';
import { silentLogger, type Logger } from '../../log.js';
import type { ItemOp } from '../items.js';
import { CONNECTION_ID, CRAWL_ID, ITEM_ID } from '../keys.js';
import { isNotFound, randomId } from '../util.js';
import { decodeQueueMessage, encodeQueueMessage } from './codec.js';

export const ITEM_MESSAGE_VERSION = 1 as const;

export type { ItemOp };

export interface ItemMessage {
  v: typeof ITEM_MESSAGE_VERSION;
  op: ItemOp;
  connectionId: string;
  itemId: string;
  crawlId: string;
  /** The generation of the crawl that produced this message (shown in logs; optional). */
  generation?: number;
  /** Hash of the final item (properties + content + ACL); for a delete, the hash being deleted (may be ''). */
  hash: string;
  /**
   * The item row's ETag after the enumeration marked it pending: the ingest takes the item's fence with it, without
   * reading the row first. Stale (or absent) → the ingest reads the row.
   */
  etag?: string;
  /** Graph holds this item under this id (it differs in case): delete it before writing the new one. */
  replaces?: string;
  /** 0 for the first delivery; incremented on each re-enqueue (throttling, transient errors). */
  attempt: number;
  /** Epoch milliseconds before which the message must not be processed (Retry-After). */
  notBefore?: number;
  /** The item, inline (upsert only; absent when `claim` is set). */
  item?: ExternalItem;
  /** Blob name in the claims container holding the item JSON (upsert only, when too big to travel inline). */
  claim?: string;
  /**
   * Files to extract into the item's content before the PUT (upsert only; optional and additive, so still v1).
   * `fingerprint` is what the crawl hashed (sha256 of the bytes, or an ETag / Last-Modified).
   */
  attachments?: ItemAttachment[];
  /**
   * User activities to send with addActivities once the item is written (upsert only; optional and additive, so
   * still v1): only those the item's ledger row had not recorded as sent when the crawl marked the item.
   */
  activities?: MessageActivity[];
  /** What the item's ledger row records once `activities` are handled (sent or dead-lettered). */
  activityMark?: string;
}

/** One activity of an upsert: `type`, `startDateTime` (ISO 8601 UTC) and the user's Entra object id. */
export interface MessageActivity {
  type: 'created' | 'modified' | 'viewed' | 'commented';
  startDateTime: string;
  userId: string;
}

/** At most this many activities travel with one operation (~100 bytes each, well inside the 64 KiB message). */
export const MAX_MESSAGE_ACTIVITIES = 200;
const ACTIVITY_TYPES = new Set(['created', 'modified', 'viewed', 'commented']);
const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function validateActivities(value: unknown, bad: (why: string) => never): MessageActivity[] {
  if (!Array.isArray(value) || value.length === 0 || value.length > MAX_MESSAGE_ACTIVITIES)
    bad(`activities must be an array of 1–${MAX_MESSAGE_ACTIVITIES} entries`);
  return (value as unknown[]).map((a, i) => {
    if (!isRecord(a)) bad(`activities[${i}] must be an object`);
    if (!ACTIVITY_TYPES.has(a.type as string))
      bad(`activities[${i}].type must be created, modified, viewed or commented`);
    if (typeof a.startDateTime !== 'string' || Number.isNaN(Date.parse(a.startDateTime)) || a.startDateTime.length > 40)
      bad(`activities[${i}].startDateTime must be an ISO 8601 date-time`);
    if (typeof a.userId !== 'string' || !GUID.test(a.userId)) bad(`activities[${i}].userId must be an Entra object id`);
    return { type: a.type as MessageActivity['type'], startDateTime: a.startDateTime, userId: a.userId };
  });
}

/** Read a list of activities (an activities dead letter's body); throws {@link ItemMessageError} when invalid. */
export function parseMessageActivities(value: unknown): MessageActivity[] {
  const raw = JSON.stringify(value ?? null).slice(0, MAX_RAW);
  return validateActivities(value, (why) => fail('invalid', why, raw));
}

/** One attachment of an upsert: exactly one of an absolute local `path`, an http(s) `url` or a `blob`. */
export interface ItemAttachment {
  name: string;
  path?: string;
  url?: string;
  /** A blob in the connector's storage account. */
  blob?: { container: string; name: string };
  fingerprint: string;
}

const MAX_ATTACHMENTS = 50;

function validateAttachments(value: unknown, bad: (why: string) => never): ItemAttachment[] {
  if (!Array.isArray(value) || value.length > MAX_ATTACHMENTS)
    bad(`attachments must be an array of at most ${MAX_ATTACHMENTS} entries`);
  return (value as unknown[]).map((a, i) => {
    const str = (v: unknown, max: number) => typeof v === 'string' && v.length > 0 && v.length <= max;
    if (!isRecord(a)) bad(`attachments[${i}] must be an object`);
    if (!str(a.name, 1024)) bad(`attachments[${i}].name must be a string of 1–1024 characters`);
    if (!str(a.fingerprint, 256)) bad(`attachments[${i}].fingerprint must be a string of 1–256 characters`);
    if ([a.path, a.url, a.blob].filter((v) => v !== undefined).length !== 1)
      bad(`attachments[${i}] needs exactly one of path, url or blob`);
    if (a.path !== undefined && !str(a.path, 4096)) bad(`attachments[${i}].path must be a path`);
    if (a.url !== undefined && (!str(a.url, 4096) || !/^https?:\/\//i.test(a.url as string)))
      bad(`attachments[${i}].url must be an http(s) URL`);
    if (a.blob !== undefined) {
      const b = a.blob;
      if (!isRecord(b) || !str(b.name, 1024))
        bad(`attachments[${i}].blob must be {container, name} with a blob name of 1–1024 characters`);
      if (typeof b.container !== 'string' || !/^(?=.{3,63}$)[a-z0-9]+(-[a-z0-9]+)*$/.test(b.container))
        bad(`attachments[${i}].blob.container must be a blob container name (3–63 lowercase letters, digits, hyphens)`);
    }
    const out: ItemAttachment = { name: a.name as string, fingerprint: a.fingerprint as string };
    if (a.path !== undefined) out.path = a.path as string;
    else if (a.url !== undefined) out.url = a.url as string;
    else {
      const b = a.blob as { container: string; name: string };
      out.blob = { container: b.container, name: b.name };
    }
    return out;
  });
}

/** Why a raw queue message could not be accepted. Dead-letter it; do not retry. */
export class ItemMessageError extends ConnectorError {
  override name = 'ItemMessageError';
  constructor(
    message: string,
    readonly reason: 'malformed' | 'unknownVersion' | 'invalid',
    /** The raw (decoded) message text, truncated to 4 KiB, for the dead-letter record. */
    readonly raw: string,
  ) {
    super(message, { code: 'InvalidItemMessage' });
  }
}

/** A claim-check blob named by a message does not exist (deleted or never written). */
export class ClaimMissingError extends ConnectorError {
  override name = 'ClaimMissingError';
  constructor(readonly claim: string) {
    super(`claim-check blob "${claim}" was not found in the claims container; the item must be re-crawled`, {
      code: 'ClaimMissing',
    });
  }
}

/** The blob names a message may claim: `<connectionId>/<crawlId>/<itemId>-<random>.json`, nothing else. */
export function claimPrefixOf(msg: Pick<ItemMessage, 'connectionId' | 'crawlId' | 'itemId'>): string {
  return `${msg.connectionId}/${msg.crawlId}/${msg.itemId}-`;
}

const MAX_RAW = 4096;

function fail(reason: ItemMessageError['reason'], why: string, raw: string): never {
  throw new ItemMessageError(`invalid item message: ${why}`, reason, raw.slice(0, MAX_RAW));
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Validate a message as delivered by the Functions queue trigger (already base64-decoded; JSON may already be parsed
 * into an object) or by {@link ItemQueue.receive}. Throws {@link ItemMessageError}.
 */
export function parseItemMessage(input: unknown): ItemMessage {
  let raw: string;
  let value: unknown;
  if (typeof input === 'string' || Buffer.isBuffer(input)) {
    raw = decodeQueueMessage(Buffer.isBuffer(input) ? input.toString('utf8') : input);
    try {
      value = JSON.parse(raw);
    } catch {
      fail('malformed', 'not JSON', raw);
    }
  } else {
    value = input;
    try {
      raw = JSON.stringify(input) ?? String(input);
    } catch {
      raw = String(input);
    }
  }
  if (!isRecord(value)) fail('malformed', 'not a JSON object', raw);
  const m = value;
  if (m.v !== ITEM_MESSAGE_VERSION) {
    fail(
      'unknownVersion',
      `unknown message version ${JSON.stringify(m.v)} (this build reads v${ITEM_MESSAGE_VERSION})`,
      raw,
    );
  }
  const bad = (why: string): never => fail('invalid', why, raw);
  if (m.op !== 'upsert' && m.op !== 'delete') bad(`op must be "upsert" or "delete", got ${JSON.stringify(m.op)}`);
  if (typeof m.connectionId !== 'string' || !CONNECTION_ID.test(m.connectionId))
    bad('connectionId must be 3–32 alphanumerics');
  if (typeof m.itemId !== 'string' || !ITEM_ID.test(m.itemId)) bad('itemId must be 1–128 letters, digits, "-" or "_"');
  if (typeof m.crawlId !== 'string' || !CRAWL_ID.test(m.crawlId)) bad('crawlId must be 1–64 alphanumerics');
  if (
    m.generation !== undefined &&
    (typeof m.generation !== 'number' || !Number.isSafeInteger(m.generation) || m.generation < 0)
  ) {
    bad('generation must be a non-negative integer');
  }
  if (m.etag !== undefined && (typeof m.etag !== 'string' || m.etag.length > 200)) bad('etag must be an ETag string');
  if (m.replaces !== undefined && (typeof m.replaces !== 'string' || !ITEM_ID.test(m.replaces)))
    bad('replaces must be an item id');
  if (typeof m.hash !== 'string' || m.hash.length > 128) bad('hash must be a string of at most 128 characters');
  if (typeof m.attempt !== 'number' || !Number.isSafeInteger(m.attempt) || m.attempt < 0) {
    bad('attempt must be a non-negative integer');
  }
  if (m.notBefore !== undefined && (typeof m.notBefore !== 'number' || !Number.isFinite(m.notBefore))) {
    bad('notBefore must be epoch milliseconds');
  }
  if (m.claim !== undefined) {
    // A claim names a blob this message's crawl wrote for this item, never any other blob of the container.
    const prefix = claimPrefixOf(m as Pick<ItemMessage, 'connectionId' | 'crawlId' | 'itemId'>);
    if (
      typeof m.claim !== 'string' ||
      m.claim.length > 1024 ||
      !m.claim.startsWith(prefix) ||
      !/^[A-Za-z0-9]{1,32}\.json$/.test(m.claim.slice(prefix.length))
    )
      bad(`claim must be a blob named ${prefix}<random>.json (the crawl's own claim for this item)`);
  }
  if (m.op === 'upsert') {
    if ((m.item === undefined) === (m.claim === undefined)) bad('an upsert carries exactly one of item or claim');
    if (m.item !== undefined) validateItem(m.item, m.itemId as string, bad);
  } else if (
    m.item !== undefined ||
    m.claim !== undefined ||
    m.attachments !== undefined ||
    m.activities !== undefined
  ) {
    bad('a delete carries no item, no claim, no attachments and no activities');
  }
  const attachments = m.attachments !== undefined ? validateAttachments(m.attachments, bad) : undefined;
  const activities = m.activities !== undefined ? validateActivities(m.activities, bad) : undefined;
  if (m.activityMark !== undefined && (typeof m.activityMark !== 'string' || m.activityMark.length > 1024))
    bad('activityMark must be a string of at most 1024 characters');
  const out: ItemMessage = {
    v: ITEM_MESSAGE_VERSION,
    op: m.op as ItemOp,
    connectionId: m.connectionId as string,
    itemId: m.itemId as string,
    crawlId: m.crawlId as string,
    hash: m.hash as string,
    attempt: m.attempt as number,
  };
  if (m.generation !== undefined) out.generation = m.generation as number;
  if (m.etag !== undefined) out.etag = m.etag as string;
  if (m.replaces !== undefined) out.replaces = m.replaces as string;
  if (m.notBefore !== undefined) out.notBefore = m.notBefore as number;
  if (m.item !== undefined) out.item = m.item as ExternalItem;
  if (m.claim !== undefined) out.claim = m.claim as string;
  if (attachments) out.attachments = attachments;
  if (activities) out.activities = activities;
  if (m.activityMark !== undefined) out.activityMark = m.activityMark as string;
  return out;
}

function validateItem(item: unknown, itemId: string, bad: (why: string) => never): void {
  if (!isRecord(item)) bad('item must be an object');
  if (item.id !== itemId) bad('item.id must equal itemId');
  if (!Array.isArray(item.acl)) bad('item.acl must be an array');
  if (!isRecord(item.properties)) bad('item.properties must be an object');
}

/** Where a received message can be deleted or hidden again. */
export interface MessageHandle {
  messageId: string;
  popReceipt: string;
}

export interface ReceivedItemMessage extends MessageHandle {
  dequeueCount: number;
  insertedOn?: Date;
  /** The decoded text (before validation). */
  text: string;
  /** Set when the message is valid. */
  message?: ItemMessage;
  /** Set when it is not: dead-letter it and delete it. */
  error?: ItemMessageError;
}

export interface SendResult extends MessageHandle {
  /** Set when the item travelled by claim check. */
  claim?: string;
}

export interface ItemQueueOptions {
  queue: QueueClient;
  /** The Functions poison queue (`<name>-poison`); defaults to the sibling of `queue` when `poisonQueue` is given. */
  poisonQueue?: QueueClient;
  claims: ContainerClient;
  logger?: Logger;
  /**
   * Largest encoded (base64) message sent inline. Default 64 KiB minus 1 KiB of headroom. Lower it only in tests.
   */
  maxInlineBytes?: number;
  /** Concurrency of {@link ItemQueue.sendBatch}. Default 16. */
  sendConcurrency?: number;
}

export interface SendOptions extends OperationOptions {
  /** Hide the message for this long (Retry-After + jitter). Rounded up to whole seconds; max 7 days. */
  visibilityDelayMs?: number;
}

/** The queue's own message limit: 64 KiB of message text (after base64). */
export const QUEUE_MESSAGE_LIMIT = 64 * 1024;
const MAX_VISIBILITY_S = 7 * 24 * 3600;

export class ItemQueue {
  readonly queueClient: QueueClient;
  readonly poisonClient: QueueClient | undefined;
  readonly claims: ContainerClient;
  private readonly log: Logger;
  private readonly maxInline: number;
  private readonly concurrency: number;

  constructor(options: ItemQueueOptions) {
    this.queueClient = options.queue;
    this.poisonClient = options.poisonQueue;
    this.claims = options.claims;
    this.log = options.logger ?? silentLogger;
    this.maxInline = options.maxInlineBytes ?? QUEUE_MESSAGE_LIMIT - 1024;
    this.concurrency = options.sendConcurrency ?? 16;
  }

  get name(): string {
    return this.queueClient.name;
  }

  /** Create the queue, its poison queue and the claims container if missing. */
  async ensure(options: OperationOptions = {}): Promise<void> {
    const abortSignal = options.abortSignal;
    await Promise.all([
      this.queueClient.createIfNotExists({ abortSignal }),
      this.poisonClient?.createIfNotExists({ abortSignal }),
      this.claims.createIfNotExists({ abortSignal }),
    ]);
  }

  /** Encode a message; a too-big inline item is moved to a claim blob first. */
  private async encode(msg: ItemMessage, abortSignal?: AbortSignal): Promise<{ text: string; claim?: string }> {
    const checked = parseItemMessage(msg); // never send what we would refuse to read
    const text = encodeQueueMessage(JSON.stringify(checked));
    if (text.length <= this.maxInline || !checked.item) {
      if (text.length > QUEUE_MESSAGE_LIMIT) {
        throw new ItemMessageError(
          `item message for ${checked.itemId} is ${text.length} bytes without an item; limit is 64 KiB`,
          'invalid',
          '',
        );
      }
      return { text };
    }
    const claim = `${claimPrefixOf(checked)}${randomId(4)}.json`;
    const body = Buffer.from(JSON.stringify(checked.item), 'utf8');
    await this.claims.getBlockBlobClient(claim).uploadData(body, {
      blobHTTPHeaders: { blobContentType: 'application/json' },
      abortSignal,
    });
    const { item: _item, ...rest } = checked;
    const small: ItemMessage = { ...rest, claim };
    this.log.debug('queue: item travels by claim check', { itemId: checked.itemId, claim, bytes: body.length });
    return { text: encodeQueueMessage(JSON.stringify(small)), claim };
  }

  /** Send one message. `visibilityDelayMs` hides it until then (used for Retry-After re-enqueue). */
  async send(msg: ItemMessage, options: SendOptions = {}): Promise<SendResult> {
    const { text, claim } = await this.encode(msg, options.abortSignal);
    const delayS = options.visibilityDelayMs
      ? Math.min(MAX_VISIBILITY_S, Math.ceil(options.visibilityDelayMs / 1000))
      : 0;
    try {
      const r = await this.queueClient.sendMessage(text, {
        messageTimeToLive: -1,
        ...(delayS > 0 ? { visibilityTimeout: delayS } : {}),
        abortSignal: options.abortSignal,
      });
      return { messageId: r.messageId, popReceipt: r.popReceipt, ...(claim ? { claim } : {}) };
    } catch (err) {
      if (claim) await this.deleteClaimBlob(claim).catch(() => undefined);
      throw err;
    }
  }

  /**
   * Send many messages with bounded concurrency. On the first failure no new sends start; in-flight ones finish and
   * the error is thrown (the ledger's pending marks make a re-send safe).
   */
  async sendBatch(
    msgs: readonly ItemMessage[],
    options: SendOptions & { concurrency?: number } = {},
  ): Promise<SendResult[]> {
    return mapLimit(msgs, options.concurrency ?? this.concurrency, (m) => this.send(m, options), options);
  }

  /** Receive up to `max` (1–32) messages, hidden for `visibilityTimeoutMs`. Invalid messages come back with `error`. */
  async receive(
    max: number,
    visibilityTimeoutMs: number,
    options: OperationOptions = {},
  ): Promise<ReceivedItemMessage[]> {
    return receiveFrom(this.queueClient, max, visibilityTimeoutMs, options.abortSignal);
  }

  async delete(handle: MessageHandle, options: OperationOptions = {}): Promise<void> {
    try {
      await this.queueClient.deleteMessage(handle.messageId, handle.popReceipt, options);
    } catch (err) {
      if (!isNotFound(err)) throw err; // already deleted (or the pop receipt moved on): nothing to do
    }
  }

  /** Hide a received message again (extend its lease); returns the new handle (the pop receipt changes). */
  async updateVisibility(
    handle: MessageHandle,
    visibilityTimeoutMs: number,
    options: OperationOptions = {},
  ): Promise<MessageHandle> {
    const r = await this.queueClient.updateMessage(
      handle.messageId,
      handle.popReceipt,
      undefined,
      Math.min(MAX_VISIBILITY_S, Math.ceil(visibilityTimeoutMs / 1000)),
      options,
    );
    return { messageId: handle.messageId, popReceipt: r.popReceipt ?? handle.popReceipt };
  }

  /** The item of an upsert: inline, or loaded from its claim. `undefined` for a delete. */
  async resolve(msg: ItemMessage, options: OperationOptions = {}): Promise<ExternalItem | undefined> {
    if (msg.op === 'delete') return undefined;
    if (msg.item) return msg.item;
    const claim = msg.claim as string;
    if (!claim.startsWith(claimPrefixOf(msg))) throw new ClaimMissingError(claim);
    let buf: Buffer;
    try {
      buf = await this.claims.getBlobClient(claim).downloadToBuffer(undefined, undefined, options);
    } catch (err) {
      if (isNotFound(err)) throw new ClaimMissingError(claim);
      throw err;
    }
    const item = JSON.parse(buf.toString('utf8')) as unknown;
    validateItem(item, msg.itemId, (why) =>
      fail('invalid', `claim ${claim}: ${why}`, buf.toString('utf8', 0, MAX_RAW)),
    );
    return item as ExternalItem;
  }

  /** Delete the claim of a settled message (no-op for inline messages or an already deleted claim). */
  async deleteClaim(
    msg: Pick<ItemMessage, 'claim' | 'connectionId' | 'crawlId' | 'itemId'>,
    options: OperationOptions = {},
  ): Promise<void> {
    if (msg.claim && msg.claim.startsWith(claimPrefixOf(msg)))
      await this.deleteClaimBlob(msg.claim, options.abortSignal);
  }

  private async deleteClaimBlob(claim: string, abortSignal?: AbortSignal): Promise<void> {
    await this.claims.getBlobClient(claim).deleteIfExists({ abortSignal });
  }

  /** Number of messages in the queue (approximate, as the service reports it). */
  async approximateCount(options: OperationOptions = {}): Promise<number> {
    const p = await this.queueClient.getProperties(options);
    return p.approximateMessagesCount ?? 0;
  }

  /** Read (without removing) up to 32 messages of the poison queue. */
  async peekPoison(max = 32, options: OperationOptions = {}): Promise<ReceivedItemMessage[]> {
    const poison = this.requirePoison();
    const r = await poison.peekMessages({ numberOfMessages: Math.max(1, Math.min(32, max)), ...options });
    return r.peekedMessageItems.map((m) => ({
      ...toReceived(m.messageText, m.messageId, '', m.dequeueCount, m.insertedOn),
    }));
  }

  /**
   * Drain the poison queue: each message is passed to `handle` (e.g. write a dead-letter record), then deleted.
   * A message whose handler throws stays in the poison queue (it reappears after `visibilityTimeoutMs`).
   * Returns how many were drained.
   */
  async drainPoison(
    handle: (msg: ReceivedItemMessage) => Promise<void>,
    options: { max?: number; visibilityTimeoutMs?: number } & OperationOptions = {},
  ): Promise<number> {
    const poison = this.requirePoison();
    const max = options.max ?? 1000;
    let drained = 0;
    while (drained < max) {
      const batch = await receiveFrom(
        poison,
        Math.min(32, max - drained),
        options.visibilityTimeoutMs ?? 60_000,
        options.abortSignal,
      );
      if (batch.length === 0) break;
      for (const m of batch) {
        try {
          await handle(m);
        } catch (err) {
          this.log.warn('queue: poison message handler failed; message stays in the poison queue', {
            messageId: m.messageId,
            error: err instanceof Error ? err.message : String(err),
          });
          continue;
        }
        await poison
          .deleteMessage(m.messageId, m.popReceipt, { abortSignal: options.abortSignal })
          .catch((err: unknown) => {
            if (!isNotFound(err)) throw err;
          });
        drained++;
      }
    }
    return drained;
  }

  private requirePoison(): QueueClient {
    if (!this.poisonClient)
      throw new ConnectorError(`no poison queue configured for queue "${this.name}"`, { code: 'NoPoisonQueue' });
    return this.poisonClient;
  }
}

function toReceived(
  text: string,
  messageId: string,
  popReceipt: string,
  dequeueCount: number,
  insertedOn: Date | undefined,
): ReceivedItemMessage {
  const decoded = decodeQueueMessage(text);
  const out: ReceivedItemMessage = { messageId, popReceipt, dequeueCount, text: decoded };
  if (insertedOn) out.insertedOn = insertedOn;
  try {
    out.message = parseItemMessage(decoded);
  } catch (err) {
    out.error =
      err instanceof ItemMessageError ? err : new ItemMessageError(String(err), 'malformed', decoded.slice(0, MAX_RAW));
  }
  return out;
}

async function receiveFrom(
  queue: QueueClient,
  max: number,
  visibilityTimeoutMs: number,
  abortSignal?: AbortSignal,
): Promise<ReceivedItemMessage[]> {
  const r = await queue.receiveMessages({
    numberOfMessages: Math.max(1, Math.min(32, max)),
    visibilityTimeout: Math.max(1, Math.min(MAX_VISIBILITY_S, Math.ceil(visibilityTimeoutMs / 1000))),
    abortSignal,
  });
  return r.receivedMessageItems.map((m) =>
    toReceived(m.messageText, m.messageId, m.popReceipt, m.dequeueCount, m.insertedOn),
  );
}

/** An item queue over the storage clients and env names (`ITEMS_QUEUE`, `CLAIMS_CONTAINER`). */
export function createItemQueue(
  storage: { queue(name: string): QueueClient; container(name: string): ContainerClient },
  names: { itemsQueue: string; claimsContainer: string },
  options: Omit<ItemQueueOptions, 'queue' | 'poisonQueue' | 'claims'> = {},
): ItemQueue {
  return new ItemQueue({
    ...options,
    queue: storage.queue(names.itemsQueue),
    poisonQueue: storage.queue(`${names.itemsQueue}-poison`),
    claims: storage.container(names.claimsContainer),
  });
}
