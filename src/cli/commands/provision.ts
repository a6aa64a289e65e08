import { readFile } from 'node:fs/promises';
import { CONFIG_FLAG, VERBOSE_FLAG, defineCommand, parseDuration } from '../args.js';
import { UsageError } from '../command.js';
import { loadConnectorDefinition } from '../../config/definition.js';
import { loadEnvironment } from '../../config/env.js';
import type { ExternalGroup } from '../../config/model.js';
import { createGraphCredential } from '../../graph/credentials.js';
import { graphClientFromEnvironment } from '../../graph/client.js';
import { commandLogger } from '../../log.js';
import { createSecretProvider } from '../../secrets/index.js';
import { MemoryProvisionStore, TableProvisionStore, type ProvisionStore } from '../../state/provision-store.js';
import { runProvisionToCompletion } from '../../provision/provision.js';

const help = `Usage: graph-connector provision [--config connector.json] [--groups groups.json] [--timeout 20m]

Makes Graph match the connector definition: creates or updates the external connection, registers or
extends its schema (additive changes only) and waits for the schema operation, then syncs external groups.
Uses the connector's own identity (GRAPH_* environment variables). Safe to run again: nothing unchanged
is touched, and an interrupted run resumes (state in the table \${LEDGER_TABLE_PREFIX}provision when
AzureWebJobsStorage is set).

Options:
  -c, --config <file>     the connector definition (default: $CONNECTOR_CONFIG or ./connector.json)
      --groups <file>     JSON array of external groups [{id, displayName, members:[{id,type}]}] to sync
      --timeout <dur>     how long to wait for the schema operation (default 20m; e.g. 90s, 15m)
      --consent-timeout <dur>  how long 401/403 are retried after admin consent (default 10m)
      --poll-interval <dur>    first delay between schema operation polls (default 5s, doubling up to 60s)`;

export const provisionCommand = defineCommand({
  name: 'provision',
  summary: 'Create/update the Graph connection, schema and external groups',
  help,
  args: {
    options: {
      ...CONFIG_FLAG,
      groups: { type: 'string' },
      timeout: { type: 'string' },
      'consent-timeout': { type: 'string' },
      'poll-interval': { type: 'string' },
      ...VERBOSE_FLAG,
    },
  },
  async run({ values }, io) {
    const env = loadEnvironment(io.env);
    const path = values.config ?? env.connectorConfig;
    const { definition, warnings } = await loadConnectorDefinition(path);
    const logger = commandLogger(io.stderr, { env: io.env, verbose: values.verbose });
    for (const w of warnings) logger.warn(`${w.path}: ${w.message} (fix: ${w.fix})`);
    let groups: ExternalGroup[] | undefined;
    if (values.groups) {
      const parsed = JSON.parse(await readFile(values.groups, 'utf8')) as unknown;
      if (!Array.isArray(parsed)) throw new UsageError(`--groups ${values.groups} must hold a JSON array of groups`);
      groups = parsed as ExternalGroup[];
    }
    const secrets = createSecretProvider(io.env, { logger });
    const credential = createGraphCredential(env, secrets, { logger });
    const graph = graphClientFromEnvironment(env, credential, {
      onRetry: (e) => logger.info(`retrying ${e.method} ${e.url} after ${e.status} in ${e.delayMs} ms`),
    });
    let store: ProvisionStore;
    if (env.storage?.kind === 'connectionString') {
      store = TableProvisionStore.fromConnectionString(env.storage.connectionString, env.ledgerTablePrefix);
    } else {
      logger.warn(
        'AzureWebJobsStorage is not set: provision state is kept in memory only, so an interrupted run cannot resume and removed groups cannot be detected',
      );
      store = new MemoryProvisionStore();
    }
    const started = Date.now();
    const state = await runProvisionToCompletion(
      {
        graph,
        definition,
        ...(groups ? { groups } : {}),
        logger,
        store,
        options: {
          ...(values.timeout ? { operationTimeoutMs: parseDuration(values.timeout, '--timeout') } : {}),
          ...(values['poll-interval']
            ? { pollIntervalMs: parseDuration(values['poll-interval'], '--poll-interval') }
            : {}),
          ...(values['consent-timeout']
            ? { consentTimeoutMs: parseDuration(values['consent-timeout'], '--consent-timeout') }
            : {}),
        },
      },
      {
        abortSignal: io.abortSignal,
        onProgress: (s) =>
          io.stdout.write(`[${Math.round((Date.now() - started) / 1000)}s] ${s.phase}: ${s.progress}\n`),
      },
    );
    io.stdout.write(`connection ${state.connectionId} is ${state.phase}\n`);
    return 0;
  },
});
