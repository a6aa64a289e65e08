/**
 * The emulator's whole state (identity registry, directory, connections with their schema, operations, items
 * and external groups) and its persistence: one JSON file written atomically (temp file + rename), debounced.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';

export interface FederatedCredential {
  subject: string;
  issuer?: string;
  audiences?: string[];
  name?: string;
}

export interface AppRegistration {
  clientId: string;
  objectId: string;
  displayName: string;
  secrets: string[];
  roles: string[];
  /** PEM certificates whose keys may sign client assertions. */
  certificates: string[];
  federatedCredentials: FederatedCredential[];
  /** Consented delegated permissions (scp of user tokens); absent = ExternalItem.Read.All. */
  delegatedScopes?: string[];
}

export interface ManagedIdentity {
  clientId: string;
  objectId: string;
  displayName: string;
  roles: string[];
  /** The system-assigned identity answers requests that name no client_id. */
  systemAssigned: boolean;
}

export interface DirectoryUser {
  id: string;
  userPrincipalName: string;
  displayName?: string;
  guest?: boolean;
  /** This user's password for the password grant (default: the emulator's userPassword). */
  password?: string;
}

export interface DirectoryGroup {
  id: string;
  displayName?: string;
  /** Object ids of users or groups (nested). */
  members: string[];
}

export interface Directory {
  users: DirectoryUser[];
  groups: DirectoryGroup[];
}

export interface SchemaProperty {
  name: string;
  type: string;
  isSearchable: boolean;
  isQueryable: boolean;
  isRetrievable: boolean;
  isRefinable: boolean;
  isExactMatchRequired?: boolean;
  labels: string[];
  aliases: string[];
  description?: string;
  rankingHint?: { importanceScore: string };
}

export interface Schema {
  baseType: string;
  properties: SchemaProperty[];
}

export interface PublicError {
  code?: string;
  message: string;
}

export interface Operation {
  id: string;
  kind: 'schema';
  status: 'inprogress' | 'completed' | 'failed';
  error?: PublicError;
  createdAt: number;
  completesAt: number;
  /** The schema this operation registers when it completes. */
  schema: Schema;
  /** Canonical JSON of the request that created it (idempotent retries get the same operation). */
  requestKey: string;
  /** Set when the operation is scripted (or found) to fail. */
  failure?: PublicError;
}

export interface AclEntry {
  type: string;
  value: string;
  accessType: string;
  identitySource?: string;
}

export interface StoredItem {
  id: string;
  acl: AclEntry[];
  properties: Record<string, unknown>;
  content?: { type: string; value: string };
  informationProtectionLabel?: unknown;
  activities: unknown[];
  createdDateTime: string;
  lastModifiedDateTime: string;
  writtenBy: string;
}

export interface GroupMember {
  id: string;
  type: 'user' | 'group' | 'externalGroup';
}

export interface ExternalGroup {
  id: string;
  displayName?: string;
  description?: string;
  members: GroupMember[];
}

export interface Connection {
  id: string;
  name: string;
  description?: string;
  configuration: { authorizedAppIds: string[] } & Record<string, unknown>;
  activitySettings?: unknown;
  searchSettings?: unknown;
  contentCategory: string;
  connectorId?: string;
  /** The GraphConnectors-Ticket the connection was created with (its id and connector), if any. */
  ticket?: { id: string; connectorId: string; usedAt: string };
  enabledContentExperiences?: string;
  complianceSettings?: unknown;
  state: string;
  createdBy: string;
  createdDateTime: string;
  schema?: Schema;
  operations: Map<string, Operation>;
  items: Map<string, StoredItem>;
  groups: Map<string, ExternalGroup>;
  /** Items allowed in this connection; reaching it moves the connection to limitExceeded. */
  itemQuota?: number;
  /** Set by DELETE with a deletion delay: the connection disappears at this time (epoch ms). */
  deleteAt?: number;
}

