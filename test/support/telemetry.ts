/**
 * The connector's telemetry over OpenTelemetry's in-memory exporters: the same createOtelTelemetry the Function App
 * uses with the Azure Monitor exporters, so a test reads exactly the spans and metric points that would be exported.
 */
import { SpanKind, type Attributes } from '@opentelemetry/api';
import {
  AggregationTemporality,
  DataPointType,
  InMemoryMetricExporter,
  MeterProvider,
  PeriodicExportingMetricReader,
  type MetricData,
} from '@opentelemetry/sdk-metrics';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
  type ReadableSpan,
} from '@opentelemetry/sdk-trace-base';
import type { Telemetry } from '../../src/core/telemetry.js';
import { createOtelTelemetry } from '../../src/telemetry/otel.js';

export interface MetricPoint {
  attributes: Attributes;
  /** Counter / gauge value. */
  value?: number;
  /** Histogram. */
  count?: number;
  sum?: number;
}

export interface TestTelemetry {
  telemetry: Telemetry;
  /** Every finished span so far. */
  spans(): ReadableSpan[];
  /** Client spans of one dependency (`graph` or `source`). */
  dependencies(kind: 'graph' | 'source'): ReadableSpan[];
  /** Collect now: the points of metric `name` (cumulative since the start). */
  metric(name: string): Promise<MetricPoint[]>;
  /** The sum of a counter's (or a histogram's) points. */
  total(name: string): Promise<number>;
  /** Forget the spans so far (e.g. the provisioning's, before the crawl under test). */
  resetSpans(): void;
  shutdown(): Promise<void>;
}

export function createTestTelemetry(
  connectionId: string,
  options: { traceParent?: () => string | undefined } = {},
): TestTelemetry {
  const spanExporter = new InMemorySpanExporter();
  const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spanExporter)] });
  const metricExporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
  // Exports only when asked (forceFlush): the interval is longer than any test.
  const reader = new PeriodicExportingMetricReader({ exporter: metricExporter, exportIntervalMillis: 3_600_000 });
  const meterProvider = new MeterProvider({ readers: [reader] });
  const telemetry = createOtelTelemetry({
    tracerProvider,
    meterProvider,
    connectionId,
    ...(options.traceParent ? { traceParent: options.traceParent } : {}),
  });

  const collect = async (): Promise<MetricData[]> => {
    metricExporter.reset();
    await reader.forceFlush();
    return metricExporter.getMetrics().flatMap((rm) => rm.scopeMetrics.flatMap((sm) => sm.metrics));
  };
  const metric = async (name: string): Promise<MetricPoint[]> => {
    const data = (await collect()).filter((m) => m.descriptor.name === name);
    return data.flatMap((m) =>
      m.dataPoints.map((p) => {
        if (m.dataPointType === DataPointType.HISTOGRAM) {
          const h = p.value as { count: number; sum?: number };
          return { attributes: p.attributes, count: h.count, sum: h.sum ?? 0 };
        }
        return { attributes: p.attributes, value: p.value as number };
      }),
    );
  };
  return {
    telemetry,
    spans: () => [...spanExporter.getFinishedSpans()],
    dependencies: (kind) =>
      spanExporter
        .getFinishedSpans()
        .filter((s) => s.kind === SpanKind.CLIENT && s.attributes['graph_connector.dependency'] === kind),
    metric,
    async total(name) {
      return (await metric(name)).reduce((n, p) => n + (p.sum ?? p.value ?? 0), 0);
    },
    resetSpans: () => spanExporter.reset(),
    async shutdown() {
      await Promise.allSettled([tracerProvider.shutdown(), meterProvider.shutdown()]);
    },
  };
}
