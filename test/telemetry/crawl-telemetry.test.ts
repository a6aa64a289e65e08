/**
 * The spans and metrics of real crawls (Azurite, the emulator over HTTPS, the source served over HTTP), read from
 * OpenTelemetry's in-memory exporters through the same createOtelTelemetry the Function App feeds to Azure Monitor.
 * Faults make every number non-trivial: the source answers 429 once, the emulator throttles item PUTs and a group
 * create (429 + Retry-After), refuses one item for good (400) and one record is rejected by the mapping.
 */
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { SpanStatusCode } from '@opentelemetry/api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { METRICS } from '../../src/core/telemetry.js';
import type { CrawlJob } from '../../src/state/jobs.js';
import { addFault, jsonl, rec, recs, requestLog, startHttp } from '../invariants/helpers.js';
import { startStack, type Stack } from '../support/stack.js';
import { createTestTelemetry, type TestTelemetry } from '../support/telemetry.js';

const CONNECTION = 'contosotasks';
const SIG = 'sig=telemetry-test-signature';
const records = [...recs(12, 'TEL'), rec(50, { title: '' }, 'TEL')]; // the last one is rejected (no title)
const refusedId = 'TEL1005';

let stack: Stack;
let otel: TestTelemetry;
let source: Awaited<ReturnType<typeof startHttp>>;
let sourceGets = 0;
let first: CrawlJob;
let second: CrawlJob;
/** Spans of the first crawl only (the second's come after). */
let firstSpans: ReadableSpan[];

const attr = (s: ReadableSpan, k: string) => s.attributes[k];

beforeAll(async () => {
  const body = jsonl(records);
  source = await startHttp((req, res) => {
    sourceGets++;
    if (sourceGets === 1) {
      res.writeHead(429, { 'retry-after': '1', 'content-type': 'text/plain' }).end('slow down');
      return;
    }
    res.writeHead(200, { 'content-type': 'application/x-ndjson', etag: '"v1"' }).end(body);
  });
  otel = createTestTelemetry(CONNECTION);
  stack = await startStack({
    telemetry: otel.telemetry,
    editDefinition: (def) => {
      delete def.source.path;
      def.source.url = `${source.base}/tasks.jsonl?${SIG}`;
    },
  });
  expect(stack.rt.definition.connection.id).toBe(CONNECTION);

  await addFault(stack, {
    match: { method: 'PUT', route: 'item' },
    action: 'status',
    status: 429,
    retryAfter: 1,
    count: 2,
  });
  await addFault(stack, { match: { method: 'POST', route: 'groups' }, action: 'status', status: 429, retryAfter: 1 });
  await addFault(stack, {
    match: { method: 'PUT', route: 'item', itemId: refusedId },
    action: 'status',
    status: 400,
    code: 'InvalidRequest',
    message: 'Property priority in payload has a value that does not match schema.',
    count: 0,
  });
  await stack.admin('requests', { method: 'DELETE' });
  otel.resetSpans();
  const r1 = await stack.crawl({ mode: 'full' });
  first = r1.job!;
  firstSpans = otel.spans();
  const r2 = await stack.crawl({ mode: 'full' });
  second = r2.job!;
}, 120_000);

afterAll(async () => {
  await stack?.close();
  await source?.close();
  await otel?.shutdown();
});

