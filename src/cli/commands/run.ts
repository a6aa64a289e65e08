import { runLocal } from '../../local/run.js';
import { CONFIG_FLAG, defineCommand, parseWholeNumber } from '../args.js';
import { UsageError } from '../command.js';

const MODES = ['full', 'incremental', 'acl', 'items'] as const;

const help = `Usage: graph-connector run [--mode full|incremental|acl] [--force] [--reset] [--concurrency N] [--dashboard]

Runs the whole connector on this machine (this is what \`npm start\` does):
  1. starts Azurite and the Graph emulator — unless AzureWebJobsStorage / GRAPH_BASE_URL point at real ones;
  2. provisions the connection (connection → schema → operation → ready) with progress;
  3. crawls the source of the connector definition into the queue, and drains the queue with a local worker
     that calls the same handlers as the Azure Functions (PUT/DELETE, settle, sweep, watermark);
  4. prints a reconciliation table and an ACL check: Graph's search API as each user of the definition's
     mapping.acl.directory (or --users), signed in through the emulator (the one it starts, or the one
     GRAPH_BASE_URL names); against anything else it says why the check is skipped.

Local state (Azurite's data, the emulator's state and certificate) lives in .local/ (git-ignored): a second
run sees the first and sends only what changed. --reset starts clean. After the run, \`graph-connector status\`,
\`deadletters\` and \`search\` read that state (starting Azurite and the emulator on it for themselves), or use
what --keep left running.

Options:
  -c, --config <file>     the connector definition (default: $CONNECTOR_CONFIG or ./connector.json)
  -m, --mode <mode>       full (default), incremental or acl
      --force             re-send every item even when unchanged, and let the sweep pass its ratio guard
      --reset             delete .local/ first (a fresh Azurite and emulator); with GRAPH_BASE_URL set and the
                          ledger in .local, also delete the connection there (provisioning waits until Graph has
                          finished deleting it, then creates it again)
      --concurrency <n>   item operations in flight (default 8; Graph allows 25 per connection)
      --state-dir <dir>   where local state lives (default .local)
      --users <a,b,…>     the users of the ACL check (default: every user of mapping.acl.directory)
      --dashboard         serve the status page (GET /api/dashboard and its API) on 127.0.0.1 while the crawl
                          runs, print its address, and keep serving after the report until Ctrl-C
      --dashboard-port <n> its port (default 7071, as \`func start\`; 0 for any free port)
      --keep              leave Azurite and the emulator running when the run ends, and print how to reach them
                          (endpoints, export lines for another shell) until Ctrl-C; status, deadletters and search
                          use them meanwhile (recorded in .local/kept.json)
  -v, --verbose           log at info level (default: warnings only)

Exit codes: 0 the crawl completed; 1 it failed; 2 usage or configuration error; 3 another crawl holds the
connection.`;

export const runCommand = defineCommand({
  name: 'run',
  summary: 'Run the connector locally end to end (Azurite + emulator by default) — `npm start`',
  help,
  args: {
    options: {
      ...CONFIG_FLAG,
      mode: { type: 'string', short: 'm', default: 'full' },
      force: { type: 'boolean', default: false },
      reset: { type: 'boolean', default: false },
      concurrency: { type: 'string', default: '8' },
      'state-dir': { type: 'string' },
      users: { type: 'string' },
      dashboard: { type: 'boolean', default: false },
      'dashboard-port': { type: 'string' },
      keep: { type: 'boolean', default: false },
      verbose: { type: 'boolean', short: 'v', default: false },
    },
  },
  async run({ values }, io) {
    const mode = values.mode as (typeof MODES)[number];
    if (!MODES.includes(mode) || mode === 'items') {
      throw new UsageError(
        `--mode must be full, incremental or acl (got '${values.mode}'); for single items use POST /api/resync`,
      );
    }
    const concurrency = parseWholeNumber('--concurrency', values.concurrency, 1, 25, "Graph's limit per connection");
    if (values['dashboard-port'] !== undefined && !values.dashboard)
      throw new UsageError('--dashboard-port needs --dashboard (e.g. --dashboard --dashboard-port 8080)');
    const dashboardPort = parseWholeNumber(
      '--dashboard-port',
      values['dashboard-port'] ?? '7071',
      0,
      65535,
      'a TCP port',
    );
    let users: string[] | undefined;
    if (values.users !== undefined) {
      users = values.users.split(',').map((s) => s.trim());
      if (users.some((u) => !u.includes('@')))
        throw new UsageError(
          `--users takes user principal names separated by commas (e.g. adele@contoso.com,megan@contoso.com), got '${values.users}'`,
        );
    }
    const result = await runLocal({
      cwd: process.cwd(),
      env: io.env,
      stdout: io.stdout,
      stderr: io.stderr,
      signal: io.abortSignal,
      mode,
      force: values.force,
      reset: values.reset,
      concurrency,
      ...(values['state-dir'] ? { stateDir: values['state-dir'] } : {}),
      ...(values.config ? { configPath: values.config } : {}),
      ...(users ? { users } : {}),
      ...(values.dashboard ? { dashboard: { port: dashboardPort } } : {}),
      verbose: values.verbose,
      keep: values.keep,
    });
    if (result.kept) {
      // Kept until this process is told to stop (Ctrl-C, SIGTERM): then stopped cleanly, their data kept.
      if (!io.abortSignal.aborted)
        await new Promise<void>((done) => io.abortSignal.addEventListener('abort', () => done(), { once: true }));
      await result.kept.close();
      io.stdout.write('kept      stopped Azurite and the emulator\n');
    }
    return result.exitCode;
  },
});
