/**
 * The checks of `graph-connector doctor`, in the order they run. They share a context: later checks use
 * what earlier ones built (the environment, the definition, the secret provider, the Graph credential and
 * token, the connection). No check prints a secret value: secrets are named, with the source serving them.
 */
import { access, constants } from 'node:fs/promises';
import type { OperationOptions } from '../core/async.js';
import { resolve } from 'node:path';
import { checkConnectorDefinitionFile, type ConnectorDefinition } from '../config/definition.js';
import { loadEnvironment, type ConnectorEnvironment } from '../config/env.js';
import { validateNcrontab } from '../config/ncrontab.js';
import { ConfigError, type ConfigProblem } from '../config/problems.js';
import { graphClientFromEnvironment, graphTokenScope, type GraphConnectorClient } from '../graph/client.js';
import { createGraphCredential, type GraphCredential } from '../graph/credentials.js';
import { GraphError } from '../graph/errors.js';
import { dispatcherFromCaPath, readCaCertificate } from '../graph/http.js';
import { diagnoseTls } from '../graph/tls.js';
import type { Dispatcher } from 'undici';
import type { ExternalConnection } from '../graph/types.js';
import { registerSecret, type Logger } from '../log.js';
import { createSecretProvider } from '../secrets/index.js';
import type { SecretProvider } from '../secrets/types.js';
import { createStorage, type StorageClients } from '../state/storage.js';
import { skipped, type Check, type CheckOutcome } from './runner.js';
import { nextOccurrence } from './schedule.js';
import {
  createStorageResource,
  describeStorageError,
  requiredStorage,
  storageResourceExists,
  type StorageResource,
} from './storage.js';

export interface DoctorContext {
  rawEnv: NodeJS.ProcessEnv;
  /** --config, else CONNECTOR_CONFIG, else ./connector.json. */
  configPath: string;
  /** --create: create missing queues, tables and the container. */
  create: boolean;
  cwd: string;
  logger: Logger;
  now: () => Date;
  /** A ready secret provider (tests, embedding); default: createSecretProvider(rawEnv). */
  secretsOverride?: SecretProvider;
  /** Storage clients to use instead of building them from rawEnv. */
  storageOverride?: StorageClients;

  // Filled in by the checks.
  env?: ConnectorEnvironment;
  /** Variables the environment check found a problem with. */
  badVars: string[];
  definition?: ConnectorDefinition;
  secrets?: SecretProvider;
  credential?: GraphCredential;
  token?: string;
  graph?: GraphConnectorClient;
  connection?: ExternalConnection | null;
}

const QUEUE_NAME = /^(?!.*--)[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$/;
const GRAPH_VARS = /^(GRAPH_|AZURE_CLIENT_ID$|KEY_VAULT_URL$)/;
const STORAGE_VARS =
  /^(AzureWebJobsStorage|ITEMS_QUEUE$|CRAWL_QUEUE$|PROVISION_QUEUE$|LEDGER_TABLE_PREFIX$|CLAIMS_CONTAINER$)/;

/** App settings the function bindings name (`%NAME%`), with the defaults the code falls back to. */
const BINDING_SETTINGS: Record<string, string> = {
  ITEMS_QUEUE: 'graph-items',
  CRAWL_QUEUE: 'graph-crawl',
  PROVISION_QUEUE: 'graph-provision',
  CRAWL_SCHEDULE: '0 0 */6 * * *',
};

/** Microsoft Graph application permissions the connector needs, with the broader ones that also do. */
export const REQUIRED_ROLES = [
  {
    role: 'ExternalConnection.ReadWrite.OwnedBy',
    alternative: 'ExternalConnection.ReadWrite.All',
    id: 'f431331c-49a6-499f-be1c-62af19c34a9d',
    why: 'create and update the connection and its schema',
  },
  {
    role: 'ExternalItem.ReadWrite.OwnedBy',
    alternative: 'ExternalItem.ReadWrite.All',
    id: '8116ae0f-55c2-452d-9944-d18420f5b2c8',
    why: 'write items and external groups',
  },
] as const;

const MICROSOFT_GRAPH_APP_ID = '00000003-0000-0000-c000-000000000000';

function raw(env: NodeJS.ProcessEnv, name: string): string | undefined {
  const v = env[name]?.trim();
  return v ? v : undefined;
}

function formatProblem(p: ConfigProblem): string {
  return `${p.path}: ${p.message} (fix: ${p.fix})`;
}

/** Split "… . Fix: …" messages (the secret providers' and the credential's) into the two parts. */
function splitFix(message: string): { what: string; fix?: string } {
  const i = message.indexOf(' Fix: ');
  if (i < 0) return { what: message };
  return { what: message.slice(0, i).replace(/\.$/, ''), fix: message.slice(i + ' Fix: '.length) };
}

/** The environment usable for checks in one area, or why they cannot run. */
function envFor(ctx: DoctorContext, area: 'graph' | 'storage'): ConnectorEnvironment | CheckOutcome {
  const pattern = area === 'graph' ? GRAPH_VARS : STORAGE_VARS;
  const bad = ctx.badVars.filter((v) => pattern.test(v));
  if (bad.length) return skipped(`skipped: the environment check found problems with ${bad.join(', ')}`);
  if (!ctx.env) return skipped('skipped: the environment could not be loaded');
  return ctx.env;
}

const isOutcome = (v: unknown): v is CheckOutcome =>
  typeof v === 'object' && v !== null && 'status' in v && 'message' in v;

/**
 * The environment without the broken variables (their defaults apply), so checks that do not depend on them
 * still run: a bad CRAWL_SCHEDULE must not hide a Graph or storage problem. When what is left still does not
 * load (a required GRAPH_* variable is missing), the Graph settings are neutralised: the Graph checks are
 * skipped anyway because a GRAPH_* variable is broken, and the storage checks can still use the rest.
 */
function fallbackEnvironment(rawEnv: NodeJS.ProcessEnv, bad: string[]): ConnectorEnvironment | undefined {
  const cleaned = { ...rawEnv };
  for (const v of bad) delete cleaned[v];
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      return loadEnvironment(cleaned);
    } catch (err) {
      if (!(err instanceof ConfigError)) return undefined;
      const more = err.problems.filter((p) => p.severity === 'error').map((p) => p.path);
      for (const v of more) delete cleaned[v];
      if (more.some((v) => GRAPH_VARS.test(v))) {
        for (const k of Object.keys(cleaned)) if (GRAPH_VARS.test(k)) delete cleaned[k];
        cleaned.GRAPH_CREDENTIAL = 'managedIdentity';
      }
    }
  }
  return undefined;
}

