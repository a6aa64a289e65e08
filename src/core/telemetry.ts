/**
 * What the connector reports besides logs: a dependency (client) span per call to Graph or to the source, and
 * metrics per connection. Domain code talks to this small interface; the OpenTelemetry implementation
 * (src/telemetry/otel.ts) is loaded only where it is switched on (the Function App with
 * APPLICATIONINSIGHTS_CONNECTION_STRING, or a test with in-memory exporters). Everything else gets
 * {@link noTelemetry}, which costs nothing. Names and attributes: docs/operations.md.
 */

/** The metric names a workbook queries: do not rename. */
export const METRICS = {
  /** Counter: items written to Graph (PUT settled). */
  itemsIngested: 'graph_connector.items.ingested',
  /** Counter: items removed from Graph (DELETE settled, sweeps included). */
  itemsDeleted: 'graph_connector.items.deleted',
  /** Counter: records whose item had not changed since the last crawl (nothing sent). */
  itemsUnchanged: 'graph_connector.items.unchanged',
  /** Counter: records the mapping rejected (listed with the dead letters, op `reject`). */
  itemsRejected: 'graph_connector.items.rejected',
  /** Counter: operations that became dead letters. */
  itemsDeadLettered: 'graph_connector.items.dead_lettered',
  /** Counter: 429 responses from Graph. */
  graphThrottled: 'graph_connector.graph.throttled',
  /** Histogram (s): the Retry-After of Graph's throttled responses. */
  graphRetryAfter: 'graph_connector.graph.retry_after_seconds',
  /** Gauge: approximate number of messages in the item queue. */
  queueDepth: 'graph_connector.queue.depth',
  /** Histogram (s): how long a crawl took, from start to its end (attribute `status`). */
  crawlDuration: 'graph_connector.crawl.duration',
} as const;

export type CounterName =
  | typeof METRICS.itemsIngested
  | typeof METRICS.itemsDeleted
  | typeof METRICS.itemsUnchanged
  | typeof METRICS.itemsRejected
  | typeof METRICS.itemsDeadLettered
  | typeof METRICS.graphThrottled;
export type HistogramName = typeof METRICS.graphRetryAfter | typeof METRICS.crawlDuration;
export type GaugeName = typeof METRICS.queueDepth;

export type MetricAttributes = Record<string, string | number | boolean>;

/** Which dependency a span describes. */
export type DependencyKind = 'graph' | 'source';

export interface DependencyRequest {
  method: string;
  /** Shown without query, user info or fragment (displayUrl): the caller passes it that way. */
  url: string;
  /** A low-cardinality span name (e.g. `PUT /external/connections/{id}/items/{id}`); default `METHOD host`. */
  name?: string;
}

/** One logical call in progress, retries included. */
export interface DependencyCall {
  /** A response arrived (any attempt). */
  response(status: number): void;
  /** Another attempt follows after `waitMs`; `throttled` when the wait was the server's Retry-After. */
  retry(waitMs: number, throttled: boolean): void;
  /** The call is over: with its final status, or the error it failed with. */
  end(result?: { status?: number; error?: unknown }): void;
}

export interface Telemetry {
  /** False for {@link noTelemetry}: work done only to report (e.g. reading the queue's depth) is skipped. */
  readonly enabled: boolean;
  dependency(kind: DependencyKind, request: DependencyRequest): DependencyCall;
  count(name: CounterName, value: number, attributes?: MetricAttributes): void;
  record(name: HistogramName, value: number, attributes?: MetricAttributes): void;
  gauge(name: GaugeName, value: number, attributes?: MetricAttributes): void;
}

const noCall: DependencyCall = { response() {}, retry() {}, end() {} };

export const noTelemetry: Telemetry = {
  enabled: false,
  dependency: () => noCall,
  count() {},
  record() {},
  gauge() {},
};
