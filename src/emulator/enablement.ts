/**
 * The Microsoft 365 admin center's side of the "simplified admin experience": when an admin turns a connector on
 * or off, Microsoft Graph POSTs a change notification to the app package's `graphConnector.notificationUrl`, with a
 * `validationTokens` JWT array and, in `resourceData`, the connector id, the state and a `connectorsTicket` that the
 * connection create must carry in the `GraphConnectors-Ticket` header
 * (https://learn.microsoft.com/graph/connecting-external-content-deploy-teams; docs/deploy.md lists every fact and
 * what is unconfirmed). The emulator signs such notifications with its own key (published in its JWKS), mints the
 * tickets, and checks them on connection create and delete.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { Emu } from './context.js';
import { GraphError, GUID_RE, isObject } from './http.js';
import { b64url, signJwt, type JsonObject } from './jwt.js';

/**
 * The app id of the Microsoft Graph change notification publisher, the `appid` of a validation token
 * (https://learn.microsoft.com/graph/change-notifications-with-resource-data#how-to-validate).
 */
export const NOTIFICATION_PUBLISHER_APP_ID = '0bf30f3b-4a52-48df-9a82-234910c4a086';
/** The `aud` Microsoft's sample tickets carry (the ticket is opaque to the connector). */
const TICKET_AUDIENCE = 'https://substrate.office.com';
/** How long a ticket stays valid (the sample ticket's exp − iat is a year; the emulator keeps it to a day). */
const TICKET_LIFETIME_S = 24 * 3600;

export interface TicketClaims {
  connectorId: string;
  tenantId: string;
  issuedAt: number;
  expiresAt: number;
  /** The ticket's own id (uti), recorded on the connection created with it. */
  id: string;
}

function ticketKey(emu: Emu): Buffer {
  return createHmac('sha256', emu.store.state.signingKeyPem).update('connectors-ticket').digest();
}

/** Mint a `connectorsTicket` for a connector (an HS256 JWT, as Microsoft's sample payloads show). */
export function mintTicket(emu: Emu, connectorId: string, now = Date.now()): { ticket: string; claims: TicketClaims } {
  const iat = Math.floor(now / 1000);
  const claims: TicketClaims = {
    connectorId,
    tenantId: emu.identity.tenantId,
    issuedAt: iat,
    expiresAt: iat + TICKET_LIFETIME_S,
    id: emu.ids.hex(16),
  };
  const input = `${b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }))}.${b64url(
    JSON.stringify({
      appid: connectorId,
      tid: claims.tenantId,
      uti: claims.id,
      nbf: iat,
      iat,
      exp: claims.expiresAt,
      aud: TICKET_AUDIENCE,
    }),
  )}`;
  const sig = createHmac('sha256', ticketKey(emu)).update(input).digest();
  return { ticket: `${input}.${b64url(sig)}`, claims };
}

function badTicket(message: string): GraphError {
  return new GraphError(400, 'InvalidRequest', `GraphConnectors-Ticket: ${message}`, {
    code: 'InvalidConnectorsTicket',
  });
}

/** Check a `GraphConnectors-Ticket` header value this emulator issued; throws 400 InvalidConnectorsTicket. */
export function checkTicket(emu: Emu, ticket: string, now = Date.now()): TicketClaims {
  const parts = ticket.split('.');
  if (parts.length !== 3) throw badTicket('not a ticket the admin center issued (not a compact JWT).');
  const expected = createHmac('sha256', ticketKey(emu)).update(`${parts[0]}.${parts[1]}`).digest();
  const got = Buffer.from(parts[2]!, 'base64url');
  if (got.length !== expected.length || !timingSafeEqual(got, expected))
    throw badTicket('the signature does not match: pass the connectorsTicket of the notification unchanged.');
  let p: JsonObject;
  try {
    p = JSON.parse(Buffer.from(parts[1]!, 'base64url').toString('utf8')) as JsonObject;
  } catch {
    throw badTicket('the payload is not JSON.');
  }
  const exp = Number(p.exp);
  if (!Number.isFinite(exp) || exp * 1000 <= now)
    throw badTicket('the ticket has expired: have the admin turn the connector on again for a new one.');
  const str = (v: unknown) => (typeof v === 'string' ? v : '');
  if (str(p.tid).toLowerCase() !== emu.identity.tenantId.toLowerCase())
    throw badTicket(`the ticket was issued for tenant '${str(p.tid)}', not this one.`);
  return {
    connectorId: str(p.appid),
    tenantId: str(p.tid),
    issuedAt: Number(p.iat),
    expiresAt: exp,
    id: str(p.uti),
  };
}

