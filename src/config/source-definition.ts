/**
 * The `source` section of connector.json: where records come from, how to page and authenticate.
 * Secrets are referenced by NAME (resolved through the SecretProvider), never written inline.
 * Validated by {@link validateSourceDefinition}; documented in docs/sources.md.
 */
import type { ConfigProblem } from './problems.js';
import { problem, warning } from './problems.js';

export const SOURCE_TYPES = ['csv', 'jsonLines', 'jsonArray', 'rest'] as const;
export type SourceType = (typeof SOURCE_TYPES)[number];

/** Where the external groups (with members) come from. */
export interface GroupsDefinition {
  /** A local file (relative to the connector.json folder) or... */
  path?: string;
  /** ...an http(s) URL. For `format: "rest"` the source's auth, retry and TLS settings apply. */
  url?: string;
  /** Default: `jsonLines` when the name ends in `.jsonl`/`.ndjson`, else `jsonArray`; `rest` for a paged API. */
  format?: 'jsonArray' | 'jsonLines' | 'rest';
  /** For `format: "rest"`: where the records are in each page (default `value`). */
  recordsPath?: string;
  paging?: PagingDefinition;
}

interface SourceCommon {
  /** Field (dotted path) whose value is the record's stable key for reporting. Default: position. */
  keyField?: string;
  groups?: GroupsDefinition;
}

export interface FileSourceDefinition extends SourceCommon {
  type: 'csv' | 'jsonLines' | 'jsonArray';
  /** A file path, relative to the folder of connector.json. Exactly one of path / url. */
  path?: string;
  /** An http(s) URL, read as a stream (no auth; use a `rest` source for protected APIs). */
  url?: string;
  /** CSV only: field delimiter (default `,`). */
  delimiter?: string;
  /** CSV only: quote character (default `"`). */
  quote?: string;
  /** Text encoding of the file (default utf8). A UTF-8 BOM is always skipped. */
  encoding?: 'utf8' | 'utf16le' | 'latin1';
}

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
  url: string;
  /** Dotted path to the records array in each response page (default `value`; `""` = the body is the array). */
  recordsPath?: string;
  paging?: PagingDefinition;
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

export type SourceDefinition = FileSourceDefinition | RestSourceDefinition;

// ---------------------------------------------------------------------------------------------------------------

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const isNonEmptyString = (v: unknown): v is string => typeof v === 'string' && v.trim().length > 0;

/** Keys that would hold a secret VALUE. Secrets are referenced by name: `<thing>Secret`. */
const LITERAL_SECRET_KEY =
  /^(password|passwd|pwd|secret|clientsecret|token|accesstoken|refreshtoken|bearertoken|apikey|api_key|key|passphrase|pfx|privatekey|certificate|credentials?)$/i;
const SECRET_HEADER = /^(authorization|proxy-authorization|cookie|x-api-key|api-key|apikey|.*token.*|.*secret.*)$/i;

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

function checkUrl(value: unknown, path: string, out: ConfigProblem[], what: string): void {
  if (!isNonEmptyString(value)) {
    out.push(problem(path, `${what} must be a non-empty URL string`, `set ${path} to an http(s) URL`));
    return;
  }
  let u: URL;
  try {
    u = new URL(value);
  } catch {
    out.push(problem(path, `${what} "${value}" is not a valid URL`, `write an absolute http(s) URL`));
    return;
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') {
    out.push(problem(path, `${what} must use http or https, not ${u.protocol}`, `use an https:// URL`));
  }
  if (u.username || u.password) {
    out.push(
      problem(
        path,
        `${what} carries credentials in the URL`,
        `remove "user:password@" from the URL and use source.auth with a secret name instead`,
      ),
    );
  }
}

function checkSecretName(value: unknown, path: string, out: ConfigProblem[]): void {
  if (!isNonEmptyString(value) || !/^[A-Za-z0-9][A-Za-z0-9_.-]{0,126}$/.test(value)) {
    out.push(
      problem(
        path,
        `must be the NAME of a secret (letters, digits, - _ .), got ${JSON.stringify(value)}`,
        `store the value in Key Vault (or local settings) and put its name here, e.g. "crm-password"`,
      ),
    );
  }
}

/** Find literal secret values anywhere in the definition. */
function scanForLiteralSecrets(value: unknown, path: string, out: ConfigProblem[]): void {
  if (Array.isArray(value)) {
    value.forEach((v, i) => scanForLiteralSecrets(v, `${path}[${i}]`, out));
    return;
  }
  if (!isObj(value)) return;
  for (const [k, v] of Object.entries(value)) {
    const p = `${path}.${k}`;
    if (LITERAL_SECRET_KEY.test(k) && v !== undefined && v !== null && v !== '') {
      out.push(
        problem(
          p,
          `"${k}" looks like a literal secret value; connector.json must not contain secrets`,
          `store the value as a secret and reference it by name with "${k}Secret": "<secret-name>" (see docs/sources.md)`,
        ),
      );
      continue;
    }
    scanForLiteralSecrets(v, p, out);
  }
}

function checkStringMap(value: unknown, path: string, out: ConfigProblem[]): value is Record<string, string> {
  if (value === undefined) return false;
  if (!isObj(value) || !Object.values(value).every((v) => typeof v === 'string')) {
    out.push(problem(path, `must be an object of string values`, `write e.g. {"$top": "100"}`));
    return false;
  }
  return true;
}

