/**
 * Errors of the secret providers. Each message says what is wrong, names the secret and where it was looked
 * up, and says the fix. None ever contains a secret value.
 */

/** Base class: every secret provider failure. `secretName` and `source` are safe to log. */
export class SecretProviderError extends Error {
  override name = 'SecretProviderError';
  constructor(
    message: string,
    readonly secretName: string,
    /** Where it was looked up: a vault URL, or `environment/local.settings.json`. */
    readonly source: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** The secret does not exist where the provider looked. */
export class SecretNotFoundError extends SecretProviderError {
  override name = 'SecretNotFoundError';
}

/** The secret exists in Key Vault but is disabled (Key Vault answers 403 SecretDisabled). */
export class SecretDisabledError extends SecretProviderError {
  override name = 'SecretDisabledError';
}

/** The identity may not read the secret (Key Vault 403 ForbiddenByRbac / access policy) or could not authenticate. */
export class SecretAccessDeniedError extends SecretProviderError {
  override name = 'SecretAccessDeniedError';
}
