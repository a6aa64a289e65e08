/**
 * The `rest` source's part of connector.json: where the API is, how it pages and authenticates. Secrets are
 * referenced by NAME (resolved through the SecretProvider), never written inline. Documented in docs/sources.md.
 */
import type { ConfigProblem } from '../../config/problems.js';
import { problem, warning } from '../../config/problems.js';
import type { SourceCommon } from '../shared/common.js';
import type { Obj } from '../shared/validate.js';
import {
  checkPositiveInt,
  checkSecretName,
  checkStringMap,
  checkUrl,
  isNonEmptyString,
  isObj,
  LITERAL_SECRET_KEY,
  SECRET_HEADER,
  warnUnknownKeys,
} from '../shared/validate.js';

export type PagingDefinition =
  | { type: 'none' }
  | { type: 'odata' }
  | { type: 'link' }
  | { type: 'page'; pageParam?: string; sizeParam?: string; pageSize?: number; startPage?: number }
  | { type: 'offset'; offsetParam?: string; limitParam?: string; pageSize?: number };

export type AuthDefinition =
  | { type: 'none' }
  | { type: 'basic'; username?: string; usernameSecret?: string; passwordSecret: string }
  | { type: 'bearer'; tokenSecret: string }
  | { type: 'apiKey'; header: string; keySecret: string; prefix?: string }
  | {
      type: 'oauth2ClientCredentials';
      tokenUrl: string;
      clientId: string;
      clientSecretSecret: string;
      scope?: string;
      audience?: string;
      /** How the client authenticates at the token endpoint (default `body`). */
      clientAuth?: 'body' | 'basic';
    }
  | {
      type: 'oauth2RefreshToken';
      tokenUrl: string;
      clientId: string;
      clientSecretSecret?: string;
      refreshTokenSecret: string;
      scope?: string;
    }
  | { type: 'clientCertificate'; pfxSecret?: string; pfxPath?: string; passphraseSecret?: string };

export interface RetryDefinition {
  /** Attempts per request, including the first (default 5). */
  maxAttempts?: number;
  /** Total seconds a read may spend waiting on retries (default 300). A longer Retry-After fails the read. */
  budgetSeconds?: number;
  /** First backoff delay when the server gives no Retry-After (default 500 ms; doubles, with jitter). */
  baseDelayMs?: number;
}

export interface IncrementalDefinition {
  /** Query parameters added on incremental reads; `{cursor}` is replaced by the cursor (URL-encoded). */
  query: Record<string, string>;
  /** The cursor is "now minus this many seconds", taken before enumerating (default 300). */
  overlapSeconds?: number;
  /** How the cursor is written: ISO 8601 UTC (default), or Unix seconds / milliseconds. */
  cursorFormat?: 'iso' | 'epochSeconds' | 'epochMs';
}

export interface RestSourceDefinition extends SourceCommon {
  type: 'rest';
  /** https (plain http only on this machine: localhost, 127.0.0.1, [::1]). */
  url: string;
  /** Dotted path to the records array in each response page (default `value`; `""` = the body is the array). */
  recordsPath?: string;
  paging?: PagingDefinition;
  /**
   * Dotted path to the total record count in a response page, for progress and ETA (default `@odata.count` with
   * OData paging; ask for it with `"query": {"$count": "true"}`).
   */
  countPath?: string;
  /** Query parameters added to the first request of every read. */
  query?: Record<string, string>;
  incremental?: IncrementalDefinition;
  /** Extra, non-secret request headers. */
  headers?: Record<string, string>;
  auth?: AuthDefinition;
  /** A PEM file of extra trusted CA certificates (private CA), relative to connector.json. */
  caPath?: string;
  retry?: RetryDefinition;
  /** Per-request timeout (default 60). */
  timeoutSeconds?: number;
  /** Stop with an error after this many pages (a guard against endless paging; default 100000). */
  maxPages?: number;
}

const REST_KEYS = [
  'type',
  'keyField',
  'groups',
  'url',
  'recordsPath',
  'paging',
  'countPath',
  'query',
  'incremental',
  'headers',
  'auth',
  'caPath',
  'retry',
  'timeoutSeconds',
  'maxPages',
] as const;

