/**
 * The connector's Graph credential, chosen by GRAPH_CREDENTIAL:
 * - clientSecret: ClientSecretCredential with the secret named GRAPH_CLIENT_SECRET_NAME;
 * - certificate: ClientCertificateCredential from a PEM or PKCS#12 (GRAPH_CERTIFICATE_PATH or the secret
 *   GRAPH_CERTIFICATE_SECRET_NAME; a PFX is converted to PEM in memory);
 * - managedIdentity: ManagedIdentityCredential (AZURE_CLIENT_ID for a user-assigned identity);
 * - workloadIdentity: ClientAssertionCredential for the Graph app whose assertion is the managed identity's token
 *   for `api://AzureADTokenExchange` (federated credential, no secret at all).
 * Secrets are read lazily and re-read after an authentication failure (rotation). Failures name the
 * credential, tenant, client and what to check.
 */
import { readFileSync } from 'node:fs';
import { Agent as HttpsAgent } from 'node:https';
import { createRequire } from 'node:module';
import {
  ClientAssertionCredential,
  ClientCertificateCredential,
  ClientSecretCredential,
  ManagedIdentityCredential,
  type AccessToken,
  type GetTokenOptions,
  type TokenCredential,
} from '@azure/identity';
import type { PipelinePolicy } from '@azure/core-rest-pipeline';
import type forgeModule from 'node-forge';
import type { ConnectorEnvironment, GraphCredentialKind } from '../config/env.js';
import type { SecretProvider } from '../secrets/types.js';
import { registerSecret, type Logger } from '../log.js';
import { CertificateError, GraphAuthError } from './errors.js';
import { readCaCertificate } from './http.js';
import { diagnoseTls } from './tls.js';

export interface GraphCredentialOptions {
  /** PEM of an extra CA (default: read env.graph.caCertPath). */
  caPem?: string | Buffer;
  logger?: Logger;
}

export interface GraphCredential extends TokenCredential {
  readonly kind: GraphCredentialKind;
  /** Drop cached tokens (and re-read secrets lazily): the next getToken asks the authority again. */
  reset(): void;
  /** Human description (no secrets), e.g. `clientSecret (tenant t, client c, secret 'graph-client-secret' from env)`. */
  readonly description: string;
}

/** A pipeline policy that makes @azure/identity's HTTPS calls trust an extra CA. */
export function extraCaPipelinePolicy(caPem: string | Buffer): PipelinePolicy {
  const agent = new HttpsAgent({ ca: caPem, keepAlive: true });
  return {
    name: 'graphConnectorExtraCa',
    sendRequest: (request, next) => {
      if (request.url.startsWith('https:')) request.agent = agent;
      return next(request);
    },
  };
}

/** Splits a PKCS#12 (PFX) into a PEM private key + certificate chain. node-forge is loaded here, on first use only. */
export function pfxToPem(pfx: Buffer, password = ''): string {
  const forge = createRequire(import.meta.url)('node-forge') as typeof forgeModule;
  let p12: forgeModule.pkcs12.Pkcs12Pfx;
  try {
    const asn1 = forge.asn1.fromDer(forge.util.createBuffer(pfx.toString('binary')));
    p12 = forge.pkcs12.pkcs12FromAsn1(asn1, false, password);
  } catch (e) {
    throw new CertificateError(
      `cannot open the PKCS#12 certificate: ${(e as Error).message}. Check GRAPH_CERTIFICATE_PASSWORD_SECRET_NAME names the right password, or export the certificate as PEM (key + certificate)`,
      { cause: e },
    );
  }
  const keyBags = [
    ...(p12.getBags({ bagType: forge.pki.oids.pkcs8ShroudedKeyBag! })[forge.pki.oids.pkcs8ShroudedKeyBag!] ?? []),
    ...(p12.getBags({ bagType: forge.pki.oids.keyBag! })[forge.pki.oids.keyBag!] ?? []),
  ];
  const certBags = p12.getBags({ bagType: forge.pki.oids.certBag! })[forge.pki.oids.certBag!] ?? [];
  const key = keyBags.find((b) => b.key)?.key;
  if (!key) throw new CertificateError('the PKCS#12 certificate holds no private key; export it with its private key');
  const certs = certBags.map((b) => b.cert).filter((c): c is forgeModule.pki.Certificate => !!c);
  if (!certs.length) throw new CertificateError('the PKCS#12 certificate holds no certificate');
  return forge.pki.privateKeyToPem(key) + certs.map((c) => forge.pki.certificateToPem(c)).join('');
}