// 1. environment ------------------------------------------------------------------------------------------

export const environmentCheck: Check<DoctorContext> = {
  id: 'environment',
  title: 'environment',
  async run(ctx) {
    const problems: ConfigProblem[] = [];
    try {
      ctx.env = loadEnvironment(ctx.rawEnv);
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      problems.push(...err.problems.filter((p) => p.severity === 'error'));
      ctx.env = fallbackEnvironment(
        ctx.rawEnv,
        problems.map((p) => p.path),
      );
    }
    const crawlQueue = raw(ctx.rawEnv, 'CRAWL_QUEUE');
    if (crawlQueue && !QUEUE_NAME.test(crawlQueue)) {
      problems.push({
        path: 'CRAWL_QUEUE',
        message: `'${crawlQueue}' is not a valid queue name`,
        fix: 'use 3-63 lowercase letters, digits and single hyphens, starting and ending with a letter or digit',
        severity: 'error',
      });
    }
    const mode = raw(ctx.rawEnv, 'CRAWL_TIMER_MODE');
    if (mode && mode !== 'full' && mode !== 'incremental') {
      problems.push({
        path: 'CRAWL_TIMER_MODE',
        message: `'${mode}' is not a crawl mode (the timer would silently run full crawls)`,
        fix: "set CRAWL_TIMER_MODE to 'full' or 'incremental', or remove it (default full)",
        severity: 'error',
      });
    }
    const queues = [
      ['ITEMS_QUEUE', raw(ctx.rawEnv, 'ITEMS_QUEUE') ?? 'graph-items'],
      ['CRAWL_QUEUE', crawlQueue ?? 'graph-crawl'],
      ['PROVISION_QUEUE', raw(ctx.rawEnv, 'PROVISION_QUEUE') ?? 'graph-provision'],
    ] as const;
    for (const [i, [name, q]] of queues.entries()) {
      const other = queues.slice(0, i).find(([, o]) => o === q);
      if (other) {
        problems.push({
          path: name,
          message: `'${q}' is also ${other[0]}: two functions would consume each other's messages`,
          fix: `give ${name} its own queue name (default ${name === 'CRAWL_QUEUE' ? 'graph-crawl' : name === 'ITEMS_QUEUE' ? 'graph-items' : 'graph-provision'})`,
          severity: 'error',
        });
      }
    }
    ctx.badVars = [...new Set(problems.map((p) => p.path))];
    // The functions bind %ITEMS_QUEUE%, %ITEMS_QUEUE%-poison, %CRAWL_QUEUE%, %PROVISION_QUEUE% and
    // %CRAWL_SCHEDULE%: the Functions host cannot resolve an unset app setting, whatever the code's default.
    const unsetBindings = Object.entries(BINDING_SETTINGS).filter(([name]) => !raw(ctx.rawEnv, name));
    const bindingNote = unsetBindings.length
      ? `${unsetBindings.map(([n]) => n).join(', ')} not set: the CLI uses the default${unsetBindings.length > 1 ? 's' : ''} (${unsetBindings.map(([n, d]) => `${n}=${d}`).join(', ')}), but the Functions host cannot resolve %${unsetBindings[0]![0]}% in a trigger binding without the app setting`
      : undefined;
    const bindingFix = `set ${unsetBindings.map(([n]) => n).join(', ')} explicitly (infra/main.bicep and local.settings.example.json do)`;
    if (problems.length) {
      return {
        status: 'fail',
        message: `${problems.length} problem${problems.length === 1 ? '' : 's'} in the environment (${ctx.badVars.join(', ')})`,
        details: [...problems.map(formatProblem), ...(bindingNote ? [`warning: ${bindingNote}`] : [])],
        fix: 'fix each variable as listed (app settings in Azure; local.settings.json or your shell locally)',
      };
    }
    if (bindingNote) {
      return { status: 'warn', message: `valid, but ${bindingNote}`, fix: bindingFix };
    }
    const env = ctx.env!;
    const storage = !env.storage
      ? 'storage not set'
      : env.storage.kind === 'connectionString'
        ? 'storage: connection string'
        : 'storage: identity-based';
    return {
      status: 'pass',
      message: `valid (GRAPH_CREDENTIAL=${env.graph.credential}, Graph ${env.graph.baseUrl}/${env.graph.apiVersion}, secrets from ${env.keyVaultUrl ? 'Key Vault' : 'environment/local.settings.json'}, ${storage})`,
    };
  },
};

