/**
 * The `source` section of connector.json is owned by the source types themselves (src/sources/registry.ts and one
 * folder per type). This module re-exports its types and validator for code that still imports them from here.
 */
export type {
  AuthDefinition,
  BlobInputDefinition,
  FileSourceDefinition,
  GroupsDefinition,
  IncrementalDefinition,
  PagingDefinition,
  RestSourceDefinition,
  RetryDefinition,
  SourceDefinition,
  SourceType,
} from '../sources/index.js';
export { SOURCE_TYPES, validateSourceDefinition } from '../sources/index.js';
