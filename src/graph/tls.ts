/**
 * One diagnosis of "the server's TLS certificate is not accepted", for every command and check that calls Graph or
 * its token endpoint: the certificate's issuer is not trusted (the local emulator's CA missing), it has expired, or
 * it does not name the host. Node reports these as error codes somewhere in an error's cause chain (fetch wraps
 * them in `cause`, the Azure SDK in its RestError). MSAL wraps a failed metadata request as
 * `endpoints_resolution_error` without its cause: then {@link diagnoseTls} asks the URL itself, with the same trust,
 * to learn the code. Node's codes: https://nodejs.org/api/errors.html#openssl-error-codes and
 * https://nodejs.org/api/errors.html#err_tls_cert_altname_invalid.
 */
import { Agent } from 'undici';

/** OpenSSL verification codes meaning the issuer is not trusted (a CA missing from the trust store). */
const UNTRUSTED = [
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_UNTRUSTED',
  'CERT_SIGNATURE_FAILURE',
] as const;
const EXPIRED = ['CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID'] as const;
const WRONG_HOST = ['ERR_TLS_CERT_ALTNAME_INVALID'] as const;
const ALL_CODES: readonly string[] = [...UNTRUSTED, ...EXPIRED, ...WRONG_HOST];

/** Node's messages for the same failures, for errors that kept the text but lost the code. */
const MESSAGES: [RegExp, string][] = [
  [/self[- ]signed certificate in certificate chain/i, 'SELF_SIGNED_CERT_IN_CHAIN'],
  [/self[- ]signed certificate/i, 'DEPTH_ZERO_SELF_SIGNED_CERT'],
  [/unable to verify the first certificate/i, 'UNABLE_TO_VERIFY_LEAF_SIGNATURE'],
  [/unable to get local issuer certificate/i, 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY'],
  [/certificate has expired/i, 'CERT_HAS_EXPIRED'],
  [/Hostname\/IP does not match certificate's altnames/i, 'ERR_TLS_CERT_ALTNAME_INVALID'],
];

/** MSAL's wrap of a failed authority metadata request: the cause is gone, the URL must be asked directly. */
const OPAQUE = /endpoints_resolution_error|openid_config_error|network_error|fetch failed|ClientAuthError/i;

export interface TlsDiagnosis {
  /** Node's code (`SELF_SIGNED_CERT_IN_CHAIN`, `CERT_HAS_EXPIRED`, `ERR_TLS_CERT_ALTNAME_INVALID`, …). */
  tlsCode: string;
  kind: 'untrusted' | 'expired' | 'wrong-host';
  /** The origin whose certificate was refused, when known. */
  origin?: string;
  /** `the TLS certificate of https://host:port is not trusted (SELF_SIGNED_CERT_IN_CHAIN)`. */
  message: string;
  /** What to set or change. */
  fix: string;
}

/** Each error of a chain: `cause`, AggregateError `errors`, and the Azure SDK's `originalError`/`errorResponse`. */
function* chain(err: unknown, depth = 0): Generator<Record<string, unknown>> {
  if (!err || typeof err !== 'object' || depth > 8) return;
  const e = err as Record<string, unknown>;
  yield e;
  if (Array.isArray(e.errors)) for (const inner of e.errors) yield* chain(inner, depth + 1);
  for (const k of ['cause', 'originalError', 'innerError'] as const) if (e[k]) yield* chain(e[k], depth + 1);
}

/** Node's TLS code anywhere in the error's cause chain (as a code, or in a message), else undefined. */
export function tlsCodeOf(err: unknown): string | undefined {
  for (const e of chain(err)) {
    if (typeof e.code === 'string' && ALL_CODES.includes(e.code)) return e.code;
    const text = `${typeof e.message === 'string' ? e.message : ''} ${typeof e.errorMessage === 'string' ? e.errorMessage : ''}`;
    const named = ALL_CODES.find((c) => text.includes(c));
    if (named) return named;
    for (const [re, code] of MESSAGES) if (re.test(text)) return code;
  }
  return undefined;
}

function origin(url: string | undefined): string | undefined {
  if (!url) return undefined;
  try {
    return new URL(url).origin;
  } catch {
    return undefined;
  }
}

/** The diagnosis for a TLS code met on `url`, with the fix for the trust settings in force. */
export function tlsDiagnosis(
  tlsCode: string,
  context: { url?: string; caCertPath?: string | undefined; caSetting?: string },
): TlsDiagnosis {
  const where = origin(context.url);
  const of = where ? ` of ${where}` : '';
  const setting = context.caSetting ?? 'GRAPH_CA_CERT_PATH';
  if ((EXPIRED as readonly string[]).includes(tlsCode)) {
    return {
      tlsCode,
      kind: 'expired',
      ...(where ? { origin: where } : {}),
      message: `the TLS certificate${of} is not valid now (${tlsCode})`,
      fix: `renew the server's certificate (a local emulator makes a new one when its state folder's tls files are removed), and check this machine's clock`,
    };
  }
  if ((WRONG_HOST as readonly string[]).includes(tlsCode)) {
    return {
      tlsCode,
      kind: 'wrong-host',
      ...(where ? { origin: where } : {}),
      message: `the TLS certificate${of} does not name that host (${tlsCode})`,
      fix: `use the host name the certificate was issued for (the local emulator's: 127.0.0.1 or localhost) in GRAPH_BASE_URL / GRAPH_AUTHORITY_HOST`,
    };
  }
  return {
    tlsCode,
    kind: 'untrusted',
    ...(where ? { origin: where } : {}),
    message: `the TLS certificate${of} is not trusted (${tlsCode}): its issuer is not among the CAs this process trusts`,
    fix: context.caCertPath
      ? `${setting} (${context.caCertPath}) does not hold the CA that signed it: point ${setting} at the right PEM, or export NODE_EXTRA_CA_CERTS=<ca.pem> for every Node process`
      : `trust the CA that signed it: set ${setting}=<ca.pem> for the connector, or export NODE_EXTRA_CA_CERTS=<ca.pem> for the whole Node process; for the local emulator that PEM is the caCertPath it prints (graph-connector run --keep prints the export line)`,
  };
}

/** GET `url` with the given trust; the TLS code of the failure, if it is one. */
async function probe(
  url: string,
  ca: string | Buffer | undefined,
  abortSignal?: AbortSignal,
): Promise<string | undefined> {
  const dispatcher = new Agent({ connect: ca ? { ca } : {} });
  try {
    const res = await fetch(url, {
      dispatcher,
      signal: abortSignal ? AbortSignal.any([abortSignal, AbortSignal.timeout(5_000)]) : AbortSignal.timeout(5_000),
    });
    await res.arrayBuffer().catch(() => undefined);
    return undefined;
  } catch (err) {
    return tlsCodeOf(err);
  } finally {
    await dispatcher.close().catch(() => undefined);
  }
}

/**
 * Whether `err` failed because a TLS certificate was not accepted, and what to do. The chain is read first; when it
 * is opaque (MSAL's endpoints_resolution_error, "fetch failed"), each of `urls` is asked with the same trust (`ca`)
 * to learn Node's code. Undefined when it is not a certificate problem.
 */
export async function diagnoseTls(
  err: unknown,
  context: {
    /** URLs the failed call may have used (the authority's metadata URL, Graph's base URL), asked in order. */
    urls: string[];
    ca?: string | Buffer | undefined;
    caCertPath?: string | undefined;
    caSetting?: string;
    abortSignal?: AbortSignal;
  },
): Promise<TlsDiagnosis | undefined> {
  const direct = tlsCodeOf(err);
  if (direct)
    return tlsDiagnosis(direct, {
      url: context.urls[0],
      caCertPath: context.caCertPath,
      ...(context.caSetting ? { caSetting: context.caSetting } : {}),
    });
  const str = (v: unknown) => (typeof v === 'string' ? v : '');
  const text = [...chain(err)].map((e) => `${str(e.message)} ${str(e.code)} ${str(e.errorCode)}`).join(' ');
  if (!OPAQUE.test(text)) return undefined;
  for (const url of context.urls) {
    if (!url.startsWith('https:')) continue;
    const code = await probe(url, context.ca, context.abortSignal);
    if (code)
      return tlsDiagnosis(code, {
        url,
        caCertPath: context.caCertPath,
        ...(context.caSetting ? { caSetting: context.caSetting } : {}),
      });
  }
  return undefined;
}
