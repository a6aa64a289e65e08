/**
 * What a mapper takes and returns: a source record in, an externalItem or a reject reason out.
 */
import type { AclEntry, ExternalItem } from '../config/model.js';
import { ConnectorError } from '../core/errors.js';
import type { ItemActivity } from './activities.js';
import type { AttachmentRef } from './attachments.js';

/** What the mapper needs from a source record (structurally a SourceRecord from src/sources). */
export interface MappableRecord {
  key: string;
  data?: Record<string, unknown>;
  /** Set when the source could not parse the record. */
  error?: string;
}

export interface RejectReason {
  recordKey: string;
  field: string;
  rule: string;
  /** `record <key>: field "<field>": <what> (rule: <rule>)`. */
  message: string;
}

export type MapResult =
  | {
      ok: true;
      item: ExternalItem;
      warnings: string[];
      /** the id before encoding (ledger) */
      sourceId: string;
      /**
       * Files the record names (mapping.attachments). The mapper only reports them; the attachment service
       * (src/attachments) fingerprints them at crawl time and extracts them into the content at ingest.
       */
      attachments?: AttachmentRef[];
      /**
       * The record's user activities (mapping.activities), oldest first. The crawl hashes them with the item and
       * the ingest sends the ones the ledger has not seen (src/mapping/activities.ts).
       */
      activities?: ItemActivity[];
    }
  | { ok: false; reason: RejectReason };

/** What one crawl knows that the definition does not: passed to every {@link Mapper.map} call of the crawl. */
export interface MapContext {
  /**
   * The ids of the external groups Graph holds for this connection (`ExternalGroup.id` as the groups source yields
   * them), when the connector syncs groups (the source has `groups`). An `externalGroup` ACL value resolves only to
   * one of these, compared ignoring case; any other value is unresolved (fail closed). Pass the same Set object for
   * every record of a crawl: its index is built once per Set.
   */
  externalGroups?: ReadonlySet<string>;
}

export interface Mapper {
  /** Never throws: a bad record is `{ ok: false, reason }`. */
  map(record: MappableRecord, context?: MapContext): MapResult;
}

export interface MapperDeps {
  /** upn (any case) → Entra object id, e.g. from directoryFromJson. Else mapping.acl.directory is loaded. */
  directory?: Map<string, string>;
  /** Folder of connector.json: `mapping.module` is resolved against it. */
  baseDir: string;
  /** Value for everyone entries when mapping.acl.tenantId is not set (Graph expects the tenant id). */
  tenantId?: string;
  /**
   * True when the connector syncs external groups (the source has `groups`). Then every `map()` call must pass
   * {@link MapContext.externalGroups}: without it no externalGroup value can be checked, so each is unresolved
   * (a grant is dropped, a deny makes the ACL unresolved) rather than trusted.
   */
  syncsExternalGroups?: boolean;
}

/** What a `mapping.module` gets as its second argument. */
export interface MapperHelpers {
  encodeItemId(id: string): string;
  escapeHtml(s: string): string;
  get(record: Record<string, unknown>, path: string): unknown;
  /** UPN or object id → object id (undefined when unknown). */
  resolveUser(upnOrId: string): string | undefined;
  /** Stop mapping this record: it is rejected with this field, rule and message. */
  reject(field: string, rule: string, message: string): never;
}

/** What `map(record, helpers)` in a mapping module returns: raw property values, coerced and annotated here. */
export interface ModuleMapOutput {
  id: string;
  properties: Record<string, unknown>;
  content?: { type: 'text' | 'html'; value: string };
  acl: AclEntry[];
}

/** A reject result in the documented form: `record <key>: field "<field>": <what> (rule: <rule>)`. */
export function rejectRecord(recordKey: string, field: string, rule: string, what: string): MapResult {
  return {
    ok: false,
    reason: { recordKey, field, rule, message: `record ${recordKey}: field "${field}": ${what} (rule: ${rule})` },
  };
}

/**
 * A mapping that cannot be built (a module without `map`, an unreadable directory file, a definition that skipped
 * validation). Thrown at start-up by createMapper, never per record.
 */
export class MappingSetupError extends ConnectorError {
  override name = 'MappingSetupError';
  constructor(message: string, options: { cause?: unknown } = {}) {
    super(message, { code: 'MappingSetup', retryable: false, ...options });
  }
}
