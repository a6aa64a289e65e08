/**
 * The Microsoft 365 enablement path end to end over real HTTP: the emulator, acting as the admin center, signs and
 * POSTs a "connector turned on" notification to the notification function; the function verifies it against the
 * emulator's published keys and starts provisioning; the provision queue creates the connection with the
 * GraphConnectors-Ticket header and the connectorId, which the emulator checks and records. Turning it off deletes
 * the connection and stops the crawls.
 */
import { InvocationContext, type Timer } from '@azure/functions';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHandlers, type Handlers } from '../../src/host/handlers.js';
import { decodeQueueMessage } from '../../src/state/storage.js';
import { serveFunctions, type FunctionsHttp } from '../support/functions-http.js';
import { startStack, type Stack } from '../support/stack.js';

const CONNECTOR_ID = '5b0f6f33-8d6e-4c53-9c0e-5b1f1e2a7c10';

let stack: Stack;
let handlers: Handlers;
let http: FunctionsHttp;

beforeAll(async () => {
  stack = await startStack({ provision: false, emulator: { schemaDelayMs: 300 }, records: '' });
  handlers = createHandlers(async () => stack.rt);
  http = await serveFunctions({ 'POST /api/notification': handlers.connectorNotification });
}, 60_000);
afterAll(async () => {
  await http?.close();
  await stack?.close();
});

const ctx = (name: string) =>
  new InvocationContext({ functionName: name, invocationId: `t-${name}`, logHandler: () => {} });

/** Deliver provision-queue messages to the provision function, as the host would, until the phase is reached. */
async function driveProvisioning(until: string): Promise<string[]> {
  const queue = stack.rt.provisionQueue.client;
  const phases: string[] = [];
  const deadline = Date.now() + 40_000;
  while (Date.now() < deadline) {
    const stored = await stack.rt.provisionStore.get('contosotasks');
    if (stored?.state.phase === until) return phases;
    const { receivedMessageItems } = await queue.receiveMessages({ numberOfMessages: 1, visibilityTimeout: 30 });
    const m = receivedMessageItems[0];
    if (!m) {
      await new Promise((r) => setTimeout(r, 100));
      continue;
    }
    await handlers.provision(JSON.parse(decodeQueueMessage(m.messageText)), ctx('provision'));
    await queue.deleteMessage(m.messageId, m.popReceipt);
    const after = await stack.rt.provisionStore.get('contosotasks');
    if (after) phases.push(after.state.phase);
  }
  throw new Error(`provisioning did not reach ${until}: ${phases.join(' → ')}`);
}

interface NotificationResult {
  ticket: string;
  delivered: { status: number; body: string };
}

describe('enabling the connector from the Microsoft 365 admin center', () => {
  it('a signed "enabled" notification provisions the connection with the ticket and the connectorId', async () => {
    const sent = await stack.admin<NotificationResult>('connector-notifications', {
      method: 'POST',
      body: {
        url: `${http.baseUrl}/api/notification`,
        state: 'enabled',
        connectorId: CONNECTOR_ID,
        audience: stack.env.GRAPH_CLIENT_ID,
      },
    });
    expect(sent.delivered).toEqual({ status: 202, body: '' });

    const started = await stack.rt.provisionStore.get('contosotasks');
    expect(started?.state).toMatchObject({ phase: 'connection', connectorId: CONNECTOR_ID, enablement: 'enabled' });
    expect(started?.state.ticket).toBe(sent.ticket);

    const phases = await driveProvisioning('ready');
    expect(phases).toContain('schema');

    // The emulator saw the ticket on the create and checked it was issued for this connector.
    const state = await stack.admin<{ connections: Record<string, any>[] }>('state');
    const conn = state.connections.find((c) => c.id === 'contosotasks');
    expect(conn).toMatchObject({ state: 'ready', connectorId: CONNECTOR_ID, ticket: { connectorId: CONNECTOR_ID } });
    // The ticket is single use: it is not kept once the connection exists, and the status API never shows it.
    const ready = await stack.rt.provisionStore.get('contosotasks');
    expect(ready?.state.ticket).toBeUndefined();
    const status = await handlers.status(undefined as never, ctx('status'));
    expect(JSON.stringify(status.jsonBody)).not.toContain(sent.ticket);
  });

  it('a signed "disabled" notification deletes the connection and stops the scheduled crawls', async () => {
    const sent = await stack.admin<NotificationResult>('connector-notifications', {
      method: 'POST',
      body: {
        url: `${http.baseUrl}/api/notification`,
        state: 'disabled',
        connectorId: CONNECTOR_ID,
        audience: stack.env.GRAPH_CLIENT_ID,
      },
    });
    expect(sent.delivered.status).toBe(202);
    await driveProvisioning('disabled');
    const { value } = await stack.admin<{ value: { method: string; route: string; status: number }[] }>(
      'requests?connectionId=contosotasks',
    );
    expect(value.some((r) => r.method === 'DELETE' && r.route === 'connection' && r.status < 300)).toBe(true);

    await handlers.crawlTimer({ isPastDue: false } as Timer, ctx('crawlTimer'));
    expect(await stack.rt.pipeline.state.jobs.list('contosotasks')).toEqual([]);
  });

  it('the emulator refuses a create whose ticket was not issued for the connectorId it names', async () => {
    const { ticket } = await stack.admin<{ ticket: string }>('connector-notifications', {
      method: 'POST',
      body: { url: 'http://127.0.0.1:1/unused', send: false, connectorId: CONNECTOR_ID, audience: 'x' },
    });
    const other = await stack.rt.graph
      .createConnection(
        { id: 'ticketcheck', name: 'Ticket check', description: 'wrong connector', connectorId: crypto.randomUUID() },
        { headers: { 'GraphConnectors-Ticket': ticket } },
      )
      .then(
        () => 'created',
        (e: { status?: number; message?: string }) => `${e.status} ${e.message}`,
      );
    expect(other).toMatch(/^400 .*not the connector the GraphConnectors-Ticket was issued for/);
    const forged = await stack.rt.graph
      .createConnection(
        { id: 'ticketcheck', name: 'Ticket check', description: 'forged ticket', connectorId: CONNECTOR_ID },
        { headers: { 'GraphConnectors-Ticket': `${ticket.slice(0, -4)}AAAA` } },
      )
      .then(
        () => 'created',
        (e: { status?: number; message?: string }) => `${e.status} ${e.message}`,
      );
    expect(forged).toMatch(/^400 .*signature does not match/);
  });
});