const AUTH_FIELDS: Record<string, { required: string[]; optional: string[] }> = {
  none: { required: [], optional: [] },
  basic: { required: ['passwordSecret'], optional: ['username', 'usernameSecret'] },
  bearer: { required: ['tokenSecret'], optional: [] },
  apiKey: { required: ['header', 'keySecret'], optional: ['prefix'] },
  oauth2ClientCredentials: {
    required: ['tokenUrl', 'clientId', 'clientSecretSecret'],
    optional: ['scope', 'audience', 'clientAuth'],
  },
  oauth2RefreshToken: {
    required: ['tokenUrl', 'clientId', 'refreshTokenSecret'],
    optional: ['clientSecretSecret', 'scope'],
  },
  clientCertificate: { required: [], optional: ['pfxSecret', 'pfxPath', 'passphraseSecret'] },
};

export function checkPaging(value: unknown, path: string, out: ConfigProblem[]): void {
  if (value === undefined) return;
  if (!isObj(value)) {
    out.push(problem(path, 'must be an object with a "type"', 'write e.g. {"type": "odata"}'));
    return;
  }
  const types = ['none', 'odata', 'link', 'page', 'offset'];
  if (!types.includes(value.type as string)) {
    out.push(
      problem(
        `${path}.type`,
        `unknown paging type ${JSON.stringify(value.type)}`,
        `use one of ${types.map((t) => `"${t}"`).join(', ')}`,
      ),
    );
    return;
  }
  for (const k of ['pageParam', 'sizeParam', 'offsetParam', 'limitParam']) {
    if (value[k] !== undefined && !isNonEmptyString(value[k])) {
      out.push(problem(`${path}.${k}`, 'must be a non-empty query parameter name', `set ${k} to e.g. "page"`));
    }
  }
  checkPositiveInt(value.pageSize, `${path}.pageSize`, out, 100000);
  if (value.startPage !== undefined && (typeof value.startPage !== 'number' || !Number.isInteger(value.startPage))) {
    out.push(problem(`${path}.startPage`, 'must be an integer', 'use 0 or 1'));
  }
  if (value.type === 'offset' && value.pageSize === undefined) {
    out.push(
      problem(`${path}.pageSize`, 'offset paging needs a pageSize', 'set pageSize to the page size the API returns'),
    );
  }
}

function checkAuth(value: unknown, path: string, out: ConfigProblem[]): void {
  if (value === undefined) return;
  if (!isObj(value)) {
    out.push(
      problem(path, 'must be an object with a "type"', 'write e.g. {"type": "bearer", "tokenSecret": "crm-token"}'),
    );
    return;
  }
  const type = value.type as string;
  const spec = AUTH_FIELDS[type];
  if (!spec) {
    out.push(
      problem(
        `${path}.type`,
        `unknown auth type ${JSON.stringify(value.type)}`,
        `use one of ${Object.keys(AUTH_FIELDS)
          .map((t) => `"${t}"`)
          .join(', ')}`,
      ),
    );
    return;
  }
  for (const k of spec.required) {
    if (value[k] === undefined) {
      out.push(problem(`${path}.${k}`, `auth type "${type}" needs ${k}`, `add "${k}" to ${path}`));
    }
  }
  for (const k of Object.keys(value)) {
    if (k === 'type' || LITERAL_SECRET_KEY.test(k)) continue; // literal secrets are reported by the scan
    if (!spec.required.includes(k) && !spec.optional.includes(k)) {
      out.push(
        warning(
          `${path}.${k}`,
          `auth type "${type}" does not use "${k}"; it is ignored`,
          `remove "${k}" or fix the name`,
        ),
      );
    }
  }
  for (const k of [...spec.required, ...spec.optional]) {
    if (k.endsWith('Secret') && value[k] !== undefined) checkSecretName(value[k], `${path}.${k}`, out);
  }
  if (value.tokenUrl !== undefined) checkUrl(value.tokenUrl, `${path}.tokenUrl`, out, 'the token endpoint', 'loopback');
  if (value.clientId !== undefined && !isNonEmptyString(value.clientId)) {
    out.push(problem(`${path}.clientId`, 'must be a non-empty string', 'set the OAuth2 client id'));
  }
  if (type === 'basic' && value.username === undefined && value.usernameSecret === undefined) {
    out.push(problem(`${path}.username`, 'basic auth needs a username', 'add "username" or "usernameSecret"'));
  }
  if (type === 'apiKey' && (!isNonEmptyString(value.header) || !/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/.test(value.header))) {
    out.push(problem(`${path}.header`, 'must be an HTTP header name', 'set header to e.g. "X-Api-Key"'));
  }
  if (type === 'oauth2ClientCredentials' && value.clientAuth !== undefined) {
    if (value.clientAuth !== 'body' && value.clientAuth !== 'basic') {
      out.push(problem(`${path}.clientAuth`, 'must be "body" or "basic"', 'use "body" (default) or "basic"'));
    }
  }
  if (type === 'clientCertificate') {
    const n = (value.pfxSecret !== undefined ? 1 : 0) + (value.pfxPath !== undefined ? 1 : 0);
    if (n !== 1) {
      out.push(
        problem(
          path,
          'clientCertificate needs exactly one of pfxSecret (a base64 PKCS#12 stored as a secret) or pfxPath',
          'set "pfxSecret": "<secret-name>" (recommended) or "pfxPath": "./client.pfx"',
        ),
      );
    }
    if (value.pfxPath !== undefined && !isNonEmptyString(value.pfxPath)) {
      out.push(
        problem(`${path}.pfxPath`, 'must be a file path', 'set it to the .pfx/.p12 file, relative to connector.json'),
      );
    }
  }
}

