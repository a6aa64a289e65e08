/**
 * Blob attachments, read from the connector's own storage account — and only from the containers the definition
 * names as attachments containers (mapping.attachments.container / containers). The same account holds the
 * Functions host's keys (`azure-webjobs-secrets`), its locks, the deployment package and the claims container
 * (other items' bodies): a record, or a forged queue message, that names any of them is refused before a request
 * is made. In Azure the identity's role assignments say the same (infra/: Reader on the attachments containers
 * only), so a mistake here would still be a 403.
 */
import type { ContainerClient } from '@azure/storage-blob';
import type { Readable } from 'node:stream';
import { statusOf } from '../core/errors.js';
import { AttachmentError, refused, transient } from './errors.js';

/** A blob in a container of the connector's storage account. */
export interface BlobLocation {
  container: string;
  name: string;
}

/** Container clients of the connector's storage account (the composition root supplies them). */
export type ContainerProvider = (name: string) => ContainerClient;

export const blobLabel = (b: BlobLocation) => `${b.container}/${b.name}`;

/**
 * Why a blob name cannot be read, or undefined. A `.` or `..` path segment is resolved away when the name
 * becomes a URL (`att/../azure-webjobs-secrets/host.json` is a blob of another container), and a backslash is
 * one on some platforms: both are refused, as are control characters.
 */
export function blobNameProblem(name: string): string | undefined {
  if (name.split(/[/\\]/).some((seg) => seg === '.' || seg === '..'))
    return 'the blob name has a "." or ".." segment, which would leave its container; name the blob without it';
  if ([...name].some((c) => c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f))
    return 'the blob name contains a control character';
  return undefined;
}
const describe = (b: BlobLocation) => `blob "${b.name}" in container "${b.container}"`;

export class BlobReader {
  constructor(
    private readonly allowed: ReadonlySet<string>,
    private readonly containers: ContainerProvider | undefined,
  ) {}

  private client(b: BlobLocation) {
    const bad = blobNameProblem(b.name);
    if (bad) throw refused('blob-refused', `${describe(b)}: ${bad}`);
    if (!this.allowed.has(b.container))
      throw refused(
        'blob-refused',
        `${describe(b)}: container "${b.container}" is not an attachments container (${
          this.allowed.size ? `allowed: ${[...this.allowed].join(', ')}` : 'none is configured'
        }); set mapping.attachments.container or containers to a container that holds attachments only`,
      );
    if (!this.containers)
      throw refused(
        'no-blob-storage',
        `${describe(b)}: no blob storage is configured for attachments (the runtime sets it from AzureWebJobsStorage)`,
      );
    const client = this.containers(b.container).getBlobClient(b.name);
    // The SDK builds a URL from the name; whatever it made of it, the request must stay in this container.
    if (client.containerName !== b.container || client.name !== b.name)
      throw refused(
        'blob-refused',
        `${describe(b)}: the name resolves to blob "${client.name}" in container "${client.containerName}"`,
      );
    return client;
  }

  /** A storage failure as a refusal (missing, forbidden) or a retryable error (5xx, 429, network). */
  private failure(e: unknown, b: BlobLocation, abortSignal?: AbortSignal): unknown {
    if (abortSignal?.aborted || e instanceof AttachmentError) return e;
    const status = statusOf(e);
    const code = (e as { code?: unknown })?.code;
    if (status === 404)
      return refused(
        'blob-not-found',
        `${describe(b)} does not exist (${typeof code === 'string' ? code : 'HTTP 404'}); upload it or fix the record`,
      );
    if (status === 401 || status === 403)
      return refused(
        `blob-${status}`,
        `${describe(b)}: access denied (HTTP ${status}); give the app's identity the Storage Blob Data Reader role on container "${b.container}"`,
      );
    if (status === undefined || status >= 500 || status === 429 || status === 408)
      return transient(
        status ? `blob-${status}` : 'blob-network',
        `${describe(b)}: ${status ? `HTTP ${status}` : ((e as Error)?.message ?? String(e))}`,
        e,
      );
    return refused(`blob-${status}`, `${describe(b)} answered HTTP ${status}`);
  }

  /** ETag, last-modified and length from the blob's properties: its bytes are never read at crawl time. */
  async fingerprint(b: BlobLocation, options: { timeoutMs: number; abortSignal?: AbortSignal }): Promise<string> {
    const client = this.client(b);
    const signal = options.abortSignal
      ? AbortSignal.any([AbortSignal.timeout(options.timeoutMs), options.abortSignal])
      : AbortSignal.timeout(options.timeoutMs);
    try {
      const p = await client.getProperties({ abortSignal: signal });
      return `blob:${p.etag ?? ''}:${p.lastModified?.toISOString() ?? ''}:${p.contentLength ?? ''}`.slice(0, 256);
    } catch (e) {
      throw this.failure(e, b, options.abortSignal);
    }
  }

  /** Download a blob, refusing one over `maxBytes` before reading it and never buffering more than `maxBytes`. */
  async read(
    b: BlobLocation,
    options: { maxBytes: number; timeoutMs: number; abortSignal?: AbortSignal },
  ): Promise<{ bytes: Uint8Array; contentType?: string }> {
    const client = this.client(b);
    const max = options.maxBytes;
    const signal = options.abortSignal
      ? AbortSignal.any([AbortSignal.timeout(options.timeoutMs), options.abortSignal])
      : AbortSignal.timeout(options.timeoutMs);
    try {
      const res = await client.download(0, undefined, { abortSignal: signal });
      const body = res.readableStreamBody as Readable | undefined;
      if (res.contentLength !== undefined && res.contentLength > max) {
        body?.destroy();
        throw refused(
          'too-large',
          `${describe(b)} is ${res.contentLength} bytes, above the ${max}-byte limit (mapping.attachments.maxFileBytes)`,
        );
      }
      const chunks: Buffer[] = [];
      let size = 0;
      if (body) {
        for await (const chunk of body as AsyncIterable<Buffer>) {
          size += chunk.byteLength;
          if (size > max) {
            body.destroy();
            throw refused(
              'too-large',
              `${describe(b)} is over the ${max}-byte limit (mapping.attachments.maxFileBytes)`,
            );
          }
          chunks.push(chunk);
        }
      }
      return {
        bytes: new Uint8Array(Buffer.concat(chunks)),
        ...(res.contentType ? { contentType: res.contentType } : {}),
      };
    } catch (e) {
      throw this.failure(e, b, options.abortSignal);
    }
  }
}
