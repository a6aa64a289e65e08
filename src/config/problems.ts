import { ConnectorError } from '../core/errors.js';

/**
 * A problem found while validating configuration: where (a JSON path such as
 * `connector.json: schema.properties[3].labels`, or an environment variable name), what, and the fix.
 */
export interface ConfigProblem {
  path: string;
  message: string;
  fix: string;
  severity: 'error' | 'warning';
}

/**
 * Every configuration error at once; thrown at start-up so nothing runs on a bad config. Code
 * `InvalidConfiguration`, never retryable: the configuration has to change first.
 */
export class ConfigError extends ConnectorError {
  override name = 'ConfigError';
  readonly problems: ConfigProblem[];
  constructor(problems: ConfigProblem[], source = 'configuration') {
    const errors = problems.filter((p) => p.severity === 'error');
    super(
      `${source} has ${errors.length} problem${errors.length === 1 ? '' : 's'}:\n` +
        errors.map((p, i) => `  ${i + 1}. ${p.path}: ${p.message}\n     fix: ${p.fix}`).join('\n'),
      { code: 'InvalidConfiguration' },
    );
    this.problems = problems;
  }
}

export function problem(path: string, message: string, fix: string): ConfigProblem {
  return { path, message, fix, severity: 'error' };
}

export function warning(path: string, message: string, fix: string): ConfigProblem {
  return { path, message, fix, severity: 'warning' };
}

/**
 * An error for each key of `value` that is not in `known` (objects connector.schema.json closes with
 * `additionalProperties: false`: editors flag the key, so start-up refuses it too, naming the keys it takes).
 */
export function unknownKeyProblems(
  value: Record<string, unknown>,
  known: readonly string[],
  path: string,
): ConfigProblem[] {
  return Object.keys(value)
    .filter((k) => !known.includes(k))
    .map((k) =>
      problem(`${path}.${k}`, `unknown key "${k}"`, `remove it or fix its name (known: ${known.join(', ')})`),
    );
}
