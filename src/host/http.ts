/**
 * Validation of the bodies the HTTP triggers accept. Every problem is reported at once, naming the field
 * and the fix, so a caller can correct a request in one go. Nothing is enqueued for an invalid request.
 */

export const MAX_BODY_BYTES = 64 * 1024;
export const MAX_ITEM_IDS = 1000;

export type CrawlMode = 'full' | 'incremental' | 'acl' | 'items';
export const CRAWL_MODES: readonly CrawlMode[] = ['full', 'incremental', 'acl', 'items'];

export interface ResyncRequest {
  mode: CrawlMode;
  /** For mode `items`: the source record keys (or item ids) to re-read and re-ingest. */
  itemIds?: string[];
  /** Bypass the unchanged-hash skip (re-PUT everything read) and the sweep's ratio guard. */
  force: boolean;
}

export interface ReplayRequest {
  /** Replay only dead letters of this crawl. */
  crawlId?: string;
  /** Replay only these item ids. */
  itemIds?: string[];
  /** Replay everything dead-lettered for the connection. */
  all: boolean;
}

export class RequestError extends Error {
  override name = 'RequestError';
  constructor(
    readonly status: 400 | 413 | 415,
    readonly problems: string[],
  ) {
    super(problems.join('; '));
  }
}

const tooLarge = (what: string) =>
  new RequestError(413, [
    `${what}; the limit is ${MAX_BODY_BYTES} bytes: send item ids in batches of at most ${MAX_ITEM_IDS}`,
  ]);

/** A JSON media type: `application/json`, `application/<something>+json`, with or without parameters. */
const isJsonType = (contentType: string) => /^application\/(?:[\w.+-]+\+)?json\s*(?:;|$)/i.test(contentType);

const unsupportedType = (contentType: string | null | undefined) =>
  new RequestError(415, [`content-type must be application/json (got ${contentType ? `"${contentType}"` : 'none'})`]);

/** Only JSON whitespace: a body of these is empty. */
const blank = (bytes: Uint8Array) => bytes.every((b) => b === 0x20 || b === 0x09 || b === 0x0a || b === 0x0d);

/**
 * Parse a JSON body with a size cap; an empty body is `{}`. A non-empty body must say it is JSON
 * (`content-type: application/json`): anything else, or no content type at all, is 415.
 */
export function parseJsonBody(text: string, contentType: string | null | undefined): Record<string, unknown> {
  if (Buffer.byteLength(text, 'utf8') > MAX_BODY_BYTES) throw tooLarge('the body is larger than the limit');
  if (text.trim() === '') return {};
  if (!contentType || !isJsonType(contentType)) throw unsupportedType(contentType);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new RequestError(400, [`the body is not valid JSON: ${(err as Error).message}`]);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new RequestError(400, ['the body must be a JSON object, e.g. {"mode":"full"}']);
  }
  return value as Record<string, unknown>;
}

/** What {@link readJsonBody} needs of a request (an @azure/functions HttpRequest, or a fetch Request). */
export interface BodySource {
  headers: { get(name: string): string | null };
  body: ReadableStream<Uint8Array> | null;
}

/**
 * Read and parse a request's JSON body, holding the 64 KiB cap while the body streams in: a declared length over
 * the cap is refused before a byte is read, and a body without a length (or with one that lies) is cut off as soon
 * as it passes the cap — the rest is never read. A body that does not say it is JSON is refused at its first
 * non-blank chunk (415).
 */
export async function readJsonBody(request: BodySource): Promise<Record<string, unknown>> {
  const declared = request.headers.get('content-length');
  if (declared !== null && Number(declared) > MAX_BODY_BYTES)
    throw tooLarge(`the body is ${Number(declared)} bytes (content-length)`);
  const contentType = request.headers.get('content-type');
  const json = contentType !== null && isJsonType(contentType);
  const chunks: Uint8Array[] = [];
  let size = 0;
  if (request.body) {
    const reader = request.body.getReader();
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        size += value.byteLength;
        if (size > MAX_BODY_BYTES) throw tooLarge(`the body is larger than ${MAX_BODY_BYTES} bytes`);
        // A body that does not say it is JSON is refused as soon as it is known not to be empty.
        if (!json && !blank(value)) throw unsupportedType(contentType);
        chunks.push(value);
      }
    } finally {
      await reader.cancel().catch(() => undefined);
      reader.releaseLock();
    }
  }
  const text = new TextDecoder('utf-8').decode(Buffer.concat(chunks));
  return parseJsonBody(text, contentType);
}

