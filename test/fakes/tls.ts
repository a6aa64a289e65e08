/**
 * TLS material for local HTTPS fakes (Key Vault, Entra, Graph emulator): a throw-away CA and a server
 * certificate for `localhost` / `127.0.0.1` signed by it, plus the two ways to make a client trust it
 * without touching the process-wide trust store:
 *
 * - {@link TestTls.agent}: an `https.Agent` whose `ca` is the test CA (node:https, undici via `connect.ca`);
 * - {@link TestTls.policy}: an Azure SDK pipeline policy for `additionalPolicies` that routes every request
 *   of that client through the agent (works for `SecretClient`, `@azure/identity` credentials, storage clients).
 *
 * EC P-256 keys: generation takes a few milliseconds, so each fake can have its own CA.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { PipelinePolicy } from '@azure/core-rest-pipeline';
import { generate } from 'selfsigned';

/** The shape Azure SDK clients accept in `additionalPolicies`. */
export interface AdditionalPolicyConfig {
  position: 'perCall' | 'perRetry';
  policy: PipelinePolicy;
}

export interface TestTls {
  /** PEM of the CA certificate clients must trust. */
  caCert: string;
  /** PEM private key of the CA (to sign more certificates, e.g. client certificates). */
  caKey: string;
  /** PEM server certificate (SAN: the requested hosts, by default localhost and 127.0.0.1). */
  cert: string;
  /** PEM private key of the server certificate. */
  key: string;
  /** An https.Agent that trusts the CA (keep-alive). */
  agent: https.Agent;
  /** Azure SDK `additionalPolicies` entry that sends every request through {@link agent}. */
  policy: AdditionalPolicyConfig;
  /** Write the CA to a temp file (for `NODE_EXTRA_CA_CERTS` / `GRAPH_CA_CERT_PATH`) and return its path. */
  writeCaFile(): string;
}

export interface TestTlsOptions {
  /** DNS names and IP addresses for the server certificate's SAN. Default `['localhost', '127.0.0.1']`. */
  hosts?: string[];
  /** Common name of the CA (handy to tell fakes apart in errors). Default `graph-connector test CA`. */
  caName?: string;
}

const IP = /^(\d{1,3}\.){3}\d{1,3}$|:/;

/** Make a fresh CA and a server certificate signed by it. */
export async function createTestTls(options: TestTlsOptions = {}): Promise<TestTls> {
  const hosts = options.hosts ?? ['localhost', '127.0.0.1'];
  const ca = await generate([{ name: 'commonName', value: options.caName ?? 'graph-connector test CA' }], {
    keyType: 'ec',
    algorithm: 'sha256',
    extensions: [
      { name: 'basicConstraints', cA: true, critical: true },
      { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    ],
  });
  const server = await generate([{ name: 'commonName', value: hosts[0] ?? 'localhost' }], {
    keyType: 'ec',
    algorithm: 'sha256',
    ca: { key: ca.private, cert: ca.cert },
    extensions: [
      { name: 'basicConstraints', cA: false },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true },
      { name: 'extKeyUsage', serverAuth: true },
      { name: 'subjectAltName', altNames: hosts.map((h) => (IP.test(h) ? { type: 7, ip: h } : { type: 2, value: h })) },
    ],
  });
  const agent = new https.Agent({ ca: ca.cert, keepAlive: true });
  let caFile: string | undefined;
  return {
    caCert: ca.cert,
    caKey: ca.private,
    cert: server.cert,
    key: server.private,
    agent,
    policy: trustPolicy(agent),
    writeCaFile() {
      if (!caFile) {
        caFile = join(mkdtempSync(join(tmpdir(), 'gc-ca-')), 'ca.pem');
        writeFileSync(caFile, ca.cert);
      }
      return caFile;
    },
  };
}

/** An Azure SDK per-call policy that sends each request through `agent` (e.g. one trusting a test CA). */
export function trustPolicy(agent: https.Agent): AdditionalPolicyConfig {
  return {
    position: 'perCall',
    policy: {
      name: 'testCaTrust',
      sendRequest: (request, next) => {
        request.agent = agent;
        return next(request);
      },
    },
  };
}
