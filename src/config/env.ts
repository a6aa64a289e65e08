/**
 * The connector's environment (the shared variable contract), parsed and validated all at once.
 * Every problem names the variable and says how to fix it; nothing runs on a bad environment.
 */
import { existsSync } from 'node:fs';
import { ConfigError, problem, type ConfigProblem } from './problems.js';
import { validateNcrontab } from './ncrontab.js';
import { readAzureMonitorSettings, type AzureMonitorSettings } from './azure-monitor.js';
import type { LogLevel } from '../log.js';

export const GRAPH_CREDENTIAL_KINDS = ['clientSecret', 'certificate', 'managedIdentity', 'workloadIdentity'] as const;
export type GraphCredentialKind = (typeof GRAPH_CREDENTIAL_KINDS)[number];

export const PUBLIC_AUTHORITY_HOST = 'https://login.microsoftonline.com';
export const PUBLIC_GRAPH_BASE_URL = 'https://graph.microsoft.com';

export type StorageSettings =
  | { kind: 'connectionString'; connectionString: string }
  | {
      kind: 'identity';
      queueServiceUri?: string;
      tableServiceUri?: string;
      blobServiceUri?: string;
      credential?: string;
      clientId?: string;
    };

export interface ConnectorEnvironment {
  connectorConfig: string;
  /** Application Insights for spans and metrics (APPLICATIONINSIGHTS_*); absent: telemetry off. */
  azureMonitor?: AzureMonitorSettings;
  graph: {
    /** Without a trailing slash, e.g. `https://graph.microsoft.com`. */
    baseUrl: string;
    apiVersion: string;
    authorityHost: string;
    /** True when the authority is not the public cloud (instance discovery must then be disabled). */
    customAuthority: boolean;
    tenantId?: string;
    clientId?: string;
    credential: GraphCredentialKind;
    clientSecretName: string;
    certificateSecretName: string;
    certificatePath?: string;
    certificatePasswordSecretName?: string;
    caCertPath?: string;
  };
  azureClientId?: string;
  keyVaultUrl?: string;
  storage?: StorageSettings;
  itemsQueue: string;
  provisionQueue: string;
  ledgerTablePrefix: string;
  claimsContainer: string;
  crawlSchedule: string;
  sweepMaxDeleteRatio: number;
  /** How an enumeration is cut into resumable slices (CRAWL_SLICE_SECONDS, CRAWL_SLICE_PAGES, CRAWL_PAGE_SIZE). */
  crawl: { sliceSeconds: number; slicePages: number; pageSize: number };
  logLevel: LogLevel;
}

/** A whole number within [min, max] from the environment, or the default; a problem otherwise. */
function intSetting(
  env: Env,
  problems: ConfigProblem[],
  name: string,
  fallback: number,
  min: number,
  max: number,
  what: string,
): number {
  const raw = value(env, name);
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) {
    problems.push(problem(name, `'${raw}' is not a whole number from ${min} to ${max}`, `set ${name} to ${what}`));
    return fallback;
  }
  return n;
}

type Env = Record<string, string | undefined>;

function value(env: Env, name: string): string | undefined {
  const v = env[name];
  return v === undefined || v.trim() === '' ? undefined : v.trim();
}

/** The path in variable `name`, with a problem when no file is there (unset is fine). */
function existingFile(problems: ConfigProblem[], env: Env, name: string, fix: string): string | undefined {
  const path = value(env, name);
  if (path && !existsSync(path)) problems.push(problem(name, `file '${path}' does not exist`, fix));
  return path;
}

function isLocalHost(host: string): boolean {
  return host === '127.0.0.1' || host === 'localhost' || host === '[::1]';
}

