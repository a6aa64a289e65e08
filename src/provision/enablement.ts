/**
 * The Microsoft 365 admin center's enablement notification: when an admin turns the connector on or off, Microsoft
 * Graph POSTs to the app package's `graphConnector.notificationUrl` a change notification whose `resourceData` is a
 * `#Microsoft.Graph.connector` with the connector id (the app package id), its `state` and a `connectorsTicket`,
 * plus a `validationTokens` array (https://learn.microsoft.com/graph/connecting-external-content-deploy-teams).
 * This module reads it, has every validation token verified, and turns it into what to do; docs/deploy.md has the
 * facts and their sources.
 */
import type { OperationOptions } from '../core/async.js';
import { ConnectorError } from '../core/errors.js';
import type { NotificationTokenVerifier } from '../graph/notification-token.js';

/** One change of the notification: turn the connector on (with the ticket) or off. */
export interface EnablementChange {
  state: 'enabled' | 'disabled';
  /** `resourceData.id`: the app package id, sent as `connectorId` on the connection create. */
  connectorId: string;
  /** `resourceData.connectorsTicket`: the `GraphConnectors-Ticket` header value. */
  ticket?: string;
  tenantId: string;
}

/**
 * A notification that is not readable (400) or not authentic (401). Messages name the field; they never carry a
 * token or a ticket.
 */
export class EnablementNotificationError extends ConnectorError {
  override name = 'EnablementNotificationError';
  constructor(
    readonly status: 400 | 401,
    message: string,
    code = status === 401 ? 'EnablementNotificationUnauthenticated' : 'InvalidEnablementNotification',
  ) {
    super(message, { code });
  }
}

const CONNECTOR_TYPE = '#microsoft.graph.connector';
const MAX_TOKENS = 10;
const MAX_CHANGES = 10;
const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

const isObject = (v: unknown): v is Record<string, unknown> => !!v && typeof v === 'object' && !Array.isArray(v);

/** Read the body: the validation tokens and the connector changes (items of another resource type are ignored). */
export function parseEnablementNotification(body: Record<string, unknown>): {
  tokens: string[];
  changes: EnablementChange[];
} {
  const tokens = body.validationTokens;
  if (!Array.isArray(tokens) || tokens.length === 0 || tokens.some((t) => typeof t !== 'string' || t === ''))
    throw new EnablementNotificationError(
      401,
      'the notification carries no validationTokens (a non-empty array of JWT strings): it cannot be authenticated',
    );
  if (tokens.length > MAX_TOKENS)
    throw new EnablementNotificationError(400, `validationTokens has ${tokens.length} entries; at most ${MAX_TOKENS}`);
  const value = body.value;
  if (!Array.isArray(value) || value.length === 0)
    throw new EnablementNotificationError(400, '"value" must be a non-empty array of change notifications');
  if (value.length > MAX_CHANGES)
    throw new EnablementNotificationError(400, `"value" has ${value.length} entries; at most ${MAX_CHANGES}`);
  const changes: EnablementChange[] = [];
  value.forEach((n, i) => {
    if (!isObject(n) || !isObject(n.resourceData))
      throw new EnablementNotificationError(400, `value[${i}].resourceData must be an object`);
    const rd = n.resourceData;
    // Only a connector resource is a connector enablement notification (the docs' "tips" on the payload).
    const type = rd['@odata.type'];
    if (typeof type !== 'string' || type.toLowerCase() !== CONNECTOR_TYPE) return;
    const problems: string[] = [];
    if (rd.state !== 'enabled' && rd.state !== 'disabled')
      problems.push(`value[${i}].resourceData.state must be "enabled" or "disabled"`);
    if (typeof rd.id !== 'string' || rd.id === '')
      problems.push(`value[${i}].resourceData.id must be the connector id (the app package id)`);
    if (rd.state === 'enabled' && (typeof rd.connectorsTicket !== 'string' || rd.connectorsTicket === ''))
      problems.push(`value[${i}].resourceData.connectorsTicket is required when the state is "enabled"`);
    if (typeof n.tenantId !== 'string' || n.tenantId === '') problems.push(`value[${i}].tenantId must be a string`);
    if (problems.length) throw new EnablementNotificationError(400, problems.join('; '));
    changes.push({
      state: rd.state as 'enabled' | 'disabled',
      connectorId: rd.id as string,
      ...(typeof rd.connectorsTicket === 'string' && rd.connectorsTicket ? { ticket: rd.connectorsTicket } : {}),
      tenantId: n.tenantId as string,
    });
  });
  return { tokens: tokens as string[], changes };
}

/**
 * Verify every validation token (as the docs require: one failing makes the whole notification suspect) and that
 * each change is for this connector's tenant. Throws {@link NotificationTokenError} or
 * {@link EnablementNotificationError} (401); returns the changes to act on.
 */
export async function authenticateEnablementNotification(
  body: Record<string, unknown>,
  deps: { verifier: NotificationTokenVerifier; tenantId: string },
  options: OperationOptions = {},
): Promise<EnablementChange[]> {
  const { tokens, changes } = parseEnablementNotification(body);
  const tenants = new Set<string>();
  for (const token of tokens) {
    const verified = await deps.verifier.verify(token, options);
    tenants.add(verified.tenantId.toLowerCase());
  }
  for (const c of changes) {
    if (!tenants.has(c.tenantId.toLowerCase()))
      throw new EnablementNotificationError(
        401,
        `a change is for tenant ${c.tenantId}, which no validation token covers`,
      );
    // GRAPH_TENANT_ID may be a domain name; the token's issuer already named the tenant's id then.
    const own = GUID.test(deps.tenantId) ? deps.tenantId.toLowerCase() : undefined;
    if (own && c.tenantId.toLowerCase() !== own)
      throw new EnablementNotificationError(
        401,
        `a change is for tenant ${c.tenantId}, not this connector's (GRAPH_TENANT_ID ${deps.tenantId})`,
      );
  }
  return changes;
}
