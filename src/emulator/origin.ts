/**
 * The origin a request reached the emulator under. Directly that is the emulator's own
 * `https://127.0.0.1:PORT`; through proxy mode it is `https://graph.microsoft.com` or
 * `https://login.microsoftonline.com`, and every URL the emulator writes into an answer (Location, @odata.context,
 * the token endpoint in OpenID metadata, the audience a client assertion must carry) must use that origin, or a
 * client that never heard of the emulator would follow it out of the proxy.
 */
import { AsyncLocalStorage } from 'node:async_hooks';

export interface Origins {
  /** Graph's origin, e.g. https://graph.microsoft.com. */
  graph: string;
  /** The authority's origin, e.g. https://login.microsoftonline.com. */
  authority: string;
}

const current = new AsyncLocalStorage<Origins>();

/** Run `fn` with these origins in effect for everything it calls (including after awaits). */
export function withOrigins<T>(origins: Origins, fn: () => T): T {
  return current.run(origins, fn);
}

/** The origins of the request being handled, or undefined outside proxy mode. */
export function currentOrigins(): Origins | undefined {
  return current.getStore();
}
