/**
 * Errors of the secret providers. Each message says what is wrong, names the secret and where it was looked
 * up, and says the fix. None ever contains a secret value.
 */
import { ConnectorError } from '../core/errors.js';

export interface SecretErrorOptions {
  /** The secret's name (safe to log). */
  secretName: string;
  /** Where it was looked up: a vault URL, or `environment/local.settings.json`. */
  source: string;
  /** True when reading it again later may succeed (a network failure, a 5xx). Default false. */
  retryable?: boolean;
  cause?: unknown;
}

/** Base class: every secret provider failure (code `SecretUnavailable`). `secretName` and `source` are safe to log. */
export class SecretProviderError extends ConnectorError {
  override name = 'SecretProviderError';
  readonly secretName: string;
  readonly source: string;
  constructor(message: string, options: SecretErrorOptions, code = 'SecretUnavailable') {
    super(message, {
      code,
      retryable: options.retryable ?? false,
      ...(options.cause !== undefined ? { cause: options.cause } : {}),
    });
    this.secretName = options.secretName;
    this.source = options.source;
  }
}

/** The secret does not exist where the provider looked (code `SecretNotFound`). */
export class SecretNotFoundError extends SecretProviderError {
  override name = 'SecretNotFoundError';
  constructor(message: string, options: SecretErrorOptions) {
    super(message, options, 'SecretNotFound');
  }
}

/** The secret exists in Key Vault but is disabled (Key Vault answers 403 SecretDisabled; code `SecretDisabled`). */
export class SecretDisabledError extends SecretProviderError {
  override name = 'SecretDisabledError';
  constructor(message: string, options: SecretErrorOptions) {
    super(message, options, 'SecretDisabled');
  }
}

/**
 * The identity may not read the secret (Key Vault 403 ForbiddenByRbac / access policy) or could not
 * authenticate (code `SecretAccessDenied`).
 */
export class SecretAccessDeniedError extends SecretProviderError {
  override name = 'SecretAccessDeniedError';
  constructor(message: string, options: SecretErrorOptions) {
    super(message, options, 'SecretAccessDenied');
  }
}
