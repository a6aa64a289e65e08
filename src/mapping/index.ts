export { createMapper, directoryFromJson, MappingSetupError } from './mapper.js';
export type {
  MapContext,
  MapResult,
  Mapper,
  MapperDeps,
  MapperHelpers,
  MappableRecord,
  ModuleMapOutput,
  RejectReason,
} from './mapper.js';
export {
  encodeItemId,
  encodeItemIdWithForm,
  decodeItemId,
  isItemIdKeptAsIs,
  itemIdComparisonKey,
  encodeItemIdAlphanumericOnly,
  itemIdMigration,
  encodeExternalGroupId,
  decodeExternalGroupId,
  MAX_ITEM_ID_LENGTH,
} from './item-id.js';
export type { ItemIdForm } from './item-id.js';
export { duplicateItemIdReason, duplicateCheckKey } from './duplicate-id.js';
export type { MappedRecordRef } from './duplicate-id.js';
export { validateItem } from './validate-item.js';
export type { ItemProblem } from './validate-item.js';
export { buildAcl, denyAllAcl } from './acl.js';
export { externalGroupKey, indexExternalGroups } from './external-groups.js';
export type { ExternalGroupIndex } from './external-groups.js';
export { coerceToPropertyType, normaliseDateTime, odataAnnotation, escapeHtml } from './values.js';
export { attachmentResolver } from './attachments.js';
export type { AttachmentRef, BlobLocation } from './attachments.js';
