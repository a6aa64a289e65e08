/** Roles, OwnedBy visibility and the per-state operation table (reference §3, §7.2). */
import { GraphError } from './http.js';
import type { Principal } from './identity.js';
import type { Connection } from './store.js';

export type Family = 'connection' | 'item';

const WRITE_ROLES: Record<Family, string[]> = {
  connection: ['ExternalConnection.ReadWrite.OwnedBy', 'ExternalConnection.ReadWrite.All'],
  item: ['ExternalItem.ReadWrite.OwnedBy', 'ExternalItem.ReadWrite.All'],
};
const READ_ALL: Record<Family, string> = { connection: 'ExternalConnection.Read.All', item: 'ExternalItem.Read.All' };

/** Scope the principal has for this call: all connections, or only owned ones. Throws 403 without a role. */
export function requireRole(p: Principal, family: Family, write: boolean): 'all' | 'owned' {
  const accepted = write ? WRITE_ROLES[family] : [...WRITE_ROLES[family], READ_ALL[family]];
  const held = accepted.filter((r) => p.roles.includes(r));
  if (held.length === 0)
    throw new GraphError(
      403,
      'Authorization_RequestDenied',
      `Insufficient privileges to complete the operation. The application '${p.appId}' needs the application permission ${accepted[0]} (or ${accepted.slice(1).join(' or ')}); its token carries roles [${p.roles.join(', ')}]. Grant the permission (admin consent) and get a new token.`,
    );
  return held.some((r) => !r.endsWith('.OwnedBy')) ? 'all' : 'owned';
}

export function owns(p: Principal, c: Connection): boolean {
  const id = p.appId.toLowerCase();
  return c.createdBy.toLowerCase() === id || c.configuration.authorizedAppIds.some((a) => a.toLowerCase() === id);
}

/** Throws 403 when an OwnedBy-only app touches a connection it neither created nor is authorized on. */
export function requireVisible(p: Principal, scope: 'all' | 'owned', c: Connection): void {
  if (scope === 'all' || owns(p, c)) return;
  throw new GraphError(
    403,
    'Authorization_RequestDenied',
    `Insufficient privileges to complete the operation. The application '${p.appId}' holds only *.OwnedBy permissions and connection '${c.id}' was neither created by it nor lists it in configuration.authorizedAppIds. Add the app id to authorizedAppIds (as the owning app) or grant a *.All permission.`,
  );
}

export type StateOp =
  | 'updateConnection'
  | 'createSchema'
  | 'updateSchema'
  | 'readSchema'
  | 'createItem'
  | 'readItem'
  | 'updateItem'
  | 'groups';

/** Allowed states per operation (✓ columns of the table in reference §3). */
const ALLOWED: Record<StateOp, string[]> = {
  updateConnection: ['draft', 'ready', 'limitExceeded'],
  createSchema: ['draft'],
  updateSchema: ['ready'],
  readSchema: ['ready', 'obsolete', 'limitExceeded'],
  createItem: ['ready'],
  readItem: ['ready', 'obsolete', 'limitExceeded'],
  updateItem: ['ready', 'limitExceeded'],
  groups: ['draft', 'ready', 'limitExceeded'],
};

const WHAT: Record<StateOp, string> = {
  updateConnection: 'updating the connection',
  createSchema: 'creating the schema',
  updateSchema: 'updating the schema',
  readSchema: 'reading the schema',
  createItem: 'creating items',
  readItem: 'reading items',
  updateItem: 'updating or deleting items',
  groups: 'managing external groups',
};

/** 400 InvalidRequest when the connection's state does not allow the operation (status UNCONFIRMED, see docs). */
export function requireState(c: Connection, op: StateOp): void {
  if (ALLOWED[op].includes(c.state)) return;
  const hint =
    c.state === 'draft'
      ? ' Register the schema and wait until its operation is completed (the connection becomes ready).'
      : c.state === 'obsolete'
        ? ' An obsolete connection can only be read or deleted.'
        : c.state === 'limitExceeded'
          ? ' The item quota is reached: delete items or raise the quota; updates and deletes still work.'
          : '';
  const inner =
    c.state === 'limitExceeded'
      ? 'ConnectionLimitExceeded'
      : c.state === 'obsolete'
        ? 'ConnectionObsolete'
        : 'ConnectionNotReady';
  throw new GraphError(
    400,
    'InvalidRequest',
    `Connection '${c.id}' is in state '${c.state}', which does not allow ${WHAT[op]}.${hint}`,
    {
      code: inner,
    },
  );
}
