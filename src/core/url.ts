/**
 * How a URL is shown anywhere the connector writes about it (logs, errors, dead letters, job records): scheme,
 * host and path only. A query string may carry a token (a SAS `sig=`, an API key), user info a password, and a
 * fragment is never sent anyway.
 */

/** `scheme://host[:port]/path` of `url`: no user info, no query, no fragment. */
export function displayUrl(url: string | URL): string {
  try {
    const u = typeof url === 'string' ? new URL(url) : url;
    return `${u.protocol}//${u.host}${u.pathname}`;
  } catch {
    // Not parseable: still never show what follows a `?` or `#`, nor user info before an `@`.
    const text = String(url)
      .split(/[?#]/, 1)[0]!
      .replace(/\/\/[^/@]*@/, '//');
    return text.length > 120 ? `${text.slice(0, 120)}…` : text;
  }
}

/** True when `url` (parseable or not) carries a query string. */
export function hasQuery(url: string): boolean {
  try {
    return new URL(url).search !== '';
  } catch {
    return url.includes('?');
  }
}
