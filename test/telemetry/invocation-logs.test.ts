/**
 * Under the Functions host, log lines go through the invocation's context (severity + invocation id in Application
 * Insights), concurrent invocations never mix, nothing is logged on a finished invocation, spans hang under the
 * invocation's traceparent, and the Azure Monitor settings are read (and refused) as documented. The handlers run
 * against the real stack with a real InvocationContext whose logHandler records what the host would receive.
 */
import { InvocationContext, type LogLevel } from '@azure/functions';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadEnvironment } from '../../src/config/env.js';
import type { ConfigError } from '../../src/config/problems.js';
import { noTelemetry } from '../../src/core/telemetry.js';
import { createHandlers, type Handlers } from '../../src/host/handlers.js';
import { currentTraceParent, invocationRoutedSink, runInInvocation } from '../../src/host/invocation.js';
import { clearRegisteredSecrets, createLogger, jsonLine, registerSecret, type LogEntry } from '../../src/log.js';
import { azureMonitorSettings, telemetryFromEnvironment } from '../../src/telemetry/azure-monitor.js';
import { jsonl, recs } from '../invariants/helpers.js';
import { startStack, type Stack } from '../support/stack.js';
import { createTestTelemetry } from '../support/telemetry.js';

interface Captured {
  level: LogLevel;
  text: string;
}

function invocation(name: string, id: string, traceParent?: string) {
  const logs: Captured[] = [];
  const context = new InvocationContext({
    functionName: name,
    invocationId: id,
    logHandler: (level, ...args) => logs.push({ level, text: args.map(String).join(' ') }),
    ...(traceParent ? { traceContext: { traceParent } } : {}),
  });
  return { context, logs };
}

describe('the invocation sink', () => {
  it('maps levels to severities, keeps fields as a JSON suffix, and falls back outside an invocation', async () => {
    const outside: string[] = [];
    const log = createLogger({ level: 'debug', sink: invocationRoutedSink((e) => outside.push(jsonLine(e))) });
    const { context, logs } = invocation('crawlControl', 'inv-1');
    await runInInvocation(context, async () => {
      const child = log.child({ component: 'source', invocationId: 'inv-1', functionName: 'crawlControl' });
      child.debug('page read', { records: 10 });
      child.info('crawl slice finished', { crawlId: 'c1', reason: undefined });
      child.warn('source request will be retried', { status: 429 });
      child.error('crawl failed', { crawlId: 'c1' });
    });
    log.info('after the invocation');
    expect(logs).toEqual([
      { level: 'debug', text: 'page read {"component":"source","records":10}' },
      { level: 'information', text: 'crawl slice finished {"component":"source","crawlId":"c1"}' },
      { level: 'warning', text: 'source request will be retried {"component":"source","status":429}' },
      { level: 'error', text: 'crawl failed {"component":"source","crawlId":"c1"}' },
    ]);
    expect(outside).toHaveLength(1);
    expect(JSON.parse(outside[0]!)).toMatchObject({ level: 'info', msg: 'after the invocation' });
  });

  it('redaction is unchanged: a registered secret never reaches the context', async () => {
    registerSecret('invocation-secret-value');
    const log = createLogger({ level: 'debug', sink: invocationRoutedSink(() => {}) });
    const { context, logs } = invocation('ingest', 'inv-secret');
    await runInInvocation(context, async () =>
      log.error('token request failed with invocation-secret-value', {
        clientSecret: 'plain-named-secret',
        header: 'Bearer abc.def.ghi',
      }),
    );
    const text = logs.map((l) => l.text).join('\n');
    expect(text).not.toContain('invocation-secret-value');
    expect(text).not.toContain('plain-named-secret');
    expect(text).not.toContain('abc.def.ghi');
    expect(text).toContain('[REDACTED]');
    clearRegisteredSecrets();
  });

  it('concurrent invocations each get only their own lines; a straggler after the end falls back', async () => {
    const outside: LogEntry[] = [];
    const log = createLogger({ level: 'info', sink: invocationRoutedSink((e) => outside.push(e)) });
    const a = invocation('ingest', 'inv-a');
    const b = invocation('ingest', 'inv-b');
    let straggler: Promise<void> | undefined;
    const step = () => new Promise<void>((r) => setTimeout(r, 5));
    await Promise.all([
      runInInvocation(a.context, async () => {
        for (let i = 0; i < 5; i++) {
          log.info('a', { i });
          await step();
        }
        straggler = step().then(() => step().then(() => log.info('late from a')));
      }),
      runInInvocation(b.context, async () => {
        for (let i = 0; i < 5; i++) {
          await step();
          log.info('b', { i });
        }
      }),
    ]);
    await straggler;
    expect(a.logs.map((l) => l.text)).toEqual([0, 1, 2, 3, 4].map((i) => `a {"i":${i}}`));
    expect(b.logs.map((l) => l.text)).toEqual([0, 1, 2, 3, 4].map((i) => `b {"i":${i}}`));
    expect(outside.map((e) => e.msg)).toEqual(['late from a']);
  });

  it("spans started in an invocation are children of the invocation's traceparent", async () => {
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    const parentId = '00f067aa0ba902b7';
    const otel = createTestTelemetry('c', { traceParent: currentTraceParent });
    const { context } = invocation('crawlControl', 'inv-t', `00-${traceId}-${parentId}-01`);
    await runInInvocation(context, async () => {
      otel.telemetry
        .dependency('graph', { method: 'GET', url: 'https://graph.microsoft.com/v1.0/x' })
        .end({ status: 200 });
    });
    otel.telemetry
      .dependency('graph', { method: 'GET', url: 'https://graph.microsoft.com/v1.0/y' })
      .end({ status: 200 });
    const [inside, outside] = otel.spans();
    expect(inside!.spanContext().traceId).toBe(traceId);
    expect(inside!.parentSpanContext?.spanId).toBe(parentId);
    expect(outside!.spanContext().traceId).not.toBe(traceId);
    expect(outside!.parentSpanContext).toBeUndefined();
    await otel.shutdown();
  });
});

