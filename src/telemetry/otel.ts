/**
 * The {@link Telemetry} of src/core/telemetry.ts on OpenTelemetry: client spans with the HTTP semantic conventions
 * (https://opentelemetry.io/docs/specs/semconv/http/http-spans/), which the Azure Monitor exporter turns into
 * dependencies, and the connector's metrics with `connection.id` on every point.
 *
 * The providers are passed in: Azure Monitor exporters in the Function App (./azure-monitor.ts), in-memory
 * exporters in tests. Nothing is registered globally.
 */
import {
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  TraceFlags,
  trace,
  type Attributes,
  type Context,
  type Counter,
  type Gauge,
  type Histogram,
  type MeterProvider,
  type TracerProvider,
} from '@opentelemetry/api';
import {
  METRICS,
  type CounterName,
  type DependencyCall,
  type DependencyKind,
  type DependencyRequest,
  type GaugeName,
  type HistogramName,
  type MetricAttributes,
  type Telemetry,
} from '../core/telemetry.js';
import { messageOf } from '../core/errors.js';
import { redact } from '../log.js';

export const INSTRUMENTATION_SCOPE = 'graph-connector';

/** Span attributes of our own (the rest are OpenTelemetry's HTTP semantic conventions). */
export const SPAN_ATTRIBUTES = {
  dependency: 'graph_connector.dependency',
  /** All waits between attempts (backoff and Retry-After), in ms. */
  retryWaitMs: 'graph_connector.retry.wait_ms',
  /** The part of those waits the server asked for with Retry-After, in ms. */
  throttleWaitMs: 'graph_connector.throttle.wait_ms',
  /** 429 responses among the attempts. */
  throttledResponses: 'graph_connector.throttled_responses',
} as const;

export interface OtelTelemetryOptions {
  tracerProvider: Pick<TracerProvider, 'getTracer'>;
  meterProvider: Pick<MeterProvider, 'getMeter'>;
  connectionId: string;
  /**
   * The W3C traceparent to hang spans under when they start (the Functions invocation's, so Application Insights
   * shows them under the invocation's request). Absent: each call starts its own trace.
   */
  traceParent?: () => string | undefined;
}

const TRACEPARENT = /^[\da-f]{2}-([\da-f]{32})-([\da-f]{16})-([\da-f]{2})$/i;

/** The context of a W3C `traceparent` (https://www.w3.org/TR/trace-context/#traceparent-header), or the root. */
export function contextFromTraceParent(traceParent: string | undefined): Context {
  const m = traceParent ? TRACEPARENT.exec(traceParent.trim()) : null;
  if (!m || /^0+$/.test(m[1]!) || /^0+$/.test(m[2]!)) return ROOT_CONTEXT;
  return trace.setSpanContext(ROOT_CONTEXT, {
    traceId: m[1]!.toLowerCase(),
    spanId: m[2]!.toLowerCase(),
    traceFlags: parseInt(m[3]!, 16) & TraceFlags.SAMPLED,
    isRemote: true,
  });
}

function hostOf(url: string): { address?: string; port?: number } {
  try {
    const u = new URL(url);
    const port = u.port ? Number(u.port) : u.protocol === 'https:' ? 443 : u.protocol === 'http:' ? 80 : undefined;
    return { address: u.hostname, ...(port !== undefined ? { port } : {}) };
  } catch {
    return {};
  }
}

function errorType(error: unknown): string {
  const e = error as { code?: unknown; name?: unknown } | undefined;
  if (typeof e?.code === 'string' && e.code) return e.code;
  if (typeof e?.name === 'string' && e.name) return e.name;
  return '_OTHER';
}

