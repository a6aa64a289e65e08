/**
 * Files a record points to: fingerprints at crawl time, guarded reads and extraction at ingest. See service.ts
 * for the flow and the trust rules, and docs/mapping.md "Attachments" for the definition.
 */
export {
  AttachmentService,
  attachmentLabel,
  createAttachmentService,
  type ApplyAttachmentsResult,
  type AttachmentFile,
  type AttachmentReport,
  type AttachmentServiceOptions,
  type FingerprintedFile,
} from './service.js';
export { compileAttachmentSettings, type AttachmentSettings, type UrlPolicy } from './settings.js';
export { AttachmentError } from './errors.js';
export { blobLabel, type BlobLocation, type ContainerProvider } from './blobs.js';
export { QUERY_REMOVED, stripAttachmentQueries, type Resolver, type SourceCredentials } from './urls.js';
export { nonPublicReason } from './addresses.js';
