/**
 * The composition root: builds every collaborator the pipeline needs from the environment (the Functions
 * app settings, or the CLI's environment) and the connector definition. Validation happens here, once, at
 * start-up: a bad environment or definition stops everything with every problem listed (ConfigError).
 */
import { randomUUID } from 'node:crypto';
import { dirname, resolve } from 'node:path';
import { createAttachmentService, type SourceCredentials } from '../attachments/index.js';
import type { ConnectorDefinition } from '../config/definition.js';
import { loadConnectorDefinition } from '../config/definition.js';
import { loadEnvironment, type ConnectorEnvironment } from '../config/env.js';
import type { ExternalGroup } from '../config/model.js';
import { GraphConnectorClient } from '../graph/client.js';
import { createGraphCredential } from '../graph/credentials.js';
import { createLogger, stderrJsonSink, type Logger } from '../log.js';
import { noTelemetry, type Telemetry } from '../core/telemetry.js';
import { telemetryFromSettings } from '../telemetry/azure-monitor.js';
import { currentTraceParent, invocationRoutedSink } from './invocation.js';
import { createMapper } from '../mapping/mapper.js';
import { createSecretProvider } from '../secrets/index.js';
import type { SecretProvider } from '../secrets/types.js';
import { createSource } from '../sources/index.js';
import { createAuthProvider } from '../sources/auth.js';
import type { SourceDefinition } from '../config/source-definition.js';
import type { SourceDeps } from '../sources/types.js';
import { DEFAULT_SETTINGS, type PipelineDeps, type PipelineSettings } from '../crawl/deps.js';
import { createStateLayer, type StateLayer } from '../state/index.js';
import { TableProvisionStore, type ProvisionStore } from '../state/provision-store.js';
import { ControlQueue } from '../state/queues/control.js';
import { ProvisionQueue } from '../state/queues/provision.js';
import type { StorageOptions } from '../state/storage.js';
import { runProvisionToCompletion } from '../provision/provision.js';

export interface Runtime {
  env: ConnectorEnvironment;
  definition: ConnectorDefinition;
  /** Folder of the connector definition; relative paths in it resolve here. */
  baseDir: string;
  logger: Logger;
  /** Spans and metrics (docs/operations.md); {@link noTelemetry} unless switched on. */
  telemetry: Telemetry;
  /** Export buffered telemetry and stop exporting. */
  shutdownTelemetry(): Promise<void>;
  secrets: SecretProvider;
  /** Graph client for the control plane (with retries). The pipeline's own client re-enqueues instead. */
  graph: GraphConnectorClient;
  pipeline: PipelineDeps;
  provisionStore: ProvisionStore;
  provisionQueue: ProvisionQueue;
  /** What the timer starts: `full` or `incremental` (CRAWL_TIMER_MODE). */
  timerMode: 'full' | 'incremental';
  /** Create every queue, table and container (idempotent). */
  ensureStorage(): Promise<void>;
}

export interface RuntimeOptions {
  env?: NodeJS.ProcessEnv;
  /**
   * Default: JSON lines to stderr, or — inside a Functions invocation — that invocation's context
   * (src/host/invocation.ts).
   */
  logger?: Logger;
  /**
   * Spans and metrics: a ready Telemetry (tests pass one over in-memory exporters), or `'environment'` for
   * Application Insights when APPLICATIONINSIGHTS_CONNECTION_STRING is set (the Function App). Default: none.
   */
  telemetry?: Telemetry | 'environment';
  /** Overrides of pipeline settings (tests, benchmarks). */
  settings?: Partial<PipelineSettings>;
  /** Override of the definition file (else CONNECTOR_CONFIG). */
  configPath?: string;
  /** Storage names (tests use unique ones). */
  names?: Partial<{
    itemsQueue: string;
    tablePrefix: string;
    claimsContainer: string;
    stateContainer: string;
    crawlQueue: string;
    provisionQueue: string;
  }>;
  /** Called for every storage request (the benchmark counts them). */
  onStorageRequest?: StorageOptions['onRequest'];
}

