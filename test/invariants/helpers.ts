/**
 * Shared pieces of the invariant tests: small record sets in the Contoso Tasks shape, the emulator's request
 * log, dead-letter listing, and a plain node:http REST source server.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { DeadLetter } from '../../src/state/dead-letters.js';
import type { Stack } from '../support/stack.js';

export type Rec = Record<string, unknown>;

/** A good record: restricted to `allowedUsers` (adele by default), searchable by its unique word `zq<prefix><i>`. */
export function rec(i: number, over: Rec = {}, prefix = 'INV'): Rec {
  return {
    ticketId: `${prefix}${1000 + i}`,
    title: `Invariant ticket ${i} zq${prefix.toLowerCase()}${i}`,
    description: `Description of ticket ${i}.`,
    status: 'open',
    priority: 1 + (i % 4),
    createdBy: 'adele@contoso.com',
    assignedTo: 'megan@contoso.com',
    team: 'payments',
    tags: ['alpha', 'beta'],
    createdDate: '2025-01-01T00:00:00Z',
    lastEditedDate: '2025-01-02T00:00:00Z',
    visibility: 'restricted',
    allowedUsers: ['adele@contoso.com'],
    ...over,
  };
}

export function recs(n: number, prefix = 'INV'): Rec[] {
  return Array.from({ length: n }, (_, i) => rec(i, {}, prefix));
}

export const jsonl = (rs: (Rec | string)[]): string =>
  rs.map((r) => (typeof r === 'string' ? r : JSON.stringify(r))).join('\n') + '\n';

export interface LogEntry {
  time: string;
  method: string;
  route: string;
  status: number;
  itemId?: string;
  retryAfter?: number;
  requestId?: string;
  fault?: string;
}

/** The emulator's request log for the stack's connection (item routes only unless `all`). */
export async function requestLog(stack: Stack, all = false): Promise<LogEntry[]> {
  const { value } = await stack.admin<{ value: LogEntry[] }>(
    `requests?connectionId=${stack.rt.definition.connection.id}`,
  );
  return all ? value : value.filter((e) => e.route === 'item');
}

export async function deadLetters(stack: Stack, crawlId?: string): Promise<DeadLetter[]> {
  const out: DeadLetter[] = [];
  const cid = stack.rt.pipeline.connectionId;
  for await (const dl of stack.rt.pipeline.state.deadLetters.list(cid, crawlId ? { crawlId } : {})) out.push(dl);
  return out;
}

export async function emulatorItems(
  stack: Stack,
): Promise<{ id: string; acl: unknown[]; content: { value: string } }[]> {
  const { value } = await stack.admin<{ value: { id: string; acl: unknown[]; content: { value: string } }[] }>(
    `connections/${stack.rt.definition.connection.id}/items`,
  );
  return value;
}

/** Item ids the user finds in the emulator's ACL-aware search for `q`. */
export async function searchAs(stack: Stack, user: string, q: string): Promise<string[]> {
  const { value } = await stack.admin<{ value: { id: string }[] }>(
    `search?connectionId=${stack.rt.definition.connection.id}&user=${encodeURIComponent(user)}&q=${encodeURIComponent(q)}`,
  );
  return value.map((v) => v.id);
}

export async function addFault(stack: Stack, fault: Rec): Promise<void> {
  await stack.admin('faults', { method: 'POST', body: fault });
}

/** A plain HTTP server on 127.0.0.1:0 for REST sources. */
export async function startHttp(
  handler: (req: IncomingMessage, res: ServerResponse, url: URL) => void,
): Promise<{ server: Server; base: string; close(): Promise<void> }> {
  const server = createServer((req, res) => handler(req, res, new URL(req.url ?? '/', 'http://127.0.0.1')));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    server,
    base,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export interface RestSourceServer {
  base: string;
  /** The records served (replace freely). */
  records: Rec[];
  /** Answer this status instead of the page with this number (1-based), while set. */
  failPage?: { page: number; status: number };
  /** Every request's query (`page`, `filter`, …), in order. */
  queries: Record<string, string>[];
  /** When set, a request without exactly this Authorization header gets a 401. */
  authorization?: string;
  /** Epoch ms of every request, in order. */
  times: number[];
  close(): Promise<void>;
}

/** A paged REST endpoint (`?page=N&pageSize=M`, records under `value`; `filter` is recorded, not applied). */
export async function startRestSource(records: Rec[]): Promise<RestSourceServer> {
  const state: RestSourceServer = {
    base: '',
    records,
    queries: [],
    times: [],
    close: () => Promise.resolve(),
  };
  const http = await startHttp((req, res, url) => {
    const q = Object.fromEntries(url.searchParams.entries());
    state.queries.push(q);
    state.times.push(Date.now());
    if (state.authorization !== undefined && req.headers.authorization !== state.authorization) {
      res.writeHead(401, { 'content-type': 'application/json', 'www-authenticate': 'Bearer' });
      res.end(JSON.stringify({ error: 'invalid_token' }));
      return;
    }
    const page = Number(q.page ?? '1');
    const size = Number(q.pageSize ?? '10');
    if (state.failPage && state.failPage.page === page) {
      sendJson(res, state.failPage.status, { error: 'injected failure' });
      return;
    }
    sendJson(res, 200, { value: state.records.slice((page - 1) * size, page * size) });
  });
  state.base = http.base;
  state.close = () => http.close();
  return state;
}

/** A `rest` source definition for {@link startRestSource} (no retries: a failure fails the read at once). */
export function restSourceDefinition(base: string, extra: Rec = {}): Rec {
  return {
    type: 'rest',
    url: `${base}/tickets`,
    recordsPath: 'value',
    keyField: 'ticketId',
    paging: { type: 'page', pageSize: 10 },
    retry: { maxAttempts: 1, budgetSeconds: 5, baseDelayMs: 10 },
    timeoutSeconds: 10,
    ...extra,
  };
}