/** Normalises a certificate given as PEM text, raw PFX bytes, or base64 PFX text into PEM (key + cert). */
export function certificateToPem(data: Buffer | string, password?: string): string {
  const text = typeof data === 'string' ? data : data.toString('utf8');
  if (text.includes('-----BEGIN')) {
    if (!/PRIVATE KEY-----/.test(text)) {
      throw new CertificateError(
        'the PEM certificate has no private key; concatenate the private key and the certificate',
      );
    }
    return text;
  }
  const bytes = typeof data === 'string' ? Buffer.from(data.replace(/\s+/g, ''), 'base64') : data;
  return pfxToPem(bytes, password);
}

interface Built {
  credential: TokenCredential;
  /** Secret names read to build it (invalidated after a failure). */
  secretNames: string[];
}

/** Where a token request goes and with which trust: for telling a certificate problem from a bad secret. */
interface TokenEndpointTrust {
  urls: string[];
  ca?: string | Buffer | undefined;
  caCertPath?: string | undefined;
}

class LazyGraphCredential implements GraphCredential {
  private built?: Promise<Built>;
  constructor(
    readonly kind: GraphCredentialKind,
    readonly description: string,
    private readonly build: () => Promise<Built>,
    private readonly fix: string,
    private readonly secrets: SecretProvider,
    private readonly logger?: Logger,
    private readonly trust: TokenEndpointTrust = { urls: [] },
  ) {}

  /** Forget the built credential (and its token cache): the next token is fetched anew. */
  reset(): void {
    this.built = undefined;
  }

  async getToken(scopes: string | string[], options?: GetTokenOptions): Promise<AccessToken | null> {
    this.built ??= this.build();
    let built: Built;
    try {
      built = await this.built;
    } catch (e) {
      this.built = undefined;
      throw new GraphAuthError(
        `Graph credential ${this.description} could not be set up: ${(e as Error).message}. Fix: ${this.fix}`,
        { credential: this.kind, cause: e },
      );
    }
    try {
      return await built.credential.getToken(scopes, options);
    } catch (e) {
      // Maybe the secret was rotated: read it again next time.
      for (const name of built.secretNames) this.secrets.invalidate(name);
      this.built = undefined;
      const msg = ((e as Error).message ?? String(e)).split('\n')[0];
      this.logger?.warn('Graph token request failed', { credential: this.kind });
      // A certificate the process does not accept is not a bad secret: say which and how to trust it.
      const tls = await diagnoseTls(e, {
        ...this.trust,
        ...(options?.abortSignal ? { abortSignal: options.abortSignal as AbortSignal } : {}),
      });
      if (tls)
        throw new GraphAuthError(
          `Graph authentication failed with ${this.description}: ${tls.message}. Fix: ${tls.fix}`,
          {
            credential: this.kind,
            cause: e,
          },
        );
      throw new GraphAuthError(`Graph authentication failed with ${this.description}: ${msg}. Fix: ${this.fix}`, {
        credential: this.kind,
        cause: e,
      });
    }
  }
}

