/**
 * Storage clients for the state layer, built from the Functions storage contract:
 *
 * - `AzureWebJobsStorage` = a connection string (Azurite locally: http endpoints are allowed), or
 * - identity-based: `AzureWebJobsStorage__queueServiceUri`, `__tableServiceUri`, `__blobServiceUri`
 *   (or `__accountName`, which implies the public-cloud endpoints), with `__credential=managedidentity`
 *   and optional `__clientId` (a user-assigned identity). Without `__credential`, DefaultAzureCredential is used
 *   (with `AZURE_CLIENT_ID` as the managed identity client id when set).
 *
 * Queue messages are base64-encoded by {@link encodeQueueMessage} (the Functions host's default
 * `messageEncoding`), so the same queue works for the queue trigger and the CLI's local worker.
 */
import { TableClient, type TableServiceClientOptions } from '@azure/data-tables';
import type { PipelinePolicy } from '@azure/core-rest-pipeline';
import {
  BlobServiceClient,
  newPipeline as newBlobPipeline,
  StorageSharedKeyCredential as BlobKey,
  type ContainerClient,
} from '@azure/storage-blob';
import {
  newPipeline as newQueuePipeline,
  QueueServiceClient,
  StorageSharedKeyCredential as QueueKey,
  type QueueClient,
} from '@azure/storage-queue';
import { DefaultAzureCredential, ManagedIdentityCredential, type TokenCredential } from '@azure/identity';
import { ConfigError, problem, type ConfigProblem } from '../config/problems.js';
import { registerSecret, silentLogger, type Logger } from '../log.js';

export interface StorageClients {
  /** How the clients authenticate. */
  readonly kind: 'connectionString' | 'identity';
  /** Endpoints in use (no secrets), for logs and `doctor`. */
  readonly endpoints: { queue: string; table: string; blob: string };
  queue(name: string): QueueClient;
  table(name: string): TableClient;
  container(name: string): ContainerClient;
}

export interface StorageOptions {
  /** Use this credential for identity-based storage instead of building one from the environment. */
  credential?: TokenCredential;
  logger?: Logger;
  /**
   * Called for every request the storage clients send (a pipeline policy on each client): the benchmark counts
   * storage calls per record with it. With a connection string it needs an account key (Azurite has one).
   */
  onRequest?: (service: StorageService, method: string, url: string) => void;
}

export type StorageService = 'queue' | 'table' | 'blob';

/** A storage-queue/blob pipeline factory that reports each request. */
function countingFactory(service: StorageService, onRequest: NonNullable<StorageOptions['onRequest']>) {
  return {
    create(next: { sendRequest(r: { method: string; url: string }): Promise<unknown> }) {
      return {
        sendRequest(request: { method: string; url: string }) {
          onRequest(service, request.method, request.url);
          return next.sendRequest(request);
        },
      };
    },
  };
}

function countingPolicy(onRequest: NonNullable<StorageOptions['onRequest']>): PipelinePolicy {
  return {
    name: 'graphConnectorRequestCounter',
    sendRequest(request, next) {
      onRequest('table', request.method, request.url);
      return next(request);
    },
  };
}

const PREFIX = 'AzureWebJobsStorage';

/** Parse `Key=Value;Key=Value` (values may contain `=`). Keys are case-insensitive. */
export function parseConnectionString(conn: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of conn.split(';')) {
    const i = part.indexOf('=');
    if (i <= 0) continue;
    out.set(part.slice(0, i).trim().toLowerCase(), part.slice(i + 1).trim());
  }
  return out;
}

function isHttp(url: string | undefined): boolean {
  return !!url && url.toLowerCase().startsWith('http://');
}