function checkIncremental(inc: unknown, ip: string, out: ConfigProblem[]): void {
  if (inc === undefined) return;
  if (!isObj(inc)) {
    out.push(problem(ip, 'must be an object', 'write {"query": {"$filter": "modified ge {cursor}"}}'));
    return;
  }
  if (checkStringMap(inc.query, `${ip}.query`, out)) {
    if (!Object.values(inc.query).some((v) => v.includes('{cursor}'))) {
      out.push(
        problem(
          `${ip}.query`,
          'no query value contains the {cursor} placeholder, so incremental reads would read everything',
          'write e.g. {"$filter": "lastModifiedDateTime ge {cursor}"}',
        ),
      );
    }
  } else if (inc.query === undefined) {
    out.push(problem(`${ip}.query`, 'is required', 'write e.g. {"$filter": "lastModifiedDateTime ge {cursor}"}'));
  }
  if (
    inc.overlapSeconds !== undefined &&
    (typeof inc.overlapSeconds !== 'number' || !Number.isInteger(inc.overlapSeconds) || inc.overlapSeconds < 0)
  ) {
    out.push(problem(`${ip}.overlapSeconds`, 'must be a non-negative integer', 'e.g. 300'));
  }
  if (inc.cursorFormat !== undefined && !['iso', 'epochSeconds', 'epochMs'].includes(inc.cursorFormat as string)) {
    out.push(problem(`${ip}.cursorFormat`, 'unknown cursor format', 'use "iso", "epochSeconds" or "epochMs"'));
  }
}

/** The `rest`-specific checks (the registry has checked the type, keyField, groups and literal secrets). */
export function validateRestSource(value: Obj, path: string): ConfigProblem[] {
  const out: ConfigProblem[] = [];
  checkUrl(value.url, `${path}.url`, out, 'the source URL', 'loopback');
  for (const k of ['recordsPath', 'countPath'] as const) {
    if (value[k] !== undefined && typeof value[k] !== 'string') {
      out.push(problem(`${path}.${k}`, 'must be a dotted path string', 'e.g. "value" or "data.items"'));
    }
  }
  checkPaging(value.paging, `${path}.paging`, out);
  checkStringMap(value.query, `${path}.query`, out);
  if (checkStringMap(value.headers, `${path}.headers`, out)) {
    for (const h of Object.keys(value.headers)) {
      if (SECRET_HEADER.test(h)) {
        out.push(
          problem(
            `${path}.headers.${h}`,
            `header "${h}" carries credentials and must not be written in connector.json`,
            'remove it and configure source.auth (bearer, apiKey, basic, oauth2...) with a secret name',
          ),
        );
      }
    }
  }
  checkIncremental(value.incremental, `${path}.incremental`, out);
  checkAuth(value.auth, `${path}.auth`, out);
  if (value.caPath !== undefined && !isNonEmptyString(value.caPath)) {
    out.push(problem(`${path}.caPath`, 'must be a PEM file path', 'set it relative to connector.json'));
  }
  if (value.retry !== undefined) {
    if (!isObj(value.retry)) {
      out.push(problem(`${path}.retry`, 'must be an object', 'write e.g. {"maxAttempts": 5, "budgetSeconds": 300}'));
    } else {
      checkPositiveInt(value.retry.maxAttempts, `${path}.retry.maxAttempts`, out, 20);
      checkPositiveInt(value.retry.budgetSeconds, `${path}.retry.budgetSeconds`, out, 3600);
      checkPositiveInt(value.retry.baseDelayMs, `${path}.retry.baseDelayMs`, out, 60000);
    }
  }
  checkPositiveInt(value.timeoutSeconds, `${path}.timeoutSeconds`, out, 3600);
  checkPositiveInt(value.maxPages, `${path}.maxPages`, out);
  warnUnknownKeys(value, REST_KEYS, path, 'rest', out);
  return out;
}
