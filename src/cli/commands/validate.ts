import { CONFIG_FLAG, JSON_FLAG, defineCommand } from '../args.js';
import { checkConnectorDefinitionFile } from '../../config/definition.js';
import { loadEnvironment } from '../../config/env.js';
import { ConfigError, type ConfigProblem } from '../../config/problems.js';

const help = `Usage: graph-connector validate [--config connector.json] [--env]

Checks the connector definition (and with --env the environment variables) and prints every problem
found, errors and warnings, each with where it is and how to fix it. Exits 2 when there is an error
(an invalid definition or environment: the code every command uses for it), 0 otherwise.

Options:
  -c, --config <file>  the connector definition (default: $CONNECTOR_CONFIG or ./connector.json)
      --env            also validate the environment (GRAPH_*, CRAWL_SCHEDULE, ...)
      --json           print the problems as JSON`;

function format(p: ConfigProblem): string {
  return `${p.severity === 'error' ? 'error  ' : 'warning'} ${p.path}: ${p.message}\n        fix: ${p.fix}`;
}

export const validateCommand = defineCommand({
  name: 'validate',
  summary: 'Check connector.json (and the environment) and print every problem',
  help,
  args: { options: { ...CONFIG_FLAG, ...JSON_FLAG, env: { type: 'boolean' } } },
  async run({ values }, io) {
    const path = values.config ?? io.env.CONNECTOR_CONFIG ?? './connector.json';
    const { problems } = await checkConnectorDefinitionFile(path);
    if (values.env) {
      try {
        loadEnvironment(io.env);
      } catch (e) {
        if (!(e instanceof ConfigError)) throw e;
        problems.push(...e.problems);
      }
    }
    const errors = problems.filter((p) => p.severity === 'error');
    if (values.json) {
      io.stdout.write(JSON.stringify({ file: path, valid: errors.length === 0, problems }, null, 2) + '\n');
    } else {
      for (const p of problems) io.stdout.write(format(p) + '\n');
      io.stdout.write(
        errors.length
          ? `${path}: ${errors.length} error(s), ${problems.length - errors.length} warning(s)\n`
          : `${path} is valid${problems.length ? ` (${problems.length} warning(s))` : ''}\n`,
      );
    }
    // Exit 2 = usage or configuration error, the same code `run` and every other command give for this file.
    return errors.length ? 2 : 0;
  },
});