const ID_PATTERN = /^[\w.:@\-/ ]{1,256}$/;

export function parseResyncRequest(body: Record<string, unknown>): ResyncRequest {
  const problems: string[] = [];
  const known = new Set(['mode', 'itemIds', 'force']);
  for (const key of Object.keys(body)) {
    if (!known.has(key)) problems.push(`unknown field "${key}"; allowed fields: mode, itemIds, force`);
  }
  const mode = body.mode ?? 'full';
  if (typeof mode !== 'string' || !CRAWL_MODES.includes(mode as CrawlMode)) {
    problems.push(`"mode" must be one of ${CRAWL_MODES.join(', ')} (got ${JSON.stringify(mode)})`);
  }
  let itemIds: string[] | undefined;
  if (body.itemIds !== undefined) {
    if (!Array.isArray(body.itemIds) || !body.itemIds.every((v) => typeof v === 'string')) {
      problems.push('"itemIds" must be an array of strings');
    } else {
      itemIds = body.itemIds;
      if (itemIds.length === 0) problems.push('"itemIds" is empty; list at least one id');
      if (itemIds.length > MAX_ITEM_IDS)
        problems.push(`"itemIds" has ${itemIds.length} ids; at most ${MAX_ITEM_IDS} per request`);
      const bad = itemIds.filter((id) => !ID_PATTERN.test(id));
      if (bad.length) problems.push(`"itemIds" has ${bad.length} invalid id(s), e.g. ${JSON.stringify(bad[0])}`);
    }
  }
  if (mode === 'items' && itemIds === undefined && !problems.some((p) => p.startsWith('"itemIds"'))) {
    problems.push('mode "items" needs "itemIds": ["id1", "id2"]');
  }
  if (mode !== 'items' && itemIds !== undefined) problems.push('"itemIds" is only valid with mode "items"');
  const force = body.force ?? false;
  if (typeof force !== 'boolean') problems.push(`"force" must be true or false (got ${JSON.stringify(force)})`);
  if (problems.length) throw new RequestError(400, problems);
  return { mode: mode as CrawlMode, force: force as boolean, ...(itemIds ? { itemIds } : {}) };
}

export function parseReplayRequest(body: Record<string, unknown>): ReplayRequest {
  const problems: string[] = [];
  for (const key of Object.keys(body)) {
    if (!['crawlId', 'itemIds', 'all'].includes(key))
      problems.push(`unknown field "${key}"; allowed fields: crawlId, itemIds, all`);
  }
  const { crawlId, itemIds, all } = body;
  if (crawlId !== undefined && (typeof crawlId !== 'string' || crawlId.length === 0))
    problems.push('"crawlId" must be a non-empty string');
  if (
    itemIds !== undefined &&
    (!Array.isArray(itemIds) || !itemIds.every((v) => typeof v === 'string') || itemIds.length === 0)
  ) {
    problems.push('"itemIds" must be a non-empty array of strings');
  }
  if (all !== undefined && typeof all !== 'boolean') problems.push('"all" must be true or false');
  if (crawlId === undefined && itemIds === undefined && all !== true) {
    problems.push('say what to replay: {"all": true}, {"crawlId": "..."} or {"itemIds": ["..."]}');
  }
  if (problems.length) throw new RequestError(400, problems);
  return {
    all: all === true,
    ...(typeof crawlId === 'string' ? { crawlId } : {}),
    ...(Array.isArray(itemIds) ? { itemIds: itemIds as string[] } : {}),
  };
}
