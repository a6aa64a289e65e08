/** Graph connectors wire types used by the client (beyond src/config/model.ts). */
import type { ConnectionState, ContentCategory, OperationStatus, Schema } from '../config/model.js';
import type { DisplayTemplate, ItemIdResolver } from '../config/definition.js';

export interface ExternalConnection {
  id: string;
  name: string;
  description?: string;
  contentCategory?: ContentCategory;
  state?: ConnectionState;
  configuration?: { authorizedAppIds?: string[] };
  searchSettings?: { searchResultTemplates?: DisplayTemplate[] };
  activitySettings?: { urlToItemResolvers?: (ItemIdResolver & { '@odata.type'?: string })[] };
  connectorId?: string;
}

export type ExternalConnectionCreate = Omit<ExternalConnection, 'state'>;
export type ExternalConnectionPatch = Partial<Omit<ExternalConnection, 'id' | 'state'>>;

export interface SchemaResponse extends Schema {
  '@odata.context'?: string;
}

export interface ConnectionOperation {
  id: string;
  status: OperationStatus;
  error?: { code?: string; message?: string; target?: string; details?: unknown[]; innerError?: unknown } | null;
}

export interface ExternalGroupBody {
  id: string;
  displayName?: string;
  description?: string;
}

/**
 * A user's activity on an externalItem, as addActivities takes it
 * (https://learn.microsoft.com/graph/api/resources/externalconnectors-externalactivity).
 */
export interface ExternalActivity {
  '@odata.type': '#microsoft.graph.externalConnectors.externalActivity';
  type: 'created' | 'modified' | 'viewed' | 'commented';
  /** ISO 8601, UTC. */
  startDateTime: string;
  performedBy: { type: 'user'; id: string };
}

/**
 * One entry of addActivities' answer, in the order sent: `error` null when that activity was accepted
 * (https://learn.microsoft.com/graph/api/resources/externalconnectors-externalactivityresult).
 */
export interface ExternalActivityResult {
  type?: string;
  startDateTime?: string;
  error?: { code?: string; message?: string } | null;
}
