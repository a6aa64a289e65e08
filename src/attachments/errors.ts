/**
 * Why an attachment could not be read. `code` is what a dead letter and the extraction line show
 * (`outside-folder`, `url-refused`, `blob-refused`, `too-large`, `http-404` …); `retryable` says whether the queue
 * should deliver the operation again (network trouble, 5xx, 429) or dead-letter it at once (everything else).
 * Messages name the file, the URL (without its query) or the blob, and the fix.
 */
import { ConnectorError } from '../core/errors.js';

export class AttachmentError extends ConnectorError {
  override name = 'AttachmentError';

  constructor(code: string, message: string, options: { retryable?: boolean; cause?: unknown } = {}) {
    super(message, { code, retryable: options.retryable ?? false, cause: options.cause });
  }
}

/** A refusal (never retried). */
export const refused = (code: string, message: string): AttachmentError => new AttachmentError(code, message);

/** A failure worth another delivery (network, 5xx, 429). */
export const transient = (code: string, message: string, cause?: unknown): AttachmentError =>
  new AttachmentError(code, message, { retryable: true, cause });
