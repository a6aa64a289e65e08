import type { OperationOptions } from '../core/async.js';

/**
 * Named secrets. In Azure they come from Key Vault; locally from the environment or local.settings.json.
 * Values are registered with the logger's redactor the moment they are read (see src/log.ts).
 */
export interface SecretProvider {
  /** The secret's current value; throws SecretNotFoundError (naming the secret and where it looked) if absent. */
  get(name: string, options?: OperationOptions): Promise<string>;
  /** Drop the cached value so the next get() reads it again (call after a downstream auth failure: rotation). */
  invalidate(name: string): void;
  /** Where the named secret is served from, for logs and `doctor` (never the value). */
  describe(name: string): string;
}
