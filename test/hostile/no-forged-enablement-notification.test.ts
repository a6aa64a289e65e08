/**
 * The notification function is anonymous (Microsoft Graph sends no function key), so its validation tokens are the
 * only thing between the internet and "create or delete the connection". Every forgery is answered 401 over real
 * HTTP and nothing reaches the provision queue or the provision state: a token signed with another key, a token
 * whose claims were altered after signing, another audience, another issuer (signed with the tenant's own key), an
 * expired token, a key id the tenant does not publish, another publisher app, and no token at all.
 */
import { generateKeyPairSync, sign } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHandlers } from '../../src/host/handlers.js';
import { serveFunctions, type FunctionsHttp } from '../support/functions-http.js';
import { startStack, type Stack } from '../support/stack.js';

const CONNECTOR_ID = '0d4c7a51-2f36-4b7e-a1c9-3e5d6f708192';

let stack: Stack;
let http: FunctionsHttp;
let url: string;

beforeAll(async () => {
  stack = await startStack({ provision: false, records: '' });
  const handlers = createHandlers(async () => stack.rt);
  http = await serveFunctions({ 'POST /api/notification': handlers.connectorNotification });
  url = `${http.baseUrl}/api/notification`;
}, 60_000);
afterAll(async () => {
  await http?.close();
  await stack?.close();
});

interface Built {
  notification: { value: unknown[]; validationTokens: string[] };
}

/** A notification the emulator signs as the admin center would, not sent (the test forges from it). */
async function genuine(token: Record<string, unknown> = {}, audience?: string): Promise<Built['notification']> {
  const { notification } = await stack.admin<Built>('connector-notifications', {
    method: 'POST',
    body: {
      url,
      send: false,
      connectorId: CONNECTOR_ID,
      audience: audience ?? stack.env.GRAPH_CLIENT_ID,
      token,
    },
  });
  return notification;
}

const part = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
const claims = (jwt: string) =>
  JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString('utf8')) as Record<string, unknown>;
const header = (jwt: string) =>
  JSON.parse(Buffer.from(jwt.split('.')[0]!, 'base64url').toString('utf8')) as Record<string, unknown>;

/** Sign `payload` with a key of the attacker's own. */
function selfSigned(payload: Record<string, unknown>, kid: string): string {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const input = `${part({ typ: 'JWT', alg: 'RS256', kid })}.${part(payload)}`;
  return `${input}.${sign('sha256', Buffer.from(input), privateKey).toString('base64url')}`;
}

async function post(body: unknown): Promise<{ status: number; text: string }> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: res.status, text: await res.text() };
}

async function nothingStarted(): Promise<void> {
  const props = await stack.rt.provisionQueue.client.getProperties();
  expect(props.approximateMessagesCount ?? 0).toBe(0);
  expect(await stack.rt.provisionStore.get('contosotasks')).toBeNull();
}

describe('the notification function refuses forged enablement notifications', () => {
  it('forgeries are 401 with nothing enqueued; the reason is logged, not told', async () => {
    const real = await genuine();
    const token = real.validationTokens[0]!;
    const [h, , s] = token.split('.');
    const cases: Record<string, unknown> = {
      'signed with another key (same kid)': {
        ...real,
        validationTokens: [selfSigned(claims(token), header(token).kid as string)],
      },
      'claims altered after signing': {
        ...real,
        validationTokens: [`${h}.${part({ ...claims(token), aud: 'c0ffee00-0000-4000-8000-000000000000' })}.${s}`],
      },
      'another audience': await genuine({}, 'c0ffee00-0000-4000-8000-000000000000'),
      'another issuer (signed with the tenant key)': await genuine({
        issuer: 'https://sts.windows.net/11111111-2222-4333-8444-555555555555/',
      }),
      'expired an hour ago': await genuine({ expiresInSeconds: -3600 }),
      'a key id the tenant does not publish': { ...real, validationTokens: [selfSigned(claims(token), 'rogue-kid')] },
      'requested by another app than the notification publisher': await genuine({
        publisherAppId: stack.env.GRAPH_CLIENT_ID,
      }),
      'no validation token': { value: real.value },
      'an empty token list': { value: real.value, validationTokens: [] },
      'a genuine token next to a forged one': {
        ...real,
        validationTokens: [token, selfSigned(claims(token), 'rogue-kid')],
      },
      'alg none': {
        ...real,
        validationTokens: [`${part({ alg: 'none', kid: header(token).kid })}.${part(claims(token))}.`],
      },
    };
    for (const [name, body] of Object.entries(cases)) {
      const res = await post(body);
      expect(res.status, name).toBe(401);
      expect(res.text, name).not.toMatch(/signature|audience|issuer|expired|kid/i);
    }
    await nothingStarted();
    const refusals = (stack.logger.lines ?? []).filter((l) => l.includes('notification refused'));
    expect(refusals.length).toBe(Object.keys(cases).length);
    expect(refusals.join('\n')).toMatch(/BadSignature/);
    expect(refusals.join('\n')).toMatch(/WrongAudience/);
    expect(refusals.join('\n')).toMatch(/WrongIssuer/);
    expect(refusals.join('\n')).toMatch(/Expired/);
    expect(refusals.join('\n')).toMatch(/UnknownSigningKey/);
    expect(refusals.join('\n')).toMatch(/WrongPublisher/);
    // No token or ticket is ever logged.
    expect((stack.logger.lines ?? []).join('\n')).not.toContain(token.split('.')[2]);
  });

  it('the genuine notification is accepted, so the refusals above are about the forgeries', async () => {
    const res = await post(await genuine());
    expect(res).toEqual({ status: 202, text: '' });
    expect((await stack.rt.provisionStore.get('contosotasks'))?.state).toMatchObject({ connectorId: CONNECTOR_ID });
  });
});