// 2. connector definition ---------------------------------------------------------------------------------

export const definitionCheck: Check<DoctorContext> = {
  id: 'definition',
  title: 'connector definition',
  async run(ctx) {
    const path = resolve(ctx.cwd, ctx.configPath);
    const { value, problems } = await checkConnectorDefinitionFile(path);
    const errors = problems.filter((p) => p.severity === 'error');
    const warnings = problems.filter((p) => p.severity === 'warning');
    if (errors.length) {
      return {
        status: 'fail',
        message: `${path}: ${errors.length} error${errors.length === 1 ? '' : 's'}${warnings.length ? `, ${warnings.length} warning(s)` : ''}`,
        details: problems.map((p) => `${p.severity === 'error' ? 'error' : 'warning'}: ${formatProblem(p)}`),
        fix: 'fix each problem as listed (graph-connector validate shows the same), or pass --config <file>',
      };
    }
    ctx.definition = value as ConnectorDefinition;
    const summary = `connection '${ctx.definition.connection.id}', ${ctx.definition.schema.properties.length} schema properties (${path})`;
    if (warnings.length) {
      return {
        status: 'warn',
        message: `${summary}; ${warnings.length} warning${warnings.length === 1 ? '' : 's'}`,
        details: warnings.map(formatProblem),
        fix: 'the connector runs, but consider fixing the warnings',
      };
    }
    return { status: 'pass', message: `valid: ${summary}` };
  },
};

// 3. secrets ----------------------------------------------------------------------------------------------

