/**
 * APPLICATIONINSIGHTS_CONNECTION_STRING and APPLICATIONINSIGHTS_AUTHENTICATION_STRING, read for the connector's own
 * exporter (src/telemetry/azure-monitor.ts): telemetry is sent with a Microsoft Entra token, never with the
 * instrumentation key (https://learn.microsoft.com/azure/azure-monitor/app/azure-ad-authentication).
 */
import { ConfigError, problem, type ConfigProblem } from './problems.js';

export interface AzureMonitorSettings {
  connectionString: string;
  /** How the exporter authenticates. */
  identity: { kind: 'userAssigned'; clientId: string } | { kind: 'systemAssigned' } | { kind: 'default' };
}

/**
 * The exporter's settings, or undefined when APPLICATIONINSIGHTS_CONNECTION_STRING is unset; a malformed value adds
 * a problem naming the setting and the fix.
 */
export function readAzureMonitorSettings(
  env: Record<string, string | undefined>,
  problems: ConfigProblem[],
): AzureMonitorSettings | undefined {
  const connectionString = env.APPLICATIONINSIGHTS_CONNECTION_STRING?.trim();
  if (!connectionString) return undefined;
  const before = problems.length;
  if (!/(^|;)\s*InstrumentationKey\s*=\s*[^;\s]/i.test(connectionString))
    problems.push(
      problem(
        'APPLICATIONINSIGHTS_CONNECTION_STRING',
        'is not an Application Insights connection string (it has no InstrumentationKey=…)',
        "copy the resource's connection string from its Overview page, or unset it to turn telemetry off",
      ),
    );
  let identity: AzureMonitorSettings['identity'] = { kind: 'default' };
  const auth = env.APPLICATIONINSIGHTS_AUTHENTICATION_STRING?.trim();
  if (auth) {
    const parts = new Map<string, string>();
    for (const pair of auth.split(';')) {
      if (!pair.trim()) continue;
      const eq = pair.indexOf('=');
      parts.set(
        pair
          .slice(0, eq < 0 ? undefined : eq)
          .trim()
          .toLowerCase(),
        eq < 0 ? '' : pair.slice(eq + 1).trim(),
      );
    }
    const clientId = parts.get('clientid');
    if (parts.get('authorization')?.toUpperCase() !== 'AAD')
      problems.push(
        problem(
          'APPLICATIONINSIGHTS_AUTHENTICATION_STRING',
          `must contain "Authorization=AAD" (got "${auth.slice(0, 40)}")`,
          'set it to "Authorization=AAD;ClientId=<client id of the user-assigned identity>", or "Authorization=AAD" for the system-assigned one',
        ),
      );
    else if (clientId !== undefined && !/^[0-9a-f]{8}-([0-9a-f]{4}-){3}[0-9a-f]{12}$/i.test(clientId))
      problems.push(
        problem(
          'APPLICATIONINSIGHTS_AUTHENTICATION_STRING',
          `ClientId "${clientId.slice(0, 40)}" is not a GUID`,
          "use the user-assigned identity's client id (not its principal or resource id)",
        ),
      );
    else identity = clientId ? { kind: 'userAssigned', clientId } : { kind: 'systemAssigned' };
  }
  return problems.length > before ? undefined : { connectionString, identity };
}

/** {@link readAzureMonitorSettings}, throwing a ConfigError for a malformed value. */
export function azureMonitorSettings(env: Record<string, string | undefined>): AzureMonitorSettings | undefined {
  const problems: ConfigProblem[] = [];
  const settings = readAzureMonitorSettings(env, problems);
  if (problems.length) throw new ConfigError(problems, 'the environment');
  return settings;
}