/** Builds the credential for GRAPH_CREDENTIAL. Secrets are read on the first token request. */
export function createGraphCredential(
  env: ConnectorEnvironment,
  secrets: SecretProvider,
  options: GraphCredentialOptions = {},
): GraphCredential {
  const g = env.graph;
  const caPem = options.caPem ?? (g.caCertPath ? readCaCertificate(g.caCertPath) : undefined);
  const common = {
    authorityHost: g.authorityHost,
    ...(g.customAuthority ? { disableInstanceDiscovery: true } : {}),
    ...(caPem ? { additionalPolicies: [{ policy: extraCaPipelinePolicy(caPem), position: 'perCall' as const }] } : {}),
  };
  const tenant = g.tenantId ?? '(unset)';
  const client = g.clientId ?? '(unset)';
  const trust: TokenEndpointTrust = {
    urls: [
      `${g.authorityHost.replace(/\/+$/, '')}/${encodeURIComponent(g.tenantId ?? 'common')}/v2.0/.well-known/openid-configuration`,
    ],
    ca: caPem,
    caCertPath: g.caCertPath,
  };
  const mi = () =>
    new ManagedIdentityCredential({
      ...(env.azureClientId ? { clientId: env.azureClientId } : {}),
      ...(caPem ? { additionalPolicies: common.additionalPolicies } : {}),
    });

  switch (g.credential) {
    case 'clientSecret': {
      const name = g.clientSecretName;
      return new LazyGraphCredential(
        'clientSecret',
        `clientSecret (tenant ${tenant}, client ${client}, secret '${name}' from ${secrets.describe(name)})`,
        async () => {
          const secret = await secrets.get(name);
          registerSecret(secret);
          return {
            credential: new ClientSecretCredential(g.tenantId!, g.clientId!, secret, common),
            secretNames: [name],
          };
        },
        `check that the secret named '${name}' (${secrets.describe(name)}) holds a current client secret of app ${client} in tenant ${tenant}, and that GRAPH_TENANT_ID/GRAPH_CLIENT_ID are right`,
        secrets,
        options.logger,
        trust,
      );
    }
    case 'certificate': {
      const pwName = g.certificatePasswordSecretName;
      const source = g.certificatePath
        ? `file ${g.certificatePath}`
        : `secret '${g.certificateSecretName}' from ${secrets.describe(g.certificateSecretName)}`;
      return new LazyGraphCredential(
        'certificate',
        `certificate (tenant ${tenant}, client ${client}, ${source})`,
        async () => {
          const names: string[] = [];
          const password = pwName ? await secrets.get(pwName) : undefined;
          if (pwName) names.push(pwName);
          registerSecret(password);
          let raw: Buffer | string;
          if (g.certificatePath) {
            raw = readFileSync(g.certificatePath);
          } else {
            raw = await secrets.get(g.certificateSecretName);
            names.push(g.certificateSecretName);
            registerSecret(raw);
          }
          const pem = certificateToPem(raw, password);
          return {
            credential: new ClientCertificateCredential(g.tenantId!, g.clientId!, { certificate: pem }, common),
            secretNames: names,
          };
        },
        `check that ${source} holds the private key and certificate registered on app ${client} in tenant ${tenant} (and its password, if a PFX)`,
        secrets,
        options.logger,
        trust,
      );
    }
    case 'managedIdentity':
      return new LazyGraphCredential(
        'managedIdentity',
        `managedIdentity (${env.azureClientId ? `user-assigned, client ${env.azureClientId}` : 'system-assigned'})`,
        async () => ({ credential: mi(), secretNames: [] }),
        'check that the Function App has this managed identity assigned (AZURE_CLIENT_ID for a user-assigned one) and that it was granted the Graph application permissions',
        secrets,
        options.logger,
        trust,
      );
    case 'workloadIdentity':
      return new LazyGraphCredential(
        'workloadIdentity',
        `workloadIdentity (tenant ${tenant}, client ${client}, managed identity ${env.azureClientId ?? '(unset)'})`,
        async () => {
          const identity = mi();
          const assertion = async () => {
            const t = await identity.getToken('api://AzureADTokenExchange/.default');
            if (!t) {
              throw new GraphAuthError('the managed identity returned no token for api://AzureADTokenExchange', {
                credential: 'workloadIdentity',
              });
            }
            return t.token;
          };
          return {
            credential: new ClientAssertionCredential(g.tenantId!, g.clientId!, assertion, common),
            secretNames: [],
          };
        },
        `check that app ${client} has a federated identity credential trusting managed identity ${env.azureClientId ?? '(AZURE_CLIENT_ID)'} (issuer/subject), and that the managed identity is assigned to this app`,
        secrets,
        options.logger,
        trust,
      );
  }
}