export const secretsCheck: Check<DoctorContext> = {
  id: 'secrets',
  title: 'secrets',
  async run(ctx, { abortSignal }) {
    const env = envFor(ctx, 'graph');
    if (isOutcome(env)) return env;
    const secrets = (ctx.secrets =
      ctx.secretsOverride ?? createSecretProvider(ctx.rawEnv, { logger: ctx.logger, cwd: ctx.cwd }));
    const g = env.graph;
    const needed: { name: string; purpose: string }[] = [];
    const details: string[] = [];
    const failures: { what: string; fix?: string }[] = [];
    if (g.credential === 'clientSecret') needed.push({ name: g.clientSecretName, purpose: 'the Graph client secret' });
    if (g.credential === 'certificate') {
      if (g.certificatePath) {
        try {
          await access(resolve(ctx.cwd, g.certificatePath), constants.R_OK);
          details.push(`certificate file ${g.certificatePath} (GRAPH_CERTIFICATE_PATH): readable`);
        } catch (err) {
          failures.push({
            what: `certificate file ${g.certificatePath} (GRAPH_CERTIFICATE_PATH) cannot be read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
            fix: 'point GRAPH_CERTIFICATE_PATH at the PEM (key + certificate) or PFX file, or unset it to read the certificate from the secret GRAPH_CERTIFICATE_SECRET_NAME',
          });
        }
      } else {
        needed.push({ name: g.certificateSecretName, purpose: 'the Graph certificate (PEM or base64 PFX)' });
      }
      if (g.certificatePasswordSecretName)
        needed.push({ name: g.certificatePasswordSecretName, purpose: 'the PFX password' });
    }
    if (!needed.length && !failures.length && g.credential !== 'certificate') {
      return {
        status: 'pass',
        message: `no secret needed: GRAPH_CREDENTIAL=${g.credential} uses the managed identity${env.azureClientId ? ` ${env.azureClientId} (AZURE_CLIENT_ID)` : ' (system-assigned)'}`,
      };
    }
    for (const { name, purpose } of needed) {
      try {
        const value = await secrets.get(name, { abortSignal });
        registerSecret(value);
        if (!value.trim()) {
          failures.push({
            what: `secret '${name}' (${purpose}) is empty in ${secrets.describe(name)}`,
            fix: `store the value of ${purpose} in ${secrets.describe(name)}`,
          });
          continue;
        }
        details.push(`'${name}' (${purpose}): found in ${secrets.describe(name)}`);
      } catch (err) {
        if (abortSignal.aborted) throw err;
        const { what, fix } = splitFix((err as Error).message ?? String(err));
        failures.push({
          what: `'${name}' (${purpose}) from ${secrets.describe(name)}: ${what}`,
          fix: fix ?? `make the secret '${name}' available in ${secrets.describe(name)}`,
        });
      }
    }
    if (failures.length) {
      return {
        status: 'fail',
        message: failures.length === 1 ? failures[0]!.what : `${failures.length} secrets cannot be read`,
        details: [...failures.map((f) => (failures.length === 1 ? undefined : f.what)), ...details].filter(
          (d): d is string => !!d,
        ),
        fix: [...new Set(failures.map((f) => f.fix).filter(Boolean))].join('; '),
      };
    }
    return {
      status: 'pass',
      message: `${needed.length + (g.certificatePath ? 1 : 0)} resolvable for GRAPH_CREDENTIAL=${g.credential} (values not shown)`,
      details,
    };
  },
};

// 3b. the definition's secrets ---------------------------------------------------------------------------

/**
 * Every secret name the connector definition gives: the fields whose name ends in `Secret` (the rule every source
 * type follows for secret references: `tokenSecret`, `passwordSecret`, `clientSecretSecret`, `pfxSecret`,
 * `passphraseSecret`, …), with the JSON path that names each.
 */
export function definitionSecretNames(definition: ConnectorDefinition): { name: string; path: string }[] {
  const out: { name: string; path: string }[] = [];
  const walk = (value: unknown, path: string, depth: number) => {
    if (depth > 8 || value === null || typeof value !== 'object') return;
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
      const p = Array.isArray(value) ? `${path}[${k}]` : `${path}.${k}`;
      if (/Secret$/.test(k) && typeof v === 'string' && v.trim()) out.push({ name: v.trim(), path: p });
      else walk(v, p, depth + 1);
    }
  };
  walk(definition.source, 'source', 0);
  walk(definition.mapping, 'mapping', 0);
  return out;
}

export const sourceSecretsCheck: Check<DoctorContext> = {
  id: 'source-secrets',
  title: 'definition secrets',
  needs: ['definition'],
  async run(ctx, { abortSignal }) {
    const named = definitionSecretNames(ctx.definition!);
    if (!named.length)
      return { status: 'pass', message: `the definition names no secret (source type ${ctx.definition!.source.type})` };
    const secrets = (ctx.secrets ??=
      ctx.secretsOverride ?? createSecretProvider(ctx.rawEnv, { logger: ctx.logger, cwd: ctx.cwd }));
    const found: string[] = [];
    const failures: { what: string; fix: string }[] = [];
    for (const { name, path } of named) {
      try {
        const value = await secrets.get(name, { abortSignal });
        registerSecret(value);
        if (!value.trim()) {
          failures.push({
            what: `'${name}' (${path}) is empty in ${secrets.describe(name)}`,
            fix: `store the value in ${secrets.describe(name)}`,
          });
        } else found.push(`'${name}' (${path}): found in ${secrets.describe(name)}`);
      } catch (err) {
        if (abortSignal.aborted) throw err;
        const { what, fix } = splitFix((err as Error).message ?? String(err));
        failures.push({
          what: `'${name}' (${path}): ${what}`,
          fix: fix ?? `make the secret '${name}' available in ${secrets.describe(name)}`,
        });
      }
    }
    if (failures.length) {
      return {
        status: 'fail',
        message:
          failures.length === 1
            ? failures[0]!.what
            : `${failures.length} of ${named.length} secrets the definition names cannot be read`,
        details: [...(failures.length === 1 ? [] : failures.map((f) => f.what)), ...found],
        fix: `the crawl cannot authenticate to the source without them: ${[...new Set(failures.map((f) => f.fix))].join('; ')}`,
      };
    }
    return {
      status: 'pass',
      message: `${named.length} secret${named.length === 1 ? '' : 's'} the definition names resolve (values not shown)`,
      details: found,
    };
  },
};

// 4. Graph token ------------------------------------------------------------------------------------------

/** Fixes for the Entra errors a misconfigured connector meets most. */
function aadstsFix(code: string, env: ConnectorEnvironment, secrets: SecretProvider): string | undefined {
  const g = env.graph;
  const secret = `'${g.clientSecretName}' (${secrets.describe(g.clientSecretName)})`;
  switch (code) {
    case '7000215':
      return `the secret ${secret} is not a valid client secret of app ${g.clientId}: create a new client secret (Entra admin center → App registrations → Certificates & secrets) and store its value there`;
    case '7000222':
      return `the client secret in ${secret} has expired: create a new one and store it there`;
    case '700016':
      return `app ${g.clientId} is not in tenant ${g.tenantId}: check GRAPH_CLIENT_ID (the application (client) id) and GRAPH_TENANT_ID`;
    case '90002':
    case '900023':
      return `tenant ${g.tenantId} does not exist: set GRAPH_TENANT_ID to the directory (tenant) id of the app`;
    case '700027':
    case '700024':
      return `the certificate is not registered on app ${g.clientId} (or has expired): upload its public certificate under Certificates & secrets`;
    case '70021':
    case '700213':
    case '700211':
      return `app ${g.clientId} has no federated identity credential matching the managed identity ${env.azureClientId ?? '(AZURE_CLIENT_ID)'}: add one (issuer, subject = the identity's object id, audience api://AzureADTokenExchange)`;
    case '7000229':
      return `app ${g.clientId} has no service principal in tenant ${g.tenantId}: grant admin consent to create it`;
    default:
      return undefined;
  }
}

const NETWORK =
  /ECONNREFUSED|ENOTFOUND|EAI_AGAIN|ETIMEDOUT|ECONNRESET|EHOSTUNREACH|ENETUNREACH|socket hang up|getaddrinfo/i;

/** GET the tenant's OpenID metadata with the connector's CA trust; '' when it answers, else the failure. */
function authorityMetadataUrl(env: ConnectorEnvironment): string {
  return `${env.graph.authorityHost}/${encodeURIComponent(env.graph.tenantId ?? 'common')}/v2.0/.well-known/openid-configuration`;
}

async function probeAuthority(env: ConnectorEnvironment, options: OperationOptions = {}): Promise<string> {
  const url = authorityMetadataUrl(env);
  let dispatcher: Dispatcher | undefined;
  try {
    dispatcher = dispatcherFromCaPath(env.graph.caCertPath);
    const res = await fetch(url, { signal: options.abortSignal ?? null, ...(dispatcher ? { dispatcher } : {}) });
    await res.arrayBuffer().catch(() => undefined);
    return res.ok ? '' : `HTTP ${res.status} from ${url}`;
  } catch (err) {
    return causeChain(err);
  } finally {
    await (dispatcher as { close?: () => Promise<void> } | undefined)?.close?.().catch(() => undefined);
  }
}

/** Messages and codes of an error and its causes, for classifying failures the SDKs wrap. */
function causeChain(err: unknown): string {
  const parts: string[] = [];
  let e: unknown = err;
  for (let depth = 0; e && depth < 6; depth++) {
    const x = e as { message?: unknown; code?: unknown; cause?: unknown; errors?: unknown };
    if (typeof x.message === 'string') parts.push(x.message);
    if (typeof x.code === 'string') parts.push(x.code);
    if (Array.isArray(x.errors)) for (const inner of x.errors) parts.push(causeChain(inner));
    e = x.cause;
  }
  return parts.join(' | ');
}

export const tokenCheck: Check<DoctorContext> = {
  id: 'graph-token',
  title: 'Graph token',
  needs: ['secrets'],
  async run(ctx, { abortSignal }) {
    const env = envFor(ctx, 'graph');
    if (isOutcome(env)) return env;
    const secrets = ctx.secrets!;
    const credential = (ctx.credential = createGraphCredential(env, secrets, { logger: ctx.logger }));
    const scope = graphTokenScope(env.graph.baseUrl);
    try {
      const token = await credential.getToken(scope, { abortSignal });
      if (!token?.token) {
        return {
          status: 'fail',
          message: `${credential.description} returned no token for ${scope}`,
          fix: 'check GRAPH_CREDENTIAL and the identity settings',
        };
      }
      ctx.token = token.token;
      const minutes = Math.round((token.expiresOnTimestamp - ctx.now().getTime()) / 60_000);
      return {
        status: 'pass',
        message: `acquired for ${scope} with ${credential.description}${minutes > 0 ? `, valid for ${minutes} min` : ''}`,
      };
    } catch (err) {
      if (abortSignal.aborted) throw err;
      const message = (err as Error).message ?? String(err);
      const aadsts = /AADSTS(\d+)[:\s]+([^\n]*?)(?=\s+Trace ID:|\s+Correlation ID:|\.\s+Fix:|$)/.exec(message);
      const { fix } = splitFix(message);
      if (aadsts) {
        return {
          status: 'fail',
          message: `no token: AADSTS${aadsts[1]}: ${aadsts[2]!.replace(/\.$/, '')} — with ${credential.description}`,
          fix: aadstsFix(aadsts[1]!, env, secrets) ?? fix ?? 'look up the AADSTS code and fix the app registration',
        };
      }
      const detail = splitFix(message).what;
      // The one TLS diagnosis every command uses (it asks the authority itself when MSAL hid the cause).
      let ca: Buffer | undefined;
      try {
        ca = env.graph.caCertPath ? readCaCertificate(env.graph.caCertPath) : undefined;
      } catch {
        ca = undefined;
      }
      const tls = await diagnoseTls(err, {
        urls: [authorityMetadataUrl(env)],
        ca,
        caCertPath: env.graph.caCertPath,
        abortSignal,
      });
      if (tls) return { status: 'fail', message: `no token: ${tls.message}`, fix: tls.fix };
      const chain = `${causeChain(err)} | ${await probeAuthority(env, { abortSignal })}`;
      if (NETWORK.test(chain)) {
        return {
          status: 'fail',
          message: `no token: ${env.graph.authorityHost} cannot be reached: ${detail}`,
          fix: `check GRAPH_AUTHORITY_HOST (${env.graph.authorityHost}) and the network path (DNS, proxy, firewall) from here`,
        };
      }
      return {
        status: 'fail',
        message: `no token: ${detail}`,
        fix:
          fix ??
          `check that ${env.graph.authorityHost} is reachable and that GRAPH_TENANT_ID / GRAPH_CLIENT_ID are right`,
      };
    }
  },
};

// 5. Graph roles ------------------------------------------------------------------------------------------

/** The JWT payload, unverified (only to read claims we were issued); undefined for an opaque token. */
export function decodeJwtPayload(token: string): Record<string, unknown> | undefined {
  const parts = token.split('.');
  if (parts.length !== 3) return undefined;
  try {
    const json = JSON.parse(Buffer.from(parts[1]!, 'base64url').toString('utf8')) as unknown;
    return json && typeof json === 'object' && !Array.isArray(json) ? (json as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

export const rolesCheck: Check<DoctorContext> = {
  id: 'graph-roles',
  title: 'Graph permissions',
  needs: ['graph-token'],
  async run(ctx) {
    const env = ctx.env!;
    const payload = decodeJwtPayload(ctx.token!);
    if (!payload) {
      return {
        status: 'warn',
        message: 'the token is not a JWT, so its roles cannot be read',
        fix: 'the later Graph checks show whether the permissions suffice',
      };
    }
    const roles = Array.isArray(payload.roles) ? payload.roles.filter((r): r is string => typeof r === 'string') : [];
    const appId =
      typeof payload.appid === 'string' ? payload.appid : typeof payload.azp === 'string' ? payload.azp : '?';
    const missing = REQUIRED_ROLES.filter((r) => !roles.includes(r.role) && !roles.includes(r.alternative));
    if (missing.length) {
      const names = missing.map((m) => m.role).join(' and ');
      const isMi = env.graph.credential === 'managedIdentity';
      const fix = isMi
        ? `assign the Microsoft Graph app role${missing.length > 1 ? 's' : ''} ${names} to the managed identity's service principal (object id of identity ${appId}; e.g. New-MgServicePrincipalAppRoleAssignment with resourceId = the Microsoft Graph service principal and appRoleId ${missing.map((m) => m.id).join(', ')}); new tokens carry it after a few minutes`
        : `grant app ${appId} the Microsoft Graph application permission${missing.length > 1 ? 's' : ''} ${names} and grant admin consent (Entra admin center → App registrations → API permissions → Add a permission → Microsoft Graph → Application permissions; or az ad app permission add --id ${appId} --api ${MICROSOFT_GRAPH_APP_ID} --api-permissions ${missing.map((m) => `${m.id}=Role`).join(' ')} && az ad app permission admin-consent --id ${appId}); see docs/deploy.md`;
      return {
        status: 'fail',
        message: `the token of app ${appId} lacks ${names} (needed to ${missing.map((m) => m.why).join(' and to ')}); it has ${roles.length ? roles.join(', ') : 'no application roles'}`,
        fix,
      };
    }
    const broad = REQUIRED_ROLES.filter((r) => !roles.includes(r.role)).map((r) => r.alternative);
    return {
      status: 'pass',
      message: `app ${appId} has ${REQUIRED_ROLES.map((r) => (roles.includes(r.role) ? r.role : r.alternative)).join(', ')}`,
      ...(broad.length
        ? { details: [`${broad.join(', ')} work, but the .OwnedBy permissions are enough (least privilege)`] }
        : {}),
    };
  },
};

// 6. Graph reachable --------------------------------------------------------------------------------------

export const reachableCheck: Check<DoctorContext> = {
  id: 'graph-reachable',
  title: 'Graph endpoint',
  needs: ['graph-token', 'definition'],
  async run(ctx, { abortSignal }) {
    const env = ctx.env!;
    const id = ctx.definition!.connection.id;
    const graph = (ctx.graph = graphClientFromEnvironment(env, ctx.credential!, { retry: { maxRetries: 1 } }));
    const url = `${graph.versionedBaseUrl}/external/connections/${id}`;
    const started = Date.now();
    try {
      ctx.connection = await graph.getConnection(id, { abortSignal });
      return {
        status: 'pass',
        message: `GET ${url} answered ${ctx.connection ? 200 : 404} in ${Date.now() - started} ms`,
      };
    } catch (err) {
      if (abortSignal.aborted) throw err;
      if (err instanceof GraphError) {
        if (err.status === 0) {
          return {
            status: 'fail',
            message: `GET ${url}: no answer: ${err.message}`,
            fix: `check GRAPH_BASE_URL (${env.graph.baseUrl}), the network path and proxy from here${env.graph.caCertPath ? '' : '; for a local emulator set GRAPH_CA_CERT_PATH to its CA certificate'}`,
          };
        }
        const base = `GET ${url} answered ${err.status} ${err.code}${err.requestId ? ` (request-id ${err.requestId})` : ''}`;
        if (err.status === 403) {
          return {
            status: 'fail',
            message: `${base}: Graph is reachable but refused the connection read${err.missingPermission ? `; the app most likely lacks ${err.missingPermission}` : ''}`,
            fix: `grant ${err.missingPermission ?? 'ExternalConnection.ReadWrite.OwnedBy'} with admin consent; with .OwnedBy, the connection must also have been created by this app (not another one)`,
          };
        }
        if (err.status === 401) {
          return {
            status: 'fail',
            message: `${base}: Graph rejected the token`,
            fix: 'check that GRAPH_TENANT_ID is the tenant of the connection and that the token audience is Microsoft Graph (GRAPH_BASE_URL)',
          };
        }
        return {
          status: 'fail',
          message: `${base}: ${err.message}`,
          fix: err.retryable
            ? 'Graph is having trouble; try again later'
            : 'check GRAPH_BASE_URL and GRAPH_API_VERSION',
        };
      }
      throw err;
    }
  },
};

// 7. connection -------------------------------------------------------------------------------------------

export const connectionCheck: Check<DoctorContext> = {
  id: 'connection',
  title: 'connection',
  needs: ['graph-reachable'],
  async run(ctx) {
    const id = ctx.definition!.connection.id;
    const c = ctx.connection;
    if (!c) {
      return {
        status: 'warn',
        message: `connection '${id}' does not exist yet`,
        fix: 'run graph-connector provision (creates the connection and registers the schema)',
      };
    }
    const state = c.state ?? 'unknown';
    switch (state) {
      case 'ready':
        return { status: 'pass', message: `connection '${id}' exists and is ready` };
      case 'draft':
        return {
          status: 'warn',
          message: `connection '${id}' is in draft: its schema is not registered (yet)`,
          fix: 'run graph-connector provision (registers the schema and waits for the operation)',
        };
      case 'limitExceeded':
        return {
          status: 'fail',
          message: `connection '${id}' is limitExceeded: the tenant's item quota is used up, new items are refused`,
          fix: 'delete unneeded items or connections, or raise the Microsoft 365 Copilot connectors item quota',
        };
      case 'obsolete':
        return {
          status: 'fail',
          message: `connection '${id}' is obsolete`,
          fix: 'delete it and run graph-connector provision to create it again',
        };
      default:
        return {
          status: 'warn',
          message: `connection '${id}' is in state '${state}'`,
          fix: 'run graph-connector provision',
        };
    }
  },
};

// 8. storage ----------------------------------------------------------------------------------------------

export const storageCheck: Check<DoctorContext> = {
  id: 'storage',
  title: 'storage',
  async run(ctx, { abortSignal }) {
    const env = envFor(ctx, 'storage');
    if (isOutcome(env)) return env;
    let storage: StorageClients;
    try {
      storage = ctx.storageOverride ?? createStorage(ctx.rawEnv, { logger: ctx.logger });
    } catch (err) {
      if (err instanceof ConfigError) {
        return {
          status: 'fail',
          message: 'storage is not configured',
          details: err.problems.map(formatProblem),
          fix: err.problems[0]?.fix ?? 'set AzureWebJobsStorage',
        };
      }
      throw err;
    }
    const resources = requiredStorage({
      itemsQueue: env.itemsQueue,
      crawlQueue: raw(ctx.rawEnv, 'CRAWL_QUEUE') ?? 'graph-crawl',
      provisionQueue: env.provisionQueue,
      tablePrefix: env.ledgerTablePrefix,
      claimsContainer: env.claimsContainer,
    });
    const label = (r: StorageResource) => `${r.kind} ${r.name}`;
    const probes = await Promise.all(
      resources.map(async (r) => {
        try {
          return { r, exists: await storageResourceExists(storage, r, { abortSignal }) };
        } catch (err) {
          if (abortSignal.aborted) throw err;
          return { r, error: describeStorageError(err) };
        }
      }),
    );
    const errors = probes.filter((p) => p.error);
    if (errors.length) {
      return {
        status: 'fail',
        message: `cannot read the storage account (${storage.endpoints.queue}): ${errors[0]!.error}`,
        details: errors.map((e) => `${label(e.r)}: ${e.error}`),
        fix:
          storage.kind === 'identity'
            ? 'give this identity Storage Queue/Table Data Contributor and Storage Blob Data Owner on the account, and check the AzureWebJobsStorage__*ServiceUri settings'
            : 'check the AzureWebJobsStorage connection string (account, key, endpoints) and that the account (or Azurite) is running',
      };
    }
    const missing = probes.filter((p) => p.exists === false).map((p) => p.r);
    const where = `${storage.kind === 'identity' ? 'identity-based' : 'connection string'}, ${storage.endpoints.queue}`;
    if (missing.length && ctx.create) {
      const created: string[] = [];
      const failed: string[] = [];
      for (const r of missing) {
        try {
          await createStorageResource(storage, r, { abortSignal });
          created.push(label(r));
        } catch (err) {
          if (abortSignal.aborted) throw err;
          failed.push(`${label(r)}: ${describeStorageError(err)}`);
        }
      }
      if (failed.length) {
        return {
          status: 'fail',
          message: `could not create ${failed.length} of ${missing.length} missing: ${failed.join('; ')}`,
          details: created.length ? [`created: ${created.join(', ')}`] : [],
          fix: 'the identity needs data-plane write roles on the account (or deploy infra, which creates them)',
        };
      }
      return {
        status: 'pass',
        message: `${resources.length} queues/tables/containers present; created ${created.length}: ${created.join(', ')} (${where})`,
      };
    }
    if (missing.length) {
      const listed =
        missing.length <= 4
          ? missing.map(label).join(', ')
          : `${missing.length} of ${resources.length}: ${missing.slice(0, 3).map(label).join(', ')} and ${missing.length - 3} more`;
      return {
        status: 'fail',
        message: `missing ${listed} (${where})`,
        details: missing.map((r) => `${label(r)} (from ${r.setting})`),
        fix: 'run graph-connector run once locally, or deploy infra (azd provision creates them), or use graph-connector doctor --create',
      };
    }
    return {
      status: 'pass',
      message: `all ${resources.length} present: queues ${resources
        .filter((r) => r.kind === 'queue')
        .map((r) => r.name)
        .join(
          ', ',
        )}; tables ${env.ledgerTablePrefix}{items,jobs,cursors,deadletters,leases,provision}; container ${env.claimsContainer} (${where})`,
    };
  },
};

// 9. schedule ---------------------------------------------------------------------------------------------

export const scheduleCheck: Check<DoctorContext> = {
  id: 'schedule',
  title: 'crawl schedule',
  async run(ctx) {
    const expression = raw(ctx.rawEnv, 'CRAWL_SCHEDULE') ?? '0 0 */6 * * *';
    const fix =
      "set CRAWL_SCHEDULE to six fields 'second minute hour day month day-of-week', e.g. '0 0 */6 * * *' (every 6 hours)";
    const problems = validateNcrontab(expression);
    if (problems.length) {
      return {
        status: 'fail',
        message: `CRAWL_SCHEDULE '${expression}' is not a valid NCRONTAB expression: ${problems.join('; ')}`,
        fix,
      };
    }
    const next = nextOccurrence(expression, ctx.now());
    if (!next) {
      return {
        status: 'fail',
        message: `CRAWL_SCHEDULE '${expression}' is valid syntax but never fires (no matching date in 5 years)`,
        fix,
      };
    }
    const mode = raw(ctx.rawEnv, 'CRAWL_TIMER_MODE') ?? 'full';
    return {
      status: 'pass',
      message: `'${expression}' is valid; next ${mode} crawl at ${next.toISOString().replace('.000Z', 'Z')} (UTC)`,
    };
  },
};

export const ALL_CHECKS: Check<DoctorContext>[] = [
  environmentCheck,
  definitionCheck,
  secretsCheck,
  sourceSecretsCheck,
  tokenCheck,
  rolesCheck,
  reachableCheck,
  connectionCheck,
  storageCheck,
  scheduleCheck,
];