export function createOtelTelemetry(options: OtelTelemetryOptions): Telemetry {
  const tracer = options.tracerProvider.getTracer(INSTRUMENTATION_SCOPE);
  const meter = options.meterProvider.getMeter(INSTRUMENTATION_SCOPE);
  const base: Attributes = { 'connection.id': options.connectionId };
  const item = { unit: '{item}' };
  const counters: Record<CounterName, Counter> = {
    [METRICS.itemsIngested]: meter.createCounter(METRICS.itemsIngested, {
      ...item,
      description: 'Items written to Graph (PUT settled)',
    }),
    [METRICS.itemsDeleted]: meter.createCounter(METRICS.itemsDeleted, {
      ...item,
      description: 'Items removed from Graph (DELETE settled)',
    }),
    [METRICS.itemsUnchanged]: meter.createCounter(METRICS.itemsUnchanged, {
      ...item,
      description: 'Records unchanged since the last crawl (nothing sent)',
    }),
    [METRICS.itemsRejected]: meter.createCounter(METRICS.itemsRejected, {
      ...item,
      description: 'Records the mapping rejected',
    }),
    [METRICS.itemsDeadLettered]: meter.createCounter(METRICS.itemsDeadLettered, {
      ...item,
      description: 'Operations that became dead letters',
    }),
    [METRICS.graphThrottled]: meter.createCounter(METRICS.graphThrottled, {
      unit: '{response}',
      description: '429 responses from Microsoft Graph',
    }),
  };
  const histograms: Record<HistogramName, Histogram> = {
    [METRICS.graphRetryAfter]: meter.createHistogram(METRICS.graphRetryAfter, {
      unit: 's',
      description: 'Retry-After of throttled Graph responses',
      advice: { explicitBucketBoundaries: [0.5, 1, 2, 5, 10, 30, 60, 120, 300] },
    }),
    [METRICS.crawlDuration]: meter.createHistogram(METRICS.crawlDuration, {
      unit: 's',
      description: 'Duration of a crawl, from its start to its end',
      advice: { explicitBucketBoundaries: [1, 5, 15, 60, 300, 900, 1800, 3600, 7200, 21600] },
    }),
  };
  const gauges: Record<GaugeName, Gauge> = {
    [METRICS.queueDepth]: meter.createGauge(METRICS.queueDepth, {
      unit: '{message}',
      description: 'Approximate number of messages in the item queue',
    }),
  };

  const attrs = (extra?: MetricAttributes): Attributes => (extra ? { ...extra, ...base } : base);

  return {
    enabled: true,
    dependency(kind: DependencyKind, request: DependencyRequest): DependencyCall {
      const method = request.method.toUpperCase();
      const server = hostOf(request.url);
      const span = tracer.startSpan(
        request.name ?? `${method} ${server.address ?? kind}`,
        {
          kind: SpanKind.CLIENT,
          attributes: {
            ...base,
            [SPAN_ATTRIBUTES.dependency]: kind,
            'http.request.method': method,
            'url.full': request.url,
            ...(server.address ? { 'server.address': server.address } : {}),
            ...(server.port !== undefined ? { 'server.port': server.port } : {}),
          },
        },
        contextFromTraceParent(options.traceParent?.()),
      );
      let resends = 0;
      let retryWaitMs = 0;
      let throttleWaitMs = 0;
      let throttled = 0;
      let lastStatus: number | undefined;
      let ended = false;
      return {
        response(status) {
          lastStatus = status;
          if (status === 429) throttled++;
        },
        retry(waitMs, byServer) {
          resends++;
          retryWaitMs += waitMs;
          if (byServer) throttleWaitMs += waitMs;
        },
        end(result = {}) {
          if (ended) return;
          ended = true;
          const status = result.status ?? lastStatus;
          span.setAttributes({
            'http.request.resend_count': resends,
            [SPAN_ATTRIBUTES.retryWaitMs]: Math.round(retryWaitMs),
            [SPAN_ATTRIBUTES.throttleWaitMs]: Math.round(throttleWaitMs),
            [SPAN_ATTRIBUTES.throttledResponses]: throttled,
            ...(status !== undefined && status > 0 ? { 'http.response.status_code': status } : {}),
          });
          if (result.error !== undefined) {
            span.setAttribute(
              'error.type',
              status !== undefined && status >= 400 ? String(status) : errorType(result.error),
            );
            span.setStatus({ code: SpanStatusCode.ERROR, message: redact(messageOf(result.error)).slice(0, 500) });
          }
          span.end();
        },
      };
    },
    count(name, value, extra) {
      if (value > 0) counters[name].add(value, attrs(extra));
    },
    record(name, value, extra) {
      if (Number.isFinite(value) && value >= 0) histograms[name].record(value, attrs(extra));
    },
    gauge(name, value, extra) {
      if (Number.isFinite(value)) gauges[name].record(value, attrs(extra));
    },
  };
}