/** The ticket header of a request, if any. */
export function ticketHeader(headers: Record<string, string | string[] | undefined>): string | undefined {
  const h = headers['graphconnectors-ticket'];
  const v = Array.isArray(h) ? h[0] : h;
  return v === undefined ? undefined : v.trim();
}

export interface NotificationRequest {
  url: string;
  state: 'enabled' | 'disabled';
  connectorId: string;
  /** The `aud` of the validation token: the app the notification is for (its Entra app id). */
  audience: string;
  /** Deliver it (default) or only return it. */
  send: boolean;
  /** Overrides of the validation token, to test what a receiver refuses. */
  token: { issuer?: string; publisherAppId?: string; expiresInSeconds?: number; tenantId?: string };
}

function bad(message: string): GraphError {
  return new GraphError(400, 'BadRequest', message);
}

export function parseNotificationRequest(input: Record<string, unknown>): NotificationRequest {
  const problems: string[] = [];
  const url = input.url;
  if (typeof url !== 'string' || !/^https?:\/\//i.test(url))
    problems.push('url is required: the notificationUrl to POST to (http:// or https://).');
  const state = input.state ?? 'enabled';
  if (state !== 'enabled' && state !== 'disabled') problems.push('state must be "enabled" or "disabled".');
  if (typeof input.connectorId !== 'string' || !GUID_RE.test(input.connectorId))
    problems.push('connectorId is required: the app package id (manifest "id", a GUID).');
  if (typeof input.audience !== 'string' || !input.audience)
    problems.push("audience is required: the app id the notification is for (the connector's GRAPH_CLIENT_ID).");
  const token = input.token ?? {};
  if (!isObject(token))
    problems.push('token must be an object {issuer?, publisherAppId?, expiresInSeconds?, tenantId?}.');
  else {
    for (const k of ['issuer', 'publisherAppId', 'tenantId'] as const)
      if (token[k] !== undefined && typeof token[k] !== 'string') problems.push(`token.${k} must be a string.`);
    if (token.expiresInSeconds !== undefined && !Number.isInteger(token.expiresInSeconds))
      problems.push('token.expiresInSeconds must be a whole number of seconds (negative: already expired).');
  }
  if (input.send !== undefined && typeof input.send !== 'boolean') problems.push('send must be true or false.');
  if (problems.length) throw bad(problems.join(' '));
  return {
    url: url as string,
    state: state as 'enabled' | 'disabled',
    connectorId: input.connectorId as string,
    audience: input.audience as string,
    send: input.send !== false,
    token,
  };
}

/** Build the notification the admin center would send: a fresh ticket and a validation token signed by the emulator. */
export function buildNotification(emu: Emu, r: NotificationRequest): { body: JsonObject; ticket: string } {
  const { ticket } = mintTicket(emu, r.connectorId);
  const now = Math.floor(Date.now() / 1000);
  const tenantId = r.token.tenantId ?? emu.identity.tenantId;
  const issuer = r.token.issuer ?? `https://sts.windows.net/${tenantId}/`;
  const lifetime = r.token.expiresInSeconds ?? 3600;
  const oid = emu.ids.guid();
  const validationToken = signJwt(
    { typ: 'JWT', alg: 'RS256', kid: emu.store.state.kid, x5t: emu.store.state.kid },
    {
      aud: r.audience,
      iss: issuer,
      iat: Math.min(now, now + lifetime - 60),
      nbf: Math.min(now, now + lifetime - 60),
      exp: now + lifetime,
      aio: emu.ids.hex(12),
      appid: r.token.publisherAppId ?? NOTIFICATION_PUBLISHER_APP_ID,
      appidacr: '2',
      idp: issuer,
      oid,
      sub: oid,
      tid: tenantId,
      uti: emu.ids.hex(16),
      ver: '1.0',
    },
    emu.identity.privateKey,
  );
  const body = {
    value: [
      {
        changeType: 'updated',
        subscriptionId: emu.ids.guid(),
        resource: 'external',
        clientState: null,
        resourceData: {
          '@odata.type': '#Microsoft.Graph.connector',
          '@odata.id': 'external',
          id: r.connectorId,
          state: r.state,
          connectorsTicket: ticket,
        },
        subscriptionExpirationDateTime: new Date((now + 3600) * 1000).toISOString(),
        tenantId: emu.identity.tenantId,
      },
    ],
    validationTokens: [validationToken],
  };
  return { body, ticket };
}

/** POST a notification as Microsoft Graph does (30 s timeout, as documented); returns the receiver's answer. */
export async function deliverNotification(
  url: string,
  body: JsonObject,
): Promise<{ status: number; body: string } | { error: string }> {
  try {
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(30_000),
    });
    const text = await res.text();
    return { status: res.status, body: text.slice(0, 2000) };
  } catch (err) {
    return { error: (err as Error)?.message ?? String(err) };
  }
}
