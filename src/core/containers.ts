/**
 * Blob containers: Azure's naming rule, and the containers that belong to the connector or its host and so may
 * never be read as a source or attachments container (a record or definition naming one would publish host keys,
 * the deployment package, other items' bodies or the connector's own state).
 */

/** Azure's container name rule: 3-63 characters, lowercase letters, digits and single hyphens, not at either end. */
export function isBlobContainerName(name: unknown): name is string {
  return typeof name === 'string' && /^(?=.{3,63}$)[a-z0-9]+(-[a-z0-9]+)*$/.test(name);
}

/**
 * Why `name` can never be read as input, or undefined. The Functions host keeps its keys, locks and timers in
 * `azure-webjobs-*`; the deployment package lives in `app-package-*` (infra/) or `scm-releases`; the claims
 * container (CLAIMS_CONTAINER, default `graph-claims`) holds item bodies, the state container (STATE_CONTAINER,
 * default `graph-state`) snapshots and checkpoints.
 */
export function reservedContainerReason(
  name: string,
  env: Record<string, string | undefined> = process.env,
): string | undefined {
  if (name.startsWith('azure-webjobs-'))
    return `"${name}" is reserved for the Functions host (its keys, locks and timers)`;
  if (name.startsWith('app-package-') || name === 'scm-releases')
    return `"${name}" holds the function app's deployment package`;
  if (name === (env.CLAIMS_CONTAINER?.trim() || 'graph-claims'))
    return `"${name}" is the claims container (CLAIMS_CONTAINER), the connector's claim-check container: it holds other items' bodies`;
  if (name === (env.STATE_CONTAINER?.trim() || 'graph-state'))
    return `"${name}" is the connector's state container (STATE_CONTAINER)`;
  return undefined;
}