/** Build the storage clients from the environment (see the module comment for the variables). */
export function createStorage(env: NodeJS.ProcessEnv = process.env, options: StorageOptions = {}): StorageClients {
  const log = options.logger ?? silentLogger;
  const conn = env[PREFIX]?.trim();
  if (conn) return fromConnectionString(conn, log, options.onRequest);

  const problems: ConfigProblem[] = [];
  const account = env[`${PREFIX}__accountName`]?.trim();
  const uri = (kind: 'queue' | 'table' | 'blob'): string | undefined => {
    const v = env[`${PREFIX}__${kind}ServiceUri`]?.trim();
    if (v) return v;
    if (account) return `https://${account}.${kind}.core.windows.net`;
    return undefined;
  };
  const queue = uri('queue');
  const table = uri('table');
  const blob = uri('blob');
  if (!queue && !table && !blob) {
    throw new ConfigError(
      [
        problem(
          PREFIX,
          'no storage is configured: neither a connection string nor identity-based service URIs are set',
          `set ${PREFIX} to a connection string (locally: the Azurite connection string or "UseDevelopmentStorage=true"), ` +
            `or set ${PREFIX}__queueServiceUri, ${PREFIX}__tableServiceUri and ${PREFIX}__blobServiceUri ` +
            `(with ${PREFIX}__credential=managedidentity and ${PREFIX}__clientId for a user-assigned identity)`,
        ),
      ],
      'storage configuration',
    );
  }
  for (const [kind, v] of [
    ['queue', queue],
    ['table', table],
    ['blob', blob],
  ] as const) {
    if (!v) {
      problems.push(
        problem(
          `${PREFIX}__${kind}ServiceUri`,
          `is not set, but other identity-based storage settings are`,
          `set it to the storage account's ${kind} endpoint, e.g. https://<account>.${kind}.core.windows.net`,
        ),
      );
      continue;
    }
    let parsed: URL | undefined;
    try {
      parsed = new URL(v);
    } catch {
      problems.push(problem(`${PREFIX}__${kind}ServiceUri`, `is not a URL: "${v}"`, 'set an absolute https URL'));
    }
    if (parsed && parsed.protocol !== 'https:') {
      problems.push(
        problem(
          `${PREFIX}__${kind}ServiceUri`,
          `must use https for identity-based access (got ${parsed.protocol})`,
          'use the https endpoint; bearer tokens are never sent over plain http',
        ),
      );
    }
  }
  if (problems.length) throw new ConfigError(problems, 'storage configuration');

  const credential = options.credential ?? credentialFromEnv(env);
  log.debug('storage: identity-based clients', { queue, table, blob });
  const queueService = new QueueServiceClient(queue as string, credential);
  const blobService = new BlobServiceClient(blob as string, credential);
  return {
    kind: 'identity',
    endpoints: { queue: queue as string, table: table as string, blob: blob as string },
    queue: (name) => queueService.getQueueClient(name),
    table: (name) => new TableClient(table as string, name, credential),
    container: (name) => blobService.getContainerClient(name),
  };
}

/** The credential for identity-based storage, following the Functions `__credential` / `__clientId` convention. */
export function credentialFromEnv(env: NodeJS.ProcessEnv = process.env): TokenCredential {
  const kind = env[`${PREFIX}__credential`]?.trim().toLowerCase();
  const clientId = env[`${PREFIX}__clientId`]?.trim() || undefined;
  if (kind === 'managedidentity') {
    return clientId ? new ManagedIdentityCredential({ clientId }) : new ManagedIdentityCredential();
  }
  if (kind && kind !== 'managedidentity') {
    throw new ConfigError(
      [
        problem(
          `${PREFIX}__credential`,
          `unsupported value "${kind}"`,
          `set it to "managedidentity" or leave it unset to use DefaultAzureCredential`,
        ),
      ],
      'storage configuration',
    );
  }
  const miClientId = clientId ?? (env.AZURE_CLIENT_ID?.trim() || undefined);
  return miClientId
    ? new DefaultAzureCredential({ managedIdentityClientId: miClientId })
    : new DefaultAzureCredential();
}

const DEV_KEY = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';
const DEV_CONN =
  'DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=' +
  DEV_KEY +
  ';BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;QueueEndpoint=http://127.0.0.1:10001/devstoreaccount1;' +
  'TableEndpoint=http://127.0.0.1:10002/devstoreaccount1;';