describe('one crawl, as Application Insights would get it', () => {
  it('the crawls completed with the faults applied', () => {
    expect(first.status, first.error).toBe('completed');
    expect(first.counts).toMatchObject({ ingested: 11, rejected: 1, deadLettered: 1 });
    expect(second.status, second.error).toBe('completed');
    expect(second.counts.unchanged).toBe(11);
  });

  it('a client span per Graph call: method, URL without query, status, retries and the Retry-After waited', async () => {
    const graph = firstSpans.filter((s) => attr(s, 'graph_connector.dependency') === 'graph');
    const log = await requestLog(stack, true);
    const firstCrawlLog = log.filter((e) => Date.parse(e.time) <= Date.parse(first.finishedAt!));
    // One span per logical call: the emulator saw as many requests as there were attempts.
    const attempts = graph.reduce((n, s) => n + 1 + Number(attr(s, 'http.request.resend_count')), 0);
    expect(attempts).toBe(firstCrawlLog.length);
    for (const s of graph) {
      expect(s.kind).toBe(2); // SpanKind.CLIENT
      expect(attr(s, 'connection.id')).toBe(CONNECTION);
      expect(String(attr(s, 'url.full'))).toMatch(/^https:\/\/127\.0\.0\.1:\d+\/v1\.0\/external\/connections\//);
      expect(String(attr(s, 'url.full'))).not.toContain('?');
      expect(attr(s, 'server.address')).toBe('127.0.0.1');
      expect(['GET', 'PUT', 'POST', 'PATCH', 'DELETE']).toContain(attr(s, 'http.request.method'));
    }
    // Item PUTs: named by their route, not by the item (few span names), with Graph's status.
    const puts = graph.filter((s) => s.name === 'PUT /external/connections/{id}/items/{id}');
    const putLog = firstCrawlLog.filter((e) => e.method === 'PUT' && e.route === 'item');
    expect(puts).toHaveLength(putLog.length);
    const throttledPuts = puts.filter((s) => attr(s, 'http.response.status_code') === 429);
    expect(throttledPuts).toHaveLength(2); // the ingest does not retry in-process: it re-enqueues after Retry-After
    for (const s of throttledPuts) {
      expect(s.status.code).toBe(SpanStatusCode.ERROR);
      expect(attr(s, 'graph_connector.throttled_responses')).toBe(1);
      expect(attr(s, 'http.request.resend_count')).toBe(0);
    }
    const refused = puts.filter((s) => attr(s, 'http.response.status_code') === 400);
    expect(refused).toHaveLength(1);
    expect(String(attr(refused[0]!, 'url.full'))).toMatch(new RegExp(`/items/${refusedId}$`));
    expect(refused[0]!.status.code).toBe(SpanStatusCode.ERROR);
    expect(refused[0]!.attributes['error.type']).toBe('400');
    expect(puts.filter((s) => attr(s, 'http.response.status_code') === 200)).toHaveLength(11);
    // The group create was throttled once and retried in-process after its Retry-After.
    const groupCreate = graph.filter(
      (s) => s.name === 'POST /external/connections/{id}/groups' && attr(s, 'http.request.resend_count') === 1,
    );
    expect(groupCreate).toHaveLength(1);
    expect(attr(groupCreate[0]!, 'graph_connector.throttle.wait_ms')).toBe(1000);
    expect(attr(groupCreate[0]!, 'graph_connector.retry.wait_ms')).toBe(1000);
    expect(groupCreate[0]!.status.code).not.toBe(SpanStatusCode.ERROR);
    expect(attr(groupCreate[0]!, 'http.response.status_code')).toBeLessThan(300);
  });

  it('a client span per source call: the query string (a SAS-like signature) never reaches it', () => {
    const calls = firstSpans.filter((s) => attr(s, 'graph_connector.dependency') === 'source');
    expect(calls).toHaveLength(1);
    const s = calls[0]!;
    expect(s.name).toBe('GET 127.0.0.1');
    expect(attr(s, 'url.full')).toBe(`${source.base}/tasks.jsonl`);
    expect(attr(s, 'http.response.status_code')).toBe(200);
    expect(attr(s, 'http.request.resend_count')).toBe(1);
    expect(attr(s, 'graph_connector.throttled_responses')).toBe(1);
    expect(Number(attr(s, 'graph_connector.throttle.wait_ms'))).toBeGreaterThanOrEqual(1000);
    expect(JSON.stringify(otel.spans().map((x) => x.attributes))).not.toContain(SIG);
  });

  it('item counters per connection agree with the jobs', async () => {
    const ingested = await otel.metric(METRICS.itemsIngested);
    expect(ingested.every((p) => p.attributes['connection.id'] === CONNECTION)).toBe(true);
    expect(await otel.total(METRICS.itemsIngested)).toBe(first.counts.ingested + second.counts.ingested);
    expect(await otel.total(METRICS.itemsUnchanged)).toBe(first.counts.unchanged + second.counts.unchanged);
    expect(await otel.total(METRICS.itemsRejected)).toBe(first.counts.rejected + second.counts.rejected);
    expect(await otel.total(METRICS.itemsDeadLettered)).toBe(first.counts.deadLettered + second.counts.deadLettered);
    expect(await otel.total(METRICS.itemsDeadLettered)).toBeGreaterThan(0);
  });

  it('429s and their Retry-After: as many as the emulator answered', async () => {
    const throttledByEmulator = (await requestLog(stack, true)).filter((e) => e.status === 429).length;
    expect(throttledByEmulator).toBe(3);
    expect(await otel.total(METRICS.graphThrottled)).toBe(throttledByEmulator);
    const [retryAfter] = await otel.metric(METRICS.graphRetryAfter);
    expect(retryAfter).toMatchObject({ count: 3, sum: 3, attributes: { 'connection.id': CONNECTION } });
  });

  it('queue depth observed, and each crawl duration recorded with its status', async () => {
    const depth = await otel.metric(METRICS.queueDepth);
    expect(depth).toHaveLength(1);
    expect(depth[0]!.attributes).toEqual({ 'connection.id': CONNECTION });
    expect(depth[0]!.value).toBeGreaterThanOrEqual(0);
    const durations = await otel.metric(METRICS.crawlDuration);
    expect(durations).toEqual([
      expect.objectContaining({
        attributes: { 'connection.id': CONNECTION, status: 'completed', mode: 'full' },
        count: 2,
      }),
    ]);
    const expected =
      (Date.parse(first.finishedAt!) -
        Date.parse(first.startedAt) +
        (Date.parse(second.finishedAt!) - Date.parse(second.startedAt))) /
      1000;
    expect(durations[0]!.sum).toBeCloseTo(expected, 3);
  });
});
