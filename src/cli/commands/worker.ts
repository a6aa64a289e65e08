import { commandLogger, levelFromEnv } from '../../log.js';
import { createRuntime } from '../../host/runtime.js';
import { runWorker } from '../../local/worker.js';
import { CONFIG_FLAG, defineCommand, parseWholeNumber, requireStorageSetting } from '../args.js';

const help = `Usage: graph-connector worker [--config connector.json] [--concurrency N] [--until-idle] [--idle-ms MS]

Drains the crawl-control queue and the item queue of the configured storage with the local worker — the
same handlers the Functions host calls (enumerate, finalize, ingest, poison) — until stopped (SIGINT/SIGTERM),
or with --until-idle until both queues stay empty for --idle-ms. A message that was being handled when the
process died reappears after its visibility timeout and is handled again; an older version of an item never
overwrites a newer one. Uses AzureWebJobsStorage and the GRAPH_* settings like every other command.

Options:
  -c, --config <file>       the connector definition (default: $CONNECTOR_CONFIG or ./connector.json)
      --concurrency <n>     item operations in flight (1–25, default 8)
      --until-idle          stop when both queues stay empty for --idle-ms
      --idle-ms <ms>        how long the queues must stay empty with --until-idle (default 3000)
      --visibility-ms <ms>  how long a received item message stays hidden (default 30000)
      --control-visibility-ms <ms>
                            how long a crawl slice's message stays hidden, renewed while it runs: after a
                            crash, how soon the slice resumes from its checkpoint (default 30000)
      --poll-ms <ms>        wait between polls of empty queues (default 250)
      --max-finalize-delay-ms <ms>
                            longest wait between a crawl's finalize checks (default 30000)

Prints one JSON line of counts on stdout when it stops.`;

export const workerCommand = defineCommand({
  name: 'worker',
  summary: 'Drain the crawl and item queues of the configured storage (forever, or --until-idle)',
  help,
  args: {
    options: {
      ...CONFIG_FLAG,
      concurrency: { type: 'string', default: '8' },
      'until-idle': { type: 'boolean', default: false },
      'idle-ms': { type: 'string', default: '3000' },
      'visibility-ms': { type: 'string', default: '30000' },
      'control-visibility-ms': { type: 'string', default: '30000' },
      'poll-ms': { type: 'string', default: '250' },
      'max-finalize-delay-ms': { type: 'string', default: '30000' },
    },
  },
  async run({ values }, io) {
    const concurrency = parseWholeNumber('--concurrency', values.concurrency, 1, 25);
    const idleMs = parseWholeNumber('--idle-ms', values['idle-ms'], 0, 3_600_000);
    const visibilityTimeoutMs = parseWholeNumber('--visibility-ms', values['visibility-ms'], 1_000, 7 * 24 * 3_600_000);
    const controlVisibilityMs = parseWholeNumber(
      '--control-visibility-ms',
      values['control-visibility-ms'],
      1_000,
      600_000,
    );
    const pollMs = parseWholeNumber('--poll-ms', values['poll-ms'], 10, 60_000);
    const maxFinalizeDelayMs = parseWholeNumber(
      '--max-finalize-delay-ms',
      values['max-finalize-delay-ms'],
      100,
      3_600_000,
    );
    requireStorageSetting(
      io.env,
      'the worker drains the queues of that storage. Point it at your storage account (or at an Azurite).',
    );
    const logger = commandLogger(io.stderr, { level: levelFromEnv(io.env) });
    const rt = await createRuntime({
      env: io.env,
      logger,
      settings: { maxFinalizeDelayMs, finalizeDelayMs: Math.min(1_000, maxFinalizeDelayMs) },
      ...(values.config ? { configPath: values.config } : {}),
    });
    await rt.ensureStorage();
    logger.info('worker started', { connectionId: rt.definition.connection.id, concurrency, pid: process.pid });
    let idleSince: number | undefined;
    const stats = await runWorker(rt.pipeline, {
      concurrency,
      visibilityTimeoutMs,
      controlVisibilityMs,
      pollMs,
      ...(io.abortSignal ? { abortSignal: io.abortSignal } : {}),
      // runWorker asks only when nothing is in flight and both queues answered empty.
      stopWhen: () => {
        if (!values['until-idle']) return Promise.resolve(false);
        const now = Date.now();
        idleSince ??= now;
        return Promise.resolve(now - idleSince >= idleMs);
      },
      onOutcome: () => {
        idleSince = undefined;
      },
    });
    io.stdout.write(JSON.stringify({ stopped: io.abortSignal.aborted ? 'signal' : 'idle', ...stats }) + '\n');
    return 0;
  },
});
