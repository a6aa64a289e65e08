/**
 * Definition parts every source type shares: the record key and where external groups come from.
 */
import type { BlobInputDefinition } from '../files/definition.js';
import type { PagingDefinition } from '../rest/definition.js';

/** Where the external groups (with members) come from. */
export interface GroupsDefinition {
  /** A local file (relative to the connector.json folder), or... */
  path?: string;
  /** ...an http(s) URL (for `format: "rest"` the source's auth, retry and TLS settings apply), or... */
  url?: string;
  /** ...a blob in the connector's own storage account. */
  blob?: BlobInputDefinition;
  /** Default: `jsonLines` when the name ends in `.jsonl`/`.ndjson`, else `jsonArray`; `rest` for a paged API. */
  format?: 'jsonArray' | 'jsonLines' | 'rest';
  /** For `format: "rest"`: where the records are in each page (default `value`). */
  recordsPath?: string;
  paging?: PagingDefinition;
}

export interface SourceCommon {
  /** Field (dotted path) whose value is the record's stable key for reporting. Default: position. */
  keyField?: string;
  groups?: GroupsDefinition;
}

/** What a validator may need from the environment (the names of the connector's own containers). */
export interface SourceValidationContext {
  env: Record<string, string | undefined>;
}