function checkUrl(
  problems: ConfigProblem[],
  name: string,
  raw: string,
  what: string,
  opts: { allowLocalHttp: boolean },
): string | undefined {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    problems.push(problem(name, `'${raw}' is not a URL`, `set ${name} to an absolute https URL of the ${what}`));
    return undefined;
  }
  if (url.protocol !== 'https:' && !(opts.allowLocalHttp && url.protocol === 'http:' && isLocalHost(url.hostname))) {
    problems.push(
      problem(
        name,
        `'${raw}' does not use https`,
        `use an https URL for the ${what}${opts.allowLocalHttp ? ' (plain http is only allowed for 127.0.0.1/localhost)' : ''}`,
      ),
    );
    return undefined;
  }
  if (url.search || url.hash) {
    problems.push(problem(name, `'${raw}' has a query or fragment`, `set ${name} to the bare ${what} URL`));
  }
  return raw.replace(/\/+$/, '');
}

const TABLE_PREFIX = /^[A-Za-z][A-Za-z0-9]{0,31}$/;
const QUEUE_NAME = /^(?!.*--)[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$/;

/** Parse and validate the environment; throws ConfigError listing every problem. */
export function loadEnvironment(env: Env = process.env): ConnectorEnvironment {
  const problems: ConfigProblem[] = [];

  const baseUrl =
    checkUrl(
      problems,
      'GRAPH_BASE_URL',
      value(env, 'GRAPH_BASE_URL') ?? PUBLIC_GRAPH_BASE_URL,
      'Microsoft Graph endpoint',
      {
        allowLocalHttp: true,
      },
    ) ?? PUBLIC_GRAPH_BASE_URL;
  const authorityHost =
    checkUrl(
      problems,
      'GRAPH_AUTHORITY_HOST',
      value(env, 'GRAPH_AUTHORITY_HOST') ?? PUBLIC_AUTHORITY_HOST,
      'Microsoft Entra authority',
      { allowLocalHttp: false },
    ) ?? PUBLIC_AUTHORITY_HOST;

  const apiVersion = value(env, 'GRAPH_API_VERSION') ?? 'v1.0';
  if (apiVersion !== 'v1.0' && apiVersion !== 'beta') {
    problems.push(problem('GRAPH_API_VERSION', `'${apiVersion}' is not a Graph API version`, "use 'v1.0' or 'beta'"));
  }

  const credentialRaw = value(env, 'GRAPH_CREDENTIAL') ?? 'clientSecret';
  const credential = (GRAPH_CREDENTIAL_KINDS as readonly string[]).includes(credentialRaw)
    ? (credentialRaw as GraphCredentialKind)
    : undefined;
  if (!credential) {
    problems.push(
      problem(
        'GRAPH_CREDENTIAL',
        `'${credentialRaw}' is not a known credential`,
        `use one of ${GRAPH_CREDENTIAL_KINDS.join(', ')}`,
      ),
    );
  }
  const tenantId = value(env, 'GRAPH_TENANT_ID');
  const clientId = value(env, 'GRAPH_CLIENT_ID');
  const azureClientId = value(env, 'AZURE_CLIENT_ID');
  const needsApp = credential === 'clientSecret' || credential === 'certificate' || credential === 'workloadIdentity';
  if (needsApp && !tenantId) {
    problems.push(
      problem(
        'GRAPH_TENANT_ID',
        `is required for GRAPH_CREDENTIAL=${credential}`,
        'set GRAPH_TENANT_ID to the Entra tenant id (a GUID) of the Graph app',
      ),
    );
  }
  if (needsApp && !clientId) {
    problems.push(
      problem(
        'GRAPH_CLIENT_ID',
        `is required for GRAPH_CREDENTIAL=${credential}`,
        'set GRAPH_CLIENT_ID to the application (client) id of the Graph app registration',
      ),
    );
  }
  if (credential === 'workloadIdentity' && !azureClientId) {
    problems.push(
      problem(
        'AZURE_CLIENT_ID',
        'is required for GRAPH_CREDENTIAL=workloadIdentity',
        'set AZURE_CLIENT_ID to the client id of the user-assigned managed identity federated with the Graph app',
      ),
    );
  }

  const caCertPath = existingFile(
    problems,
    env,
    'GRAPH_CA_CERT_PATH',
    'point it at the PEM of the CA that signed the Graph/authority endpoint (local emulator only), or unset it',
  );
  existingFile(
    problems,
    env,
    'GRAPH_CERTIFICATE_PATH',
    'point it at a PEM (private key + certificate) or PFX file, or unset it to read the certificate from the secret GRAPH_CERTIFICATE_SECRET_NAME',
  );
  const keyVaultUrlRaw = value(env, 'KEY_VAULT_URL');
  const keyVaultUrl = keyVaultUrlRaw
    ? checkUrl(problems, 'KEY_VAULT_URL', keyVaultUrlRaw, 'Key Vault', { allowLocalHttp: true })
    : undefined;

  let storage: StorageSettings | undefined;
  const storageCs = value(env, 'AzureWebJobsStorage');
  if (storageCs) {
    if (!/AccountName=|UseDevelopmentStorage=true|BlobEndpoint=|QueueEndpoint=|TableEndpoint=/i.test(storageCs)) {
      problems.push(
        problem(
          'AzureWebJobsStorage',
          'is not a storage connection string',
          "set it to 'UseDevelopmentStorage=true', an account connection string, or use the identity-based AzureWebJobsStorage__*ServiceUri settings",
        ),
      );
    }
    storage = { kind: 'connectionString', connectionString: storageCs };
  } else {
    const uris: Record<string, string | undefined> = {};
    for (const svc of ['queue', 'table', 'blob'] as const) {
      const name = `AzureWebJobsStorage__${svc}ServiceUri`;
      const raw = value(env, name);
      if (raw) uris[svc] = checkUrl(problems, name, raw, `storage ${svc} service`, { allowLocalHttp: true });
    }
    if (Object.keys(uris).length) {
      storage = {
        kind: 'identity',
        queueServiceUri: uris.queue,
        tableServiceUri: uris.table,
        blobServiceUri: uris.blob,
        credential: value(env, 'AzureWebJobsStorage__credential'),
        clientId: value(env, 'AzureWebJobsStorage__clientId'),
      };
    }
  }

  const itemsQueue = value(env, 'ITEMS_QUEUE') ?? 'graph-items';
  const provisionQueue = value(env, 'PROVISION_QUEUE') ?? 'graph-provision';
  for (const [name, q] of [
    ['ITEMS_QUEUE', itemsQueue],
    ['PROVISION_QUEUE', provisionQueue],
  ] as const) {
    if (!QUEUE_NAME.test(q)) {
      problems.push(
        problem(
          name,
          `'${q}' is not a valid queue name`,
          'use 3-63 lowercase letters, digits and single hyphens, starting and ending with a letter or digit',
        ),
      );
    }
  }
  const ledgerTablePrefix = value(env, 'LEDGER_TABLE_PREFIX') ?? 'gc';
  if (!TABLE_PREFIX.test(ledgerTablePrefix)) {
    problems.push(
      problem(
        'LEDGER_TABLE_PREFIX',
        `'${ledgerTablePrefix}' cannot start a table name`,
        'use 1-32 letters and digits, starting with a letter',
      ),
    );
  }
  const claimsContainer = value(env, 'CLAIMS_CONTAINER') ?? 'graph-claims';
  if (!QUEUE_NAME.test(claimsContainer)) {
    problems.push(
      problem(
        'CLAIMS_CONTAINER',
        `'${claimsContainer}' is not a valid container name`,
        'use 3-63 lowercase letters, digits and single hyphens',
      ),
    );
  }

  const crawlSchedule = value(env, 'CRAWL_SCHEDULE') ?? '0 0 */6 * * *';
  const cronProblems = validateNcrontab(crawlSchedule);
  if (cronProblems.length) {
    problems.push(
      problem(
        'CRAWL_SCHEDULE',
        `'${crawlSchedule}' is not a valid NCRONTAB expression: ${cronProblems.join('; ')}`,
        "use six fields 'second minute hour day month day-of-week', e.g. '0 0 */6 * * *' for every 6 hours",
      ),
    );
  }

  const ratioRaw = value(env, 'SWEEP_MAX_DELETE_RATIO') ?? '0.1';
  const sweepMaxDeleteRatio = Number(ratioRaw);
  if (
    !/^\s*[0-9.eE+-]+\s*$/.test(ratioRaw) ||
    !Number.isFinite(sweepMaxDeleteRatio) ||
    sweepMaxDeleteRatio <= 0 ||
    sweepMaxDeleteRatio > 1
  ) {
    problems.push(
      problem(
        'SWEEP_MAX_DELETE_RATIO',
        `'${ratioRaw}' is outside (0, 1]`,
        'set a fraction greater than 0 and at most 1, e.g. 0.1 to refuse sweeps that would delete more than 10% of the items',
      ),
    );
  }

  const logRaw = (value(env, 'LOG_LEVEL') ?? 'info').toLowerCase();
  const logLevel = (['debug', 'info', 'warn', 'error'] as const).find((l) => l === logRaw);
  if (!logLevel) {
    problems.push(problem('LOG_LEVEL', `'${logRaw}' is not a log level`, 'use debug, info, warn or error'));
  }

  const azureMonitor = readAzureMonitorSettings(env, problems);

  const crawl = {
    // Well under the Functions host's grace on scale-in (about 60 minutes on Flex Consumption) and its timeout.
    sliceSeconds: intSetting(
      env,
      problems,
      'CRAWL_SLICE_SECONDS',
      300,
      10,
      1200,
      'the seconds one enumeration slice may read (default 300)',
    ),
    slicePages: intSetting(
      env,
      problems,
      'CRAWL_SLICE_PAGES',
      0,
      0,
      1_000_000,
      'the most pages one slice reads, or 0 for no limit (default 0)',
    ),
    pageSize: intSetting(
      env,
      problems,
      'CRAWL_PAGE_SIZE',
      1000,
      1,
      10_000,
      'the records per page of file and blob sources (default 1000)',
    ),
  };

  if (problems.some((p) => p.severity === 'error')) throw new ConfigError(problems, 'the environment');

  const certificatePath = value(env, 'GRAPH_CERTIFICATE_PATH');
  const certificatePasswordSecretName = value(env, 'GRAPH_CERTIFICATE_PASSWORD_SECRET_NAME');
  return {
    connectorConfig: value(env, 'CONNECTOR_CONFIG') ?? './connector.json',
    graph: {
      baseUrl,
      apiVersion,
      authorityHost,
      customAuthority: new URL(authorityHost).host.toLowerCase() !== new URL(PUBLIC_AUTHORITY_HOST).host,
      ...(tenantId ? { tenantId } : {}),
      ...(clientId ? { clientId } : {}),
      credential: credential!,
      clientSecretName: value(env, 'GRAPH_CLIENT_SECRET_NAME') ?? 'graph-client-secret',
      certificateSecretName: value(env, 'GRAPH_CERTIFICATE_SECRET_NAME') ?? 'graph-certificate',
      ...(certificatePath ? { certificatePath } : {}),
      ...(certificatePasswordSecretName ? { certificatePasswordSecretName } : {}),
      ...(caCertPath ? { caCertPath } : {}),
    },
    ...(azureClientId ? { azureClientId } : {}),
    ...(keyVaultUrl ? { keyVaultUrl } : {}),
    ...(storage ? { storage } : {}),
    ...(azureMonitor ? { azureMonitor } : {}),
    itemsQueue,
    provisionQueue,
    ledgerTablePrefix,
    claimsContainer,
    crawlSchedule,
    sweepMaxDeleteRatio,
    crawl,
    logLevel: logLevel!,
  };
}
