/**
 * The hostile suites' world: the end-to-end stack (Azurite, the Graph emulator, a runtime built from the
 * environment) with `mapping.attachments` set as each attack needs, records that name hostile files, forged
 * item-queue messages, and one question asked the same way everywhere: did a marker that only the attacker's
 * target holds end up anywhere a reader of the index (or of the connector's records and logs) could see it?
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createMemoryLogger } from '../../src/log.js';
import { ingestItem, type IngestOutcome } from '../../src/ingest/ingest.js';
import type { DeadLetter } from '../../src/state/dead-letters.js';
import type { ItemAttachment } from '../../src/state/queues/items.js';
import { startStack, type Stack } from '../support/stack.js';

export type HStack = Stack & { logger: { lines: string[] } };

/** A valid Contoso Tasks record (public: every reader of the index would see what it carries). */
export function ticket(id: string, attachments: unknown, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    ticketId: id,
    title: `Hostile ticket ${id}`,
    description: `Description of ${id}.`,
    status: 'open',
    priority: 2,
    createdBy: 'adele@contoso.com',
    assignedTo: 'megan@contoso.com',
    team: 'payments',
    tags: ['hostile'],
    createdDate: '2025-08-27T00:54:52.118Z',
    lastEditedDate: '2025-10-03T11:42:09.118Z',
    visibility: 'public',
    attachments,
    ...extra,
  };
}

export const jsonl = (records: unknown[]): string => records.map((r) => JSON.stringify(r)).join('\n') + '\n';

/** A stack whose mapping.attachments is `attachments` (merged over a plain append definition without OCR). */
export async function hostileStack(options: {
  records: unknown[];
  attachments: Record<string, unknown>;
  env?: Record<string, string>;
}): Promise<HStack> {
  const logger = createMemoryLogger('debug');
  const stack = await startStack({
    records: jsonl(options.records),
    logger,
    ...(options.env ? { env: options.env } : {}),
    settings: { maxFinalizeDelayMs: 300 },
    editDefinition: (def) => {
      def.mapping.attachments = {
        field: 'attachments',
        join: 'append',
        ocr: false,
        timeoutMs: 5_000,
        metadata: { fileName: 'fileName', fileExtension: 'fileExtension' },
        ...options.attachments,
      };
    },
  });
  return stack as HStack;
}

/** A minimal valid upsert for `itemId` carrying `attachments`, as an attacker with queue access would write it. */
export function forgedUpsert(stack: Stack, itemId: string, attachments: ItemAttachment[]) {
  return {
    v: 1,
    op: 'upsert',
    connectionId: stack.rt.pipeline.connectionId,
    itemId,
    crawlId: 'forged1',
    generation: 1,
    hash: 'forged',
    attempt: 0,
    item: {
      id: itemId,
      acl: [{ type: 'everyone', value: stack.emu.info.tenantId, accessType: 'grant' }],
      properties: { title: `Forged ${itemId}` },
      content: { type: 'text', value: `Forged ${itemId}.` },
    },
    attachments,
  };
}

/** Ingest one forged message; a throw (the queue would redeliver) is returned as `{ thrown }`. */
export async function ingestForged(
  stack: Stack,
  payload: unknown,
): Promise<IngestOutcome | { outcome: 'thrown'; error: string }> {
  try {
    return await ingestItem(stack.rt.pipeline, { payload });
  } catch (err) {
    return { outcome: 'thrown', error: (err as Error).message };
  }
}

export async function deadLetters(stack: Stack): Promise<DeadLetter[]> {
  const out: DeadLetter[] = [];
  for await (const d of stack.rt.pipeline.state.deadLetters.list(stack.rt.pipeline.connectionId)) out.push(d);
  return out;
}

/** Everything a reader could see: every item Graph (the emulator) holds for the connection, as JSON. */
export async function publishedText(stack: Stack): Promise<string> {
  const { value } = await stack.admin<{ value: unknown[] }>(`connections/${stack.rt.definition.connection.id}/items`);
  return JSON.stringify(value);
}

/** How many of `markers` appear in the published items (a leak is any marker in any item). */
export async function leaked(stack: Stack, markers: readonly string[]): Promise<string[]> {
  const text = await publishedText(stack);
  return markers.filter((m) => text.includes(m));
}

export async function itemIds(stack: Stack): Promise<string[]> {
  const { value } = await stack.admin<{ value: { id: string }[] }>(
    `connections/${stack.rt.definition.connection.id}/items`,
  );
  return value.map((i) => i.id).sort();
}

/** A loopback HTTP server that counts what reaches it. */
export interface Counted {
  url: string;
  port: number;
  requests: string[];
  close(): Promise<void>;
}

export async function countedServer(
  handler: (req: IncomingMessage, res: ServerResponse) => void,
  host = '127.0.0.1',
): Promise<Counted> {
  const requests: string[] = [];
  const server: Server = createServer((req, res) => {
    requests.push(`${req.method} ${req.headers.host ?? ''}${req.url ?? ''}`);
    handler(req, res);
  });
  await new Promise<void>((resolve) => server.listen({ port: 0, host, ipv6Only: false }, resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
