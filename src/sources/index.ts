/**
 * The sources: the contract (types.ts), the registry of built-in types (registry.ts) and what callers outside
 * src/sources use.
 */
export type {
  PagedReadOptions,
  ReadOptions,
  SecretWriter,
  Source,
  SourceCapabilities,
  SourceDeps,
  SourceErrorCode,
  SourceOperationOptions,
  SourcePage,
  SourcePosition,
  SourceProgress,
  SourceRecord,
} from './types.js';
export { abortSignalOf, displayUrl, MAX_POSITION_BYTES, SourceError } from './types.js';
export type { SourceDefinition, SourceType, SourceTypeEntry } from './registry.js';
export {
  createSource,
  SOURCE_REGISTRY,
  SOURCE_TYPES,
  sourceCapabilities,
  validateSourceDefinition,
} from './registry.js';
export type { GroupsDefinition, SourceValidationContext } from './shared/common.js';
export type { BlobInputDefinition, FileSourceDefinition } from './files/definition.js';
export type {
  AuthDefinition,
  IncrementalDefinition,
  PagingDefinition,
  RestSourceDefinition,
  RetryDefinition,
} from './rest/definition.js';
export { DEFAULT_PAGE_SIZE } from './position.js';
export { toExternalGroup } from './groups.js';
export { splitJsonArray } from './files/json-array.js';
export { nextFromLinkHeader } from './rest/pages.js';
