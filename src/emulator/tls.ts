/**
 * The emulator's TLS certificate: a self-signed leaf for 127.0.0.1 and localhost, generated on first start
 * and reused afterwards. Clients trust it directly (it is its own CA).
 */
import { generateKeyPair, X509Certificate } from 'node:crypto';
import { existsSync, linkSync, mkdirSync, readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { generate as generateCertificate } from 'selfsigned';

export interface TlsMaterial {
  key: string;
  cert: string;
  /** PEM file holding only the certificate: what clients should trust. */
  caCertPath: string;
}

/**
 * `selfsigned` is a devDependency: the emulator is a development tool, and a production install (the deployed
 * function app) carries neither. It is loaded the first time a certificate has to be made, so commands that never
 * start the emulator (or start it with --http, or reuse a kept certificate) do not need it.
 */
async function generate(...args: Parameters<typeof generateCertificate>): ReturnType<typeof generateCertificate> {
  let mod: { generate: typeof generateCertificate };
  try {
    mod = await import('selfsigned');
  } catch (err) {
    throw new Error(
      'The emulator needs the `selfsigned` package (a devDependency) to make its TLS certificate, and it is not ' +
        'installed: run `npm install` with dev dependencies, or start the emulator with --http.',
      { cause: err },
    );
  }
  return mod.generate(...args);
}

const BUNDLE = 'emulator-tls.pem';
const CA = 'emulator-ca.pem';

function usable(certPem: string): boolean {
  try {
    const x = new X509Certificate(certPem);
    const validTo = new Date(x.validTo).getTime();
    const san = x.subjectAltName ?? '';
    return validTo - Date.now() > 7 * 24 * 3600 * 1000 && san.includes('127.0.0.1') && san.includes('localhost');
  } catch {
    return false;
  }
}

/** Write `content` to `path` only if the file does not exist yet (first writer wins, never a torn file). */
function writeOnce(path: string, content: string, replace: boolean): void {
  const tmp = `${path}.${process.pid}.${Date.now()}.tmp`;
  writeFileSync(tmp, content, { mode: 0o600 });
  try {
    if (replace && existsSync(path)) unlinkSync(path);
    linkSync(tmp, path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  } finally {
    unlinkSync(tmp);
  }
}

function splitBundle(pem: string): { key: string; cert: string } | undefined {
  const key = /-----BEGIN (?:RSA )?PRIVATE KEY-----[\s\S]+?-----END (?:RSA )?PRIVATE KEY-----/.exec(pem)?.[0];
  const cert = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(pem)?.[0];
  return key && cert ? { key: key + '\n', cert: cert + '\n' } : undefined;
}

const SIGNING = 'emulator-signing-key.pem';

/**
 * The token-signing key for a fresh state: kept in `dir` and reused, so a start needs no RSA key generation
 * (slow on a busy machine). A persisted state keeps its own key.
 */
export async function loadOrCreateSigningKey(dir: string): Promise<string> {
  mkdirSync(dir, { recursive: true });
  const path = join(dir, SIGNING);
  const read = () => (existsSync(path) ? readFileSync(path, 'utf8') : undefined);
  const existing = read();
  if (existing?.includes('PRIVATE KEY')) return existing;
  const pem = await new Promise<string>((resolve, reject) =>
    generateKeyPair(
      'rsa',
      {
        modulusLength: 2048,
        privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
        publicKeyEncoding: { type: 'spki', format: 'pem' },
      },
      (err, _pub, priv) => (err ? reject(err) : resolve(priv)),
    ),
  );
  writeOnce(path, pem, existing !== undefined);
  return read() ?? pem;
}

/** Load the certificate kept in `dir`, or create one there. Safe when several processes start at once. */
export async function loadOrCreateTls(dir: string): Promise<TlsMaterial> {
  mkdirSync(dir, { recursive: true });
  const bundlePath = join(dir, BUNDLE);
  const caCertPath = join(dir, CA);
  const existing = existsSync(bundlePath) ? readFileSync(bundlePath, 'utf8') : undefined;
  let parts = existing !== undefined ? splitBundle(existing) : undefined;
  if (!parts || !usable(parts.cert)) {
    // Replace only a file we read and rejected (expired or broken); a missing one is created first-writer-wins.
    const stale = existing !== undefined;
    const now = new Date();
    const generated = await generate([{ name: 'commonName', value: 'localhost' }], {
      keySize: 2048,
      algorithm: 'sha256',
      notBeforeDate: new Date(now.getTime() - 3600_000),
      notAfterDate: new Date(now.getTime() + 5 * 365 * 24 * 3600_000),
      extensions: [
        { name: 'basicConstraints', cA: true },
        { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, keyCertSign: true },
        { name: 'extKeyUsage', serverAuth: true },
        {
          name: 'subjectAltName',
          altNames: [
            { type: 2, value: 'localhost' },
            { type: 7, ip: '127.0.0.1' },
          ],
        },
      ],
    });
    writeOnce(bundlePath, generated.private + generated.cert, stale);
    parts = splitBundle(readFileSync(bundlePath, 'utf8'));
    if (!parts) throw new Error(`The emulator TLS bundle ${bundlePath} is unreadable; delete it and start again.`);
  }
  if (!existsSync(caCertPath) || readFileSync(caCertPath, 'utf8') !== parts.cert) {
    const tmp = `${caCertPath}.${process.pid}.tmp`;
    writeFileSync(tmp, parts.cert);
    // rename is atomic; every writer writes the same content (derived from the winning bundle).
    renameSync(tmp, caCertPath);
  }
  return { key: parts.key, cert: parts.cert, caCertPath };
}

const INTERCEPT = 'emulator-proxy-tls.pem';
/** The hosts proxy mode answers for, with a certificate issued by the emulator's CA. */
export const INTERCEPTED_HOSTS = ['graph.microsoft.com', 'login.microsoftonline.com'];

function issuedBy(leafPem: string, caPem: string): boolean {
  try {
    const leaf = new X509Certificate(leafPem);
    const ca = new X509Certificate(caPem);
    const validTo = new Date(leaf.validTo).getTime();
    const san = leaf.subjectAltName ?? '';
    return (
      leaf.checkIssued(ca) &&
      leaf.verify(ca.publicKey) &&
      validTo - Date.now() > 7 * 24 * 3600 * 1000 &&
      INTERCEPTED_HOSTS.every((h) => san.includes(h))
    );
  } catch {
    return false;
  }
}

/**
 * The certificate proxy mode presents for graph.microsoft.com and login.microsoftonline.com: issued by the emulator's
 * certificate (its CA, the caCertPath clients trust), kept in `dir` and reused while that CA is the same.
 */
export async function loadOrCreateInterceptTls(dir: string, ca: TlsMaterial): Promise<{ key: string; cert: string }> {
  const path = join(dir, INTERCEPT);
  const existing = existsSync(path) ? splitBundle(readFileSync(path, 'utf8')) : undefined;
  if (existing && issuedBy(existing.cert, ca.cert)) return existing;
  const now = new Date();
  const generated = await generate([{ name: 'commonName', value: INTERCEPTED_HOSTS[0]! }], {
    keySize: 2048,
    algorithm: 'sha256',
    notBeforeDate: new Date(now.getTime() - 3600_000),
    notAfterDate: new Date(now.getTime() + 2 * 365 * 24 * 3600_000),
    ca: { key: ca.key, cert: ca.cert },
    extensions: [
      { name: 'basicConstraints', cA: false },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true },
      { name: 'extKeyUsage', serverAuth: true },
      { name: 'subjectAltName', altNames: INTERCEPTED_HOSTS.map((value) => ({ type: 2 as const, value })) },
    ],
  });
  writeOnce(path, generated.private + generated.cert, existing !== undefined || existsSync(path));
  const parts = splitBundle(readFileSync(path, 'utf8'));
  if (!parts || !issuedBy(parts.cert, ca.cert))
    throw new Error(`The emulator's proxy certificate ${path} is unusable; delete it and start again.`);
  return parts;
}
