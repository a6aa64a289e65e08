/**
 * Checks shared by the source types' validators: URLs, secret names, literal secrets, small value shapes. Every
 * problem names its JSON path and the fix (see src/config/problems.ts).
 */
import type { ConfigProblem } from '../../config/problems.js';
import { problem, warning } from '../../config/problems.js';

export type Obj = Record<string, unknown>;
export const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
export const isNonEmptyString = (v: unknown): v is string => typeof v === 'string' && v.trim().length > 0;

/** Keys that would hold a secret VALUE. Secrets are referenced by name: `<thing>Secret`. */
export const LITERAL_SECRET_KEY =
  /^(password|passwd|pwd|secret|clientsecret|token|accesstoken|refreshtoken|bearertoken|apikey|api_key|key|passphrase|pfx|privatekey|certificate|credentials?)$/i;
/** Request headers that carry credentials. */
export const SECRET_HEADER =
  /^(authorization|proxy-authorization|cookie|x-api-key|api-key|apikey|.*token.*|.*secret.*)$/i;

/** Hosts a plain-http URL may point at: this machine only (tests, local fakes, a sidecar). */
export function isLoopbackHost(hostname: string): boolean {
  const h = hostname.toLowerCase();
  return h === 'localhost' || h === '[::1]' || h === '::1' || /^127(\.\d{1,3}){3}$/.test(h);
}

/**
 * What plain `http` is allowed for a URL: `loopback` (credentials may travel: http only to this machine),
 * or `warn` (no credentials: allowed, with a warning that the data is not protected in transit).
 */
export type HttpPolicy = 'loopback' | 'warn';

export function checkUrl(value: unknown, path: string, out: ConfigProblem[], what: string, http: HttpPolicy): void {
  if (!isNonEmptyString(value)) {
    out.push(problem(path, `${what} must be a non-empty URL string`, `set ${path} to an https URL`));
    return;
  }
  let u: URL;
  try {
    u = new URL(value);
  } catch {
    out.push(problem(path, `${what} "${value}" is not a valid URL`, `write an absolute https URL`));
    return;
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') {
    out.push(
      problem(path, `${what} must use https (or http on this machine), not ${u.protocol}`, `use an https:// URL`),
    );
  } else if (u.protocol === 'http:' && !isLoopbackHost(u.hostname)) {
    if (http === 'loopback') {
      out.push(
        problem(
          path,
          `${what} uses plain http to ${u.host}; credentials and records would cross the network unencrypted`,
          'use https (plain http is allowed only for localhost, 127.0.0.1 and [::1])',
        ),
      );
    } else {
      out.push(
        warning(path, `${what} uses plain http to ${u.host}: the data is not protected in transit`, 'use https'),
      );
    }
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

export function checkSecretName(value: unknown, path: string, out: ConfigProblem[]): void {
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
export function scanForLiteralSecrets(value: unknown, path: string, out: ConfigProblem[]): void {
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

export function checkStringMap(value: unknown, path: string, out: ConfigProblem[]): value is Record<string, string> {
  if (value === undefined) return false;
  if (!isObj(value) || !Object.values(value).every((v) => typeof v === 'string')) {
    out.push(problem(path, `must be an object of string values`, `write e.g. {"$top": "100"}`));
    return false;
  }
  return true;
}

export function checkPositiveInt(
  value: unknown,
  path: string,
  out: ConfigProblem[],
  max = Number.MAX_SAFE_INTEGER,
): void {
  if (value === undefined) return;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > max) {
    out.push(problem(path, `must be an integer between 1 and ${max}, got ${JSON.stringify(value)}`, `fix the number`));
  }
}

/** Keys a source type does not use: a warning each (a typo, or a key of another source type). */
export function warnUnknownKeys(
  value: Obj,
  known: readonly string[],
  path: string,
  type: string,
  out: ConfigProblem[],
) {
  for (const k of Object.keys(value)) {
    if (known.includes(k) || LITERAL_SECRET_KEY.test(k)) continue; // literal secrets are reported by the scan
    out.push(
      warning(`${path}.${k}`, `a ${type} source does not use "${k}"; it is ignored`, `remove "${k}" or fix its name`),
    );
  }
}
