import { commandLogger } from '../../log.js';
import { createRuntime } from '../../host/runtime.js';
import { statusReport } from '../../host/status.js';
import { resolve } from 'node:path';
import { localServices } from '../../local/local-services.js';
import { CONFIG_FLAG, JSON_FLAG, STATE_DIR_FLAG, VERBOSE_FLAG, defineCommand, parseWholeNumber } from '../args.js';

const help = `Usage: graph-connector status [--config connector.json] [--jobs N] [--state-dir .local] [--json]

Shows what GET /api/status shows, read straight from storage: the provisioning phase, the crawl holding
the connection (if any), the most recent crawl jobs with their counts, the item queue depth, and how many
dead letters wait. Uses AzureWebJobsStorage and the GRAPH_* settings like every other command; without them it
reads the local state of \`graph-connector run\` (.local/): the Azurite and emulator \`run --keep\` keeps, or
an Azurite on .local/azurite (and the emulator on .local/emulator) started for this command.

Options:
  -c, --config <file>   the connector definition (default: $CONNECTOR_CONFIG or ./connector.json)
      --jobs <n>        how many recent jobs to show (default 5, at most 50)
      --state-dir <dir> the local state of \`graph-connector run\` (default .local)
      --json            print the report as JSON
  -v, --verbose         log at info level (default: warnings and errors)`;

export const statusCommand = defineCommand({
  name: 'status',
  summary: 'Show provisioning, the running crawl, recent jobs, queue depth and dead letters',
  help,
  args: {
    options: {
      ...CONFIG_FLAG,
      ...JSON_FLAG,
      ...VERBOSE_FLAG,
      ...STATE_DIR_FLAG,
      jobs: { type: 'string', default: '5' },
    },
  },
  async run({ values }, io) {
    const jobs = parseWholeNumber('--jobs', values.jobs, 1, 50);
    const local = await localServices({
      env: io.env,
      stateDir: resolve(values['state-dir'] ?? '.local'),
      storage: true,
      graph: true,
      command: 'status',
    });
    let report;
    try {
      for (const note of local.notes) io.stderr.write(note + '\n');
      const rt = await createRuntime({
        env: local.env,
        logger: commandLogger(io.stderr, { env: io.env, verbose: values.verbose }),
        ...(values.config ? { configPath: values.config } : {}),
      });
      try {
        report = await statusReport(rt, { jobs });
      } catch (e) {
        // A storage account nothing has run against yet has no ledger tables: say that, not the raw table error.
        if ((e as { code?: unknown }).code === 'TableNotFound' || /TableNotFound/.test(String((e as Error).message)))
          throw new Error(
            `the ledger tables (${rt.pipeline.state.names.tablePrefix}…) do not exist in this storage: nothing has run against it yet. Run \`graph-connector run\` or \`graph-connector provision\`, or \`graph-connector doctor --create\` to create them`,
            { cause: e },
          );
        throw e;
      }
    } finally {
      await local.close();
    }
    if (values.json) {
      io.stdout.write(JSON.stringify(report, null, 2) + '\n');
      return 0;
    }
    const out = (l = '') => io.stdout.write(l + '\n');
    out(`connection    ${report.connectionId}`);
    out(
      `provisioning  ${report.provisioning ? `${report.provisioning.phase} — ${report.provisioning.progress}` : 'never run (graph-connector provision)'}`,
    );
    if (report.provisioning?.lastError) out(`  last error  ${report.provisioning.lastError}`);
    out(
      `running crawl ${report.runningCrawl ? `${report.runningCrawl.crawlId ?? '?'} by ${report.runningCrawl.holder} since ${report.runningCrawl.since}${report.runningCrawl.expired ? ' (lease expired)' : ''}` : 'none'}`,
    );
    out(
      `items         ${report.items ? `${report.items.count} in Graph (snapshot ${report.items.snapshotVersion}, ${report.items.updatedAt})` : 'none yet (no crawl finished)'}`,
    );
    out(`item queue    ${report.itemsQueueDepth < 0 ? 'unknown' : `${report.itemsQueueDepth} message(s)`}`);
    out(`dead letters  ${report.deadLetters.count}${report.deadLetters.capped ? '+' : ''}`);
    out();
    out('recent crawls:');
    for (const j of report.jobs) {
      const c = j.counts;
      out(
        `  ${j.crawlId}  ${j.mode.padEnd(11)} ${j.trigger.padEnd(5)} ${j.status.padEnd(10)} ${j.startedAt}  read ${c.enumerated} · ingested ${c.ingested} · unchanged ${c.unchanged} · rejected ${c.rejected} · dead ${c.deadLettered} · deleted ${c.deleted}`,
      );
      const p = j.progress;
      if (!p.enumerated || j.status === 'running') {
        const where = p.source
          ? `${p.source.done} of ${p.source.total ?? '?'} ${p.source.unit}${p.source.percent !== undefined ? ` (${p.source.percent}%)` : ''}`
          : `${p.pages} pages`;
        const eta = p.etaSeconds !== undefined ? `, about ${p.etaSeconds} s to go` : '';
        out(
          `      slice ${p.slices} · ${where} · ${p.recordsPerSecond ?? 0} records/s${eta} · pending ${c.pending}${p.enumerated ? ' · enumerated' : ''}`,
        );
      }
      if (j.error) out(`      ${j.error}`);
    }
    return 0;
  },
});