function fromConnectionString(raw: string, log: Logger, onRequest?: StorageOptions['onRequest']): StorageClients {
  const conn = /^usedevelopmentstorage=true;?$/i.test(raw) ? DEV_CONN : raw;
  const parts = parseConnectionString(conn);
  registerSecret(conn);
  registerSecret(parts.get('accountkey'));
  registerSecret(parts.get('sharedaccesssignature'));
  const protocol = parts.get('defaultendpointsprotocol') ?? 'https';
  const account = parts.get('accountname');
  const suffix = parts.get('endpointsuffix') ?? 'core.windows.net';
  const endpoint = (kind: 'queue' | 'table' | 'blob'): string =>
    parts.get(`${kind}endpoint`) ?? (account ? `${protocol}://${account}.${kind}.${suffix}` : '');
  const endpoints = { queue: endpoint('queue'), table: endpoint('table'), blob: endpoint('blob') };
  if (!endpoints.queue || !endpoints.table || !endpoints.blob) {
    throw new ConfigError(
      [
        problem(
          PREFIX,
          'the connection string names no account and no explicit endpoints',
          'use the full connection string from the storage account (Access keys) or the Azurite connection string',
        ),
      ],
      'storage configuration',
    );
  }
  const insecure = isHttp(endpoints.table) || isHttp(endpoints.queue) || isHttp(endpoints.blob);
  const tableOptions: TableServiceClientOptions = {
    ...(insecure ? { allowInsecureConnection: true } : {}),
    ...(onRequest ? { additionalPolicies: [{ policy: countingPolicy(onRequest), position: 'perCall' as const }] } : {}),
  };
  let queueService: QueueServiceClient;
  let blobService: BlobServiceClient;
  try {
    const key = parts.get('accountkey');
    if (onRequest && account && key) {
      // Counted clients: the same endpoints and key, with a counting factory in front of each pipeline.
      const qp = newQueuePipeline(new QueueKey(account, key));
      qp.factories.unshift(countingFactory('queue', onRequest) as unknown as (typeof qp.factories)[number]);
      queueService = new QueueServiceClient(endpoints.queue, qp);
      const bp = newBlobPipeline(new BlobKey(account, key));
      bp.factories.unshift(countingFactory('blob', onRequest) as unknown as (typeof bp.factories)[number]);
      blobService = new BlobServiceClient(endpoints.blob, bp);
    } else {
      queueService = QueueServiceClient.fromConnectionString(conn);
      blobService = BlobServiceClient.fromConnectionString(conn);
    }
  } catch (err) {
    throw new ConfigError(
      [
        problem(
          PREFIX,
          `the connection string is not valid: ${err instanceof Error ? err.message : String(err)}`,
          'copy the connection string again from the storage account, or use the Azurite one locally',
        ),
      ],
      'storage configuration',
    );
  }
  log.debug('storage: connection-string clients', { ...endpoints, insecure });
  return {
    kind: 'connectionString',
    endpoints,
    queue: (name) => queueService.getQueueClient(name),
    table: (name) => TableClient.fromConnectionString(conn, name, tableOptions),
    container: (name) => blobService.getContainerClient(name),
  };
}

/** Names of the state layer's resources, from the environment contract. */
export interface StateNames {
  itemsQueue: string;
  provisionQueue: string;
  tablePrefix: string;
  claimsContainer: string;
  /** Snapshots and crawl checkpoints' bitmaps (STATE_CONTAINER). */
  stateContainer: string;
}

export function stateNamesFromEnv(env: NodeJS.ProcessEnv = process.env): StateNames {
  return {
    itemsQueue: env.ITEMS_QUEUE?.trim() || 'graph-items',
    provisionQueue: env.PROVISION_QUEUE?.trim() || 'graph-provision',
    tablePrefix: env.LEDGER_TABLE_PREFIX?.trim() || 'gc',
    claimsContainer: env.CLAIMS_CONTAINER?.trim() || 'graph-claims',
    stateContainer: env.STATE_CONTAINER?.trim() || 'graph-state',
  };
}

export { encodeQueueMessage, decodeQueueMessage } from './queues/codec.js';
