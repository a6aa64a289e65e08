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
import { azureMonitorSettings, type AzureMonitorSettings } from '../config/azure-monitor.js';
import { noTelemetry, type Telemetry } from '../core/telemetry.js';
import type { Logger } from '../log.js';

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

export { azureMonitorSettings, type AzureMonitorSettings };

/** Telemetry exported to Application Insights when the environment asks for it; {@link noTelemetry} otherwise. */
export async function telemetryFromEnvironment(
  env: Record<string, string | undefined>,
  options: TelemetryFromEnvironmentOptions,
): Promise<TelemetrySetup> {
  return telemetryFromSettings(azureMonitorSettings(env), { ...options, env });
}

/** Telemetry to Application Insights with validated settings (ConnectorEnvironment.azureMonitor); none without. */
export async function telemetryFromSettings(
  settings: AzureMonitorSettings | undefined,
  options: TelemetryFromEnvironmentOptions & { env?: Record<string, string | undefined> },
): Promise<TelemetrySetup> {
  if (!settings) return { telemetry: noTelemetry, shutdown: async () => {} };
  const env = options.env ?? process.env;
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
