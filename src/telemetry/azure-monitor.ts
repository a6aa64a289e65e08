/**
 * Telemetry to Application Insights with the Azure Monitor OpenTelemetry exporter, switched on by
 * APPLICATIONINSIGHTS_CONNECTION_STRING and authenticated with Microsoft Entra ID, never with the instrumentation
 * key (https://learn.microsoft.com/azure/azure-monitor/app/azure-ad-authentication):
 *
 * - APPLICATIONINSIGHTS_AUTHENTICATION_STRING `Authorization=AAD;ClientId=<id>`: that user-assigned managed
 *   identity (the same setting the Functions host reads for its own telemetry);
 * - `Authorization=AAD`: the system-assigned managed identity;
 * - absent: DefaultAzureCredential (AZURE_CLIENT_ID, a developer's sign-in).
 *
 * The identity needs the Monitoring Metrics Publisher role on the Application Insights resource. The exporter and
 * the OpenTelemetry SDK are imported only when the connection string is set: the CLI and the tests never load them.
 */
import type { TokenCredential } from '@azure/identity';
import { ConfigError, problem } from '../config/problems.js';
import { noTelemetry, type Telemetry } from '../core/telemetry.js';
import type { Logger } from '../log.js';

export interface AzureMonitorSettings {
  connectionString: string;
  /** How the exporter authenticates. */
  identity: { kind: 'userAssigned'; clientId: string } | { kind: 'systemAssigned' } | { kind: 'default' };
}

/**
 * The exporter's settings from the environment, or undefined when APPLICATIONINSIGHTS_CONNECTION_STRING is unset.
 * A malformed value is a ConfigError naming the setting and the fix.
 */
export function azureMonitorSettings(env: Record<string, string | undefined>): AzureMonitorSettings | undefined {
  const connectionString = env.APPLICATIONINSIGHTS_CONNECTION_STRING?.trim();
  if (!connectionString) return undefined;
  const problems = [];
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
  if (problems.length) throw new ConfigError(problems, 'the environment');
  return { connectionString, identity };
}

export interface TelemetrySetup {
  telemetry: Telemetry;
  /** Export what is buffered and stop. */
  shutdown(): Promise<void>;
}

export interface TelemetryFromEnvironmentOptions {
  connectionId: string;
  logger: Logger;
  /** The running invocation's traceparent (spans hang under it). */
  traceParent?: () => string | undefined;
  /** Milliseconds between metric exports (default 30 s). */
  metricExportIntervalMs?: number;
}

async function credentialFor(identity: AzureMonitorSettings['identity']): Promise<TokenCredential> {
  const { ManagedIdentityCredential, DefaultAzureCredential } = await import('@azure/identity');
  if (identity.kind === 'userAssigned') return new ManagedIdentityCredential({ clientId: identity.clientId });
  if (identity.kind === 'systemAssigned') return new ManagedIdentityCredential();
  return new DefaultAzureCredential();
}

/** Telemetry exported to Application Insights when the environment asks for it; {@link noTelemetry} otherwise. */
export async function telemetryFromEnvironment(
  env: Record<string, string | undefined>,
  options: TelemetryFromEnvironmentOptions,
): Promise<TelemetrySetup> {
  const settings = azureMonitorSettings(env);
  if (!settings) return { telemetry: noTelemetry, shutdown: async () => {} };
  const [exporters, traceSdk, metricsSdk, resources, { createOtelTelemetry }] = await Promise.all([
    import('@azure/monitor-opentelemetry-exporter'),
    import('@opentelemetry/sdk-trace-base'),
    import('@opentelemetry/sdk-metrics'),
    import('@opentelemetry/resources'),
    import('./otel.js'),
  ]);
  const exporterOptions = {
    connectionString: settings.connectionString,
    credential: await credentialFor(settings.identity),
  };
  const resource = resources.resourceFromAttributes({
    'service.name': env.WEBSITE_SITE_NAME?.trim() || 'graph-connector',
    ...(env.WEBSITE_INSTANCE_ID ? { 'service.instance.id': env.WEBSITE_INSTANCE_ID } : {}),
  });
  const tracerProvider = new traceSdk.BasicTracerProvider({
    resource,
    spanProcessors: [new traceSdk.BatchSpanProcessor(new exporters.AzureMonitorTraceExporter(exporterOptions))],
  });
  const meterProvider = new metricsSdk.MeterProvider({
    resource,
    readers: [
      new metricsSdk.PeriodicExportingMetricReader({
        exporter: new exporters.AzureMonitorMetricExporter(exporterOptions),
        exportIntervalMillis: options.metricExportIntervalMs ?? 30_000,
      }),
    ],
  });
  options.logger.info('telemetry: exporting spans and metrics to Application Insights', {
    identity: settings.identity.kind,
  });
  return {
    telemetry: createOtelTelemetry({
      tracerProvider,
      meterProvider,
      connectionId: options.connectionId,
      ...(options.traceParent ? { traceParent: options.traceParent } : {}),
    }),
    async shutdown() {
      await Promise.allSettled([tracerProvider.shutdown(), meterProvider.shutdown()]);
    },
  };
}