function checkPositiveInt(value: unknown, path: string, out: ConfigProblem[], max = Number.MAX_SAFE_INTEGER): void {
  if (value === undefined) return;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > max) {
    out.push(problem(path, `must be an integer between 1 and ${max}, got ${JSON.stringify(value)}`, `fix the number`));
  }
}

function checkPaging(value: unknown, path: string, out: ConfigProblem[]): void {
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
  if (value.tokenUrl !== undefined) checkUrl(value.tokenUrl, `${path}.tokenUrl`, out, 'the token endpoint');
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

function checkGroups(value: unknown, path: string, out: ConfigProblem[], sourceType: unknown): void {
  if (value === undefined) return;
  if (!isObj(value)) {
    out.push(problem(path, 'must be an object', 'write e.g. {"path": "./teams.json"}'));
    return;
  }
  const n = (value.path !== undefined ? 1 : 0) + (value.url !== undefined ? 1 : 0);
  if (n !== 1) {
    out.push(
      problem(path, 'needs exactly one of "path" or "url"', 'set "path" to a JSON file or "url" to an endpoint'),
    );
  }
  if (value.path !== undefined && !isNonEmptyString(value.path)) {
    out.push(problem(`${path}.path`, 'must be a non-empty file path', 'set it relative to connector.json'));
  }
  if (value.url !== undefined) checkUrl(value.url, `${path}.url`, out, 'the groups URL');
  if (value.format !== undefined && !['jsonArray', 'jsonLines', 'rest'].includes(value.format as string)) {
    out.push(
      problem(
        `${path}.format`,
        `unknown format ${JSON.stringify(value.format)}`,
        'use "jsonArray", "jsonLines" or "rest"',
      ),
    );
  }
  if (value.format === 'rest') {
    if (value.url === undefined) {
      out.push(problem(`${path}.url`, 'format "rest" needs a url', 'set url to the groups endpoint'));
    }
    if (sourceType !== 'rest') {
      out.push(
        warning(
          `${path}.format`,
          'groups are read from a REST endpoint without auth because the source is not a rest source',
          'make sure the endpoint needs no credentials',
        ),
      );
    }
  }
  if (value.recordsPath !== undefined && typeof value.recordsPath !== 'string') {
    out.push(problem(`${path}.recordsPath`, 'must be a dotted path string', 'e.g. "value"'));
  }
  checkPaging(value.paging, `${path}.paging`, out);
}

/**
 * Validate the `source` section. Returns every problem (errors and warnings) with its JSON path and the fix;
 * an empty list means the definition is usable by createSource().
 */
export function validateSourceDefinition(value: unknown, path = 'source'): ConfigProblem[] {
  const out: ConfigProblem[] = [];
  if (!isObj(value)) {
    out.push(
      problem(
        path,
        'is missing or not an object',
        'add a "source" object, e.g. {"type": "jsonLines", "path": "./data.jsonl"}',
      ),
    );
    return out;
  }
  scanForLiteralSecrets(value, path, out);
  const type = value.type;
  if (!SOURCE_TYPES.includes(type as SourceType)) {
    out.push(
      problem(
        `${path}.type`,
        `unknown source type ${JSON.stringify(type)}`,
        `use one of ${SOURCE_TYPES.map((t) => `"${t}"`).join(', ')}`,
      ),
    );
    return out;
  }
  if (value.keyField !== undefined && !isNonEmptyString(value.keyField)) {
    out.push(problem(`${path}.keyField`, 'must be a field name or dotted path', 'e.g. "ticketId"'));
  }
  checkGroups(value.groups, `${path}.groups`, out, type);

  if (type === 'rest') {
    checkUrl(value.url, `${path}.url`, out, 'the source URL');
    if (value.recordsPath !== undefined && typeof value.recordsPath !== 'string') {
      out.push(problem(`${path}.recordsPath`, 'must be a dotted path string', 'e.g. "value" or "data.items"'));
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
    if (value.incremental !== undefined) {
      const inc = value.incremental;
      const ip = `${path}.incremental`;
      if (!isObj(inc)) {
        out.push(problem(ip, 'must be an object', 'write {"query": {"$filter": "modified ge {cursor}"}}'));
      } else {
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
        if (
          inc.cursorFormat !== undefined &&
          !['iso', 'epochSeconds', 'epochMs'].includes(inc.cursorFormat as string)
        ) {
          out.push(problem(`${ip}.cursorFormat`, 'unknown cursor format', 'use "iso", "epochSeconds" or "epochMs"'));
        }
      }
    }
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
    return out;
  }

  // file sources
  const n = (value.path !== undefined ? 1 : 0) + (value.url !== undefined ? 1 : 0);
  if (n !== 1) {
    out.push(
      problem(
        path,
        `a ${String(type)} source needs exactly one of "path" or "url"`,
        'set "path" to a file relative to connector.json, or "url" to an http(s) address',
      ),
    );
  }
  if (value.path !== undefined && !isNonEmptyString(value.path)) {
    out.push(problem(`${path}.path`, 'must be a non-empty file path', 'set it relative to connector.json'));
  }
  if (value.url !== undefined) checkUrl(value.url, `${path}.url`, out, 'the file URL');
  if (value.encoding !== undefined && !['utf8', 'utf16le', 'latin1'].includes(value.encoding as string)) {
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
  for (const k of ['auth', 'paging', 'incremental', 'recordsPath']) {
    if (value[k] !== undefined) {
      out.push(warning(`${path}.${k}`, `"${k}" applies to rest sources only; it is ignored here`, `remove "${k}"`));
    }
  }
  return out;
}
