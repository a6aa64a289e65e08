import { describe, expect, it } from 'vitest';
import { ConnectorError, isRetryable } from '../../src/core/errors.js';
import { ConfigError, problem } from '../../src/config/problems.js';
import { CertificateError, GraphAuthError, GraphError } from '../../src/graph/errors.js';
import { SecretNotFoundError, SecretProviderError } from '../../src/secrets/errors.js';
import { UsageError } from '../../src/cli/command.js';

describe('errors of the Graph client, secrets, configuration and CLI share one base', () => {
  it('GraphError is retryable for network failures, 408, 429 and 5xx, and carries Retry-After', () => {
    const at = (status: number) => new GraphError({ status, code: `Http${status}`, message: 'm' });
    expect([0, 408, 429, 500, 503].map((s) => isRetryable(at(s)))).toEqual([true, true, true, true, true]);
    expect([400, 401, 403, 404, 409].map((s) => isRetryable(at(s)))).toEqual([false, false, false, false, false]);
    const throttled = new GraphError({ status: 429, code: 'TooManyRequests', message: 'm', retryAfterMs: 7000 });
    expect(throttled).toBeInstanceOf(ConnectorError);
    expect(throttled.code).toBe('TooManyRequests');
    expect(throttled.retryAfterMs).toBe(7000);
    expect(new GraphError({ status: 0, code: 'InvalidUrl', message: 'm', retryable: false }).retryable).toBe(false);
  });

  it('each other class has a stable code and is not retryable unless it says so', () => {
    const cases: [ConnectorError, string, boolean][] = [
      [new GraphAuthError('m', { credential: 'clientSecret' }), 'AuthenticationFailed', false],
      [new CertificateError('m'), 'InvalidCertificate', false],
      [new SecretNotFoundError('m', { secretName: 's', source: 'env' }), 'SecretNotFound', false],
      [new SecretProviderError('m', { secretName: 's', source: 'kv', retryable: true }), 'SecretUnavailable', true],
      [new ConfigError([problem('X', 'is wrong', 'fix it')]), 'InvalidConfiguration', false],
      [new UsageError('m'), 'InvalidUsage', false],
    ];
    for (const [error, code, retryable] of cases) {
      expect(error).toBeInstanceOf(ConnectorError);
      expect([error.code, isRetryable(error)]).toEqual([code, retryable]);
    }
  });
});
