import { CONFIG_FLAG, JSON_FLAG, defineCommand, parseDuration } from '../args.js';
import { UsageError } from '../command.js';
import { formatResult, formatSummary, runDoctor } from '../../doctor/index.js';

const help = `Usage: graph-connector doctor [--config connector.json] [--create] [--json] [--timeout 15s]

Checks everything the connector needs and prints one PASS/WARN/FAIL/SKIP line per check, with the fix
for each failure. Exits 1 when a check fails (warnings do not fail).

  1. environment        every variable of the contract is valid (all problems listed)
  2. definition         the connector definition is valid (warnings shown as WARN)
  3. secrets            the secrets GRAPH_CREDENTIAL needs resolve (names and sources only, never values)
  4. definition secrets every secret the definition names (source auth: tokens, passwords, client secrets,
                        certificates and their passphrases) resolves, each by name, the field naming it and
                        the environment variable or Key Vault secret it was looked for in
  5. Graph token        a token for Microsoft Graph can be acquired (the Entra error and the secret on failure;
                        a certificate the process does not trust is named as that, with the fix)
  6. Graph permissions  the token carries ExternalConnection.ReadWrite.OwnedBy and ExternalItem.ReadWrite.OwnedBy
  7. Graph endpoint     GET external/connections/{id} answers (200 or 404)
  8. connection         the connection exists and is ready
  9. storage            the queues, ledger tables and claims container exist (--create creates them)
 10. crawl schedule     CRAWL_SCHEDULE is a valid 6-field NCRONTAB; prints the next run

A check whose prerequisite failed is skipped, with the reason. Each check has a time limit.

Options:
  -c, --config <file>   the connector definition (default: $CONNECTOR_CONFIG or ./connector.json)
      --create          create missing queues, tables and the claims container
      --json            print the report as JSON on stdout
      --timeout <dur>   time limit per check (default 15s; e.g. 5s, 1m)`;

export const doctorCommand = defineCommand({
  name: 'doctor',
  summary: 'Check environment, secrets, Graph access, connection, storage and schedule',
  help,
  args: {
    options: { ...CONFIG_FLAG, ...JSON_FLAG, create: { type: 'boolean' }, timeout: { type: 'string' } },
  },
  async run({ values }, io) {
    const timeoutMs = values.timeout ? parseDuration(values.timeout, '--timeout') : undefined;
    if (timeoutMs !== undefined && timeoutMs <= 0) throw new UsageError('--timeout must be greater than 0');
    const json = values.json ?? false;
    const report = await runDoctor({
      env: io.env,
      ...(values.config ? { configPath: values.config } : {}),
      create: values.create ?? false,
      ...(timeoutMs !== undefined ? { timeoutMs } : {}),
      abortSignal: io.abortSignal,
      onResult: json ? undefined : (r) => io.stdout.write(formatResult(r) + '\n'),
    });
    if (json) io.stdout.write(JSON.stringify(report, null, 2) + '\n');
    else io.stdout.write(formatSummary(report) + '\n');
    return report.ok ? 0 : 1;
  },
});