export interface EmulatorState {
  tenantId: string;
  signingKeyPem: string;
  kid: string;
  identityHeader: string;
  defaultAppId: string;
  defaultManagedIdentityId: string;
  apps: Map<string, AppRegistration>;
  managedIdentities: Map<string, ManagedIdentity>;
  directory: Directory;
  connections: Map<string, Connection>;
  /** The password every directory user signs in with (password grant), unless the directory gives one. */
  userPassword: string;
}

const FILE = 'emulator-state.json';
const VERSION = 1;

function toJson(state: EmulatorState): string {
  return JSON.stringify({
    version: VERSION,
    ...state,
    apps: [...state.apps.values()],
    managedIdentities: [...state.managedIdentities.values()],
    connections: [...state.connections.values()].map((c) => ({
      ...c,
      operations: [...c.operations.values()],
      items: [...c.items.values()],
      groups: [...c.groups.values()],
    })),
  });
}

interface PersistedConnection extends Omit<Connection, 'operations' | 'items' | 'groups'> {
  operations: Operation[];
  items: StoredItem[];
  groups: ExternalGroup[];
}

function fromJson(text: string, path: string): EmulatorState {
  const raw = JSON.parse(text) as Record<string, unknown>;
  if (raw.version !== VERSION) throw new Error(`${path}: unsupported state version ${String(raw.version)}.`);
  const apps = raw.apps as AppRegistration[];
  const mis = raw.managedIdentities as ManagedIdentity[];
  const conns = raw.connections as PersistedConnection[];
  return {
    tenantId: raw.tenantId as string,
    signingKeyPem: raw.signingKeyPem as string,
    kid: raw.kid as string,
    identityHeader: raw.identityHeader as string,
    defaultAppId: raw.defaultAppId as string,
    defaultManagedIdentityId: raw.defaultManagedIdentityId as string,
    apps: new Map(apps.map((a) => [a.clientId, a])),
    managedIdentities: new Map(mis.map((m) => [m.clientId, m])),
    directory: raw.directory as Directory,
    // State files written before delegated sign-in existed get a password on load (saved with the next change).
    userPassword:
      typeof raw.userPassword === 'string' ? raw.userPassword : `emu~user~${randomBytes(9).toString('hex')}`,
    connections: new Map(
      conns.map((c) => [
        c.id,
        {
          ...c,
          operations: new Map(c.operations.map((o) => [o.id, o])),
          items: new Map(c.items.map((i) => [i.id, i])),
          groups: new Map(c.groups.map((g) => [g.id, g])),
        },
      ]),
    ),
  };
}

/** Holds the state and writes it to `dir` (when given) shortly after each change. */
export class Store {
  private timer: NodeJS.Timeout | undefined;
  private readonly path: string | undefined;

  constructor(
    public state: EmulatorState,
    dir: string | undefined,
    private readonly onError: (message: string) => void,
    private readonly debounceMs = 150,
  ) {
    this.path = dir ? join(dir, FILE) : undefined;
  }

  /** Read a persisted state from `dir`, or undefined when there is none. */
  static load(dir: string): EmulatorState | undefined {
    const path = join(dir, FILE);
    if (!existsSync(path)) return undefined;
    try {
      return fromJson(readFileSync(path, 'utf8'), path);
    } catch (err) {
      throw new Error(
        `The emulator state file ${path} cannot be read (${(err as Error).message}). Move it away or delete it to start fresh.`,
        { cause: err },
      );
    }
  }

  private closed = false;

  changed(): void {
    if (!this.path || this.timer || this.closed) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.flush();
    }, this.debounceMs);
    this.timer.unref();
  }

  /** Write what is pending and stop writing (a closed emulator must not overwrite a successor's state). */
  close(): void {
    this.flush();
    this.closed = true;
  }

  flush(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    if (!this.path || this.closed) return;
    try {
      mkdirSync(join(this.path, '..'), { recursive: true });
      const tmp = `${this.path}.${process.pid}.tmp`;
      writeFileSync(tmp, toJson(this.state), { mode: 0o600 });
      renameSync(tmp, this.path);
    } catch (err) {
      this.onError(`emulator: could not save state to ${this.path}: ${(err as Error).message}`);
    }
  }
}