/** Upper-case a secret name's env var, as the env secret provider does (for docs and errors). */
export async function createRuntime(options: RuntimeOptions = {}): Promise<Runtime> {
  const env = options.env ?? process.env;
  const envConfig = loadEnvironment(env);
  const logger =
    options.logger ?? createLogger({ level: envConfig.logLevel, sink: invocationRoutedSink(stderrJsonSink()) });
  const configPath = resolve(options.configPath ?? envConfig.connectorConfig);
  const baseDir = dirname(configPath);
  const { definition, warnings } = await loadConnectorDefinition(configPath);
  for (const w of warnings) logger.warn(`connector definition: ${w.path}: ${w.message}`, { fix: w.fix });
  const connectionId = definition.connection.id;
  const telemetrySetup =
    options.telemetry === 'environment'
      ? await telemetryFromSettings(envConfig.azureMonitor, {
          env,
          connectionId,
          logger,
          traceParent: currentTraceParent,
        })
      : { telemetry: options.telemetry ?? noTelemetry, shutdown: async () => {} };
  const telemetry = telemetrySetup.telemetry;

  const secrets = createSecretProvider(env, { logger, cwd: process.cwd() });
  const credential = createGraphCredential(envConfig, secrets, { logger });
  const graphOptions = {
    baseUrl: envConfig.graph.baseUrl,
    apiVersion: envConfig.graph.apiVersion,
    credential,
    telemetry,
    ...(envConfig.graph.caCertPath ? { caCertPath: envConfig.graph.caCertPath } : {}),
  };
  const graph = new GraphConnectorClient(graphOptions);
  const ingestGraph = new GraphConnectorClient({ ...graphOptions, retry: { maxRetries: 0 } });

  const names = options.names ?? {};
  const state: StateLayer = createStateLayer({
    env,
    logger,
    names: {
      ...(names.itemsQueue ? { itemsQueue: names.itemsQueue } : {}),
      ...(names.tablePrefix ? { tablePrefix: names.tablePrefix } : {}),
      ...(names.claimsContainer ? { claimsContainer: names.claimsContainer } : {}),
      ...(names.stateContainer ? { stateContainer: names.stateContainer } : {}),
      ...(names.provisionQueue ? { provisionQueue: names.provisionQueue } : {}),
    },
    ...(options.onStorageRequest ? { onRequest: options.onStorageRequest } : {}),
  });
  const control = new ControlQueue(state.storage.queue(names.crawlQueue ?? (env.CRAWL_QUEUE?.trim() || 'graph-crawl')));
  const provisionQueue = new ProvisionQueue(state.storage.queue(state.names.provisionQueue));
  const provisionStore = new TableProvisionStore(state.storage.table(`${state.names.tablePrefix}provision`));

  // The mapper loads mapping.acl.directory itself (with errors that name the field and the file).
  const mapper = await createMapper(definition.mapping, definition.schema.properties, {
    // With groups synced by the connector, an ACL naming a group that is not among them is unresolved.
    syncsExternalGroups: definition.source.groups !== undefined,
    baseDir,
    ...(envConfig.graph.tenantId ? { tenantId: envConfig.graph.tenantId } : {}),
  });
  const sourceDef = definition.source;
  // Files records point to: one service for the crawl (fingerprints) and the ingest (reads). Blobs come from the
  // connector's own storage account; URLs on the source's own origin carry the source's auth (never elsewhere).
  const attachmentsDef = definition.mapping.attachments;
  const source = attachmentsDef
    ? sourceCredentials(sourceDef, { secrets, logger: logger.child({ component: 'attachments' }), baseDir })
    : undefined;
  const attachments = attachmentsDef
    ? createAttachmentService(attachmentsDef, definition.schema.properties, {
        baseDir,
        maxItemBytes: definition.mapping.maxItemBytes,
        overflow: definition.mapping.contentOverflow,
        allowEveryone: definition.mapping.acl?.allowEveryone === true,
        claimsContainer: state.names.claimsContainer,
        containers: (name) => state.storage.container(name),
        ...(source ? { source } : {}),
      })
    : undefined;

  const settings: PipelineSettings = {
    ...DEFAULT_SETTINGS,
    maxDeleteRatio: envConfig.sweepMaxDeleteRatio,
    sliceMs: envConfig.crawl.sliceSeconds * 1000,
    slicePages: envConfig.crawl.slicePages,
    pageSize: envConfig.crawl.pageSize,
    holder: `${env.WEBSITE_INSTANCE_ID?.slice(0, 12) ?? 'local'}/${process.pid}/${randomUUID().slice(0, 8)}`,
    ...options.settings,
  };
  const pipeline: PipelineDeps = {
    connectionId,
    state,
    control,
    graph: ingestGraph,
    source: () =>
      createSource(sourceDef, {
        secrets,
        logger: logger.child({ component: 'source' }),
        baseDir,
        containers: (name) => state.storage.container(name),
        telemetry,
      }),
    mapper,
    ...(attachments ? { attachments } : {}),
    syncGroups: async (groups: ExternalGroup[], opts = {}) => {
      await runProvisionToCompletion(
        { graph, definition, groups, logger: logger.child({ component: 'provision' }), store: provisionStore },
        opts,
      );
    },
    logger,
    telemetry,
    now: () => Date.now(),
    random: Math.random,
    settings,
  };
  const timerMode = env.CRAWL_TIMER_MODE?.trim() === 'incremental' ? 'incremental' : 'full';
  return {
    env: envConfig,
    definition,
    baseDir,
    logger,
    telemetry,
    shutdownTelemetry: () => telemetrySetup.shutdown(),
    secrets,
    graph,
    pipeline,
    provisionStore,
    provisionQueue,
    timerMode,
    async ensureStorage() {
      await state.ensure();
      await control.ensure();
      await provisionQueue.ensure();
    },
  };
}

/** A `rest` source's credentials for attachment URLs on its own origin; other sources have none. */
export function sourceCredentials(source: SourceDefinition, deps: SourceDeps): SourceCredentials | undefined {
  if (source.type !== 'rest') return undefined;
  const auth = createAuthProvider(source.auth, deps, { caPath: source.caPath });
  return {
    origin: new URL(source.url).origin,
    prepare: async ({ abortSignal }) => {
      const { headers, dispatcher } = await auth.prepare(abortSignal);
      return { headers: { ...source.headers, ...headers }, ...(dispatcher ? { dispatcher } : {}) };
    },
    onUnauthorized: () => auth.onUnauthorized(),
  };
}

let shared: Promise<Runtime> | undefined;

/** The process-wide runtime for the Functions host, built on first use from process.env. */
export function getRuntime(): Promise<Runtime> {
  shared ??= createRuntime({ telemetry: 'environment' }).catch((err: unknown) => {
    shared = undefined; // try again on the next invocation (e.g. after an app-setting fix)
    throw err;
  });
  return shared;
}
