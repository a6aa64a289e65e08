/**
 * The file sources' part of connector.json (`csv`, `jsonLines`, `jsonArray`): one input (a local file, an http(s)
 * URL or a blob of the connector's own storage account) and how to decode it. Documented in docs/sources.md.
 */
import type { ConfigProblem } from '../../config/problems.js';
import { problem, warning } from '../../config/problems.js';
import type { SourceCommon, SourceValidationContext } from '../shared/common.js';
import type { Obj } from '../shared/validate.js';
import { checkUrl, isNonEmptyString, isObj, warnUnknownKeys } from '../shared/validate.js';
import { isBlobContainerName, reservedContainerReason } from '../../core/containers.js';

export const FILE_SOURCE_TYPES = ['csv', 'jsonLines', 'jsonArray'] as const;
export type FileSourceType = (typeof FILE_SOURCE_TYPES)[number];
export const ENCODINGS = ['utf8', 'utf16le', 'latin1'] as const;
export type FileEncoding = (typeof ENCODINGS)[number];

/** A blob in the connector's own storage account (`AzureWebJobsStorage`). */
export interface BlobInputDefinition {
  /** The container: 3-63 lowercase letters, digits and single hyphens; not one of the connector's own. */
  container: string;
  /** The blob's name (may contain `/`). */
  name: string;
}

export interface FileSourceDefinition extends SourceCommon {
  type: FileSourceType;
  /** A file path, relative to the folder of connector.json. Exactly one of path / url / blob. */
  path?: string;
  /** An http(s) URL, read as a stream (no auth; use a `rest` source for protected APIs). */
  url?: string;
  /** A blob in the connector's own storage account. */
  blob?: BlobInputDefinition;
  /** CSV only: field delimiter (default `,`). */
  delimiter?: string;
  /** CSV only: quote character (default `"`). */
  quote?: string;
  /** Text encoding of the file (default utf8). A byte order mark is always skipped. */
  encoding?: FileEncoding;
}

const FILE_KEYS = ['type', 'keyField', 'groups', 'path', 'url', 'blob', 'delimiter', 'quote', 'encoding'] as const;
const REST_ONLY_KEYS = ['auth', 'paging', 'incremental', 'recordsPath', 'countPath', 'query', 'headers'];

export { isBlobContainerName, reservedContainerReason } from '../../core/containers.js';

/** Checks one `{ container, name }` blob input. */
export function checkBlobInput(value: unknown, path: string, out: ConfigProblem[], ctx: SourceValidationContext): void {
  if (!isObj(value)) {
    out.push(problem(path, 'must be an object', 'write e.g. {"container": "crm-export", "name": "tickets.jsonl"}'));
    return;
  }
  if (!isBlobContainerName(value.container)) {
    out.push(
      problem(
        `${path}.container`,
        `${JSON.stringify(value.container)} is not a valid blob container name`,
        'use 3-63 lowercase letters, digits and single hyphens, e.g. "crm-export"',
      ),
    );
  } else {
    const reason = reservedContainerReason(value.container, ctx.env);
    if (reason) {
      out.push(
        problem(
          `${path}.container`,
          `the connector does not read its source from "${value.container}": ${reason}`,
          'put the source file in a container of its own, e.g. "crm-export"',
        ),
      );
    }
  }
  if (!isNonEmptyString(value.name) || value.name.length > 1024) {
    out.push(problem(`${path}.name`, 'must be the blob name (1-1024 characters)', 'e.g. "exports/tickets.jsonl"'));
  }
  for (const k of Object.keys(value)) {
    if (k !== 'container' && k !== 'name') {
      out.push(warning(`${path}.${k}`, `a blob input does not use "${k}"; it is ignored`, `remove "${k}"`));
    }
  }
}

/** Exactly one of path / url / blob, each well-formed. */
export function checkInput(
  value: Obj,
  path: string,
  out: ConfigProblem[],
  ctx: SourceValidationContext,
  what: string,
  urlPolicy: 'loopback' | 'warn' = 'warn',
): void {
  const n = ['path', 'url', 'blob'].filter((k) => value[k] !== undefined).length;
  if (n !== 1) {
    out.push(
      problem(
        path,
        `${what} needs exactly one of "path", "url" or "blob"${n > 1 ? `, not ${n}` : ''}`,
        'set "path" to a file relative to connector.json, "url" to an https address, or "blob" to {"container", "name"}',
      ),
    );
  }
  if (value.path !== undefined && !isNonEmptyString(value.path)) {
    out.push(problem(`${path}.path`, 'must be a non-empty file path', 'set it relative to connector.json'));
  }
  if (value.url !== undefined) checkUrl(value.url, `${path}.url`, out, `the ${what} URL`, urlPolicy);
  if (value.blob !== undefined) checkBlobInput(value.blob, `${path}.blob`, out, ctx);
}

/** The file-source checks (the registry has checked the type, keyField, groups and literal secrets). */
export function validateFileSource(value: Obj, path: string, ctx: SourceValidationContext): ConfigProblem[] {
  const out: ConfigProblem[] = [];
  const type = String(value.type);
  checkInput(value, path, out, ctx, `a ${type} source`);
  if (value.encoding !== undefined && !(ENCODINGS as readonly string[]).includes(value.encoding as string)) {
    out.push(
      problem(
        `${path}.encoding`,
        `unsupported encoding ${JSON.stringify(value.encoding)}`,
        'use "utf8", "utf16le" or "latin1"',
      ),
    );
  }
  for (const k of ['delimiter', 'quote']) {
    if (value[k] === undefined) continue;
    if (type !== 'csv') {
      out.push(warning(`${path}.${k}`, `only csv sources use "${k}"`, `remove "${k}"`));
    } else if (typeof value[k] !== 'string' || value[k].length !== 1) {
      out.push(
        problem(`${path}.${k}`, 'must be a single character', k === 'delimiter' ? 'e.g. ";" or "\\t"' : 'e.g. "\\""'),
      );
    }
  }
  if (type === 'csv' && value.delimiter !== undefined && value.delimiter === (value.quote ?? '"')) {
    out.push(problem(`${path}.delimiter`, 'must differ from the quote character', 'e.g. "," or ";"'));
  }
  for (const k of REST_ONLY_KEYS) {
    if (value[k] !== undefined) {
      out.push(warning(`${path}.${k}`, `"${k}" applies to rest sources only; it is ignored here`, `remove "${k}"`));
    }
  }
  warnUnknownKeys(
    Object.fromEntries(Object.entries(value).filter(([k]) => !REST_ONLY_KEYS.includes(k))),
    FILE_KEYS,
    path,
    type,
    out,
  );
  return out;
}
