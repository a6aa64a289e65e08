/// <reference types="vite/client" />
import { describe, expect, it } from 'vitest';
import { registered, triggerOf } from './fake-core.js';

// Importing the registration files runs their app.* calls against the captured fake core.
const files = import.meta.glob('../../functions/*.ts', { eager: true });

describe('Azure Functions registrations', () => {
  it('registers every function file exactly once', () => {
    expect(Object.keys(files).length).toBe(14);
    expect(registered.map((r) => r.metadata.name).sort()).toEqual(
      [
        'connectorNotification',
        'crawlControl',
        'crawlTimer',
        'dashboard',
        'deadLetters',
        'ingest',
        'ingestPoison',
        'job',
        'jobs',
        'provision',
        'provisionHttp',
        'replay',
        'resync',
        'status',
      ].sort(),
    );
  });

  it('schedules the crawl from the CRAWL_SCHEDULE app setting, without running on start-up', () => {
    expect(triggerOf('crawlTimer')).toMatchObject({
      type: 'timerTrigger',
      schedule: '%CRAWL_SCHEDULE%',
      runOnStartup: false,
    });
  });

  it('binds the queue triggers to the queues named by app settings, through AzureWebJobsStorage', () => {
    expect(triggerOf('ingest')).toMatchObject({
      type: 'queueTrigger',
      queueName: '%ITEMS_QUEUE%',
      connection: 'AzureWebJobsStorage',
    });
    expect(triggerOf('ingestPoison')).toMatchObject({ type: 'queueTrigger', queueName: '%ITEMS_QUEUE%-poison' });
    expect(triggerOf('crawlControl')).toMatchObject({ type: 'queueTrigger', queueName: '%CRAWL_QUEUE%' });
    expect(triggerOf('provision')).toMatchObject({ type: 'queueTrigger', queueName: '%PROVISION_QUEUE%' });
  });

  it('requires a function key on every HTTP trigger, with the documented routes and methods', () => {
    const http = registered.filter((r) => Object.values(r.metadata.bindings).some((b) => b.type === 'httpTrigger'));
    expect(http.length).toBe(9);
    // The admin center's notification carries no function key: its handler verifies signed tokens instead.
    for (const r of http)
      expect(triggerOf(r.metadata.name).authLevel).toBe(
        r.metadata.name === 'connectorNotification' ? 'anonymous' : 'function',
      );
    expect(triggerOf('connectorNotification')).toMatchObject({ route: 'notification', methods: ['POST'] });
    expect(triggerOf('resync')).toMatchObject({ route: 'resync', methods: ['POST'] });
    expect(triggerOf('status')).toMatchObject({ route: 'status', methods: ['GET'] });
    expect(triggerOf('job')).toMatchObject({ route: 'jobs/{id}', methods: ['GET'] });
    expect(triggerOf('jobs')).toMatchObject({ route: 'jobs', methods: ['GET'] });
    expect(triggerOf('dashboard')).toMatchObject({ route: 'dashboard', methods: ['GET'] });
    expect(triggerOf('deadLetters')).toMatchObject({ route: 'deadletters', methods: ['GET'] });
    expect(triggerOf('replay')).toMatchObject({ route: 'deadletters/replay', methods: ['POST'] });
    expect(triggerOf('provisionHttp')).toMatchObject({ route: 'provision', methods: ['POST'] });
  });
});

describe('host.json and the handlers agree', () => {
  it('the invocation signal fires before the host timeout, and no slice may run as long as it', async () => {
    const { readFileSync } = await import('node:fs');
    const { HOST_FUNCTION_TIMEOUT_MS } = await import('../../src/host/handlers.js');
    const host = JSON.parse(readFileSync(new URL('../../host.json', import.meta.url), 'utf8')) as {
      functionTimeout: string;
    };
    const [h, m, s] = host.functionTimeout.split(':').map(Number);
    expect(((h! * 60 + m!) * 60 + s!) * 1000).toBe(HOST_FUNCTION_TIMEOUT_MS);
    const { loadEnvironment } = await import('../../src/config/env.js');
    expect(() => loadEnvironment({ CRAWL_SLICE_SECONDS: String(HOST_FUNCTION_TIMEOUT_MS / 1000) })).toThrow(
      /CRAWL_SLICE_SECONDS/,
    );
  });
});