describe('handlers under the host', () => {
  let stack: Stack;
  let handlers: Handlers;
  const fallback: LogEntry[] = [];
  beforeAll(async () => {
    stack = await startStack({
      records: jsonl(recs(3, 'LOG')),
      logger: createLogger({ level: 'debug', sink: invocationRoutedSink((e) => fallback.push(e)) }),
    });
    handlers = createHandlers(async () => stack.rt);
  }, 60_000);
  afterAll(async () => stack?.close());

  it("the timer's lines, and the pipeline's below it, reach the invocation's context", async () => {
    fallback.length = 0;
    const { context, logs } = invocation('crawlTimer', 'inv-timer');
    await handlers.crawlTimer(
      { isPastDue: true, schedule: { adjustForDST: false }, scheduleStatus: {} } as never,
      context,
    );
    expect(logs.map((l) => l.level)).toContain('warning');
    const started = logs.find((l) => l.text.startsWith('scheduled crawl started '));
    expect(started?.level).toBe('information');
    expect(JSON.parse(started!.text.slice('scheduled crawl started '.length))).toEqual({
      crawlId: expect.stringMatching(/^[0-9a-f]{13,40}$/),
      mode: 'full',
    });
    // Correlation is the context's: the invocation id is not repeated in the text.
    expect(logs.some((l) => l.text.includes('inv-timer'))).toBe(false);
    expect(fallback).toEqual([]);
  });
});

describe('Azure Monitor settings', () => {
  const cs = 'InstrumentationKey=00000000-0000-0000-0000-000000000000;IngestionEndpoint=https://example.invalid/';

  it('off without APPLICATIONINSIGHTS_CONNECTION_STRING: no exporter is loaded', async () => {
    expect(azureMonitorSettings({})).toBeUndefined();
    const setup = await telemetryFromEnvironment({}, { connectionId: 'c', logger: createLogger({ level: 'error' }) });
    expect(setup.telemetry).toBe(noTelemetry);
  });

  it('Entra auth: a user-assigned identity, the system-assigned one, or the default credential', () => {
    const clientId = '11111111-2222-3333-4444-555555555555';
    expect(
      azureMonitorSettings({
        APPLICATIONINSIGHTS_CONNECTION_STRING: cs,
        APPLICATIONINSIGHTS_AUTHENTICATION_STRING: `Authorization=AAD;ClientId=${clientId}`,
      }),
    ).toEqual({ connectionString: cs, identity: { kind: 'userAssigned', clientId } });
    expect(
      azureMonitorSettings({
        APPLICATIONINSIGHTS_CONNECTION_STRING: cs,
        APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'Authorization=AAD',
      }),
    ).toEqual({ connectionString: cs, identity: { kind: 'systemAssigned' } });
    expect(azureMonitorSettings({ APPLICATIONINSIGHTS_CONNECTION_STRING: cs })?.identity).toEqual({ kind: 'default' });
  });

  it('a malformed setting is refused with its name and the fix', () => {
    expect(() =>
      azureMonitorSettings({
        APPLICATIONINSIGHTS_CONNECTION_STRING: cs,
        APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'Authorization=Key;ClientId=x',
      }),
    ).toThrow(/APPLICATIONINSIGHTS_AUTHENTICATION_STRING: must contain "Authorization=AAD"[\s\S]*fix: set it to/);
    expect(() =>
      azureMonitorSettings({
        APPLICATIONINSIGHTS_CONNECTION_STRING: cs,
        APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'Authorization=AAD;ClientId=/subscriptions/x',
      }),
    ).toThrow(/ClientId "\/subscriptions\/x" is not a GUID[\s\S]*client id/);
    // Part of the environment's validation: listed with every other problem at start-up (and by doctor).
    let listed: ConfigError | undefined;
    try {
      loadEnvironment({
        GRAPH_TENANT_ID: 't1',
        GRAPH_CLIENT_ID: 'c1',
        LOG_LEVEL: 'loud',
        APPLICATIONINSIGHTS_CONNECTION_STRING: cs,
        APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'Authorization=AAD;ClientId=nope',
      });
    } catch (e) {
      listed = e as ConfigError;
    }
    expect(listed?.problems.map((p) => p.path).sort()).toEqual([
      'APPLICATIONINSIGHTS_AUTHENTICATION_STRING',
      'LOG_LEVEL',
    ]);
    expect(
      loadEnvironment({ GRAPH_TENANT_ID: 't1', GRAPH_CLIENT_ID: 'c1', APPLICATIONINSIGHTS_CONNECTION_STRING: cs })
        .azureMonitor,
    ).toEqual({ connectionString: cs, identity: { kind: 'default' } });
    expect(() => azureMonitorSettings({ APPLICATIONINSIGHTS_CONNECTION_STRING: 'https://example.invalid' })).toThrow(
      /APPLICATIONINSIGHTS_CONNECTION_STRING: is not an Application Insights connection string/,
    );
  });
});
